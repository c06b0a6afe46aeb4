"""End to end: synthetic product → process → store → export → GeoJSON re-read → match with truth.

The detection quality bar of the foundation issue is checked over 20 seeds with the pipeline
functions directly (fast), and the whole chain (Prefect flow, store, export, pyogrio) on one
product.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyogrio
import pytest
from pyproj import Geod

from pipeline.detect import detect_vessels
from pipeline.ingest import open_scene
from pipeline.synthetic import write_product
from vesselwatch.settings import Settings

GEOD = Geod(ellps="WGS84")
SEEDS = range(20)
SIZE_PX = 768


@dataclass
class Match:
    """Greedy one-to-one matching of detections to truth vessels."""

    recall: float
    precision: float
    position_errors_m: np.ndarray
    n_truth: int
    n_detections: int


def read_truth(product_dir: Path) -> list[dict]:
    """Truth features of a synthetic product."""
    return json.loads((product_dir / "truth.geojson").read_text())["features"]


def match(truth: list[dict], det_lon: np.ndarray, det_lat: np.ndarray, *, min_length_m: float = 20.0) -> Match:
    """Match detections to truth hulls within ``max(30 m, length/2)``.

    Recall counts scored vessels (≥ ``min_length_m``, not under cloud); precision counts a detection as
    correct when it lies on any truth vessel (small or clouded ones included), since finding those is
    not a false alarm.
    """
    t_lon = np.array([f["geometry"]["coordinates"][0] for f in truth])
    t_lat = np.array([f["geometry"]["coordinates"][1] for f in truth])
    length = np.array([f["properties"]["length_m"] for f in truth])
    scored = (length >= min_length_m) & ~np.array([bool(f["properties"]["under_cloud"]) for f in truth])
    if len(det_lon) and len(t_lon):
        _, _, dist = GEOD.inv(
            np.repeat(det_lon, len(t_lon)), np.repeat(det_lat, len(t_lon)),
            np.tile(t_lon, len(det_lon)), np.tile(t_lat, len(det_lon)),
        )
        dist = dist.reshape(len(det_lon), len(t_lon))
    else:
        dist = np.full((len(det_lon), len(t_lon)), np.inf)
    tolerance = np.maximum(30.0, length / 2)
    taken_truth = np.zeros(len(t_lon), bool)
    correct_detection = np.zeros(len(det_lon), bool)
    errors = []
    for d, t in zip(*np.unravel_index(np.argsort(dist, axis=None), dist.shape)):
        if correct_detection[d] or taken_truth[t] or dist[d, t] > tolerance[t]:
            continue
        correct_detection[d] = taken_truth[t] = True
        if scored[t]:
            errors.append(dist[d, t])
    n_scored = int(scored.sum())
    return Match(
        recall=float((taken_truth & scored).sum() / max(n_scored, 1)),
        precision=float(correct_detection.sum() / max(len(det_lon), 1)),
        position_errors_m=np.array(errors),
        n_truth=n_scored,
        n_detections=len(det_lon),
    )


@pytest.fixture(scope="module")
def land_path() -> Path:
    return Settings().resolved_land_path()


def test_detection_quality_over_20_seeds(tmp_path, land_path):
    found = scored = true_positive_detections = total_detections = 0
    errors = []
    for seed in SEEDS:
        out = tmp_path / f"seed{seed}"
        write_product(out, seed=seed, size_px=SIZE_PX, layout="geotiff", level="L1C" if seed % 2 else "L2A")
        with open_scene(out) as scene:
            detections = detect_vessels(scene, land_path=land_path)
        result = match(read_truth(out), detections.lon, detections.lat)
        found += round(result.recall * result.n_truth)
        scored += result.n_truth
        true_positive_detections += round(result.precision * result.n_detections)
        total_detections += result.n_detections
        errors.extend(result.position_errors_m)
    recall = found / scored
    precision = true_positive_detections / total_detections
    median_error = float(np.median(errors))
    print(f"recall={recall:.3f} precision={precision:.3f} median_error_m={median_error:.1f} vessels={scored}")
    assert scored >= 100, "the synthetic products should hold enough scored vessels to measure"
    assert recall >= 0.95
    assert precision >= 0.95
    assert median_error <= 10.0


@pytest.mark.slow
def test_flow_store_export_round_trip(tmp_path, prefect_server):
    from flows.process_scene import process_scene
    from pipeline.export import detection_feature, write_features
    from pipeline.store import Store

    product = tmp_path / "product"
    write_product(product, seed=3, size_px=SIZE_PX, layout="cog", level="L2A")
    database = tmp_path / "store.sqlite"
    summary = process_scene(str(product), str(database))
    store = Store.connect(str(database))
    assert store.count_detections() == summary.n_detections > 0

    again = process_scene(str(product), str(database))
    assert again.n_detections == summary.n_detections
    assert store.count_detections() == summary.n_detections, "re-processing must replace, not duplicate"

    out = tmp_path / "detections.geojson"
    write_features((detection_feature(r) for r in store.iter_detections()), out, layer="detections")
    frame = pyogrio.read_dataframe(out)
    assert len(frame) == summary.n_detections
    result = match(read_truth(product), frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy())
    assert result.recall >= 0.9 and result.precision >= 0.9
