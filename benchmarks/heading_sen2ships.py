"""The heading model on real Sentinel-2 vessels: the 100 labelled vessels of the four sen2ships port scenes.

sen2ships labels vessel *masks*, not headings, so this measures what a mask can check:

* how many vessels get a heading at all, and how many the land check withdraws (ports are full of
  vessels moored against quays and pier fingers, whose straight bright structure the model, trained
  on open sea, can read as a wake);
* whether a reported heading runs along the labelled hull: the angle between the heading and the
  long axis of the vessel's mask (second moments), modulo 180° (a mask has no bow). Masks of a few
  pixels have a poor axis, so the agreement is also given for masks at least 2× longer than wide.

The direction along the axis (the 180° question) is not labelled. A third table gives the one
independent cue the scenes hold: Sentinel-2 takes B04 about 1.005 s after B02 (or, as we understand
its staggered focal plane, before it in every other detector module's strip; the sen2ships exports
carry no detector footprints), so a hull under way sits up to a pixel and a half apart in the two
bands while a moored one does not. :func:`pipeline.motion.interband_displacement` fits that
displacement on the hull's labelled mask (dilated by 3 px); the table gives its size for moored and
moving vessels, its axis against the hull's, whether it points along or against each reported
heading, and the speed the pipeline's own motion step (:func:`pipeline.motion.measure_motion`, on
hull pixels it finds itself) reports.

Peers in the same run: ``vesselwatch`` (the pipeline's heading step, land check on) and
``vesselwatch, no land check`` (``estimate_headings(..., max_wake_land_share=None)``). Each vessel
gets a 128 px chip centred on its mask's centroid, cut from the scene by the pipeline.

A second table runs the whole pipeline instead (``detect_and_cut`` with the bundled land
polygons, then the heading step): how many labelled vessels the detector finds (centroid within 5 px
of the mask's) and how many headings come out, so the heading figures above are not read as what
the pipeline delivers on these scenes.

Usage::

    python benchmarks/heading_sen2ships.py [--data data/sen2ships] [--weights W.pt]
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from geo.angles import axis_difference_deg
from geo.earth import KNOT_M_S
from pipeline.chips import cut_chips, detect_and_cut, ground_pixel_m
from pipeline.heading import HeadingResults, estimate_headings, load_heading_model
from pipeline.ingest import open_scene
from pipeline.motion import B02_B04_SECONDS, hull_axes, interband_displacement, measure_motion
from vesselwatch.settings import Settings

PORTS = ("busan", "cartagena", "casablanca", "honolulu")
BANDS = ["B02", "B03", "B04", "B08"]


@dataclass
class Centres:
    """Chip centres in scene pixels, what :func:`pipeline.chips.cut_chips` reads of detections."""

    row: np.ndarray
    col: np.ndarray

    def __len__(self) -> int:
        return len(self.row)


def decode_rle(segmentation: dict | str) -> np.ndarray:
    """COCO uncompressed RLE (``counts`` list, column-major) as a bool ``(height, width)`` mask."""
    if isinstance(segmentation, str):  # sen2ships stores the dict as its Python repr
        segmentation = ast.literal_eval(segmentation)
    height, width = segmentation["size"]
    counts = np.asarray(segmentation["counts"], dtype=np.int64)
    if counts.sum() != height * width:
        raise ValueError(f"segmentation: counts add up to {counts.sum()}, not {height} x {width}")
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape(width, height).T


def mask_axis(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Centroid ``(row, col)`` in pixel coordinates (pixel edges), long-axis grid bearing mod 180° and elongation."""
    rows, cols = np.nonzero(mask)
    r0, c0 = rows.min(), cols.min()
    box = mask[r0:rows.max() + 1, c0:cols.max() + 1]
    bearing, elongation = hull_axes(box[None])  # the motion step's own estimator
    return rows.mean() + 0.5, cols.mean() + 0.5, float(bearing[0]), float(elongation[0])


def chip_mask(mask: np.ndarray, chip) -> np.ndarray:
    """A scene mask cut to a chip's window (zeros where the window leaves the scene)."""
    out = np.zeros((chip.window.height, chip.window.width), dtype=bool)
    r0, c0 = int(chip.window.row_off), int(chip.window.col_off)
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + out.shape[0], mask.shape[0]), min(c0 + out.shape[1], mask.shape[1])
    out[rs - r0:re - r0, cs - c0:ce - c0] = mask[rs:re, cs:ce]
    return out


def labelled_hull_shifts(chips, masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per chip ``(B02 → B04, B02 → B03)`` hull displacement, each ``(N, 2)`` ``(row, col)`` px, fitted on its
    labelled scene mask cut to the chip and dilated by 3 px (chips of :data:`BANDS`)."""
    stack = np.stack([chip.data for chip in chips])
    labelled = np.stack([ndimage.binary_dilation(chip_mask(mask, chip), iterations=3) for chip, mask in zip(chips, masks)])
    return (interband_displacement(stack[:, 0], stack[:, 2], labelled)[0],
            interband_displacement(stack[:, 0], stack[:, 1], labelled)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "sen2ships")
    parser.add_argument("--weights", type=Path, default=None, help="Model weights (default: shipped).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("rasterio").setLevel(logging.ERROR)  # the Web Mercator GeoTIFF keys warn on every open

    model = load_heading_model(args.weights)
    chips, axis, elongation, ports, shifts, green_shifts, pixel_sides_m = [], [], [], [], [], [], []
    pipeline_rows = []
    for port in PORTS:
        port_dir = args.data / port
        coco = json.loads(next(port_dir.glob("*_coco.json")).read_text())
        masks = [decode_rle(a["segmentation"]) for a in coco["annotations"]]
        found = np.array([mask_axis(m) for m in masks])
        with open_scene(port_dir) as scene:
            port_chips = cut_chips(scene, Centres(found[:, 0], found[:, 1]), 128, band_names=BANDS)
            if scene.metadata.crs.to_epsg() != 3857:
                raise ValueError(f"{port_dir}: expected the sen2ships Web Mercator grid, got {scene.metadata.crs}")
            detections, detected_chips = detect_and_cut(scene, band_names=BANDS, land_path=Settings().resolved_land_path())
        found_by_detector = np.zeros(len(found), dtype=bool)
        if len(detections):
            gap = np.hypot(detections.row[:, None] - found[None, :, 0], detections.col[:, None] - found[None, :, 1])
            found_by_detector = gap.min(axis=0) <= 5.0
        result = estimate_headings(detected_chips, model)
        pipeline_rows.append((port, len(found), len(detections), int(found_by_detector.sum()),
                              int((~result.ambiguous).sum()), int(result.wake_on_land.sum())))
        chips += port_chips
        red, green = labelled_hull_shifts(port_chips, masks)
        shifts += red.tolist()
        green_shifts += green.tolist()
        pixel_sides_m += [ground_pixel_m(chip.transform, chip.crs, *chip.data.shape[1:]) for chip in port_chips]
        axis += found[:, 2].tolist()
        elongation += found[:, 3].tolist()
        ports += [port] * len(found)
    axis, elongation, ports = np.array(axis), np.array(elongation), np.array(ports)

    runs: dict[str, HeadingResults] = {
        "vesselwatch": estimate_headings(chips, model),
        "vesselwatch, no land check": estimate_headings(chips, model, max_wake_land_share=None),
    }
    print(f"{len(chips)} labelled vessels in {len(PORTS)} port scenes; weights {model.weights_path.name}, backend {model.backend}\n")
    print("| method | scene | vessels | headings reported | withdrawn (wake on land) | axis error median "
          "| ≤ 10° | ≤ 20° | elongated masks: n | ≤ 10° |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, result in runs.items():
        for scene in (*PORTS, "all"):
            inside = np.ones(len(chips), bool) if scene == "all" else ports == scene
            reported = inside & ~result.ambiguous
            err = axis_difference_deg(result.heading_grid_deg[reported], axis[reported])
            long = reported & (elongation >= 2.0)
            err_long = axis_difference_deg(result.heading_grid_deg[long], axis[long])

            def pct(e: np.ndarray, limit: float) -> str:
                return f"{np.mean(e <= limit) * 100:.0f}%" if e.size else "—"

            median = f"{np.median(err):.1f}°" if err.size else "—"
            print(f"| {name} | {scene} | {inside.sum()} | {reported.sum()} | {result.wake_on_land[inside].sum()} "
                  f"| {median} | {pct(err, 10)} | {pct(err, 20)} | {long.sum()} | {pct(err_long, 10)} |")
    print("\n| whole pipeline | labelled vessels | detections | labelled vessels detected | headings reported "
          "| wake on land |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in (*pipeline_rows, ("all", *np.sum([r[1:] for r in pipeline_rows], axis=0))):
        print("| " + " | ".join(str(v) for v in row) + " |")
    default = runs["vesselwatch"]
    reported = np.flatnonzero(~default.ambiguous)
    shifts = np.array(shifts)
    shift_px = np.hypot(shifts[:, 0], shifts[:, 1])
    shift_bearing = np.degrees(np.arctan2(shifts[:, 1], -shifts[:, 0])) % 360.0
    sides = np.array(pixel_sides_m)  # (across, down) metres, as pipeline.motion measures them
    speed_kn = np.hypot(shifts[:, 1] * sides[:, 0], shifts[:, 0] * sides[:, 1]) / B02_B04_SECONDS / KNOT_M_S
    groups = {
        "heading reported": ~default.ambiguous,
        "heading withdrawn, wake on land (moored)": default.wake_on_land,
        "no heading, wake not on land": default.ambiguous & ~default.wake_on_land,
    }
    print(f"\n| B02 → B04 hull displacement ({B02_B04_SECONDS} s) | vessels | median | ≥ 0.6 px "
          "| of those, axis within 20° of the hull's |")
    print("|---|---:|---:|---:|---:|")
    for name, member in groups.items():
        moving = member & (shift_px >= 0.6)
        along = axis_difference_deg(shift_bearing[moving], axis[moving]) <= 20.0
        print(f"| {name} | {member.sum()} | {np.median(shift_px[member]):.2f} px | {moving.sum()} | {along.sum()} |")
    moving = shift_px >= 0.6
    green = np.array(green_shifts)
    share = (green[moving] * shifts[moving]).sum(axis=1) / shift_px[moving] ** 2
    print(f"\nB03, recorded between B02 and B04: on the {moving.sum()} hulls displaced ≥ 0.6 px it lies at "
          f"{np.median(share):.2f} of the B04 displacement (median; quartiles {np.percentile(share, 25):.2f}–"
          f"{np.percentile(share, 75):.2f}); motion predicts about half-way (as we understand the MSI's timing, "
          "B03 is recorded about midway between B02 and B04).")
    motion = measure_motion(chips)
    print("\n| pipeline motion step (speed reported) | vessels | with a speed | speed median | range |")
    print("|---|---:|---:|---:|---:|")
    for name, member in groups.items():
        speeds = motion.speed_kn[member & np.isfinite(motion.speed_kn)]
        span = f"{speeds.min():.0f}–{speeds.max():.0f} kn" if speeds.size else "—"
        median_kn = f"{np.median(speeds):.0f} kn" if speeds.size else "—"
        print(f"| {name} | {member.sum()} | {speeds.size} | {median_kn} | {span} |")
    turn = np.abs((shift_bearing - default.heading_grid_deg + 180.0) % 360.0 - 180.0)
    print("\nreported headings against the B02 → B04 displacement (scene, vessel, heading in the grid, "
          "displacement px / kn, angle between them, pipeline speed):")
    for i in reported:
        print(f"  {ports[i]} {i - np.flatnonzero(ports == ports[i])[0]}: {default.heading_grid_deg[i]:.0f}°, "
              f"{shift_px[i]:.2f} px / {speed_kn[i]:.0f} kn toward {shift_bearing[i]:.0f}°, {turn[i]:.0f}°, "
              f"{motion.speed_kn[i]:.1f} kn")
    print("\nreported (scene, vessel index, heading in the grid, axis error):",
          ", ".join(f"{ports[i]} {i - np.flatnonzero(ports == ports[i])[0]} {default.heading_grid_deg[i]:.0f}° "
                    f"{axis_difference_deg(default.heading_grid_deg[i], axis[i]):.1f}°" for i in reported))


if __name__ == "__main__":
    main()
