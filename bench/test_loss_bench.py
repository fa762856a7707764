"""pytest-benchmark suite for the CPU hot path of the fused loss: fwd+bwd of `linear_vsdpo_loss`
(torch kernel) from hidden states, with the eager PyTorch loss on the same inputs as baseline.

Run (pyproject's addopts disable benchmarks for the default test run, hence --benchmark-enable):

    .venv/bin/python -m pytest bench --benchmark-enable --benchmark-json=bench/results/pytest_loss_cpu.json

Not collected by `pytest tests` (testpaths is tests/). Shape: N = 1024, H = 256, V = 32000, fp32,
2 threads — a quarter of bench/loss.py's CPU shape, so a round stays well under a second.
"""

import pytest
import torch

from loss_providers import Case, setup

CASE = Case(num_tokens=1024, hidden=256, vocab=32000, dtype="float32", device="cpu")


@pytest.fixture(autouse=True)
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("provider", ["eager", "ours"])
def test_fused_loss_fwd_bwd_on_cpu_gives_a_finite_loss_and_gradients(benchmark, provider):
    fwd_bwd, inputs = setup(CASE, provider)
    benchmark.group = f"fused loss fwd+bwd, N={CASE.num_tokens} H={CASE.hidden} V={CASE.vocab} fp32"
    benchmark.extra_info.update(CASE.as_dict(), matmul_flop=CASE.matmul_flop)
    loss = benchmark.pedantic(fwd_bwd, rounds=10, warmup_rounds=1)
    assert torch.isfinite(loss)
    assert torch.isfinite(inputs["student_NH"].grad).all()
    assert torch.isfinite(inputs["weight_VH"].grad).all()
