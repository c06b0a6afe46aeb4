"""The B02 → B04 hull displacement (bands about a second apart) tells a vessel under way from a moored one."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from sen2ships_fixtures import BENCH, vessel_chips, vessel_masks

interband_shift, chip_mask = BENCH["interband_shift"], BENCH["chip_mask"]


def _hull(shape: tuple[int, int], row: float, col: float) -> np.ndarray:
    """A 12 × 4 px bright hull along the columns, centred on ``(row, col)``."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-(((cols - col) / 6.0) ** 4 + ((rows - row) / 2.0) ** 4))


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.4, -1.1), (-1.3, 0.6)])
def test_interband_shift_recovers_a_known_displacement_despite_different_band_levels(shift):
    earlier = 0.02 + 0.10 * _hull((40, 40), 20.0, 20.0)
    later = 0.05 + 0.25 * _hull((40, 40), 20.0 + shift[0], 20.0 + shift[1])  # brighter band, other offset
    later += np.random.default_rng(3).normal(0.0, 0.003, later.shape)
    mask = _hull((40, 40), 20.0, 20.0) > 0.5
    d_row, d_col = interband_shift(earlier, later, mask)
    assert d_row == pytest.approx(shift[0], abs=0.1) and d_col == pytest.approx(shift[1], abs=0.1)


def test_chip_mask_cuts_the_window_and_pads_outside_the_scene():
    mask = np.zeros((10, 10), dtype=bool)
    mask[0, 0] = mask[9, 9] = True
    window = type("W", (), {"row_off": -2, "col_off": -2, "height": 5, "width": 5})()
    cut = chip_mask(mask, type("C", (), {"window": window})())
    assert cut.shape == (5, 5) and np.flatnonzero(cut).tolist() == [12]


def _displacements(port: str) -> tuple[np.ndarray, np.ndarray]:
    chips, found = vessel_chips(port)
    shifts = np.array([interband_shift(c.data[0], c.data[2], chip_mask(m, c)) for c, m in zip(chips, vessel_masks(port))])
    bearing = np.degrees(np.arctan2(shifts[:, 1], -shifts[:, 0])) % 360.0
    return np.hypot(shifts[:, 0], shifts[:, 1]), BENCH["axis_error_deg"](bearing, found[:, 2])


def test_real_vessels_under_way_move_between_bands_along_their_hulls_and_moored_ones_do_not():
    # Cartagena's anchorage: vessels 2-13 trail wakes; Honolulu: a marina, all but one moored.
    size, off_axis = _displacements("cartagena")
    under_way = np.arange(2, 14)
    assert np.all(size[under_way] >= 0.6), size[under_way]
    assert np.all(off_axis[under_way] <= 20.0), off_axis[under_way]
    moored, _ = _displacements("honolulu")
    assert np.sum(moored >= 0.6) <= 2 and np.median(moored) < 0.3, moored
