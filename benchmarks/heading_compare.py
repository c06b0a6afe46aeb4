"""Paired comparison of two heading weights on the same synthetic chips: which wakes each gets right.

A candidate model (a fine-tune, a weight average) is adopted only when it beats the shipped one
beyond noise *in the training ranges* (in-distribution); the held-out set is then run once for
it. "Within 10°" rates of two models on ~2,500 wakes differ by a point by chance, so this script
scores both on the very same chips and counts the wakes the candidate gets right that the baseline
misses ("gained") and the other way ("lost"); the exact McNemar test (a two-sided binomial test on
those discordant wakes) says how likely such a split is if the two were equally good. The chips
without a wake are scored too: the share each model flags ambiguous (withholds or doubts its
heading), because a candidate can gain wakes by reporting headings where there is no wake.

Both models run the same way: without dihedral test-time augmentation (a model's
``zoom_scales`` do run) and with the same wake threshold (the baseline's fitted one unless
``--threshold``), because a candidate is compared before it is calibrated; ``--own-thresholds``
keeps each one's fitted threshold (two calibrated ways of running the same weights). Seeds
default to two used nowhere else (not training, calibration or held-out).

Usage::

    python benchmarks/heading_compare.py CANDIDATE.pt [--baseline models/weights/wake_keypoints_b0.pt]
        [--seeds 8100001 8300007] [--count 3000] [--heldout-ranges] [--threshold 0.73 | --own-thresholds]

The stage-4 weights that the shipped average was compared with are in git history:
``git show 9ec7ce0:models/weights/wake_keypoints_b0.pt > stage4.pt`` (and ``.json`` likewise).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import binomtest

from models.inference import HeadingModel, load_heading_model, predict_keypoints
from models.metrics import angular_error_deg
from models.wake_chips import BAND_NAMES, HELDOUT_RANGES, TRAIN_RANGES, draw_chips

#: Seeds of the comparison sets (not training 0.., validation +1,000,003, calibration 7000001, held-out 9000017).
COMPARISON_SEEDS = (8_100_001, 8_300_007)


def mcnemar_p(gained: int, lost: int) -> float:
    """Exact two-sided McNemar p-value for ``gained`` vs ``lost`` discordant pairs (1.0 when there are none)."""
    if gained + lost == 0:
        return 1.0
    return float(binomtest(gained, gained + lost, 0.5).pvalue)


def score_chips(
    model: HeadingModel, data: np.ndarray, truth_deg: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per chip: heading within 10° of the truth (bool), the error (degrees, NaN without a heading) and the
    ambiguous flag (bool); no dihedral TTA (a model's zooms run)."""
    pred = predict_keypoints(model, data, BAND_NAMES, tta=False)
    errors = angular_error_deg(pred.heading_grid_deg, truth_deg)
    return errors <= 10.0, errors, pred.ambiguous


def _flagged_pct(counts: np.ndarray) -> str:
    """``"b/c"``: the percentages of ``counts[0]`` wakeless chips that ``counts[1:]`` flag ("-/-" without any)."""
    if counts[0] == 0:
        return "-/-"
    return "/".join(f"{100 * n / counts[0]:.2f}" for n in counts[1:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("candidate")
    parser.add_argument("--baseline", default=None, help="Default: the shipped weights (settings).")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(COMPARISON_SEEDS))
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--chip-size", type=int, default=128)
    parser.add_argument("--heldout-ranges", action="store_true", help="Draw from HELDOUT_RANGES instead (not for selection).")
    thresholds = parser.add_mutually_exclusive_group()
    thresholds.add_argument("--threshold", type=float, default=None, help="Wake threshold for both (default: the baseline's).")
    thresholds.add_argument("--own-thresholds", action="store_true",
                            help="Each model keeps its own fitted wake threshold (both calibrated, e.g. an inference option).")
    args = parser.parse_args(argv)

    baseline = load_heading_model(args.baseline)
    candidate = load_heading_model(args.candidate)
    threshold = baseline.config.wake_probability_threshold if args.threshold is None else args.threshold
    if args.own_thresholds:
        threshold_note = (f"own wake thresholds {baseline.config.wake_probability_threshold:g} / "
                          f"{candidate.config.wake_probability_threshold:g}")
    else:
        threshold_note = f"wake threshold {threshold:g} for both"
        for model in (baseline, candidate):  # one threshold for both: the candidate is not calibrated yet
            model.config = model.config.replace(wake_probability_threshold=threshold)
    ranges = HELDOUT_RANGES if args.heldout_ranges else TRAIN_RANGES
    started = time.perf_counter()
    header = f"{'seed':>9} {'wakes':>6} {'baseline ≤10°%':>15} {'candidate ≤10°%':>16} {'median° b / c':>14} {'no-wake flagged% b/c':>21} {'gained':>7} {'lost':>5} {'McNemar p':>10}"
    lines = [header, "-" * len(header)]
    totals = np.zeros(2, dtype=int)
    flagged = np.zeros(3, dtype=int)  # wakeless chips, flagged by the baseline, by the candidate
    for seed in args.seeds:
        chips = draw_chips(seed, args.count, ranges, args.chip_size)
        wake = chips["visible"][:, 1]
        ok_b, err_b, flag_b = score_chips(baseline, chips["data"], chips["heading_grid_deg"])
        ok_c, err_c, flag_c = score_chips(candidate, chips["data"], chips["heading_grid_deg"])
        gained, lost = int(np.sum(ok_c & ~ok_b & wake)), int(np.sum(ok_b & ~ok_c & wake))
        totals += (gained, lost)
        seed_flagged = np.array([(~wake).sum(), (flag_b & ~wake).sum(), (flag_c & ~wake).sum()])
        flagged += seed_flagged
        medians = f"{np.nanmedian(err_b[wake]):.2f} / {np.nanmedian(err_c[wake]):.2f}"
        lines.append(f"{seed:>9} {int(wake.sum()):>6} {100 * ok_b[wake].mean():>15.2f} {100 * ok_c[wake].mean():>16.2f} "
                     f"{medians:>14} {_flagged_pct(seed_flagged):>21} {gained:>7} {lost:>5} {mcnemar_p(gained, lost):>10.4f}")
    lines.append(f"{'all':>9} {'':>6} {'':>15} {'':>16} {'':>14} {_flagged_pct(flagged):>21} "
                 f"{totals[0]:>7} {totals[1]:>5} {mcnemar_p(*totals):>10.4f}")
    print(f"{'HELDOUT' if args.heldout_ranges else 'TRAIN'} ranges, {args.count} chips of {args.chip_size} px per seed, "
          f"no dihedral TTA, {threshold_note} ({time.perf_counter() - started:.0f} s)")
    print(f"baseline {baseline.weights_path}  candidate {candidate.weights_path}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
