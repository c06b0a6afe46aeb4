"""Synthetic wake chips: dihedral augmentation moves keypoints with the image, clipping, determinism,
the wake-visibility measure."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from models.metrics import angular_error_deg
from models.wake_chips import (
    HELDOUT_RANGES,
    TRAIN_RANGES,
    clip_keypoints_to_chip,
    dihedral_heading_deg,
    dihedral_transform,
    FAINT_RANGES,
    draw_chip,
    draw_chips,
    wake_snr,
)


def _heading_of(kp: np.ndarray) -> float:
    d = kp[0] - kp[1]
    return float(np.degrees(np.arctan2(d[0], -d[1])) % 360)


@pytest.mark.parametrize("k", range(8))
def test_dihedral_transform_moves_keypoints_with_the_pixels(k):
    size = 16
    image = np.zeros((2, size, size), dtype=np.float32)
    # Keypoints at pixel centres; mark each with its own value in the image.
    kp = np.array([[3.5, 2.5], [10.5, 12.5], [1.5, 14.5], [13.5, 5.5]])
    for i, (x, y) in enumerate(kp):
        image[:, int(y), int(x)] = i + 1
    out, kp_out = dihedral_transform(image, kp, k)
    assert out.shape == image.shape and out.flags["C_CONTIGUOUS"]
    values = {float(out[0, int(y), int(x)]) for x, y in kp_out}
    # Every transformed keypoint still sits on a marked pixel (arms may swap under a mirror).
    assert values == {1.0, 2.0, 3.0, 4.0}
    assert out[0, int(kp_out[0, 1]), int(kp_out[0, 0])] == 1.0  # the hull stays the hull
    assert out[0, int(kp_out[1, 1]), int(kp_out[1, 0])] == 2.0  # the wake end stays the wake end


@pytest.mark.parametrize("k", range(8))
def test_dihedral_heading_and_arm_sides_follow_the_transform(k):
    chip = draw_chip(np.random.default_rng(11), TRAIN_RANGES, size=64)
    assert chip.visible[1]
    _, kp = dihedral_transform(chip.data, chip.keypoints, k)
    expected = dihedral_heading_deg(chip.heading_grid_deg, k)
    assert angular_error_deg(_heading_of(kp), expected) < 1e-6
    if chip.visible[2]:
        # arm_left_end must stay left of the direction of travel: cross product sign < 0 (y down).
        travel = kp[0] - kp[1]
        rel = kp[2] - kp[0]
        assert travel[0] * rel[1] - travel[1] * rel[0] < 0


def test_clip_moves_outside_points_to_the_border_along_the_hull_ray():
    kp = np.array([[[32.0, 32.0], [32.0, 132.0], [np.nan, np.nan], [10.0, 20.0]]])
    out = clip_keypoints_to_chip(kp, 64, margin=0.5)
    np.testing.assert_allclose(out[0, 1], [32.0, 63.5])
    np.testing.assert_allclose(out[0, 3], [10.0, 20.0])  # inside: unchanged
    assert np.all(np.isnan(out[0, 2]))
    outside_hull = clip_keypoints_to_chip(np.array([[-5.0, 3.0], [10.0, 10.0], [1.0, 1.0], [2.0, 2.0]]), 64)
    assert np.all(np.isnan(outside_hull[1:]))


def test_draw_chips_is_deterministic_and_keypoints_stay_in_the_chip():
    a = draw_chips(5, 12, TRAIN_RANGES, 64)
    b = draw_chips(5, 12, TRAIN_RANGES, 64)
    np.testing.assert_array_equal(a["data"], b["data"])
    np.testing.assert_array_equal(a["keypoints"], b["keypoints"])
    c = draw_chips(6, 12, TRAIN_RANGES, 64)
    assert not np.array_equal(a["data"], c["data"])
    kp = a["keypoints"][a["visible"]]
    assert np.all((kp >= 0) & (kp <= 64))
    assert a["data"].dtype == np.float32 and a["data"].shape == (12, 4, 64, 64)
    # The wake end is present exactly for vessels drawn with a wake.
    np.testing.assert_array_equal(a["visible"][:, 1], a["has_wake"])
    # Truth heading agrees with the keypoints wherever there is a wake.
    headings = np.array([_heading_of(k) for k in a["keypoints"]])
    assert np.nanmax(angular_error_deg(headings, a["heading_grid_deg"])[a["has_wake"]]) < 1e-6


def test_heldout_ranges_differ_from_training_ranges():
    assert HELDOUT_RANGES != TRAIN_RANGES
    assert HELDOUT_RANGES.noise_sigma[1] > TRAIN_RANGES.noise_sigma[1]
    assert HELDOUT_RANGES.cloud_opacity[1] > TRAIN_RANGES.cloud_opacity[1]


def test_wake_snr_of_one_pixel_three_sigma_above_the_clutter_is_three():
    rng = np.random.default_rng(0)
    free = rng.normal(0.05, 0.002, size=(2, 64, 64))
    window = free[1, 16:48, 16:48]  # the centre 32 px
    sigma = 1.4826 * np.median(np.abs(window - np.median(window)))
    signal = np.zeros_like(free)
    signal[1, 30, 30] = 3.0 * sigma
    signal[0, 0, 0] = 100.0  # outside the centre 32 px window: not seen
    assert wake_snr(signal, free, window_px=32) == pytest.approx(3.0, rel=1e-3)
    with pytest.raises(ValueError, match="wake_signal"):
        wake_snr(signal[:, :10], free)


def test_measuring_the_wake_leaves_the_chips_unchanged_and_ranks_visibility():
    plain = draw_chips(11, 12, HELDOUT_RANGES, 128)
    measured = draw_chips(11, 12, HELDOUT_RANGES, 128, measure_wake=True)
    for key in plain:
        np.testing.assert_array_equal(plain[key], measured[key])
    assert np.all(measured["wake_snr"][~measured["has_wake"]] == 0.0)
    assert np.all(measured["wake_snr"][measured["has_wake"]] > 0.0)
    # A 150 m ship at 20 kn on a calm sea versus a 10 m boat at 3 kn on a noisy one.
    loud = replace(TRAIN_RANGES, length_m=(150, 150), speed_kn=(20, 20), p_wake=1.0, noise_sigma=(0.001, 0.001),
                   p_cloud=0.0, p_glint=0.0)
    faint = replace(TRAIN_RANGES, length_m=(10, 10), speed_kn=(3, 3), p_wake=1.0, noise_sigma=(0.004, 0.004))
    assert np.median(draw_chips(5, 10, loud, 64, measure_wake=True)["wake_snr"]) > 100
    assert np.median(draw_chips(5, 10, faint, 64, measure_wake=True)["wake_snr"]) < 10


def test_faint_ranges_stay_inside_the_training_ranges():
    assert TRAIN_RANGES.length_m[0] <= FAINT_RANGES.length_m[0] < FAINT_RANGES.length_m[1] <= TRAIN_RANGES.length_m[1]
    assert TRAIN_RANGES.speed_kn[0] <= FAINT_RANGES.speed_kn[0] < FAINT_RANGES.speed_kn[1] <= TRAIN_RANGES.speed_kn[1]
    assert replace(FAINT_RANGES, length_m=TRAIN_RANGES.length_m, speed_kn=TRAIN_RANGES.speed_kn) == TRAIN_RANGES


def test_keeping_the_vessel_signal_leaves_the_chips_unchanged_and_separates_vessel_from_clutter():
    children = np.random.SeedSequence(11).spawn(12)
    plain = draw_chips(11, 12, HELDOUT_RANGES, 128, measure_wake=True)
    kept = [draw_chip(np.random.default_rng(c), HELDOUT_RANGES, 128, keep_vessel_signal=True) for c in children]
    np.testing.assert_array_equal(plain["data"], np.stack([c.data for c in kept]))
    np.testing.assert_array_equal(plain["wake_snr"], [c.extras["wake_snr"] for c in kept])
    for chip in kept:
        signal, free = chip.extras["vessel_signal"], chip.extras["vessel_free"]
        support = np.any(signal != 0.0, axis=0)
        assert support.any() and not support.all()  # the vessel's pixels, not the whole chip
        np.testing.assert_allclose(signal[:, support], (chip.data - free)[:, support], atol=1e-6)
        # The centre the vessel turns about lies half a hull length ahead of the stern (the wake apex).
        heading = np.radians(chip.heading_grid_deg)
        ahead = np.array([np.sin(heading), -np.cos(heading)]) * chip.length_m / 20.0
        np.testing.assert_allclose(chip.keypoints[0] + ahead, chip.extras["centre_px"], atol=1e-6)
