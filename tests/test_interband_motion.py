"""Speed from one image: a hull under way sits apart in B02 and B04 (about a second apart), a moored one does not."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from scipy import ndimage

from geo.angles import axis_difference_deg
from geo.earth import KNOT_M_S
from pipeline.motion import (
    B02_B04_SECONDS,
    hull_axes,
    hull_masks,
    interband_displacement,
    measure_motion,
)
from sen2ships_fixtures import BENCH, vessel_chips, vessel_masks

chip_mask = BENCH["chip_mask"]


def _hull(shape: tuple[int, int], row: float, col: float, bearing_deg: float = 90.0,
          length_px: float = 12.0) -> np.ndarray:
    """A bright hull ``length_px`` long and 4 px wide along ``bearing_deg`` (grid, clockwise from up)."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    a = np.radians(bearing_deg)
    along = (cols + 0.5 - col) * np.sin(a) - (rows + 0.5 - row) * np.cos(a)
    across = (cols + 0.5 - col) * np.cos(a) + (rows + 0.5 - row) * np.sin(a)
    return np.exp(-((along / (length_px / 2)) ** 4 + (across / 2.0) ** 4))


def _chips(shift_px: tuple[float, float], *, bearing_deg: float = 90.0, length_px: float = 12.0, n: int = 1,
           crs: str = "EPSG:32631", pixel: float = 10.0, seed: int = 3) -> list[SimpleNamespace]:
    """128 px B02 B03 B04 B08 chips of open sea with a hull that moved ``shift_px`` (drow, dcol) from B02 to B04."""
    rng = np.random.default_rng(seed)
    chips = []
    for _ in range(n):
        earlier = _hull((128, 128), 64.0, 64.0, bearing_deg, length_px)
        later = _hull((128, 128), 64.0 + shift_px[0], 64.0 + shift_px[1], bearing_deg, length_px)
        data = np.stack([0.03 + 0.08 * earlier, 0.025 + 0.10 * (earlier + later) / 2, 0.02 + 0.11 * later,
                         0.01 + 0.22 * (earlier + later) / 2]).astype(np.float32)
        data += rng.normal(0.0, 0.002, data.shape).astype(np.float32)
        chips.append(SimpleNamespace(data=data, band_names=["B02", "B03", "B04", "B08"], crs=CRS.from_string(crs),
                                     transform=Affine(pixel, 0.0, 500000.0, 0.0, -pixel, 5800000.0), grid_north_deg=-2.0))
    return chips


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.4, -1.1), (-1.3, 0.6), (1.9, 1.2)])
def test_interband_displacement_recovers_a_known_shift_despite_different_band_levels(shift):
    earlier = np.stack([0.02 + 0.10 * _hull((48, 48), 24.0, 24.0, 60.0)] * 2)
    later = np.stack([0.05 + 0.25 * _hull((48, 48), 24.0 + shift[0], 24.0 + shift[1], 60.0)] * 2)
    later += np.random.default_rng(3).normal(0.0, 0.003, later.shape)
    masks = ndimage.binary_dilation(_hull((48, 48), 24.0, 24.0, 60.0) > 0.5, iterations=3)
    masks = np.stack([masks, np.zeros_like(masks)])  # the second chip has nothing to fit
    found, explained = interband_displacement(earlier, later, masks)
    assert found[0] == pytest.approx(shift, abs=0.1) and explained[0] > 0.95
    assert np.isnan(found[1]).all() and np.isnan(explained[1])
    with pytest.raises(ValueError, match="three \\(N, H, W\\) stacks"):
        interband_displacement(earlier, later[:1], masks)


def test_hull_masks_find_the_centre_hull_and_refuse_merged_or_absent_ones():
    sea = np.full((3, 3, 48, 48), 0.02) + np.random.default_rng(1).normal(0.0, 0.002, (3, 3, 48, 48))
    sea[0, :, :, :] += 0.1 * _hull((48, 48), 24.0, 24.0, 30.0)          # a hull
    sea[1, :, 20:28, :] += 0.1                                           # a quay across the whole chip
    masks = hull_masks(sea, margin_px=0)
    assert 20 <= masks[0].sum() <= 60 and masks[0, 24, 24]
    assert not masks[1].any() and not masks[2].any()                     # merged / nothing there
    bearing, elongation = hull_axes(masks)
    assert bearing[0] == pytest.approx(30.0, abs=5.0) and elongation[0] > 2.0
    assert np.isnan(bearing[1]) and elongation[1] == 1.0


def test_measure_motion_gives_speed_and_true_axis_of_a_hull_moving_along_itself():
    motion = measure_motion(_chips((-0.6, 1.0), bearing_deg=59.0) + _chips((0.0, 0.0)))
    expected_kn = math.hypot(0.6, 1.0) * 10.0 / B02_B04_SECONDS / KNOT_M_S
    assert motion.speed_kn[0] == pytest.approx(expected_kn, rel=0.08)
    # The grid axis of (drow -0.6, dcol +1.0) is 59°; the chip's grid north is -2°, so the true axis is 57°.
    assert motion.axis_deg[0] == pytest.approx(57.0, abs=4.0)
    assert np.isnan(motion.speed_kn[1]) and np.isnan(motion.axis_deg[1])  # moored
    assert motion.as_dicts()[1] == {"speed_kn": None, "motion_axis_deg": None}


def test_measure_motion_refuses_shifts_across_the_hull_round_hulls_and_missing_bands():
    across = measure_motion(_chips((1.2, 0.0), bearing_deg=90.0))          # hull along the columns, shift down
    assert np.isnan(across.speed_kn[0])
    round_hull = measure_motion(_chips((0.0, 1.2), length_px=4.0))
    assert np.isnan(round_hull.speed_kn[0])
    rgb = _chips((0.0, 1.2))
    rgb[0].band_names = ["B04", "B03", "B02", "B01"]
    assert np.isnan(measure_motion(rgb).speed_kn).all() and len(measure_motion([])) == 0


def test_measure_motion_refuses_shifts_past_the_search_and_grids_in_degrees():
    too_fast = measure_motion(_chips((-1.7, 1.7), bearing_deg=45.0))  # 2.4 px: past the 2.25 px searched
    assert np.isnan(too_fast.speed_kn[0])
    lonlat = _chips((0.0, 1.0))
    lonlat[0].crs = CRS.from_epsg(4326)
    lonlat[0].transform = Affine(1e-4, 0.0, 3.0, 0.0, -1e-4, 52.0)
    assert np.isnan(measure_motion(lonlat).speed_kn[0])


def test_measure_motion_uses_ground_metres_on_a_web_mercator_grid():
    utm = measure_motion(_chips((0.0, 1.0)))
    mercator = measure_motion(_chips((0.0, 1.0), crs="EPSG:3857", pixel=10.0))  # y = 5.8e6: about 46° N
    ratio = mercator.speed_kn[0] / utm.speed_kn[0]
    assert ratio == pytest.approx(math.cos(math.radians(46.0)), abs=0.03)


def test_chip_mask_cuts_the_window_and_pads_outside_the_scene():
    mask = np.zeros((10, 10), dtype=bool)
    mask[0, 0] = mask[9, 9] = True
    window = SimpleNamespace(row_off=-2, col_off=-2, height=5, width=5)
    cut = chip_mask(mask, SimpleNamespace(window=window))
    assert cut.shape == (5, 5) and np.flatnonzero(cut).tolist() == [12]


def test_real_vessels_under_way_get_a_speed_along_their_hulls_and_moored_ones_do_not():
    # Cartagena's anchorage: vessels 2-13 trail wakes; Honolulu: a marina, its vessels moored.
    chips, found = vessel_chips("cartagena")
    motion = measure_motion(chips)
    under_way = np.arange(2, 14)
    assert np.all((motion.speed_kn[under_way] >= 10.0) & (motion.speed_kn[under_way] <= 35.0)), motion.speed_kn
    true_axis = (found[under_way, 2] + np.array([c.grid_north_deg for c in chips])[under_way]) % 180.0
    assert np.all(axis_difference_deg(motion.axis_deg[under_way], true_axis) <= 20.0)
    # The pipeline's own hull pixels and the labelled masks give the same displacement.
    stack = np.stack([c.data for c in chips])
    labelled = np.stack([ndimage.binary_dilation(chip_mask(m, c), iterations=3)
                         for c, m in zip(chips, vessel_masks("cartagena"))])
    by_label, _ = interband_displacement(stack[:, 0], stack[:, 2], labelled)
    gap = np.hypot(*(motion.displacement_px[under_way] - by_label[under_way]).T)
    assert np.median(gap) <= 0.1, gap
    moored = measure_motion(vessel_chips("honolulu")[0])
    assert np.isfinite(moored.speed_kn).sum() == 0, moored.speed_kn
