"""A wake runs on water: headings whose wake line lies on a quay or a pier are withdrawn."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

import pipeline.heading as heading_step
from geo.angles import axis_difference_deg
from models.inference import KeypointPrediction, load_heading_model
from pipeline.heading import estimate_headings, wake_land_share
from pipeline.motion import MIN_SHIFT_PX
from pipeline.water import chip_land
from sen2ships_fixtures import BENCH, vessel_chips, vessel_masks


def _sea(n: int, size: int = 64) -> np.ndarray:
    """``(n, 4, size, size)`` calm open water (B02, B03, B04, B08 reflectance): NDWI about 0.55."""
    data = np.empty((n, 4, size, size), dtype=np.float32)
    data[:] = np.array([0.045, 0.035, 0.020, 0.010], dtype=np.float32)[None, :, None, None]
    return data


def _paint_land(data: np.ndarray, rows: slice, cols: slice) -> None:
    """Concrete-like land, brighter in NIR than in green (NDWI about -0.2)."""
    data[:, :, rows, cols] = np.array([0.10, 0.10, 0.12, 0.15], dtype=np.float32)[None, :, None, None]


def test_chip_land_keeps_quays_and_treats_free_vessels_and_no_data_as_water():
    data = _sea(3)
    _paint_land(data[:1], slice(0, 40), slice(0, 30))  # a quay of 1200 px in chip 0
    _paint_land(data[:1], slice(50, 53), slice(40, 48))  # a free vessel (24 px) off the quay
    _paint_land(data[1:2], slice(0, 20), slice(0, 20))  # 400 px in chip 1, touching chip 0's quay in the stack
    data[2, :, :10, :] = 0.0  # no data: NDWI 0/0
    land = chip_land(data[:, 1], data[:, 3])
    assert land.shape == (3, 64, 64)
    assert land[0, :40, :30].all() and land[0].sum() == 1200
    assert not land[1].any(), "blobs must not connect across chips"
    assert not land[2].any()
    assert chip_land(data[0, 1], data[0, 3]).shape == (64, 64)
    with pytest.raises(ValueError, match="green, nir"):
        chip_land(data[:, 1], data[:2, 3])


def test_wake_land_share_samples_the_line_behind_the_hull():
    land = np.zeros((4, 64, 64), dtype=bool)
    land[:, :, :20] = True  # land west of column 20
    keypoints = np.full((4, 4, 2), np.nan)
    keypoints[:, 0] = (32.0, 32.0)  # hull at the centre
    keypoints[0, 1] = (2.0, 32.0)  # wake to the west: on land from 40% of the way (x < 20)
    keypoints[1, 1] = (62.0, 32.0)  # wake to the east: water
    keypoints[2, 1] = (-40.0, 32.0)  # wake leaving the chip to the west: outside counts as not land
    share = wake_land_share(land, keypoints)
    assert share[0] == pytest.approx(0.6 / 0.7, abs=0.05)  # sampled from 30% of the way to the end
    assert share[1] == 0.0
    assert 0.1 < share[2] < 0.3
    assert np.isnan(share[3])
    with pytest.raises(ValueError, match="land, keypoints_px"):
        wake_land_share(land[0], keypoints)


def _westward_wakes(monkeypatch) -> None:
    """Stand in for the network: every chip's hull at its centre, wake 28 px to the west, heading east."""

    def predict(model, data, band_names, **_):
        n, size = len(data), data.shape[-1]
        keypoints = np.full((n, 4, 2), np.nan)
        keypoints[:, 0] = (size / 2, size / 2)
        keypoints[:, 1] = (size / 2 - 28, size / 2)
        return KeypointPrediction(keypoints, np.full((n, 4), 0.99), np.full(n, 90.0), np.full(n, 2.0), np.zeros(n, bool))

    monkeypatch.setattr(heading_step, "predict_keypoints", predict)


def _chips(data: np.ndarray, band_names: list[str]) -> list[SimpleNamespace]:
    return [SimpleNamespace(data=d, band_names=band_names, grid_north_deg=0.0, transform=None, crs=None) for d in data]


def test_a_wake_lying_on_a_quay_is_withdrawn_and_open_water_keeps_its_heading(monkeypatch):
    _westward_wakes(monkeypatch)
    data = _sea(2)
    _paint_land(data[:1], slice(0, 64), slice(0, 26))  # chip 0: moored, quay to the west under the "wake"
    _paint_land(data[1:], slice(0, 64), slice(44, 64))  # chip 1: quay to the east, ahead of the bow
    bands = ["B02", "B03", "B04", "B08"]
    result = estimate_headings(_chips(data, bands), model=None)
    assert result.wake_on_land.tolist() == [True, False]
    assert np.isnan(result.heading_deg[0]) and np.isnan(result.uncertainty_deg[0]) and result.ambiguous[0]
    assert result.heading_deg[1] == pytest.approx(90.0) and not result.ambiguous[1]
    # Switched off, or no NIR to compute NDWI with: nothing is withdrawn.
    assert not estimate_headings(_chips(data, bands), model=None, max_wake_land_share=None).wake_on_land.any()
    rgb = estimate_headings(_chips(data[:, [2, 1, 0]], ["B04", "B03", "B02"]), model=None)
    assert not rgb.wake_on_land.any() and not rgb.ambiguous.any()
    with pytest.raises(ValueError, match="max_wake_land_share"):
        estimate_headings(_chips(data, bands), model=None, max_wake_land_share=0.0)


def test_decode_rle_reads_column_major_counts():
    mask = BENCH["decode_rle"]("{'counts': [1, 2, 3], 'size': [3, 2]}")
    assert mask.tolist() == [[False, False], [True, False], [True, False]]
    with pytest.raises(ValueError, match="counts add up"):
        BENCH["decode_rle"]({"counts": [1, 2], "size": [3, 2]})


@pytest.fixture(scope="module")
def port_headings():
    """Headings of the labelled vessels of two real sen2ships ports (Honolulu marina, Cartagena anchorage)."""
    model = load_heading_model(threads=2)
    out = {}
    for port in ("honolulu", "cartagena"):
        chips, found = vessel_chips(port)
        out[port] = (estimate_headings(chips, model), estimate_headings(chips, model, max_wake_land_share=None), found[:, 2],
                     chips)
    return out


def test_real_vessels_moored_in_a_marina_get_no_heading(port_headings):
    checked, unchecked, _, chips = port_headings["honolulu"]
    # Without the check the pier fingers pass for wakes on some of them; the check withdraws each of
    # those as wake on land, and no vessel that stood still between B02 and B04 keeps a heading.
    withdrawn = ~unchecked.ambiguous & checked.ambiguous
    assert withdrawn.sum() >= 1
    assert checked.wake_on_land[withdrawn].all()
    # The hulls' B02 -> B04 shift, fitted on the labelled masks (dilated 3 px) as the benchmark does;
    # (row, col) px. A vessel keeping a heading must have moved along it: vessel 4 (in open water)
    # does, 0.62 px against the 0.6 px gate; ten of the other eleven moved under 0.45 px.
    shift = BENCH["labelled_hull_shifts"](chips, vessel_masks("honolulu"))[0]
    kept = ~checked.ambiguous
    moved = np.hypot(shift[:, 0], shift[:, 1]) >= MIN_SHIFT_PX
    along = axis_difference_deg(np.degrees(np.arctan2(shift[:, 1], -shift[:, 0])), checked.heading_grid_deg) <= 10.0
    assert np.all(moved[kept] & along[kept]), (np.flatnonzero(kept), shift[kept], checked.heading_grid_deg[kept])


def test_real_vessels_under_way_keep_headings_along_their_hulls(port_headings):
    checked, _, axis, _ = port_headings["cartagena"]
    reported = ~checked.ambiguous
    assert reported.sum() >= 8
    errors = axis_difference_deg(checked.heading_grid_deg[reported], axis[reported])
    # The axis is a mask's long axis, itself a few degrees off on hulls a few pixels wide: at least
    # 90% within 20 degrees, and no gross error beyond 30 (the wake-on-land check, not this bound,
    # is what withdraws a pier read as a wake: a pier finger can run along the hull).
    assert np.mean(errors <= 20.0) >= 0.9, errors
    assert np.all(errors <= 30.0), errors
    assert np.median(errors) <= 10.0


def test_the_heading_command_says_why_a_moored_vessel_has_no_heading(tmp_path, port_headings):
    import rasterio
    from typer.testing import CliRunner

    from vesselwatch.cli import app

    checked, unchecked, _, chips = port_headings["honolulu"]
    chip = chips[int(np.flatnonzero(checked.wake_on_land & ~unchecked.ambiguous)[0])]
    path = tmp_path / "moored.tif"
    with rasterio.open(path, "w", driver="GTiff", width=128, height=128, count=4, dtype="float32",
                       crs=chip.crs, transform=chip.transform) as dst:
        dst.write(chip.data.astype("float32"))
        dst.descriptions = ("B02", "B03", "B04", "B08")
    result = CliRunner().invoke(app, ["heading", str(path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["wake_on_land"] is True and out["ambiguous"] is True and out["heading_deg"] is None
    assert out["speed_kn"] is None and out["motion_axis_deg"] is None  # moored: it did not move between bands
    unchecked = CliRunner().invoke(app, ["heading", str(path), "--no-land-check"])
    assert unchecked.exit_code == 0, unchecked.output
    assert json.loads(unchecked.output)["wake_on_land"] is False
    assert json.loads(unchecked.output)["heading_deg"] is not None
