"""The demo: a synthetic product of tile 31UET (seed 0) through the process-scene flow raises alerts.

The heading model is replaced by the product's truth headings (its weights are trained elsewhere
and this test is about enrichment, alerts, the store and the export, not about the model).
"""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from pipeline.heading import HeadingResults
from pipeline.store import Store
from pipeline.synthetic import write_product
from vesselwatch.cli import app


def _truth_headings(truth_path):
    """A stand-in for the heading step: the true heading of the truth vessel nearest each chip."""
    truth = json.loads(truth_path.read_text())["features"]
    lon = np.array([f["geometry"]["coordinates"][0] for f in truth])
    lat = np.array([f["geometry"]["coordinates"][1] for f in truth])
    heading = np.array([f["properties"]["heading_deg"] for f in truth])

    def estimate(chips, model, **_):
        n = len(chips)
        nearest = [int(np.argmin(np.hypot(lon - c.center_lon, lat - c.center_lat))) for c in chips]
        nan = np.full(n, np.nan)
        return HeadingResults(heading[nearest] if n else nan, np.full(n, 5.0), np.zeros(n, dtype=bool), nan,
                              np.ones(n), np.full((n, 4, 2), np.nan), np.full((n, 4), np.nan), np.full((n, 4), np.nan))

    return estimate


def test_demo_product_raises_alerts_and_exports_them(tmp_path, prefect_server, monkeypatch):
    import flows.process_scene as process

    info = write_product(tmp_path / "product", seed=0, size_px=1024, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(process, "load_heading_model", lambda path: None)
    monkeypatch.setattr(process, "estimate_headings", _truth_headings(info.truth_path))
    database = tmp_path / "vw.sqlite"

    summary = process.process_scene(str(info.product_path), str(database))
    assert summary.n_detections > 5 and summary.n_alerts >= 1
    store = Store.connect(str(database))
    alerts = list(store.iter_alerts())
    assert len(alerts) == summary.n_alerts
    kinds = {a.kind for a in alerts}
    assert "inside" in kinds  # "Synthetic West Banks" covers the western water of the tile corner
    assert all(a.area_name and "SYNTHETIC" in a.area_name for a in alerts)
    enriched = next(store.iter_detections())
    assert enriched.enrichment["nearest_platform_ids"] and enriched.enrichment["coast_km"] > 50.0

    again = process.process_scene(str(info.product_path), str(database))
    assert again.n_alerts == summary.n_alerts
    assert [a.alert_id for a in store.iter_alerts()] == [a.alert_id for a in alerts]

    out = tmp_path / "alerts.geojson"
    result = CliRunner().invoke(app, ["export", "alerts", str(out), "--db", str(database)])
    assert result.exit_code == 0, result.output
    features = json.loads(out.read_text())["features"]
    assert sorted(f["id"] for f in features) == sorted(a.alert_id for a in alerts)
