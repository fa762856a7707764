"""The ablation's statistics (`bench/ablation.py`): the area under an eval curve, and paired
differences between two arms with a hierarchical bootstrap interval.

The unit is a (seed, held-out prompt): both arms' runs of one seed start from the same model
and are evaluated on the same prompts under the same sampling seed, so a difference is taken
per prompt first. The interval resamples seeds, then prompts within each drawn seed; since a
drawn prompt index picks the difference, the two arms always share it.

Legend: S seeds, E eval points, P prompts, B bootstrap resamples.
"""

import warnings

import numpy as np

STATISTICS = ("auc", "final")


def auc(steps, values, axis: int = -1):
    """Trapezoid area under `values` over `steps` (along `axis`), divided by the step range:
    the curve's mean level over training, so a constant curve c gives c."""
    steps = np.asarray(steps, dtype=np.float64)
    values = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    if len(steps) < 2:
        return values[..., -1]
    return np.trapezoid(values, steps, axis=-1) / (steps[-1] - steps[0])


def per_prompt(values_SEP, steps, statistic: str) -> np.ndarray:
    """`[S, P]`: each prompt's curve reduced to its "auc" or its "final" value."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    values_SEP = np.asarray(values_SEP, dtype=np.float64)
    return auc(steps, values_SEP, axis=1) if statistic == "auc" else values_SEP[:, -1]


def hierarchical_bootstrap(x_SP, resamples: int = 2000, seed: int = 0) -> dict:
    """The mean over seeds of each seed's mean over prompts, with a 95% percentile interval
    from resampling seeds, then prompts within each drawn seed. NaN (a prompt without the
    metric) is left out of its means."""
    x_SP = np.asarray(x_SP, dtype=np.float64)
    num_seeds, num_prompts = x_SP.shape
    rng = np.random.default_rng(seed)
    seeds_BS = rng.integers(0, num_seeds, size=(resamples, num_seeds))
    prompts_BSP = rng.integers(0, num_prompts, size=(resamples, num_seeds, num_prompts))
    with warnings.catch_warnings():  # a resample whose prompts all lack the metric: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        per_seed_S = np.nanmean(x_SP, axis=1)
        means_B = np.nanmean(np.nanmean(x_SP[seeds_BS[..., None], prompts_BSP], axis=2), axis=1)
        lo, hi = np.nanpercentile(means_B, [2.5, 97.5])
    return {"per_seed": per_seed_S.tolist(), "mean": float(np.nanmean(per_seed_S)),
            "lo": float(lo), "hi": float(hi)}


def paired_difference(a_SEP, b_SEP, steps, statistic: str, resamples: int = 2000,
                      seed: int = 0) -> dict:
    """Arm a minus arm b, per seed and overall (`hierarchical_bootstrap` of the per-prompt
    differences of `statistic`); both `[S, E, P]` with the same seeds and prompts in order."""
    d_SP = per_prompt(a_SEP, steps, statistic) - per_prompt(b_SEP, steps, statistic)
    return hierarchical_bootstrap(d_SP, resamples, seed)
