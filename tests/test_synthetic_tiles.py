"""MGRS tile geometry and ESA radiometry of the synthetic products."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer

from pipeline.synthetic.radiometry import (
    BAND_IDS, SCENE_BANDS, add_offset_dn, boa_from_toa, parse_baseline, reflectance_to_dn, toa_from_boa,
)
from pipeline.synthetic.tiles import grid_north_deg, parse_tile
from vesselwatch.errors import InputError


@pytest.mark.parametrize(
    ("tile_id", "epsg", "ulx", "uly"),
    [
        ("31UET", 32631, 500000.0, 5800000.0),
        ("T31UFU", 32631, 600000.0, 5900000.0),
        ("32VMK", 32632, 400000.0, 6500000.0),
        ("33UUP", 32633, 300000.0, 5400000.0),
        ("18TWL", 32618, 500000.0, 4600000.0),
        ("56HLH", 32756, 300000.0, 6300000.0),
    ],
)
def test_tile_origin_is_the_upper_left_corner_of_the_mgrs_square(tile_id, epsg, ulx, uly):
    tile = parse_tile(tile_id)
    assert tile.epsg == epsg
    assert (tile.ulx_m, tile.uly_m) == (ulx, uly)
    # The square's centre lies in the tile's latitude band.
    lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(ulx + 50000, uly - 50000)
    band_south = -80 + 8 * "CDEFGHJKLMNPQRSTUVWX".index(tile.tile_id[2])
    assert band_south <= lat <= band_south + 8


def test_tile_transform_is_10_m_from_the_origin_and_shifts_with_the_offset():
    tile = parse_tile("31UET")
    t = tile.transform(10.0, row_off=100, col_off=8000)
    assert (t.a, t.e, t.c, t.f) == (10.0, -10.0, 580000.0, 5799000.0)


@pytest.mark.parametrize("bad", ["", "31", "31UEI", "61UET", "31UJT", "31UEW", "hello"])
def test_bad_tile_ids_are_refused_with_the_input_named(bad):
    with pytest.raises(InputError, match="tile"):
        parse_tile(bad)


def test_grid_north_matches_the_meridian_convergence():
    # Convergence ~ (lon - lon0) * sin(lat): zero on the central meridian, positive east of it (north).
    x = np.array([500000.0, 600000.0, 400000.0])
    y = np.full(3, 5750000.0)
    gn = grid_north_deg(32631, x, y)
    lon, lat = Transformer.from_crs(32631, 4326, always_xy=True).transform(x, y)
    approx = (np.asarray(lon) - 3.0) * np.sin(np.radians(lat))
    assert abs(gn[0]) < 1e-9
    assert gn[1] > 0 > gn[2]
    np.testing.assert_allclose(gn, approx, atol=0.01)


def test_radiometry_offsets_follow_the_baseline_and_round_trip():
    assert add_offset_dn("05.10") == add_offset_dn("04.00") == -1000
    assert add_offset_dn("03.01") == 0 == add_offset_dn("02.09")
    with pytest.raises(InputError, match="baseline"):
        parse_baseline("5.1")
    reflectance = np.array([-0.05, 0.0, 0.0123, 0.5, 1.2], dtype=np.float32)
    for offset in (-1000, 0):
        dn = reflectance_to_dn(reflectance, offset)
        assert dn.dtype == np.uint16 and dn.min() >= 1, "0 is NODATA and must never be written for valid pixels"
        back = (dn.astype(np.float64) + offset) / 10000.0
        valid = reflectance * 10000 - offset >= 1
        np.testing.assert_allclose(back[valid], reflectance[valid], atol=0.5e-4)
    assert sorted(BAND_IDS.values()) == list(range(13))


def test_toa_and_boa_are_inverse_and_the_atmosphere_brightens_dark_water():
    boa = np.array([0.028, 0.024, 0.012, 0.009, 0.003], dtype=np.float32)[:, None, None]
    toa = toa_from_boa(boa)
    np.testing.assert_allclose(boa_from_toa(toa), boa, atol=1e-6)
    assert 0.05 <= toa[SCENE_BANDS.index("B02")].item() <= 0.08
    assert 0.02 <= toa[SCENE_BANDS.index("B08")].item() <= 0.03
    assert toa[SCENE_BANDS.index("B02")].item() > toa[SCENE_BANDS.index("B08")].item()


def test_grid_north_agrees_with_the_chip_convention():
    """Truth headings and chip headings must use the same convergence (contracts: true = grid + grid_north)."""
    from pipeline.chips import grid_north_deg as chips_grid_north_deg

    x = np.array([420000.0, 500000.0, 560000.0, 609000.0])
    y = np.array([5700000.0, 5750000.0, 5790000.0, 5695000.0])
    np.testing.assert_allclose(grid_north_deg(32631, x, y), chips_grid_north_deg("EPSG:32631", x, y), atol=1e-4)
