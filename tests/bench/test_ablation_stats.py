"""The ablation's statistics on synthetic numbers: known curves give known areas, the paired
hierarchical bootstrap covers the true difference, and identical arms differ by exactly 0."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from ablation_stats import auc, hierarchical_bootstrap, paired_difference, per_prompt

STEPS = [0, 10, 20, 30, 40]


def test_known_curves_give_known_normalised_areas():
    assert auc(STEPS, [0.3] * 5) == pytest.approx(0.3)  # a constant curve: its level
    assert auc(STEPS, [0.4, 0.3, 0.2, 0.1, 0.0]) == pytest.approx(0.2)  # a line: its midpoint
    # uneven steps: trapezoids 5·(0.5 + 0.3) / 2 + 35·(0.3 + 0.1) / 2 = 9, over 40 steps
    assert auc([0, 5, 40], [0.5, 0.3, 0.1]) == pytest.approx(9 / 40)
    assert auc([0], [0.7]) == pytest.approx(0.7)  # one eval point: its value
    values_SEP = np.broadcast_to(np.array([0.4, 0.3, 0.2, 0.1, 0.0])[None, :, None], (2, 5, 3))
    assert per_prompt(values_SEP, STEPS, "auc") == pytest.approx(np.full((2, 3), 0.2))
    assert per_prompt(values_SEP, STEPS, "final") == pytest.approx(np.zeros((2, 3)))


def test_identical_arms_differ_by_exactly_zero():
    rng = np.random.default_rng(0)
    a_SEP = rng.random((4, 5, 48))
    for statistic in ("auc", "final"):
        d = paired_difference(a_SEP, a_SEP.copy(), STEPS, statistic)
        assert d["per_seed"] == [0.0] * 4 and d["mean"] == d["lo"] == d["hi"] == 0.0


def test_a_constant_shift_is_recovered_exactly_because_prompts_are_paired():
    rng = np.random.default_rng(1)
    b_SEP = rng.random((4, 5, 48))  # prompts differ widely; the pairing cancels them
    d = paired_difference(b_SEP - 0.05, b_SEP, STEPS, "auc")
    assert d["mean"] == pytest.approx(-0.05) and d["lo"] == pytest.approx(-0.05)
    assert d["hi"] == pytest.approx(-0.05) and d["per_seed"] == pytest.approx([-0.05] * 4)


def synthetic_arms(rng, true_difference: float, num_seeds: int = 4, num_prompts: int = 48):
    """Two arms' defect curves `[S, E, P]`: a per-prompt difficulty both arms share, a seed
    effect on each run, and noise per prompt and eval point; in expectation a's curves are
    b's shifted by `true_difference`."""
    difficulty_P = rng.uniform(0.1, 0.6, num_prompts)
    drop_E = np.linspace(0.0, 0.1, len(STEPS))

    def arm(shift: float):
        seed_S1 = rng.normal(0.0, 0.02, (num_seeds, 1))
        noise_SEP = rng.normal(0.0, 0.15, (num_seeds, len(STEPS), num_prompts))
        return (difficulty_P[None, None] - drop_E[None, :, None] + seed_S1[..., None] + shift
                + noise_SEP)
    return arm(true_difference), arm(0.0)


def test_the_interval_covers_the_true_paired_difference():
    rng = np.random.default_rng(2)
    truth = -0.04
    a_SEP, b_SEP = synthetic_arms(rng, truth)
    d = paired_difference(a_SEP, b_SEP, STEPS, "auc")
    assert d["lo"] < truth < d["hi"] and d["lo"] < d["mean"] < d["hi"]
    covered = 0
    for _ in range(100):  # over repeated experiments, most intervals hold the truth
        a_SEP, b_SEP = synthetic_arms(rng, truth)
        d = paired_difference(a_SEP, b_SEP, STEPS, "final", resamples=500)
        covered += d["lo"] <= truth <= d["hi"]
    assert covered >= 80


def test_prompts_without_the_metric_are_left_out_of_the_means():
    x_SP = np.array([[0.2, np.nan, 0.4], [0.6, np.nan, 0.8]])
    result = hierarchical_bootstrap(x_SP, resamples=200)
    assert result["per_seed"] == pytest.approx([0.3, 0.7]) and result["mean"] == pytest.approx(0.5)
    assert 0.2 <= result["lo"] <= result["mean"] <= result["hi"] <= 0.8


def test_an_unknown_statistic_is_refused():
    with pytest.raises(ValueError, match="statistic"):
        per_prompt(np.zeros((1, 2, 3)), [0, 1], "median")
