"""Vessel detection: positions, sizes, scale invariance, clouds, land, and the no-water error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer

from pipeline.detect import DetectorConfig, Detections, detect_vessels, robust_background
from pipeline.ingest import open_scene
from pipeline.synthetic import write_product
from vesselwatch.errors import ProductError

# Open North Sea (UTM 31N, west of the Dutch coast), and inland France for the no-water case.
SEA = Affine(10.0, 0.0, 440000.0, 0.0, -10.0, 5760000.0)
INLAND = Affine(10.0, 0.0, 640000.0, 0.0, -10.0, 5200000.0)
SEA_REFLECTANCE = {"B02": 0.06, "B03": 0.05, "B04": 0.035, "B08": 0.025, "B11": 0.01}
HULL_REFLECTANCE = {"B02": 0.10, "B03": 0.12, "B04": 0.13, "B08": 0.26, "B11": 0.17}


def _sea(shape: tuple[int, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {b: (v + rng.normal(0.0, 0.0015, size=shape)).astype(np.float32) for b, v in SEA_REFLECTANCE.items()}


def _paint_hull(bands: dict[str, np.ndarray], row: float, col: float, length_px: float, width_px: float,
                bearing_deg: float, *, colours: dict[str, float] = HULL_REFLECTANCE) -> None:
    """A rectangle (supersampled 4x4) centred on (row, col), long axis at a grid bearing."""
    h, w = next(iter(bands.values())).shape
    sub = (np.arange(4) + 0.5) / 4
    rr = (np.arange(h)[:, None, None, None] + sub[None, None, :, None]) - row
    cc = (np.arange(w)[None, :, None, None] + sub[None, None, None, :]) - col
    b = np.radians(bearing_deg)
    along = cc * np.sin(b) - rr * np.cos(b)
    across = cc * np.cos(b) + rr * np.sin(b)
    cover = ((np.abs(along) <= length_px / 2) & (np.abs(across) <= width_px / 2)).mean(axis=(2, 3)).astype(np.float32)
    for band, value in colours.items():
        bands[band] = bands[band] * (1 - cover) + cover * value


def _write_folder(folder: Path, bands: dict[str, np.ndarray], transform: Affine, *, scale: float = 10000.0,
                  offset: float = 0.0, sidecar: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for band, refl in bands.items():
        dn = np.clip(np.round(refl * scale + offset), 1, 65535).astype(np.uint16)
        with rasterio.open(folder / f"{band}.tif", "w", driver="GTiff", width=dn.shape[1], height=dn.shape[0],
                           count=1, dtype="uint16", crs="EPSG:32631", transform=transform) as dst:
            dst.write(dn, 1)
    if sidecar:
        (folder / "metadata.json").write_text(json.dumps({
            "product_id": folder.name, "quantification_value": scale, "offsets": -offset,
            "acquired": "2024-05-01T10:30:00Z"}))
    return folder


def _nearest(detections: Detections, row: float, col: float) -> tuple[int, float]:
    distance = np.hypot(detections.row - row, detections.col - col)
    i = int(np.argmin(distance))
    return i, float(distance[i])


VESSELS = [  # row, col, length px, width px, grid bearing
    (40.3, 50.7, 8.0, 1.5, 30.0),
    (120.5, 60.2, 20.0, 3.0, 100.0),
    (90.0, 170.0, 3.0, 1.0, 0.0),
    (200.0, 200.0, 12.0, 2.0, 150.0),
]


@pytest.fixture(scope="module")
def painted(tmp_path_factory) -> tuple[dict[str, np.ndarray], Path]:
    rng = np.random.default_rng(0)
    bands = _sea((256, 256), rng)
    for row, col, length, width, bearing in VESSELS:
        _paint_hull(bands, row, col, length, width, bearing)
    folder = _write_folder(tmp_path_factory.mktemp("painted") / "sea", bands, SEA)
    return bands, folder


def test_painted_hulls_are_found_where_they_are_with_their_size(painted):
    _, folder = painted
    with open_scene(folder) as scene:
        detections = detect_vessels(scene)
    assert len(detections) == len(VESSELS)
    for row, col, length, width, bearing in VESSELS:
        i, distance_px = _nearest(detections, row, col)
        assert distance_px < 0.3, (row, col, distance_px)
        assert detections.length_m[i] == pytest.approx(length * 10, rel=0.35, abs=10)
        if length / width >= 4:
            difference = (detections.orientation_deg[i] - bearing + 90) % 180 - 90
            assert abs(difference) < 8, (bearing, detections.orientation_deg[i])
        assert detections.width_m[i] < detections.length_m[i] + 1e-6
    assert np.all((detections.score > 0) & (detections.score < 1))
    # Georeferencing: x/y from the transform, lon/lat near the North Sea origin.
    x, y = SEA * (detections.col, detections.row)
    np.testing.assert_allclose(detections.x, x)
    np.testing.assert_allclose(detections.y, y)
    assert np.all((detections.lon > 1.5) & (detections.lon < 2.5) & (detections.lat > 51.5) & (detections.lat < 52.5))


def test_detection_is_blind_to_the_radiometric_scale(painted, tmp_path):
    bands, folder = painted
    with open_scene(folder) as scene:
        reference = detect_vessels(scene)
    # The same scene as an unlabelled 16-bit export (reflectance x 65535, no metadata).
    other = _write_folder(tmp_path / "export", bands, SEA, scale=65535.0, sidecar=False)
    with open_scene(other) as scene:
        assert scene.metadata.radiometry == "assumed"
        rescaled = detect_vessels(scene)
    assert len(rescaled) == len(reference)
    np.testing.assert_allclose(np.sort(rescaled.row), np.sort(reference.row), atol=0.05)
    np.testing.assert_allclose(np.sort(rescaled.col), np.sort(reference.col), atol=0.05)


def test_a_white_cloud_puff_is_not_a_vessel_but_a_hull_beside_it_is(tmp_path):
    rng = np.random.default_rng(3)
    bands = _sea((160, 160), rng)
    yy, xx = np.mgrid[0:160, 0:160]
    puff = np.exp(-(((yy - 60) ** 2 + (xx - 60) ** 2) / (2 * 4.0**2))).astype(np.float32) * 0.35
    for band in bands:
        bands[band] = bands[band] + puff  # white: the same excess in every band
    _paint_hull(bands, 120.0, 110.0, 10.0, 2.0, 60.0)
    with open_scene(_write_folder(tmp_path / "cloudy", bands, SEA)) as scene:
        detections = detect_vessels(scene)
    assert len(detections) == 1
    assert _nearest(detections, 120.0, 110.0)[1] < 0.5


def test_a_scene_without_water_is_a_product_error(tmp_path):
    rng = np.random.default_rng(4)
    land = {b: (v + rng.normal(0, 0.01, size=(64, 64))).astype(np.float32)
            for b, v in {"B02": 0.05, "B03": 0.08, "B04": 0.06, "B08": 0.35, "B11": 0.2}.items()}
    folder = _write_folder(tmp_path / "fields", land, INLAND)
    with open_scene(folder) as scene:
        with pytest.raises(ProductError, match="no water") as error:
            detect_vessels(scene)
    assert error.value.path == folder


def test_bright_objects_on_land_are_not_vessels(tmp_path):
    rng = np.random.default_rng(5)
    land = {b: (v + rng.normal(0, 0.005, size=(96, 96))).astype(np.float32)
            for b, v in {"B02": 0.05, "B03": 0.08, "B04": 0.06, "B08": 0.30, "B11": 0.2}.items()}
    # A lake, so the scene has water, and a bright roof on land.
    land_water = {"B02": 0.05, "B03": 0.06, "B04": 0.04, "B08": 0.02, "B11": 0.01}
    for band, value in land_water.items():
        land[band][:, :40] = value
    _paint_hull(land, 50.0, 70.0, 8.0, 3.0, 0.0, colours={"B02": 0.3, "B03": 0.3, "B04": 0.3, "B08": 0.6, "B11": 0.4})
    _paint_hull(land, 50.0, 20.0, 8.0, 2.0, 0.0)
    # Land polygon: the east of the scene (the whole scene is in its coastal belt, so NDWI decides).
    to_lonlat = Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)
    x0, y0 = INLAND * (40, -200)
    x1, y1 = INLAND * (400, 300)
    lon, lat = to_lonlat.transform([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0])
    land_path = tmp_path / "land.geojson"
    land_path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in zip(lon, lat)]]}}]}))
    with open_scene(_write_folder(tmp_path / "shore", land, INLAND)) as scene:
        detections = detect_vessels(scene, land_path=land_path, config=DetectorConfig(min_water_px=100))
    assert len(detections) == 1
    assert _nearest(detections, 50.0, 20.0)[1] < 0.5


def test_robust_background_ignores_a_hull_filling_part_of_a_cell():
    rng = np.random.default_rng(6)
    sea = rng.normal(0.03, 0.002, size=(64, 64)).astype(np.float32)
    with_hull = sea.copy()
    with_hull[30:33, 28:36] = 0.3
    mask = np.ones(sea.shape, bool)
    level, sigma = robust_background(with_hull, mask)
    assert np.allclose(level, 0.03, atol=0.002)
    assert np.all(sigma < 0.004)


@pytest.mark.parametrize("level", ["L1C", "L2A"])
def test_synthetic_vessels_are_found(tmp_path, level):
    info = write_product(tmp_path / level, seed=11, size_px=384, layout="geotiff", level=level,
                         n_vessels=8, cloud_fraction=0.0)
    truth = json.loads(info.truth_path.read_text())["features"]
    with open_scene(info.product_path) as scene:
        detections = detect_vessels(scene)
    scored = [f["properties"] for f in truth if f["properties"]["length_m"] >= 20]
    assert len(scored) >= 4
    found = 0
    for vessel in scored:
        _, distance_px = _nearest(detections, vessel["row"], vessel["col"])
        found += distance_px * 10 <= max(30.0, vessel["length_m"] / 2)
    assert found >= len(scored) - 1
    assert len(detections) <= len(truth) + 1
