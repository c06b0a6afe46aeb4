"""The ``nearest`` and ``coast-distance`` commands print JSON."""

from __future__ import annotations

import json

import pandas as pd
import typer
from typer.testing import CliRunner

from vesselwatch.commands import geo_queries


def make_app() -> typer.Typer:
    app = typer.Typer()
    geo_queries.register(app)
    return app


def test_nearest_prints_ties_and_k(tmp_path):
    pd.DataFrame({"Latitude": [28.0, 28.0, 29.0], "Longitude": [-90.0, -90.0, -91.0], "id": ["a", "b", "c"]}).to_csv(
        tmp_path / "p.csv", index=False)
    result = CliRunner().invoke(make_app(), ["nearest", "--lat", "28.1", "--lon", "-90", "--k", "3",
                                             "--platforms", str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [p["id"] for p in out["nearest"]] == ["a", "b"]
    assert abs(out["distance_km"] - 11.1195) < 1e-3
    assert [p["id"] for p in out["k_nearest"]] == ["a", "b", "c"]


def test_nearest_reads_the_register_as_the_api_does():
    # At the removed SYN-FOXTROT (52.33 N, 3.03 E) of the bundled demo register: it is left out,
    # and the two structures of complex 90001 tie, with BOEM ids and names.
    result = CliRunner().invoke(make_app(), ["nearest", "--lat", "52.33", "--lon", "3.03"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [(p["id"], p["name"]) for p in out["nearest"]] == [("90001-1", "SYN-ALPHA A"), ("90001-2", "SYN-ALPHA B")]
    assert out["distance_km"] > 4.0


def test_nearest_bad_latitude_is_a_json_error(tmp_path):
    pd.DataFrame({"lat": [0.0], "lon": [0.0]}).to_csv(tmp_path / "p.csv", index=False)
    result = CliRunner().invoke(make_app(), ["nearest", "--lat", "95", "--lon", "0", "--platforms", str(tmp_path / "p.csv")])
    assert result.exit_code == 2
    assert "lat must be finite" in json.loads(result.stderr)["error"]


def test_coast_distance_on_the_bundled_50m_coastline():
    result = CliRunner().invoke(make_app(), ["coast-distance", "--lat", "0", "--lon", "-30",
                                             "--coastline", "data/naturalearth/ne_50m_coastline.json.gz"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    point = out["nearest_coast_point"]
    from geo.haversine import distance_km

    assert abs(float(distance_km(-30.0, 0.0, point["lon"], point["lat"])) - out["distance_km"]) < 1e-5
    assert 300 < out["distance_km"] < 2000  # mid-Atlantic: far from every shore


def test_coast_distance_bad_latitude_is_a_json_error():
    result = CliRunner().invoke(make_app(), ["coast-distance", "--lat", "95", "--lon", "0"])
    assert result.exit_code == 2
    assert "lat must be finite" in json.loads(result.stderr)["error"]
