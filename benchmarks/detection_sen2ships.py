"""Precision, recall and F1 of the vessel detector on the four real sen2ships port scenes.

A detection matches a labelled vessel when its centroid falls inside the label's bounding box
grown by 2 pixels on every side; each label matches at most one detection and each detection at
most one label (greedy, nearest box centre first). Unmatched detections are false positives.

Peers in the same run:

* ``vesselwatch`` — :func:`pipeline.detect.detect_vessels` (CFAR on NIR over an NDWI/land water mask);
* ``vesselwatch, no cloud test`` — the same with ``max_blue_ratio=inf``: white hulls are kept, and
  so would be cloud edges (the sen2ships scenes are nearly cloud-free);
* ``global-threshold`` — the classic baseline: water = NDWI > 0, vessel = NIR above the scene's
  water 99.5th percentile, connected components of 1–900 px (no local statistics, no cloud test).

Ai2's learned Sentinel-2 detector (rslearn/"vessel detection", Sentinel-2) reports F1 0.80 on
open water; it is not run here (weights are not bundled), the figure is quoted for scale.

Usage::

    python benchmarks/detection_sen2ships.py [--data data/sen2ships]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from dataclasses import replace

from pipeline.detect import DetectorConfig, detect_vessels
from pipeline.ingest import open_scene

PORTS = ("busan", "cartagena", "casablanca", "honolulu")


def load_boxes(port_dir: Path) -> np.ndarray:
    """Label boxes as (n, 4) [x0, y0, x1, y1] in pixels, grown by 2 px."""
    coco = json.loads(next(port_dir.glob("*_coco.json")).read_text())
    boxes = np.array([a["bbox"] for a in coco["annotations"]], float).reshape(-1, 4)
    return np.column_stack([boxes[:, 0] - 2, boxes[:, 1] - 2,
                            boxes[:, 0] + boxes[:, 2] + 2, boxes[:, 1] + boxes[:, 3] + 2])


def match(boxes: np.ndarray, col: np.ndarray, row: np.ndarray) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) for centroids (col=x, row=y) in pixels."""
    inside = ((col[:, None] >= boxes[None, :, 0]) & (col[:, None] <= boxes[None, :, 2])
              & (row[:, None] >= boxes[None, :, 1]) & (row[:, None] <= boxes[None, :, 3]))
    cx = 0.5 * (boxes[:, 0] + boxes[:, 2])
    cy = 0.5 * (boxes[:, 1] + boxes[:, 3])
    dist = np.hypot(col[:, None] - cx[None, :], row[:, None] - cy[None, :])
    dist[~inside] = np.inf
    used_det = np.zeros(len(col), bool)
    used_box = np.zeros(len(boxes), bool)
    for d, b in zip(*np.unravel_index(np.argsort(dist, axis=None), dist.shape)):
        if np.isinf(dist[d, b]):
            break
        if used_det[d] or used_box[b]:
            continue
        used_det[d] = used_box[b] = True
    tp = int(used_box.sum())
    return tp, len(col) - tp, len(boxes) - tp


def global_threshold(scene) -> tuple[np.ndarray, np.ndarray]:
    """Baseline: NDWI water and one scene-wide NIR threshold; centroids (col, row) in pixels."""
    green, nir = scene.read("B03"), scene.read("B08")
    with np.errstate(invalid="ignore", divide="ignore"):
        water = (green - nir) / (green + nir) > 0
    labels_land, n_land = ndimage.label(~water)
    sizes = np.bincount(labels_land.ravel(), minlength=n_land + 1)
    filled = water | ((sizes <= 900)[labels_land] & (labels_land > 0))
    threshold = np.nanpercentile(nir[water], 99.5)
    labels, count = ndimage.label(filled & (nir > threshold), structure=np.ones((3, 3)))
    if count == 0:
        return np.zeros(0), np.zeros(0)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    ids = np.flatnonzero((sizes >= 1) & (sizes <= 900))
    ids = ids[ids > 0]
    centres = np.array(ndimage.center_of_mass(np.ones_like(nir), labels, ids)).reshape(-1, 2)
    return centres[:, 1] + 0.5, centres[:, 0] + 0.5


def f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "sen2ships")
    args = parser.parse_args()

    names = ("vesselwatch", "vesselwatch, no cloud test", "global-threshold")
    totals = {name: [0, 0, 0] for name in names}
    rows = []
    seconds = 0.0
    for port in PORTS:
        port_dir = args.data / port
        boxes = load_boxes(port_dir)
        with open_scene(port_dir) as scene:
            start = time.perf_counter()
            detections = detect_vessels(scene)
            seconds += time.perf_counter() - start
            no_cloud_test = detect_vessels(scene, config=replace(DetectorConfig(), max_blue_ratio=np.inf))
            baseline = global_threshold(scene)
        found = {
            "vesselwatch": (detections.col, detections.row),
            "vesselwatch, no cloud test": (no_cloud_test.col, no_cloud_test.row),
            "global-threshold": baseline,
        }
        for name, (col, row) in found.items():
            tp, fp, fn = match(boxes, np.asarray(col), np.asarray(row))
            totals[name] = [a + b for a, b in zip(totals[name], (tp, fp, fn))]
            rows.append((port, name, len(boxes), tp, fp, fn, *f1(tp, fp, fn)))
    for name, (tp, fp, fn) in totals.items():
        rows.append(("total", name, tp + fn, tp, fp, fn, *f1(tp, fp, fn)))

    print(f"| scene | detector | labels | TP | FP | FN | precision | recall | F1 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for port, name, n, tp, fp, fn, p, r, f in rows:
        print(f"| {port} | {name} | {n} | {tp} | {fp} | {fn} | {p:.2f} | {r:.2f} | {f:.2f} |")
    print(f"\nvesselwatch detection time, 4 scenes: {seconds:.1f} s")


if __name__ == "__main__":
    main()
