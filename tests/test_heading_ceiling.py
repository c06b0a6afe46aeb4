"""``benchmarks/heading_ceiling.py``: the oracle observer told each vessel exactly."""

from __future__ import annotations

import runpy
from dataclasses import replace

import numpy as np
import pytest

from models.metrics import angular_error_deg
from models.wake_chips import BAND_NAMES, TRAIN_RANGES
from models.wake_render import VesselSpec, render_vessel

ceiling = runpy.run_path("benchmarks/heading_ceiling.py")
LOUD = replace(TRAIN_RANGES, length_m=(120, 150), speed_kn=(18, 22), p_wake=1.0, p_cloud=0.0, p_distractor=0.0)


def test_rotation_is_clockwise_on_screen_like_the_heading():
    x, y = ceiling["_rotate_about"](np.array(0.0), np.array(-1.0), np.array(90.0))  # "up" turned by 90°
    assert (float(x), float(y)) == pytest.approx((1.0, 0.0), abs=1e-12)


def test_a_turned_template_matches_the_vessel_drawn_at_that_heading():
    def drawn(heading):
        sea = np.zeros((4, 128, 128), np.float32)
        spec = VesselSpec(x=64.3, y=63.8, heading_grid_deg=heading, length_m=150, width_m=25, speed_kn=20, has_wake=True)
        render_vessel(sea, BAND_NAMES, spec, rng=np.random.default_rng(1))
        return sea
    window = (slice(32, 96), slice(32, 96))
    turned = ceiling["rotated_templates"](drawn(40.0), (64.3, 63.8), np.array([30.0, -30.0]), window)
    target = drawn(70.0)[(slice(None), *window)].ravel()
    right, wrong = (np.corrcoef(t.ravel(), target)[0, 1] for t in turned)
    assert right > 0.95 > 0.5 > wrong  # turned the way the heading turns, not mirrored


@pytest.mark.parametrize("knows_clutter", [False, True])
def test_the_oracle_finds_a_plain_vessel_and_guesses_without_one(knows_clutter):
    chips = ceiling["draw_with_vessels"](3, 8, LOUD, 128)
    oracle = ceiling["oracle_heading_deg"]
    rng = np.random.default_rng(0)
    found, guessed = [], []
    for i in range(8):
        args = (chips["vessel_signal"][i], tuple(chips["centre_px"][i]), chips["heading_grid_deg"][i])
        clutter = chips["vessel_free"][i] if knows_clutter else None
        found.append(oracle(chips["data"][i], *args, clutter=clutter, rng=rng))
        # The same vessel looked for in the chip without it: nothing to find, the answer is a guess.
        guessed.append(oracle(chips["vessel_free"][i], *args, clutter=clutter, rng=rng))
    assert np.all(angular_error_deg(np.array(found), chips["heading_grid_deg"]) < 6.0)  # a 2° grid
    assert np.sum(angular_error_deg(np.array(guessed), chips["heading_grid_deg"]) <= 10.0) <= 3
