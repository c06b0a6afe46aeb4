"""``benchmarks/heading_compare.py``: paired comparison of two weights on the same chips."""

from __future__ import annotations

import runpy
import subprocess
import sys


def test_mcnemar_p_is_the_exact_two_sided_binomial_test():
    mcnemar_p = runpy.run_path("benchmarks/heading_compare.py")["mcnemar_p"]
    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(5, 5) == 1.0
    assert abs(mcnemar_p(6, 0) - 2 * 0.5**6) < 1e-12  # all six discordant pairs one way
    assert abs(mcnemar_p(39, 15) - mcnemar_p(15, 39)) < 1e-12 and mcnemar_p(39, 15) < 0.002


def test_a_model_against_itself_gains_and_loses_nothing():
    weights = "models/weights/wake_keypoints_b0.pt"
    out = subprocess.run(
        [sys.executable, "benchmarks/heading_compare.py", weights, "--baseline", weights, "--seeds", "11", "--count", "40"],
        capture_output=True, text=True, check=True,
    ).stdout
    row = next(line.split() for line in out.splitlines() if line.strip().startswith("11 "))
    assert row[2] == row[3]  # same within-10° rate
    baseline_flagged, candidate_flagged = map(float, row[-4].split("/"))  # wakeless chips flagged ambiguous, %
    assert baseline_flagged == candidate_flagged and 0.0 <= baseline_flagged <= 100.0
    assert row[-3:] == ["0", "0", "1.0000"]  # gained, lost, p
