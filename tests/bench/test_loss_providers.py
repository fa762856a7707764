"""bench/loss.py on a GPU image: one provider's failure (an inductor or Liger error, not only
out of memory) is reported in that provider's row while the others are timed, and the memory
run reuses the baselines compiled by the timing run instead of recompiling them."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import loss as loss_bench  # noqa: E402
import loss_providers  # noqa: E402
from loss_providers import Case, setup  # noqa: E402

CASE = Case(num_tokens=256, hidden=64, vocab=1000, dtype="float32", device="cpu")


@pytest.fixture(autouse=True)
def fresh_baselines():
    """Baselines built under a test's patches must not outlive it."""
    loss_providers.baseline_loss_fn.cache_clear()
    yield
    loss_providers.baseline_loss_fn.cache_clear()


def test_a_failing_provider_is_reported_and_the_others_are_still_timed(monkeypatch):
    def broken(*args):
        raise RuntimeError("inductor fell over")

    monkeypatch.setattr(loss_providers, "eager_loss", broken)
    run = loss_bench.time_case(CASE, ["eager", "ours"], reps=3, warmup=1, quick=True)
    assert run["providers"]["eager"] == {"error": "RuntimeError: inductor fell over"}
    assert run["providers"]["ours"]["median_ms"] > 0


def test_a_failing_memory_measurement_is_reported_not_raised():
    stats = loss_bench.memory(CASE, "no_such_provider", quick=True)
    assert "no_such_provider" in stats["memory_error"]


def test_the_memory_run_reuses_the_compiled_baseline(monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn: compiled.append(fn) or fn)
    for _ in range(2):  # the timing run's setup, then the memory run's
        fwd_bwd, _ = setup(CASE, "compile")
        assert torch.isfinite(fwd_bwd())
    assert compiled == [loss_providers.eager_loss]
