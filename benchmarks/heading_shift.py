"""Which held-out range shift costs the heading model the most: revert one range at a time.

The held-out set (:data:`models.wake_chips.HELDOUT_RANGES`) differs from training in many ranges
at once. This script draws the held-out set once as it is, once with the training ranges, and
once per differing field with *that field alone* set back to its training value (same seed, so
every other random choice stays as close as the generator allows). The rise in "within 10°" when a
field is reverted is what that shift costs.

Columns: % of chips with a wake whose heading is within 10° (a missed wake counts as a miss), its
change against the held-out row, the share of wakes below SNR 5 (faint: see
:func:`models.wake_chips.wake_snr`), within 10° on the SNR 5-20 band, and on visible wakes (SNR ≥ 5).

Usage::

    python benchmarks/heading_shift.py [--count 1000] [--weights models/weights/wake_keypoints_b0.pt]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from models.calibrate import HELDOUT_SEED
from models.inference import HeadingModel, load_heading_model, predict_keypoints
from models.metrics import angular_error_deg
from models.wake_chips import (
    BAND_NAMES, CLEAR_WAKE_SNR, HELDOUT_RANGES, TRAIN_RANGES, VISIBLE_WAKE_SNR, ChipRanges, draw_chips,
)


def shifted_fields(heldout: ChipRanges = HELDOUT_RANGES, train: ChipRanges = TRAIN_RANGES) -> list[str]:
    """Names of the range fields whose held-out value differs from training."""
    return [f.name for f in dataclasses.fields(heldout) if getattr(heldout, f.name) != getattr(train, f.name)]


def score(model: HeadingModel, ranges: ChipRanges, count: int, chip_size: int) -> dict[str, float]:
    """Within-10° rates of ``model`` on ``count`` chips drawn from ``ranges`` with the held-out seed."""
    chips = draw_chips(HELDOUT_SEED, count, ranges, chip_size, measure_wake=True)
    pred = predict_keypoints(model, chips["data"], BAND_NAMES)
    hit = angular_error_deg(pred.heading_grid_deg, chips["heading_grid_deg"]) <= 10.0
    wake, snr = chips["visible"][:, 1], chips["wake_snr"]
    visible = wake & (snr >= VISIBLE_WAKE_SNR)
    band = visible & (snr < CLEAR_WAKE_SNR)
    return {
        "within_10_pct": 100.0 * hit[wake].mean(),
        "faint_pct": 100.0 * np.count_nonzero(wake & ~visible) / max(wake.sum(), 1),
        "band_pct": 100.0 * hit[band].mean() if band.any() else float("nan"),
        "band_n": float(band.sum()),
        "visible_pct": 100.0 * hit[visible].mean() if visible.any() else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--chip-size", type=int, default=128)
    args = parser.parse_args()

    model = load_heading_model(args.weights)
    started = time.perf_counter()
    rows = [("held-out ranges", score(model, HELDOUT_RANGES, args.count, args.chip_size)),
            ("training ranges", score(model, TRAIN_RANGES, args.count, args.chip_size))]
    for name in shifted_fields():
        reverted = dataclasses.replace(HELDOUT_RANGES, **{name: getattr(TRAIN_RANGES, name)})
        rows.append((f"held-out, {name} as trained", score(model, reverted, args.count, args.chip_size)))
    base = rows[0][1]["within_10_pct"]
    header = f"{'ranges':<40} {'≤10°%':>6} {'Δ pt':>6} {'SNR<5 %':>8} {'5-20 ≤10°%':>11} {'n 5-20':>7} {'SNR≥5 ≤10°%':>12}"
    print(f"heading model ({model.backend}) on {args.count} chips of {args.chip_size} px per row, seed {HELDOUT_SEED} "
          f"({time.perf_counter() - started:.0f} s)")
    print(header)
    print("-" * len(header))
    for label, m in rows:
        print(f"{label:<40} {m['within_10_pct']:6.1f} {m['within_10_pct'] - base:+6.1f} {m['faint_pct']:8.1f} "
              f"{m['band_pct']:11.1f} {m['band_n']:7.0f} {m['visible_pct']:12.1f}")


if __name__ == "__main__":
    main()
