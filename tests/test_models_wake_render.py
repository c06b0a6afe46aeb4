"""Behaviour of the numpy wake renderer (contract 1): geometry, physics laws, in-place windowing."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from models.wake_render import (
    KELVIN_HALF_ANGLE_DEG,
    VesselSpec,
    froude_number,
    kelvin_half_angle_deg,
    render_vessel,
    turbulent_wake_length_m,
)

BANDS = ["B02", "B03", "B04", "B08", "B11"]


def _sea(height: int = 160, width: int = 160, level: float = 0.03) -> np.ndarray:
    return np.full((len(BANDS), height, width), level, dtype=np.float32)


def test_kelvin_angle_is_constant_at_low_froude_and_narrows_at_high_froude():
    assert math.isclose(KELVIN_HALF_ANGLE_DEG, 19.4712, abs_tol=1e-3)
    low = kelvin_half_angle_deg(np.array([0.05, 0.3, 0.55]))
    np.testing.assert_allclose(low, KELVIN_HALF_ANGLE_DEG)
    high = kelvin_half_angle_deg(np.array([0.8, 1.6]))
    assert high[0] < KELVIN_HALF_ANGLE_DEG and math.isclose(high[1], high[0] / 2, rel_tol=1e-9)


def test_wake_grows_with_speed_and_froude_uses_hull_length():
    lengths = turbulent_wake_length_m(np.array([5.0, 10.0, 20.0]), 50.0)
    assert np.all(np.diff(lengths) > 0)
    assert turbulent_wake_length_m(0.0, 50.0) == 0.0
    assert math.isclose(float(froude_number(10.0, 100.0)), 10 * 1852 / 3600 / math.sqrt(9.81 * 100), rel_tol=1e-9)


@pytest.mark.parametrize("heading", [0.0, 37.0, 90.0, 200.0, 333.0])
def test_keypoints_lie_behind_the_vessel_along_its_heading(heading):
    spec = VesselSpec(x=80.5, y=80.5, heading_grid_deg=heading, length_m=120, width_m=18, speed_kn=12, has_wake=True)
    kp = render_vessel(_sea(), BANDS, spec, rng=np.random.default_rng(1))
    hull, end = np.array(kp.hull), np.array(kp.wake_end)
    dx, dy = hull - end
    bearing = math.degrees(math.atan2(dx, -dy)) % 360  # wake end -> hull is the direction of travel
    assert abs((bearing - heading + 180) % 360 - 180) < 1e-6
    # The stern is half a hull length behind the centre.
    assert math.isclose(math.hypot(hull[0] - 80.5, hull[1] - 80.5), 6.0, rel_tol=1e-9)
    # The Kelvin arms open symmetrically about the track at the Froude-dependent half-angle.
    left, right = np.array(kp.arm_left_end), np.array(kp.arm_right_end)
    bow = np.array([80.5, 80.5]) + (np.array([80.5, 80.5]) - hull)
    half_angles = [
        math.degrees(math.acos(np.dot(p - bow, end - bow) / np.linalg.norm(p - bow) / np.linalg.norm(end - bow)))
        for p in (left, right)
    ]
    expected = float(kelvin_half_angle_deg(froude_number(12, 120)))
    np.testing.assert_allclose(half_angles, expected, atol=1.0)


def test_hull_is_bright_in_nir_and_wake_is_visible_behind_it():
    sea = _sea()
    spec = VesselSpec(x=80, y=80, heading_grid_deg=0.0, length_m=100, width_m=16, speed_kn=15, has_wake=True)
    kp = render_vessel(sea, BANDS, spec, rng=np.random.default_rng(2))
    hull_px = sea[:, 78:82, 79:81].mean(axis=(1, 2))
    assert hull_px[BANDS.index("B08")] > hull_px[BANDS.index("B02")] > 0.03 + 0.03
    # Heading 0 (grid up): the wake trails toward larger rows.
    wake = sea[BANDS.index("B03"), 95:105, 79:81].mean()
    ahead = sea[BANDS.index("B03"), 40:50, 79:81].mean()
    assert wake > 0.031 and math.isclose(float(ahead), 0.03, abs_tol=1e-6)
    assert kp.wake_end[1] > kp.hull[1]


def test_no_wake_gives_nan_wake_keypoints_and_changes_only_a_window():
    sea = _sea(400, 400)
    before = sea.copy()
    spec = VesselSpec(x=200, y=200, heading_grid_deg=45, length_m=30, width_m=6, speed_kn=0.0, has_wake=True)
    kp = render_vessel(sea, BANDS, spec, rng=np.random.default_rng(3))
    assert np.all(np.isfinite(kp.hull))
    assert np.all(np.isnan(kp.wake_end)) and np.all(np.isnan(kp.arm_left_end))
    changed = np.argwhere(np.any(sea != before, axis=0))
    assert changed.size > 0 and np.ptp(changed[:, 0]) < 10 and np.ptp(changed[:, 1]) < 10


def test_small_boat_is_subpixel_but_registers_with_area_weighted_coverage():
    sea = _sea(40, 40)
    spec = VesselSpec(x=20.25, y=20.75, heading_grid_deg=10, length_m=10, width_m=3, speed_kn=0, has_wake=False)
    render_vessel(sea, BANDS, spec, rng=np.random.default_rng(4))
    excess = sea[BANDS.index("B08")] - 0.03
    assert 0.0 < excess.max() < 0.2
    assert np.count_nonzero(excess > 1e-6) >= 2  # anti-aliased: spread over neighbouring pixels


def test_vessel_near_the_edge_and_unknown_bands_are_safe():
    bands = ["B02", "B03", "B04", "B08", "B11", "SCL"]
    sea = np.full((6, 50, 50), 0.03, dtype=np.float32)
    sea[5] = 7
    spec = VesselSpec(x=1, y=49, heading_grid_deg=300, length_m=200, width_m=30, speed_kn=20, has_wake=True)
    render_vessel(sea, bands, spec, rng=np.random.default_rng(5))
    assert np.all(sea[5] == 7)
    assert np.all(np.isfinite(sea))
    with pytest.raises(ValueError, match="reflectance"):
        render_vessel(sea[:5], bands, spec, rng=np.random.default_rng(5))


def test_models_package_and_renderer_do_not_import_torch():
    code = "import sys, models, models.wake_render; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
