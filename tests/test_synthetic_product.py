"""Synthetic products on disk: each layout and level as the foundation issue describes them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from pipeline.synthetic import write_product
from pipeline.synthetic.radiometry import boa_from_toa
from vesselwatch.errors import InputError

SIZE = 256
SEED = 9
ORIGIN = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5800000.0)  # 31UET upper-left corner, 10 m
TEN_M = ("B02", "B03", "B04", "B08")


@pytest.fixture(scope="module")
def products(tmp_path_factory) -> dict[tuple[str, str], object]:
    """One small product per layout and level, all from the same seed."""
    root = tmp_path_factory.mktemp("synthetic")
    return {
        (layout, level): write_product(root / f"{layout}-{level}", seed=SEED, size_px=SIZE, layout=layout, level=level,
                                       n_vessels=4, cloud_fraction=0.15)
        for layout in ("safe", "cog", "geotiff")
        for level in ("L1C", "L2A")
    }


def read_bands(info) -> dict[str, np.ndarray]:
    out = {}
    for band, path in info.band_paths.items():
        with rasterio.open(path) as dataset:
            out[band] = dataset.read(1)
    return out


def strip_ns(root: ET.Element) -> dict[str, list[ET.Element]]:
    """Elements by local tag name."""
    index: dict[str, list[ET.Element]] = {}
    for element in root.iter():
        index.setdefault(element.tag.split("}")[-1].split(":")[-1], []).append(element)
    return index


@pytest.mark.parametrize("layout", ["safe", "cog", "geotiff"])
@pytest.mark.parametrize("level", ["L1C", "L2A"])
def test_bands_are_uint16_on_the_real_tile_grid(products, layout, level):
    info = products[(layout, level)]
    expected = set(TEN_M) | {"B11"} | ({"SCL"} if level == "L2A" else set())
    assert set(info.band_paths) == expected
    for band, path in info.band_paths.items():
        assert path.is_file() and path.stat().st_size > 0
        with rasterio.open(path) as dataset:
            assert dataset.crs.to_epsg() == 32631
            factor = 2 if band in ("B11", "SCL") else 1
            assert dataset.transform == ORIGIN @ Affine.scale(factor), band
            assert (dataset.width, dataset.height) == (SIZE // factor, SIZE // factor)
            assert dataset.dtypes[0] == ("uint8" if band == "SCL" else "uint16")
            data = dataset.read(1)
        if band == "SCL":
            assert set(np.unique(data)) <= {3, 4, 5, 6, 8, 9, 10}
            assert (data == 6).mean() > 0.3, "the tile corner is open sea"
        else:
            assert data.min() >= 1, "0 is NODATA and is never written inside the product"
    if layout == "safe":
        assert info.product_path.suffix == ".SAFE" and info.product_path.is_dir()
        names = {p.relative_to(info.product_path).as_posix() for p in info.band_paths.values()}
        granule = f"GRANULE/{level}_T31UET_"
        assert all(n.startswith(granule) and "/IMG_DATA/" in n and n.endswith(".jp2") for n in names)
        if level == "L2A":
            assert any(n.endswith("/IMG_DATA/R10m/" + Path(n).name) and n.endswith("_B02_10m.jp2") for n in names)
            assert any("/IMG_DATA/R20m/" in n and n.endswith("_B11_20m.jp2") for n in names)
            assert any("/IMG_DATA/R20m/" in n and n.endswith("_SCL_20m.jp2") for n in names)
        else:
            assert any(n.endswith("_B08.jp2") and "/R10m/" not in n for n in names)
    elif layout == "cog":
        assert info.product_path.suffix == ".json"
        with rasterio.open(info.band_paths["B08"]) as dataset:
            assert dataset.block_shapes[0] == (512, 512) or SIZE < 512
            assert dataset.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    else:
        assert info.product_path == info.out_dir
        assert all(band in path.name for band, path in info.band_paths.items())


def test_jp2_cog_and_geotiff_hold_identical_pixels(products):
    """JPEG 2000 is lossless: every layout stores the same digital numbers for a seed and level."""
    for level in ("L1C", "L2A"):
        safe = read_bands(products[("safe", level)])
        for layout in ("cog", "geotiff"):
            other = read_bands(products[(layout, level)])
            for band in safe:
                np.testing.assert_array_equal(safe[band], other[band], err_msg=f"{layout} {level} {band}")


def test_safe_metadata_carries_baseline_quantification_offsets_and_geoposition(products):
    for level in ("L1C", "L2A"):
        info = products[("safe", level)]
        product_xml = info.product_path / f"MTD_MSI{level}.xml"
        assert product_xml in info.metadata_paths
        tags = strip_ns(ET.parse(product_xml).getroot())
        assert tags["PROCESSING_BASELINE"][0].text == "05.10"
        assert tags["PRODUCT_START_TIME"][0].text.startswith(info.acquired.strftime("%Y-%m-%dT%H:%M:%S"))
        quantification = "BOA_QUANTIFICATION_VALUE" if level == "L2A" else "QUANTIFICATION_VALUE"
        assert tags[quantification][0].text == "10000"
        offset_tag = "BOA_ADD_OFFSET" if level == "L2A" else "RADIO_ADD_OFFSET"
        offsets = {int(e.get("band_id")): int(e.text) for e in tags[offset_tag]}
        assert offsets == {band_id: -1000 for band_id in range(13)}
        physical = {e.get("bandId"): e.get("physicalBand") for e in tags["Spectral_Information"]}
        assert physical["1"] == "B2" and physical["7"] == "B8" and physical["11"] == "B11"
        cloud = float(tags["Cloud_Coverage_Assessment"][0].text)
        assert cloud == pytest.approx(info.cloud_cover_pct) and 0 < cloud < 100
        files = {e.text for e in tags["IMAGE_FILE"]}
        assert {(info.product_path / f).with_suffix(".jp2") for f in files} == set(info.band_paths.values())

        tile_xml = next(p for p in info.metadata_paths if p.name == "MTD_TL.xml")
        assert tile_xml.parent.parent.name == "GRANULE"
        tile = strip_ns(ET.parse(tile_xml).getroot())
        assert tile["HORIZONTAL_CS_CODE"][0].text == "EPSG:32631"
        assert "T31UET" in tile["TILE_ID"][0].text
        position = {p.get("resolution"): p for p in tile["Geoposition"]}
        assert position["10"].find("ULX").text == "500000" and position["10"].find("ULY").text == "5800000"
        assert position["20"].find("XDIM").text == "20" and position["20"].find("YDIM").text == "-20"
        sizes = {s.get("resolution"): int(s.find("NROWS").text) for s in tile["Size"]}
        assert sizes["10"] == SIZE and sizes["20"] == SIZE // 2


def test_stac_item_assets_projection_cloud_cover_and_offsets(products):
    info = products[("cog", "L2A")]
    item = json.loads(info.product_path.read_text())
    assert item["type"] == "Feature" and item["id"] == info.product_id
    props = item["properties"]
    assert props["proj:code"] == "EPSG:32631"
    assert props["eo:cloud_cover"] == pytest.approx(info.cloud_cover_pct, abs=1e-3)
    assert props["s2:processing_baseline"] == "05.10" and props["processing:level"] == "L2A"
    assert props["datetime"].startswith(info.acquired.strftime("%Y-%m-%dT%H:%M:%S"))
    assert set(item["assets"]) == {"B02", "B03", "B04", "B08", "B11", "SCL"}
    for band, asset in item["assets"].items():
        assert (info.product_path.parent / asset["href"]).resolve() == info.band_paths[band].resolve()
        if band != "SCL":
            raster = asset["raster:bands"][0]
            assert raster["scale"] == pytest.approx(1e-4) and raster["offset"] == pytest.approx(-0.1)
    lon, lat = item["geometry"]["coordinates"][0][0]
    assert 2.9 < lon < 3.5 and 52.0 < lat < 52.4


def test_geotiff_sidecar_names_radiometry(products):
    info = products[("geotiff", "L1C")]
    sidecar = json.loads((info.out_dir / "metadata.json").read_text())
    assert sidecar["quantification_value"] == 10000 and sidecar["baseline"] == "05.10"
    assert sidecar["offsets"] == {band: -1000 for band in ("B02", "B03", "B04", "B08", "B11")}
    assert sidecar["tile_id"] == "31UET" and sidecar["level"] == "L1C" and sidecar["product_id"] == info.product_id


def test_levels_come_from_one_scene_and_look_like_sentinel2(products):
    toa = {b: (a.astype(np.float64) - 1000) / 1e4 for b, a in read_bands(products[("geotiff", "L1C")]).items()}
    l2a = read_bands(products[("geotiff", "L2A")])
    boa = {b: (a.astype(np.float64) - 1000) / 1e4 for b, a in l2a.items() if b != "SCL"}
    toa["B11"] = np.repeat(np.repeat(toa["B11"], 2, axis=0), 2, axis=1)
    boa["B11"] = np.repeat(np.repeat(boa["B11"], 2, axis=0), 2, axis=1)
    stack = np.stack([toa[b] for b in ("B02", "B03", "B04", "B08", "B11")])
    expected = boa_from_toa(stack)
    for i, band in enumerate(("B02", "B03", "B04", "B08", "B11")):
        np.testing.assert_allclose(boa[band], expected[i], atol=1.5e-4, err_msg=band)
    water = np.repeat(np.repeat(l2a["SCL"] == 6, 2, axis=0), 2, axis=1)
    assert 0.045 <= np.median(toa["B02"][water]) <= 0.085
    assert 0.015 <= np.median(toa["B08"][water]) <= 0.035
    assert 0.003 <= np.median(boa["B08"][water]) <= 0.02
    assert np.median(boa["B08"][water]) < np.median(toa["B08"][water])
    thick = np.repeat(np.repeat(l2a["SCL"] == 9, 2, axis=0), 2, axis=1)
    assert thick.any()
    assert np.median(toa["B02"][thick]) > 0.3
    assert np.median(toa["B11"][thick]) < np.median(toa["B02"][thick]), "clouds are darker in SWIR than in blue"


def test_same_seed_same_product_other_seed_other_product(tmp_path):
    a = write_product(tmp_path / "a", seed=4, size_px=128, layout="geotiff", level="L2A")
    b = write_product(tmp_path / "b", seed=4, size_px=128, layout="geotiff", level="L2A")
    c = write_product(tmp_path / "c", seed=5, size_px=128, layout="geotiff", level="L2A")
    for band in a.band_paths:
        assert a.band_paths[band].read_bytes() == b.band_paths[band].read_bytes()
    assert a.truth_path.read_text() == b.truth_path.read_text()
    assert not np.array_equal(read_bands(a)["B08"], read_bands(c)["B08"])


def test_old_baseline_has_no_offset(tmp_path):
    new = write_product(tmp_path / "new", seed=2, size_px=64, layout="safe", level="L1C", n_vessels=0)
    old = write_product(tmp_path / "old", seed=2, size_px=64, layout="safe", level="L1C", baseline="03.01", n_vessels=0)
    assert "_N0301_" in old.product_id
    tags = strip_ns(ET.parse(old.product_path / "MTD_MSIL1C.xml").getroot())
    assert "RADIO_ADD_OFFSET" not in tags and tags["PROCESSING_BASELINE"][0].text == "03.01"
    difference = read_bands(new)["B02"].astype(int) - read_bands(old)["B02"].astype(int)
    assert np.all(difference == 1000)


def test_products_away_from_the_corner_show_land(tmp_path):
    info = write_product(tmp_path / "coast", seed=1, size_px=512, layout="geotiff", level="L2A",
                         offset_px=(3000, 8000), cloud_fraction=0.0)
    scl = read_bands(info)["SCL"]
    assert (scl == 6).mean() > 0.2 and np.isin(scl, (4, 5)).mean() > 0.2
    with rasterio.open(info.band_paths["B08"]) as dataset:
        assert dataset.transform.c == 500000 + 8000 * 10 and dataset.transform.f == 5800000 - 3000 * 10


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layout": "zarr"}, "layout"),
        ({"level": "L3"}, "level"),
        ({"size_px": 11000}, "size_px"),
        ({"offset_px": (10950, 0)}, "size_px"),
        ({"baseline": "5"}, "baseline"),
        ({"cloud_fraction": 1.5}, "cloud_fraction"),
        ({"tile_id": "31UEI"}, "tile"),
    ],
)
def test_bad_arguments_raise_input_errors_naming_them(tmp_path, kwargs, match):
    arguments = {"seed": 0, "size_px": 64, **kwargs}
    with pytest.raises(InputError, match=match):
        write_product(tmp_path / "bad", **arguments)


def test_rewriting_a_directory_replaces_the_earlier_product(tmp_path):
    first = write_product(tmp_path, seed=1, size_px=64, layout="geotiff", n_vessels=0)
    (tmp_path / "notes.txt").write_text("mine")
    second = write_product(tmp_path, seed=2, size_px=64, layout="geotiff", n_vessels=0)
    assert first.product_id != second.product_id
    tifs = sorted(p.name for p in tmp_path.glob("*.tif"))
    assert tifs == sorted(p.name for p in second.band_paths.values()), "bands of the first product remain"
    assert (tmp_path / "notes.txt").read_text() == "mine", "files that are not ours are kept"
    third = write_product(tmp_path, seed=3, size_px=64, layout="safe", n_vessels=0)
    assert list(tmp_path.glob("*.SAFE")) == [third.product_path] and not list(tmp_path.glob("*.tif"))


@pytest.mark.parametrize("level", ["L1C", "L2A"])
def test_gdal_sentinel2_driver_reads_the_safe(products, level):
    """GDAL's own SENTINEL2 driver understands the SAFE metadata: the product is shaped like ESA's."""
    info = products[("safe", level)]
    metadata = info.product_path / f"MTD_MSI{level}.xml"
    with rasterio.open(f"SENTINEL2_{level}:{metadata}:10m:EPSG_32631") as dataset:
        assert dataset.crs.to_epsg() == 32631 and dataset.transform == ORIGIN
        assert [d.split(",")[0] for d in dataset.descriptions][:4] == ["B4", "B3", "B2", "B8"]
        nir = dataset.read(4)
    np.testing.assert_array_equal(nir, read_bands(info)["B08"])
