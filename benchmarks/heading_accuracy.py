"""Heading accuracy on a held-out synthetic set: other seeds AND other generator ranges than training.

The set is drawn with :data:`models.wake_chips.HELDOUT_RANGES` (shifted sizes and speeds, more
noise, stronger glint, thicker cloud, larger position jitter, more distractor vessels than training
ever saw) and :data:`models.calibrate.HELDOUT_SEED`, as 128 px chips like the pipeline cuts.

Peers in the same run:

* ``vesselwatch`` — the shipped EfficientNet-B0 wake-keypoint model (fast path, and with test-time
  dihedral augmentation);
* ``moment baseline`` — classical: the anomaly pixels (``|robust z| > 3``) of the chip; the heading
  is the bearing from their intensity-weighted centroid (which lies on the wake, behind the hull)
  to the chip centre (the detection).

Quoted anchors (not run here): Ai2 Skylight reports 79% of headings within 10°; Del Prete et al.
(IEEE GRSL 2023, EfficientNet-B0 keypoints on ShipWakes) report heading errors under 10°.

With ``--shipwakes DIR`` the same table is computed on a ShipWakes-format directory (every image
has a wake; a chip of ``--chip-size`` px is cut around its annotated hull, as ``train-heading
--shipwakes`` cuts them, and the truth is the bearing from the annotated wake end to the hull).
The pipeline centres a chip on the detected vessel instead, up to half a hull length ahead of the
wake apex; on 256 easy synthetic chips written as 8-bit RGB that costs nothing (median 1.5°
apex-centred, 1.9° vessel-centred), while the 8-bit RGB itself does (0.7° as 4-band reflectance).

Rows: every chip with a wake (a missed wake counts as a miss in "within 10°"), vessels shorter
than 25 m, the rest, the chips with a wake split by how visible it is (``wake SNR``: the
matched-filter signal-to-clutter ratio of the wake against the chip's own noise, swell, glint and
cloud, measured on a wake-free twin of each chip, :func:`models.wake_chips.wake_snr`; below 5,
the Rose criterion for white clutter, the wake is faint against the chip's pixel spread; how much
of it an observer that knows the wake can still find is ``benchmarks/heading_ceiling.py``), and
chips without a wake (only the ambiguity flag is scored), and every heading the model reports on
any chip ("reported headings": the share a user can trust; one reported on a chip without a wake
counts as wrong), and those of them not flagged ambiguous (sigma within the configured limit).
"wake, not flagged" splits the misses of "all with wake": the wakes the model stands by and how
often it is right on them (the rest of the misses are wakes it flags as ambiguous).
A flip is an error ≥ 150°. Coverage is the share of chips whose truth lies within the reported ±2σ.

Usage::

    python benchmarks/heading_accuracy.py [--count 2000] [--weights models/weights/wake_keypoints_b0.pt]
    python benchmarks/heading_accuracy.py --shipwakes DIR   # real chips in the ShipWakes format
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from models.calibrate import HELDOUT_SEED
from models.inference import load_heading_model, predict_keypoints
from models.metrics import FLIP_THRESHOLD_DEG, angular_error_deg, summarize_errors
from models.preprocess import normalize
from models.shipwakes import hull_centred_chips, load_shipwakes
from models.wake_chips import BAND_NAMES, CLEAR_WAKE_SNR, HELDOUT_RANGES, TRAIN_RANGES, VISIBLE_WAKE_SNR, draw_chips


def moment_baseline_deg(data: np.ndarray) -> np.ndarray:
    """Classical heading: bearing from the anomaly centroid (the wake) to the chip centre (the vessel)."""
    z = np.abs(normalize(data, eps=0.002)).max(axis=1)  # (N, H, W) strongest band anomaly
    weight = np.where(z > np.arcsinh(3.0), z, 0.0)
    n, h, w = weight.shape
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    total = weight.sum(axis=(1, 2)) + 1e-9
    cx = (weight * xx).sum(axis=(1, 2)) / total
    cy = (weight * yy).sum(axis=(1, 2)) / total
    dx, dy = w / 2.0 - cx, h / 2.0 - cy
    return np.mod(np.degrees(np.arctan2(dx, -dy)), 360.0)


def table(rows: list[tuple[str, str, dict]]) -> str:
    header = f"{'method':<38} {'subset':<19} {'n':>6} {'median°':>8} {'mean°':>8} {'≤10°%':>7} {'flip%':>6} {'±2σ%':>6} {'ambig%':>7}"
    lines = [header, "-" * len(header)]
    for method, subset, m in rows:
        def f(key, fmt="{:.1f}"):
            v = m.get(key, float("nan"))
            return "—" if v is None or not np.isfinite(v) else fmt.format(v)
        lines.append(
            f"{method:<38} {subset:<19} {int(m['count']):>6} {f('median_deg', '{:.2f}'):>8} {f('mean_deg', '{:.2f}'):>8} "
            f"{f('within_10_pct'):>7} {f('flip_pct'):>6} {f('within_2sigma_pct'):>6} {f('ambiguous_pct'):>7}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--chip-size", type=int, default=128)
    parser.add_argument("--train-ranges", action="store_true", help="Use the training ranges (in-distribution check).")
    parser.add_argument("--no-tta", action="store_true", help="Skip the test-time-augmentation row.")
    parser.add_argument("--shipwakes", type=Path, default=None, metavar="DIR",
                        help="Evaluate on a ShipWakes-format directory (imgs/ + annotations/) instead of synthetic chips.")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    if args.shipwakes is not None:
        chips = hull_centred_chips(load_shipwakes(args.shipwakes), args.chip_size)
        band_names = chips["band_names"]
        wake = np.ones(len(chips["data"]), dtype=bool)  # every ShipWakes image is annotated with a wake
        subsets = {"all with wake": wake}
        title = f"ShipWakes {args.shipwakes}: {len(wake)} images, chips of {args.chip_size} px around the annotated hull"
    else:
        ranges = TRAIN_RANGES if args.train_ranges else HELDOUT_RANGES
        chips = draw_chips(HELDOUT_SEED, args.count, ranges, args.chip_size, measure_wake=True)
        band_names = BAND_NAMES
        wake = chips["visible"][:, 1]
        small = chips["length_m"] < 25.0
        snr = chips["wake_snr"]
        subsets = {
            "all with wake": wake, "< 25 m": wake & small, ">= 25 m": wake & ~small,
            f"visible (SNR >= {VISIBLE_WAKE_SNR:g})": wake & (snr >= VISIBLE_WAKE_SNR),
            f"wake SNR < {VISIBLE_WAKE_SNR:g}": wake & (snr < VISIBLE_WAKE_SNR),
            f"wake SNR {VISIBLE_WAKE_SNR:g}-{CLEAR_WAKE_SNR:g}": wake & (snr >= VISIBLE_WAKE_SNR) & (snr < CLEAR_WAKE_SNR),
            f"wake SNR >= {CLEAR_WAKE_SNR:g}": wake & (snr >= CLEAR_WAKE_SNR),
        }
        title = (f"held-out synthetic set: {args.count} chips of {args.chip_size} px, seed {HELDOUT_SEED}, "
                 f"{'TRAIN' if args.train_ranges else 'HELDOUT'} ranges")
    prepared = time.perf_counter() - started
    model = load_heading_model(args.weights)
    rows = []
    limit = model.config.tta_above_sigma_deg
    zooms = model.config.zoom_scales
    zoom_note = (f", zoom {'/'.join(f'{z:g}' for z in zooms)} below p {model.config.zoom_below_probability:g}"
                 if zooms else "")
    variants = [(f"vesselwatch B0 ({model.backend}){zoom_note}", None)]
    if limit is not None:
        variants = [(f"vesselwatch B0 ({model.backend}){zoom_note}, TTA σ>{limit:g}°", None),
                    (f"vesselwatch B0{zoom_note}, no TTA", False)]
    if not args.no_tta:
        variants.append(("vesselwatch B0 + TTA x8", True))
    for name, tta in variants:
        pred = predict_keypoints(model, chips["data"], band_names, tta=tta)
        errors = angular_error_deg(pred.heading_grid_deg, chips["heading_grid_deg"])
        for subset, mask in subsets.items():
            m = summarize_errors(errors[mask], pred.uncertainty_deg[mask])
            m["ambiguous_pct"] = float(100 * pred.ambiguous[mask].mean()) if mask.any() else float("nan")
            rows.append((name, subset, m))
        # Where the misses are: the wakes the model does not flag ambiguous, and how often it is right on them.
        stands_by = wake & ~pred.ambiguous
        rows.append((name, "wake, not flagged", summarize_errors(errors[stands_by], pred.uncertainty_deg[stands_by])))
        if not wake.all():
            rows.append((name, "no wake", {"count": float((~wake).sum()), "ambiguous_pct": float(100 * pred.ambiguous[~wake].mean())}))
        # What a user gets: every heading the model reports, on any chip (one without a wake is wrong).
        reported = np.isfinite(pred.heading_grid_deg)
        right = wake & (errors <= 10.0)
        for subset, mask in (("reported headings", reported), ("  not ambiguous", reported & ~pred.ambiguous)):
            rows.append((name, subset, {
                "count": float(mask.sum()), "within_10_pct": float(100 * right[mask].mean()) if mask.any() else float("nan"),
                "flip_pct": float(100 * (errors[mask] >= FLIP_THRESHOLD_DEG).mean()) if mask.any() else float("nan"),
            }))
    baseline = angular_error_deg(moment_baseline_deg(chips["data"]), chips["heading_grid_deg"])
    for subset, mask in subsets.items():
        rows.append(("moment baseline", subset, summarize_errors(baseline[mask])))
    print(f"{title} ({prepared:.1f} s to prepare)")
    print(table(rows))
    print("anchors (quoted, not run): Ai2 Skylight 79% within 10°; Del Prete et al. 2023 heading error < 10°")


if __name__ == "__main__":
    main()
