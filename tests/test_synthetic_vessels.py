"""Vessels of the synthetic products: truth.geojson, placement on open water, signature, CLI."""

from __future__ import annotations

import json

import numpy as np
import pyogrio
import pytest
import rasterio
from pyproj import Geod, Transformer
from typer.testing import CliRunner

from pipeline.synthetic import write_product
from pipeline.synthetic.land import land_in_tile, rasterize_land
from pipeline.synthetic.tiles import grid_north_deg, parse_tile
from vesselwatch.cli import app
from vesselwatch.settings import Settings

GEOD = Geod(ellps="WGS84")
KEYPOINTS = ("hull", "wake_end", "arm_left_end", "arm_right_end")


@pytest.fixture(scope="module")
def coastal(tmp_path_factory):
    """A product straddling the Dutch coast, with many vessels competing for the water."""
    out = tmp_path_factory.mktemp("coastal")
    info = write_product(out, seed=21, size_px=768, layout="geotiff", level="L2A", offset_px=(3100, 7500),
                         n_vessels=40, cloud_fraction=0.2)
    truth = json.loads(info.truth_path.read_text())
    return info, truth


@pytest.fixture(scope="module")
def cloudy(tmp_path_factory):
    """Open sea under broken cloud."""
    out = tmp_path_factory.mktemp("cloudy")
    info = write_product(out, seed=8, size_px=640, layout="geotiff", level="L2A", n_vessels=30, cloud_fraction=0.4)
    return info, json.loads(info.truth_path.read_text())


def nir(info) -> np.ndarray:
    with rasterio.open(info.band_paths["B08"]) as dataset:
        return (dataset.read(1).astype(np.float64) + info.add_offset) / 10000.0


def test_truth_is_rfc7946_with_every_property(coastal):
    info, truth = coastal
    assert truth["type"] == "FeatureCollection" and "crs" not in truth
    assert truth["product_id"] == info.product_id
    assert len(truth["features"]) == info.n_vessels > 10
    frame = pyogrio.read_dataframe(info.truth_path)
    assert len(frame) == info.n_vessels and set(frame.geom_type) == {"Point"}
    to_utm = Transformer.from_crs(4326, 32631, always_xy=True)
    for feature in truth["features"]:
        p = feature["properties"]
        for key in ("vessel_id", "heading_deg", "speed_kn", "length_m", "width_m", "has_wake", "under_cloud",
                    "row", "col", *(f"{k}_lonlat" for k in KEYPOINTS)):
            assert key in p, key
        assert 10.0 <= p["length_m"] <= 350.0 and 0 < p["width_m"] < p["length_m"]
        assert 0.0 <= p["heading_deg"] < 360.0
        # The point is the hull centre: lon/lat of pixel (col, row) on the product grid.
        x, y = to_utm.transform(*feature["geometry"]["coordinates"])
        col, row = ~info.transform @ (x, y)
        assert col == pytest.approx(p["col"], abs=1e-3) and row == pytest.approx(p["row"], abs=1e-3)
        assert 0 <= p["row"] < info.height and 0 <= p["col"] < info.width
        # True heading = grid heading + convergence.
        convergence = float(grid_north_deg(32631, x, y))
        assert (p["heading_deg"] - p["heading_grid_deg"] - convergence) % 360.0 == pytest.approx(0.0, abs=1e-3) or \
            (p["heading_deg"] - p["heading_grid_deg"] - convergence) % 360.0 == pytest.approx(360.0, abs=1e-3)
        assert p["hull_lonlat"] is not None
        if not p["has_wake"]:
            assert p["wake_end_lonlat"] is None and p["arm_left_end_lonlat"] is None
    features = truth["features"]
    assert any(not f["properties"]["has_wake"] for f in features) and any(f["properties"]["has_wake"] for f in features)
    assert any(f["properties"]["length_m"] < 20 for f in features)
    assert sum(f["properties"]["length_m"] >= 20 for f in features) > len(features) / 2


def test_wake_keypoints_point_back_along_the_true_heading(coastal):
    _, truth = coastal
    checked = 0
    for feature in truth["features"]:
        p = feature["properties"]
        if p["wake_end_lonlat"] is None:
            continue
        lon, lat = feature["geometry"]["coordinates"]
        # From the wake end toward the hull is the direction of travel.
        azimuth, _, distance = GEOD.inv(*p["wake_end_lonlat"], *p["hull_lonlat"])
        assert distance > p["length_m"]
        assert abs((azimuth - p["heading_deg"] + 180.0) % 360.0 - 180.0) < 0.5
        # The wake apex lies half a hull length behind the centre.
        _, _, apex = GEOD.inv(lon, lat, *p["hull_lonlat"])
        assert apex == pytest.approx(p["length_m"] / 2, rel=0.02)
        checked += 1
    assert checked >= 5


def test_vessels_sit_on_water_and_apart(coastal):
    info, truth = coastal
    tile = parse_tile("31UET")
    land = rasterize_land(land_in_tile(tile, Settings().resolved_land_path(), None), info.transform,
                          (info.height, info.width))
    assert 0.2 < land.mean() < 0.8, "the fixture should straddle the coast"
    features = truth["features"]
    rows = np.array([f["properties"]["row"] for f in features])
    cols = np.array([f["properties"]["col"] for f in features])
    lengths_px = np.array([f["properties"]["length_m"] for f in features]) / 10.0
    for r, c, length in zip(rows, cols, lengths_px):
        reach = int(np.ceil(length / 2)) + 3
        window = land[max(int(r) - reach, 0):int(r) + reach + 1, max(int(c) - reach, 0):int(c) + reach + 1]
        assert not window.any(), f"vessel at row {r:.0f} col {c:.0f} touches land"
    gaps = np.hypot(rows[:, None] - rows[None, :], cols[:, None] - cols[None, :])
    np.fill_diagonal(gaps, np.inf)
    assert np.all(gaps > (lengths_px[:, None] + lengths_px[None, :]) / 2), "hulls overlap"
    for feature in features:
        wake_end = feature["properties"]["keypoints_px"]["wake_end"]
        if wake_end is not None and 0 <= wake_end[0] < info.width and 0 <= wake_end[1] < info.height:
            assert not land[int(wake_end[1]), int(wake_end[0])], "a wake runs onto land"


def test_clear_vessels_are_bright_in_nir_and_clouded_ones_are_flagged(cloudy):
    info, truth = cloudy
    image = nir(info)
    with rasterio.open(info.band_paths["SCL"]) as dataset:
        scl = np.repeat(np.repeat(dataset.read(1), 2, axis=0), 2, axis=1)
    clear = cloudy = classified_cloud_but_clear = 0
    for feature in truth["features"]:
        p = feature["properties"]
        r, c = int(p["row"]), int(p["col"])
        if p["under_cloud"]:
            cloudy += 1
            assert scl[r, c] in (8, 9, 10) or p["cloud_opacity"] >= 0.25
            continue
        classified_cloud_but_clear += int(scl[r, c] in (8, 9, 10))
        if p["length_m"] < 40 or p["cloud_opacity"] > 0.0:
            continue
        patch = image[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
        background = np.median(image[max(r - 40, 0):r + 40, max(c - 40, 0):c + 40])
        assert patch.max() > background + 0.03, f"vessel {p['vessel_id']} ({p['length_m']} m) is invisible"
        clear += 1
    assert clear >= 5 and cloudy >= 1
    # The truth flag agrees with the product's own cloud classification (up to 20 m resampling).
    assert classified_cloud_but_clear <= 1


def test_requested_vessel_count_and_empty_products(tmp_path):
    none = write_product(tmp_path / "none", seed=0, size_px=128, layout="geotiff", n_vessels=0)
    assert none.n_vessels == 0 and json.loads(none.truth_path.read_text())["features"] == []
    few = write_product(tmp_path / "few", seed=0, size_px=512, layout="geotiff", n_vessels=6, cloud_fraction=0.0)
    assert few.n_vessels == 6
    assert not any(f["properties"]["under_cloud"] for f in json.loads(few.truth_path.read_text())["features"])


def test_cli_writes_a_product_and_prints_its_summary(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["synth", str(tmp_path / "p"), "--seed", "3", "--size", "512", "--format", "cog",
                                 "--level", "L2A", "--vessels", "3", "--cloud-fraction", "0"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["layout"] == "cog" and summary["level"] == "L2A" and summary["n_vessels"] == 3
    assert summary["product_path"].endswith(".json") and set(summary["bands"]) >= {"B02", "B11", "SCL"}
    bad = runner.invoke(app, ["synth", str(tmp_path / "q"), "--tile", "31UEI"])
    assert bad.exit_code == 2 and "tile" in bad.stderr
