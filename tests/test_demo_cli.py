"""``vesselwatch demo --no-serve`` on the bundled sample products, with the shipped heading model.

This is the README's first command minus the server, run as a fresh machine runs it: its own
process, no Prefect settings in the environment and no ``var/`` folder yet (Prefect's home and the
exports go under it). Every product under ``data/sample`` goes through the process-scene flow, the
vessels are found where the products' truth puts them, headings come from the real weights,
alerts are raised, and the exports hold what the store holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from geo.haversine import distance_km
from pipeline.store import Store
from vesselwatch.settings import PROJECT_DIR

SAMPLE_DIR = PROJECT_DIR / "data" / "sample"


def _truth(product_dir):
    features = json.loads((product_dir / "truth.geojson").read_text())["features"]
    lon = np.array([f["geometry"]["coordinates"][0] for f in features])
    lat = np.array([f["geometry"]["coordinates"][1] for f in features])
    return lon, lat, features


def test_demo_processes_the_bundled_samples_and_exports_alerts(tmp_path):
    var_dir = tmp_path / "fresh" / "var"  # neither exists yet
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VESSELWATCH_"))}
    env["VESSELWATCH_VAR_DIR"] = str(var_dir)
    database = tmp_path / "demo.sqlite"
    result = subprocess.run([sys.executable, "-m", "vesselwatch.cli", "demo", "--no-serve", "--db", str(database)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (var_dir / "prefect").is_dir()  # Prefect's state went under var/, not the user's home

    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    products = sorted(p.name for p in SAMPLE_DIR.iterdir() if p.is_dir())
    assert sorted(line["product"] for line in lines) == products and len(products) >= 2
    assert sum(line["alerts"] for line in lines) >= 1

    store = Store.connect(str(database))
    for line in lines:
        lon, lat, truth = _truth(SAMPLE_DIR / line["product"])
        found = list(store.iter_detections(scene_id=line["scene_id"]))
        assert len(found) == line["detections"]
        # every detection is a truth vessel (within 60 m); the vessels >= 20 m not under cloud are found
        d_km = distance_km(np.array([[d.lon] for d in found]), np.array([[d.lat] for d in found]), lon, lat)
        assert np.all(d_km.min(axis=1) < 0.06), line["product"]
        scored = np.array([f["properties"]["length_m"] >= 20 and not f["properties"]["under_cloud"] for f in truth])
        hit = (d_km < 0.06).any(axis=0)
        assert scored.sum() >= 5 and hit[scored].mean() >= 0.9, line["product"]
        # the shipped model's headings agree with the truth for vessels with a wake
        nearest = d_km.argmin(axis=1)
        errors = [
            abs((d.heading_deg - truth[j]["properties"]["heading_deg"] + 180.0) % 360.0 - 180.0)
            for d, j in zip(found, nearest)
            if d.heading_deg is not None and np.isfinite(d.heading_deg) and truth[j]["properties"]["has_wake"]
        ]
        assert errors and np.median(errors) < 10.0, (line["product"], errors)

    exports = var_dir / "exports"
    alerts = json.loads((exports / "alerts.geojson").read_text())["features"]
    detections = json.loads((exports / "detections.geojson").read_text())["features"]
    assert sorted(f["id"] for f in alerts) == sorted(a.alert_id for a in store.iter_alerts())
    assert len(detections) == store.count_detections()
    assert {f["properties"]["kind"] for f in alerts} >= {"inside"}
