"""Chips: fixed size, centred, reflect-padded, georeferenced, with meridian convergence."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Proj

from dataclasses import replace

from pipeline.chips import chip_windows, cut_chips, detect_and_cut, grid_north_deg
from pipeline.detect import DetectorConfig, Detections, detect_vessels
from pipeline.ingest import open_scene
from pipeline.synthetic import write_product
from vesselwatch.errors import InputError


def _detections_at(rows: list[float], cols: list[float]) -> Detections:
    empty = Detections.empty()
    n = len(rows)
    values = {name: np.zeros(n, dtype=getattr(empty, name).dtype) for name in empty.__dataclass_fields__}
    values["row"], values["col"] = np.array(rows, float), np.array(cols, float)
    return Detections(**values)


@pytest.fixture(scope="module")
def product(tmp_path_factory):
    return write_product(tmp_path_factory.mktemp("chips") / "p", seed=2, size_px=96, layout="geotiff",
                         level="L1C", n_vessels=1, offset_px=(0, 2000))


def test_chips_are_centred_georeferenced_and_reflect_padded(product):
    with open_scene(product.product_path) as scene:
        full = np.stack([scene.read(b) for b in scene.band_names])
        meta = scene.metadata
        detections = _detections_at([50.4, 2.5, 94.9], [40.7, 3.2, 90.1])
        chips = cut_chips(scene, detections, size_px=16)
    assert len(chips) == 3
    inner, corner, far = chips
    for chip in chips:
        assert chip.data.shape == (5, 16, 16) and chip.data.dtype == np.float32
        assert chip.band_names == ["B02", "B03", "B04", "B08", "B11"]
        assert chip.crs == meta.crs
    # Centred: the detection's pixel sits at index 8, and the chip transform agrees with the scene's.
    assert (inner.window.row_off, inner.window.col_off) == (42, 32)
    np.testing.assert_array_equal(inner.data, full[:, 42:58, 32:48])
    assert inner.transform @ (8.5, 8.5) == pytest.approx(meta.transform @ (40.5, 50.5))
    # Upper-left corner chip: rows/cols -6..-1 are mirror images of rows/cols 1..6.
    assert (corner.window.row_off, corner.window.col_off) == (-6, -5)
    np.testing.assert_array_equal(corner.data[:, 6:, 5:], full[:, :10, :11])
    np.testing.assert_array_equal(corner.data[:, 5, 5:], full[:, 1, :11])
    np.testing.assert_array_equal(corner.data[:, 0, 5:], full[:, 6, :11])
    np.testing.assert_array_equal(corner.data[:, 6:, 4], full[:, :10, 1])
    # Lower-right: the scene ends at 96, the chip at 102.
    assert (far.window.row_off + 16, far.window.col_off + 16) == (102, 98)
    np.testing.assert_array_equal(far.data[:, :10, :14], full[:, 86:, 82:96])
    np.testing.assert_array_equal(far.data[:, 10, :14], full[:, 94, 82:96])
    # Centre lon/lat and convergence at the chip centre, from pyproj.
    proj = Proj(meta.crs)
    x, y = inner.transform @ (8, 8)
    lon, lat = proj(x, y, inverse=True)
    assert (inner.center_lon, inner.center_lat) == pytest.approx((lon, lat), abs=1e-9)
    assert inner.grid_north_deg == pytest.approx(proj.get_factors(lon, lat).meridian_convergence, abs=1e-4)


def test_no_detections_no_chips(product):
    with open_scene(product.product_path) as scene:
        assert cut_chips(scene, Detections.empty()) == []
        with pytest.raises(InputError):
            cut_chips(scene, _detections_at([10.0], [10.0]), size_px=1)


def test_grid_north_is_zero_on_the_central_meridian_and_antisymmetric_about_it():
    # UTM 31N: central meridian 3 deg E at easting 500 000.
    x = np.array([500000.0, 600000.0, 400000.0, 700000.0])
    y = np.full(4, 5_800_000.0)
    convergence = grid_north_deg("EPSG:32631", x, y)
    assert convergence.shape == (4,)
    assert convergence[0] == pytest.approx(0.0, abs=1e-9)
    assert convergence[1] > 0 and convergence[1] == pytest.approx(-convergence[2], abs=1e-6)
    proj = Proj("EPSG:32631")
    lon, lat = proj(x, y, inverse=True)
    np.testing.assert_allclose(convergence, proj.get_factors(lon, lat).meridian_convergence, atol=1e-4)
    # Southern hemisphere (UTM 31S): east of the meridian grid north lies west of true north.
    assert grid_north_deg("EPSG:32731", 600000.0, 5_000_000.0) < 0
    # Broadcasting: a grid of points.
    assert grid_north_deg("EPSG:32631", x[:, None], np.array([5.7e6, 5.9e6])[None, :]).shape == (4, 2)


def test_chip_windows_put_the_detection_pixel_at_the_centre_index():
    row_off, col_off = chip_windows(np.array([0.0, 10.99, 11.0]), np.array([5.5, 5.5, 5.5]), 128)
    np.testing.assert_array_equal(row_off, [-64, -54, -53])
    np.testing.assert_array_equal(col_off, [-59, -59, -59])


@pytest.mark.parametrize("layout, level", [("safe", "L1C"), ("cog", "L2A")])
def test_detect_and_cut_equals_detect_then_cut_and_decodes_each_block_once(tmp_path, monkeypatch, layout, level):
    from pipeline.ingest import Scene

    info = write_product(tmp_path / "p", seed=4, size_px=768, layout=layout, level=level, cache_dir=tmp_path / "cache")
    config = replace(DetectorConfig(), block_px=256)  # 9 blocks: vessels near block edges and scene edges
    with open_scene(info.product_path) as scene:
        detections = detect_vessels(scene, config=config)
        chips = cut_chips(scene, detections, size_px=128)
    reads: list[str] = []
    real_read_dn = Scene._read_dn

    def counting_read_dn(self, band, *args):
        reads.append(band)
        return real_read_dn(self, band, *args)

    monkeypatch.setattr(Scene, "_read_dn", counting_read_dn)
    with open_scene(info.product_path) as scene:
        fused_detections, fused_chips = detect_and_cut(scene, size_px=128, config=config)
    assert len(detections) >= 5
    for name in detections.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(fused_detections, name), getattr(detections, name))
    assert len(fused_chips) == len(chips)
    for fused, chip in zip(fused_chips, chips):
        assert fused.window == chip.window and fused.band_names == chip.band_names
        assert fused.transform == chip.transform and fused.grid_north_deg == chip.grid_north_deg
        np.testing.assert_array_equal(fused.data, chip.data)
    # NIR is read once per block by the detector and never again for a chip; B04, which the
    # detector does not read, is read once per chip
    assert reads.count("B08") == 9
    assert reads.count("B04") == len(chips)
