"""The package's requirements accept the GPU image (Python 3.12, torch 2.11, triton 3.6,
transformers 5.17) as well as this machine; the exact CPU pins live in the constraints file
that scripts/setup.sh installs with, not in pyproject.toml."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
CONSTRAINTS = REPO / "scripts" / "constraints-cpu.txt"


def _requirements(lines) -> dict[str, Requirement]:
    return {r.name: r for r in map(Requirement, lines)}


@pytest.mark.parametrize("python", ["3.11.7", "3.12.3", "3.13.1"])
def test_the_package_accepts_python_3_11_to_3_13(python):
    assert SpecifierSet(PROJECT["requires-python"]).contains(python)


@pytest.mark.parametrize("name, version", [
    ("torch", "2.11.0"), ("torch", "2.13.0"), ("triton", "3.6.0"), ("triton", "3.7.1"),
    ("transformers", "5.17.0"), ("transformers", "5.19.0"),
])
def test_the_package_accepts_the_gpu_image_and_the_cpu_versions(name, version):
    assert _requirements(PROJECT["dependencies"])[name].specifier.contains(version)


def test_setup_installs_exactly_the_cpu_pins():
    lines = [line.split("#")[0].strip() for line in CONSTRAINTS.read_text().splitlines()]
    pins = _requirements(line for line in lines if line)
    assert {name: str(r.specifier) for name, r in pins.items()} == {
        "torch": "==2.13.0", "triton": "==3.7.1"}
    setup = "\n".join(line.split(" # ")[0] for line in
                      (REPO / "scripts" / "setup.sh").read_text().splitlines())
    # one pip command, with the constraints, that every install goes through
    assert re.search(r"pip=\(\.venv/bin/pip install .*-c scripts/constraints-cpu\.txt\)", setup)
    assert setup.count("pip install") == 1 and setup.count('"${pip[@]}"') == 3
    assert "python3.11 -m venv" in setup and "scripts/constraints-cpu.txt" in setup.split("want=")[1]
