"""Ingest: every layout and level reads to the same reflectance; bad input fails with one clear line."""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from pipeline.ingest import band_in_name, iter_windows, open_scene
from pipeline.synthetic import write_product
from vesselwatch.errors import ProductError

TRANSFORM = Affine(10.0, 0.0, 499980.0, 0.0, -10.0, 5800020.0)
BANDS_10M = ("B02", "B03", "B04", "B08")


def _reflectance(shape: tuple[int, int], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {b: rng.uniform(0.01, 0.4, size=shape).astype(np.float32) for b in (*BANDS_10M, "B11")}


def _write_band(path: Path, dn: np.ndarray, transform: Affine, *, crs: str | None = "EPSG:32631",
                driver: str = "GTiff") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver=driver, width=dn.shape[1], height=dn.shape[0], count=1, dtype=dn.dtype.name,
                   transform=transform)
    if crs is not None:
        profile["crs"] = crs
    if driver == "JP2OpenJPEG":
        profile.update(QUALITY=100, REVERSIBLE="YES")  # lossless, as ESA ships it
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn, 1)


def _dn(reflectance: np.ndarray, offset: int = -1000) -> np.ndarray:
    return np.round(reflectance * 10000 - offset).astype(np.uint16)


def _b11_20m(reflectance: np.ndarray) -> np.ndarray:
    h, w = reflectance.shape
    return reflectance.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def write_band_folder(folder: Path, refl: dict[str, np.ndarray], *, sidecar: bool = True) -> None:
    for band in BANDS_10M:
        _write_band(folder / f"T31UET_20240301T105000_{band}.tif", _dn(refl[band]), TRANSFORM)
    _write_band(folder / "T31UET_20240301T105000_B11.tif", _dn(_b11_20m(refl["B11"])), TRANSFORM @ Affine.scale(2))
    if sidecar:
        (folder / "metadata.json").write_text(json.dumps({
            "product_id": "tiny", "acquired": "2024-03-01T10:50:00Z", "tile_id": "31UET", "level": "L1C",
            "baseline": "05.10", "quantification_value": 10000, "offsets": {b: -1000 for b in (*BANDS_10M, "B11")},
        }))


def write_safe(folder: Path, refl: dict[str, np.ndarray], level: str = "L2A") -> Path:
    name = f"S2B_MSI{level}_20240301T105000_N0510_R051_T31UET_20240301T120000.SAFE"
    safe = folder / name
    img = safe / "GRANULE" / "L2A_T31UET_A000001_20240301T105000" / "IMG_DATA"
    offset_tag = "BOA_ADD_OFFSET" if level == "L2A" else "RADIO_ADD_OFFSET"
    for band in BANDS_10M:
        path = img / "R10m" / f"T31UET_20240301T105000_{band}_10m.jp2" if level == "L2A" else img / f"T31UET_20240301T105000_{band}.jp2"
        _write_band(path, _dn(refl[band]), TRANSFORM, driver="JP2OpenJPEG")
    b11 = img / "R20m" / "T31UET_20240301T105000_B11_20m.jp2" if level == "L2A" else img / "T31UET_20240301T105000_B11.jp2"
    _write_band(b11, _dn(_b11_20m(refl["B11"])), TRANSFORM @ Affine.scale(2), driver="JP2OpenJPEG")
    if level == "L2A":
        scl = np.full((refl["B02"].shape[0] // 2, refl["B02"].shape[1] // 2), 6, np.uint8)
        scl[0, 0] = 9
        _write_band(img / "R20m" / "T31UET_20240301T105000_SCL_20m.jp2", scl, TRANSFORM @ Affine.scale(2),
                    driver="JP2OpenJPEG")
    offsets = "".join(f'<{offset_tag} band_id="{i}">-1000</{offset_tag}>' for i in range(13))
    (safe / f"MTD_MSI{level}.xml").write_text(
        f'<?xml version="1.0"?><n1:Level-{level[1:]}_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int">'
        f"<n1:General_Info><Product_Info><PRODUCT_START_TIME>2024-03-01T10:50:00.024Z</PRODUCT_START_TIME>"
        f"<PROCESSING_LEVEL>Level-{level[1:]}</PROCESSING_LEVEL><PROCESSING_BASELINE>05.10</PROCESSING_BASELINE>"
        f"</Product_Info><Product_Image_Characteristics><QUANTIFICATION_VALUE>10000</QUANTIFICATION_VALUE>"
        f"<Offsets>{offsets}</Offsets></Product_Image_Characteristics></n1:General_Info></n1:Level-{level[1:]}_User_Product>"
    )
    return safe


@pytest.fixture()
def reflectance() -> dict[str, np.ndarray]:
    return _reflectance((32, 48), seed=1)


def test_band_folder_reads_reflectance_with_offsets_and_metadata(tmp_path, reflectance):
    write_band_folder(tmp_path, reflectance)
    with open_scene(tmp_path) as scene:
        meta = scene.metadata
        assert (meta.product_id, meta.tile_id, meta.level, meta.baseline) == ("tiny", "31UET", "L1C", "05.10")
        assert meta.acquired == datetime(2024, 3, 1, 10, 50, tzinfo=timezone.utc)
        assert (meta.width, meta.height, meta.transform, meta.crs.to_epsg()) == (48, 32, TRANSFORM, 32631)
        assert meta.radiometry == "metadata"
        assert scene.band_names == ["B02", "B03", "B04", "B08", "B11"]
        np.testing.assert_allclose(scene.read("B08"), reflectance["B08"], atol=6e-5)
        np.testing.assert_allclose(scene.read("nir"), reflectance["B08"], atol=6e-5)
        window = Window(col_off=5, row_off=3, width=7, height=4)
        np.testing.assert_allclose(scene.read("B02", window), reflectance["B02"][3:7, 5:12], atol=6e-5)
        # 20 m band: each 10 m pixel gets its 20 m parent.
        b11 = scene.read("B11")
        assert b11.shape == (32, 48)
        np.testing.assert_allclose(b11[::2, ::2], _b11_20m(reflectance["B11"]), atol=6e-5)
        np.testing.assert_array_equal(b11[1::2, 1::2], b11[::2, ::2])
        assert scene.read_scl() is None


def test_layouts_and_levels_ingest_to_the_same_reflectance(tmp_path, reflectance):
    write_band_folder(tmp_path / "tif", reflectance)
    safe = write_safe(tmp_path / "safe", reflectance, level="L2A")
    safe_l1c = write_safe(tmp_path / "safe1c", reflectance, level="L1C")
    archive = tmp_path / "product.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in safe.rglob("*"):
            zf.write(file, file.relative_to(safe.parent).as_posix())
    with open_scene(tmp_path / "tif") as ref_scene:
        expected = {b: ref_scene.read(b) for b in ref_scene.band_names}
    for path, level in ((safe, "L2A"), (archive, "L2A"), (safe_l1c, "L1C")):
        with open_scene(path) as scene:
            assert scene.metadata.level == level and scene.metadata.tile_id == "31UET"
            assert scene.metadata.baseline == "05.10" and scene.metadata.layout == "safe"
            for band, array in expected.items():
                np.testing.assert_array_equal(scene.read(band), array, err_msg=f"{path.name} {band}")
            if level == "L2A":
                scl = scene.read_scl()
                assert scl.dtype == np.uint8 and scl.shape == (32, 48)
                assert scl[0, 0] == scl[1, 1] == 9 and scl[2, 2] == 6


def test_synthetic_products_ingest_identically_in_every_layout(tmp_path):
    arrays = {}
    for layout in ("geotiff", "cog", "safe"):
        for level in ("L1C", "L2A"):
            info = write_product(tmp_path / f"{layout}-{level}", seed=5, size_px=64, layout=layout, level=level,
                                 n_vessels=2)
            with open_scene(info.product_path) as scene:
                assert scene.metadata.level == level and scene.metadata.tile_id == info.tile_id
                assert scene.metadata.transform == info.transform and scene.metadata.crs == info.crs
                assert scene.metadata.acquired == info.acquired
                assert (scene.read_scl() is not None) == (level == "L2A")
                arrays[layout, level] = np.stack([scene.read(b) for b in ("B02", "B03", "B04", "B08", "B11")])
            # The output folder itself opens too (it holds one SAFE, one STAC item or the bands).
            with open_scene(info.out_dir) as scene:
                assert scene.metadata.layout == {"geotiff": "geotiff", "cog": "stac", "safe": "safe"}[layout]
                np.testing.assert_array_equal(scene.read("B08"), arrays[layout, level][3])
    for level in ("L1C", "L2A"):
        reference = arrays["geotiff", level]
        assert np.nanmax(np.abs(reference)) < 2.0 and np.nanmedian(reference) > 0.0, "reflectance, not DN"
        for layout in ("cog", "safe"):
            np.testing.assert_array_equal(arrays[layout, level], reference, err_msg=f"{layout} {level}")
    assert not np.array_equal(arrays["geotiff", "L1C"], arrays["geotiff", "L2A"]), "TOA and BOA differ"


def test_real_sen2ships_scene_without_metadata_gets_an_assumed_scale():
    folder = Path(__file__).resolve().parent.parent / "data" / "sen2ships" / "honolulu"
    with open_scene(folder) as scene:
        meta = scene.metadata
        assert meta.radiometry == "assumed" and meta.level == "L2A" and meta.crs.to_epsg() == 3857
        assert meta.acquired == datetime(2023, 1, 8, tzinfo=timezone.utc)
        nir = scene.read("B08")
        assert 0.0 <= np.nanmin(nir) and np.nanmax(nir) <= 1.0


def test_missing_band_names_the_folder_and_the_band(tmp_path, reflectance):
    write_band_folder(tmp_path, reflectance)
    next(tmp_path.glob("*_B08.tif")).unlink()
    with pytest.raises(ProductError, match=r"B08 missing") as error:
        open_scene(tmp_path)
    assert error.value.path == tmp_path
    assert "\n" not in str(error.value)


def test_truncated_band_file_is_a_product_error_naming_the_file(tmp_path, reflectance):
    write_band_folder(tmp_path, _reflectance((256, 256), seed=2))
    victim = next(tmp_path.glob("*_B03.tif"))
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(ProductError) as error:
        with open_scene(tmp_path) as scene:
            scene.read("B03")
    assert error.value.path == victim
    assert "\n" not in str(error.value)


def test_corrupt_band_file_is_a_product_error(tmp_path, reflectance):
    write_band_folder(tmp_path, reflectance)
    victim = next(tmp_path.glob("*_B04.tif"))
    victim.write_bytes(b"this is not a GeoTIFF at all" * 10)
    with pytest.raises(ProductError, match="B04") as error:
        open_scene(tmp_path)
    assert error.value.path == victim


def test_raster_without_georeferencing_is_refused(tmp_path, reflectance):
    write_band_folder(tmp_path, reflectance)
    victim = next(tmp_path.glob("*_B02.tif"))
    _write_band(victim, _dn(reflectance["B02"]), Affine.identity(), crs=None)
    with pytest.raises(ProductError, match="no georeferencing") as error:
        open_scene(tmp_path)
    assert error.value.path == victim


def test_unknown_layout_and_missing_path(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ProductError, match="no band GeoTIFF"):
        open_scene(tmp_path)
    with pytest.raises(ProductError, match="does not exist"):
        open_scene(tmp_path / "nope")


def test_band_names_in_file_names():
    assert band_in_name("T31UET_20240301T105000_B8A_20m.jp2") == "B8A"
    assert band_in_name("2022-05-14-00_00_Sentinel-2_L2A_B11_(Raw).tiff") == "B11"
    assert band_in_name("B12.tif") == "B12"
    assert band_in_name("B123.tif") is None
    assert band_in_name("T31UET_SCL_20m.jp2") == "SCL"


def test_windows_partition_the_grid_with_overlap():
    cores = np.zeros((50, 70), int)
    for read, core in iter_windows(50, 70, block_px=16, overlap_px=4):
        r0, c0 = int(core.row_off), int(core.col_off)
        cores[r0:r0 + int(core.height), c0:c0 + int(core.width)] += 1
        assert read.row_off == max(0, r0 - 4) and read.col_off == max(0, c0 - 4)
        assert read.row_off + read.height == min(50, r0 + int(core.height) + 4)
    assert (cores == 1).all()


def test_stac_item_with_common_names_and_s2_properties(tmp_path, reflectance):
    """Earth Search style: assets keyed 'blue', 'nir', ...; band in eo:bands; offsets in properties."""
    write_band_folder(tmp_path / "bands", reflectance, sidecar=False)
    common = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B11": "swir16"}
    assets = {}
    for band, name in common.items():
        tif = next((tmp_path / "bands").glob(f"*_{band}.tif"))
        key = name if band != "B11" else "asset-7"  # this one is only named through eo:bands
        assets[key] = {"href": f"bands/{tif.name}", "eo:bands": [{"name": name, "common_name": name}]}
    assets["thumbnail"] = {"href": "thumb.jpg"}
    item = {
        "type": "Feature", "id": "S2B_31UET_20240301_0_L2A", "assets": assets,
        "properties": {"datetime": "2024-03-01T10:50:00Z", "proj:epsg": 32631, "s2:mgrs_tile": "31UET",
                       "s2:processing_baseline": "05.10", "s2:product_type": "S2MSI2A"},
    }
    (tmp_path / "item.json").write_text(json.dumps(item))
    with open_scene(tmp_path / "item.json") as scene:
        meta = scene.metadata
        assert (meta.product_id, meta.tile_id, meta.level, meta.layout) == ("S2B_31UET_20240301_0_L2A", "31UET", "L2A", "stac")
        assert meta.radiometry == "metadata"
        # Baseline 05.10 without explicit scale: the ESA convention, 10000 and -1000.
        np.testing.assert_allclose(scene.read("B08"), reflectance["B08"], atol=6e-5)
        np.testing.assert_allclose(scene.read("B11")[::2, ::2], _b11_20m(reflectance["B11"]), atol=6e-5)


def test_stac_raster_bands_scale_and_offset_win(tmp_path, reflectance):
    write_band_folder(tmp_path / "bands", reflectance, sidecar=False)
    assets = {}
    for band in ("B02", "B03", "B04", "B08", "B11"):
        tif = next((tmp_path / "bands").glob(f"*_{band}.tif"))
        assets[band] = {"href": f"./bands/{tif.name}",
                        "raster:bands": [{"scale": 0.0001, "offset": -0.1, "nodata": 0}]}
    item = {"type": "Feature", "id": "x", "assets": assets,
            "properties": {"datetime": "2024-03-01T10:50:00Z", "proj:code": "EPSG:32631"}}
    (tmp_path / "x.json").write_text(json.dumps(item))
    with open_scene(tmp_path) as scene:  # the folder holding the item opens too
        np.testing.assert_allclose(scene.read("B02"), reflectance["B02"], atol=6e-5)
        assert scene.metadata.acquired == datetime(2024, 3, 1, 10, 50, tzinfo=timezone.utc)
