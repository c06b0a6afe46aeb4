"""Vessels and headings: detail with alerts and nearest platform, the chip picture, uploaded chips."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pyproj import Transformer

from api_fixtures import (PRODUCT_TRANSFORM_ORIGIN, T0, api_client, assert_problem, heading_model, make_resources,
                          make_store, write_band_folder)
from models.inference import predict_keypoints
from pipeline.store import DetectionRecord, SceneRecord


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return heading_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def client(tmp_path_factory, model):
    folder = tmp_path_factory.mktemp("vessels")
    store = make_store()
    product = write_band_folder(folder / "S2_PRODUCT")
    x, y = PRODUCT_TRANSFORM_ORIGIN[0] + 10 * 100.5, PRODUCT_TRANSFORM_ORIGIN[1] - 10 * 100.5
    to_lonlat = Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(x, y)
    hull_lon, hull_lat = to_lonlat.transform(x, y + 30.0)
    wake_lon, wake_lat = to_lonlat.transform(x, y - 200.0)
    record = DetectionRecord(
        detection_id="P/0", scene_id="P", lon=lon, lat=lat, row=100.5, col=100.5, length_m=50.0, width_m=10.0,
        score=0.95, acquired=T0, heading_deg=0.0, heading_uncertainty_deg=4.0, heading_ambiguous=False,
        keypoints={"hull": {"x": 64.0, "y": 61.0, "lon": hull_lon, "lat": hull_lat},
                   "wake_end": {"x": 64.0, "y": 84.0, "lon": wake_lon, "lat": wake_lat},
                   "arm_left_end": None, "arm_right_end": None},
    )
    store.replace_scene(SceneRecord(scene_id="P", path=str(product), crs="EPSG:32631", width=200, height=200,
                                    n_detections=1, acquired=T0), [record])
    resources = make_resources(folder, heading_model=model)
    with api_client(store, resources, api_max_upload_bytes=200_000) as client:
        yield client


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_vessel_detail_has_heading_keypoints_nearest_platform_and_alerts(client):
    body = client.get("/vessels/A/0").json()
    assert body["heading_deg"] == 45.0 and body["heading_ambiguous"] is False and body["wake_on_land"] is None
    assert body["nearest_platform"]["platform_ids"] == ["P-A", "P-B"]
    assert [a["id"] for a in body["alerts"]] == ["A/0/555"]
    assert any(link["href"].endswith("/vessels/A/0/chip.png") for link in body["links"])
    unknown = client.get("/vessels/A/1").json()
    assert unknown["heading_deg"] is None and unknown["alerts"][0]["properties"]["severity"] == "medium"
    assert_problem(client.get("/vessels/nope"), 404, "detection_id")


def test_chip_png_is_recut_from_the_product_with_keypoints_and_arrow(client):
    response = client.get("/vessels/P/0/chip.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
    assert image.shape == (512, 512, 3)  # 128 px chip drawn 4x
    red = (image[..., 0] > 200) & (image[..., 1] < 100) & (image[..., 2] < 100)
    rows, cols = np.nonzero(red)
    # Hull keypoint 3 px (30 m) up the grid from the centre: its ring is centred near (256, 244).
    assert abs(np.median(cols) - 256) < 8 and abs(np.median(rows) - (64.5 - 3) * 4) < 10
    white = (image.min(axis=-1) > 250)
    arrow_rows, arrow_cols = np.nonzero(white)
    assert arrow_rows.min() < 256 - 100 and abs(np.median(arrow_cols) - 256) < 10  # heading 0: straight up
    # A scene whose product is gone: 404 problem, not 500.
    assert_problem(client.get("/vessels/A/0/chip.png"), 404)


def test_heading_of_an_uploaded_png_is_the_model_answer(client, model):
    rng = np.random.default_rng(5)
    rgb = (rng.uniform(0, 60, (64, 64, 3))).astype(np.uint8)
    rgb[30:34, 31:33] = 250
    response = client.post("/heading", files={"file": ("chip.png", _png(rgb), "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = predict_keypoints(model, np.moveaxis(rgb.astype(np.float32) / 255.0, -1, 0), ["B04", "B03", "B02"])
    assert body["georeferenced"] is False and body["format"] == "png"
    assert body["wake_on_land"] is False  # no NIR, no NDWI: never checked
    assert body["speed_kn"] is None and body["motion_axis_deg"] is None  # no grid, no metres
    assert body["ambiguous"] == bool(expected.ambiguous[0])
    if np.isfinite(expected.heading_grid_deg[0]):
        assert body["heading_deg"] == pytest.approx(float(expected.heading_grid_deg[0]), abs=1e-6)
    else:
        assert body["heading_deg"] is None
    assert body["keypoints"]["hull"]["x"] == pytest.approx(float(expected.keypoints_px[0, 0, 0]), abs=1e-6)


def test_heading_of_a_geotiff_is_a_true_bearing_with_georeferenced_keypoints(client, model):
    import rasterio
    from affine import Affine

    rng = np.random.default_rng(6)
    data = (rng.normal(500, 20, (4, 64, 64))).astype(np.uint16)
    data[:, 30:34, 31:33] = 3000
    buffer = io.BytesIO()
    transform = Affine(10, 0, 600000, 0, -10, 5800000)  # east of the UTM central meridian: grid north != north
    with rasterio.MemoryFile() as memory:
        with memory.open(driver="GTiff", width=64, height=64, count=4, dtype="uint16", crs="EPSG:32631",
                         transform=transform) as dataset:
            dataset.write(data)
        buffer.write(memory.read())
    body = client.post("/heading", files={"file": ("chip.tif", buffer.getvalue(), "image/tiff")}).json()
    assert body["georeferenced"] is True and body["format"] == "geotiff"
    assert body["bands"] == ["B02", "B03", "B04", "B08"]
    assert isinstance(body["wake_on_land"], bool)  # NDWI is checked: the chip has B03 and B08
    assert 0.5 < body["grid_north_deg"] < 1.5
    if body["heading_grid_deg"] is not None:
        assert body["heading_deg"] == pytest.approx((body["heading_grid_deg"] + body["grid_north_deg"]) % 360)
    hull = body["keypoints"]["hull"]
    x, y = transform @ (hull["x"], hull["y"])
    lon, lat = Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True).transform(x, y)
    assert (hull["lon"], hull["lat"]) == (pytest.approx(lon, abs=1e-6), pytest.approx(lat, abs=1e-6))
    assert body["pixel_m"] == pytest.approx(10.0, rel=0.01) and body["warnings"] == []

    # The same chip said to have 30 m pixels is answered, with a warning naming the size.
    buffer = io.BytesIO()
    with rasterio.MemoryFile() as memory:
        with memory.open(driver="GTiff", width=64, height=64, count=4, dtype="uint16", crs="EPSG:32631",
                         transform=Affine(30, 0, 600000, 0, -30, 5800000)) as dataset:
            dataset.write(data)
        buffer.write(memory.read())
    coarse = client.post("/heading", files={"file": ("chip.tif", buffer.getvalue(), "image/tiff")})
    assert coarse.status_code == 200 and coarse.json()["pixel_m"] == pytest.approx(30.0, rel=0.01)
    assert len(coarse.json()["warnings"]) == 1 and "30.0 m" in coarse.json()["warnings"][0]


def test_a_jpeg_2000_chip_gets_the_answer_of_the_same_geotiff(client, model):
    import rasterio
    from affine import Affine

    from models.wake_chips import ChipRanges, draw_chips

    easy = ChipRanges(length_m=(80.0, 200.0), speed_kn=(14.0, 20.0), p_wake=1.0, noise_sigma=(0.0005, 0.001),
                      p_glint=0.0, p_cloud=0.0, p_stretch=0.0, p_rgb_only=0.0, jitter_px=1.0, p_distractor=0.0)
    data = np.round(draw_chips(2025, 1, easy, size=64)["data"][0] * 10000).astype(np.uint16)
    uploads = {}
    for driver, options in (("GTiff", {}), ("JP2OpenJPEG", {"QUALITY": "100", "REVERSIBLE": "YES", "CODEC": "JP2"})):
        with rasterio.MemoryFile() as memory:
            with memory.open(driver=driver, width=64, height=64, count=4, dtype="uint16", crs="EPSG:32631",
                             transform=Affine(10, 0, 600000, 0, -10, 5800000), **options) as dataset:
                dataset.write(data)
            uploads[driver] = memory.read()
    tif = client.post("/heading", files={"file": ("chip.tif", uploads["GTiff"], "image/tiff")}).json()
    response = client.post("/heading", files={"file": ("chip.jp2", uploads["JP2OpenJPEG"], "image/jp2")})
    assert response.status_code == 200, response.text
    jp2 = response.json()
    assert jp2["format"] == "jpeg2000" and tif["format"] == "geotiff" and jp2["georeferenced"] is True
    assert jp2["heading_deg"] is not None and jp2["heading_deg"] == pytest.approx(tif["heading_deg"], abs=1e-6)
    broken = client.post("/heading", files={"file": ("chip.jp2", uploads["JP2OpenJPEG"][:40], "image/jp2")})
    assert broken.status_code == 422 and "JPEG 2000" in broken.text


def test_heading_of_a_moored_vessel_says_its_wake_lies_on_land(client, model):
    import rasterio

    from pipeline.heading import estimate_headings
    from sen2ships_fixtures import vessel_chips

    chips, _ = vessel_chips("honolulu")
    on_land = np.flatnonzero(estimate_headings(chips, model).wake_on_land)
    assert on_land.size, "the shipped model reads a pier as a wake in this marina"
    chip = chips[int(on_land[0])]
    unchecked = estimate_headings([chip], model, max_wake_land_share=None)
    with rasterio.MemoryFile() as memory:
        with memory.open(driver="GTiff", width=128, height=128, count=4, dtype="float32", crs=chip.crs,
                         transform=chip.transform, compress="deflate", predictor=3) as dataset:  # under the body limit
            dataset.write(chip.data.astype("float32"))
            dataset.descriptions = ("B02", "B03", "B04", "B08")
        content = memory.read()
    body = client.post("/heading", files={"file": ("moored.tif", content, "image/tiff")}).json()
    assert body["wake_on_land"] is True and body["heading_deg"] is None and body["ambiguous"] is True
    assert body["speed_kn"] is None  # moored: no shift between B02 and B04
    off = client.post("/heading?land_check=false", files={"file": ("moored.tif", content, "image/tiff")}).json()
    assert off["wake_on_land"] is False
    assert off["heading_grid_deg"] == pytest.approx(float(unchecked.heading_grid_deg[0]), abs=1e-3)


def test_heading_of_a_vessel_under_way_comes_with_its_speed(client):
    import rasterio

    from geo.angles import axis_difference_deg
    from sen2ships_fixtures import vessel_chips

    chips, _ = vessel_chips("cartagena")
    chip = chips[2]  # under way in the anchorage, a bright wake behind it
    with rasterio.MemoryFile() as memory:
        with memory.open(driver="GTiff", width=128, height=128, count=4, dtype="float32", crs=chip.crs,
                         transform=chip.transform, compress="deflate", predictor=3) as dataset:
            dataset.write(chip.data.astype("float32"))
            dataset.descriptions = ("B02", "B03", "B04", "B08")
        content = memory.read()
    body = client.post("/heading", files={"file": ("moving.tif", content, "image/tiff")}).json()
    assert 20.0 <= body["speed_kn"] <= 40.0
    assert axis_difference_deg(body["motion_axis_deg"], body["heading_deg"]) <= 20.0


def test_bad_uploads_are_problems(client):
    text = client.post("/heading", files={"file": ("chip.png", b"this is not an image", "image/png")})
    assert_problem(text, 415, "file")
    broken = client.post("/heading", files={"file": ("chip.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "image/png")})
    assert_problem(broken, 422, "file")
    tiny = client.post("/heading", files={"file": ("chip.png", _png(np.zeros((8, 8, 3), np.uint8)), "image/png")})
    assert_problem(tiny, 422, "file")
    oversized = client.post("/heading", files={"file": ("chip.png", b"\x89PNG" + b"\x00" * 300_000, "image/png")})
    assert_problem(oversized, 413)
    assert_problem(client.post("/heading"), 422, "file")
    assert_problem(client.post("/heading", files={"file": ("chip.png", b"", "image/png")}), 422, "file")


def test_a_rotated_geotiff_is_refused_not_misread(client):
    import rasterio
    from affine import Affine

    data = np.full((4, 64, 64), 500, np.uint16)
    rotated = Affine.translation(600000, 5800000) @ Affine.rotation(30) @ Affine.scale(10, -10)
    with rasterio.MemoryFile() as memory:
        with memory.open(driver="GTiff", width=64, height=64, count=4, dtype="uint16", crs="EPSG:32631",
                         transform=rotated) as dataset:
            dataset.write(data)
        content = memory.read()
    body = assert_problem(client.post("/heading", files={"file": ("rot.tif", content, "image/tiff")}), 422, "file")
    assert "rotated or flipped" in body["detail"]


def test_nodata_pixels_of_an_upload_are_filled_not_spread(client):
    import rasterio
    from affine import Affine

    rng = np.random.default_rng(7)
    data = rng.normal(0.05, 0.002, (4, 64, 64)).astype(np.float32)
    data[:, 30:34, 31:33] = 0.3

    from api.uploads import decode_chip

    def tiff(array):
        with rasterio.MemoryFile() as memory:
            with memory.open(driver="GTiff", width=64, height=64, count=4, dtype="float32", crs="EPSG:32631",
                             transform=Affine(10, 0, 600000, 0, -10, 5800000), nodata=-1.0) as dataset:
                dataset.write(array)
            return memory.read()

    def post(array):
        return client.post("/heading", files={"file": ("chip.tif", tiff(array), "image/tiff")}).json()

    holed = data.copy()
    holed[:, 20, 40:50] = -1.0  # declared nodata inside the crop: not reflectance
    decoded = decode_chip(tiff(holed)).data
    median = np.median(data, axis=(1, 2))[:, None]
    assert np.allclose(decoded[:, 20, 40:50], median, atol=1e-3)  # the band median, not -1 read as reflectance
    empty = data.copy()
    empty[:, 10:50, 10:50] = -1.0
    assert "nodata" in assert_problem(client.post("/heading", files={"file": ("e.tif", tiff(empty), "image/tiff")}),
                                      422, "file")["detail"]
    clean, filled = post(data), post(holed)
    assert filled["wake_probability"] == pytest.approx(clean["wake_probability"], abs=0.05)
    assert filled["keypoints"]["hull"] is not None
