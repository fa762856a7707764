"""Blame reaches the cause on the synthetic world (`bench/blame.py`, real Chromium and
matplotlib): the style statement that decided each defective block is blamed, and nothing
outside the defective blocks is."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from blame import blame_quality  # noqa: E402


def test_the_deciding_statement_of_nine_in_ten_defective_samples_is_blamed():
    quality = blame_quality(num_tasks=24, seed=7)
    for domain in ("chart", "web", "slide"):
        assert quality[domain]["samples"] >= 2, quality[domain]
    overall = quality["all"]
    assert overall["recall_samples"] >= 0.9, overall
    assert overall["precision"] >= 0.9, overall
