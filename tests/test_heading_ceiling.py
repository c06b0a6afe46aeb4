"""``benchmarks/heading_ceiling.py``: the oracle observer that knows each wake exactly."""

from __future__ import annotations

import runpy
from dataclasses import replace

import numpy as np
import pytest

from models.metrics import angular_error_deg
from models.wake_chips import TRAIN_RANGES

ceiling = runpy.run_path("benchmarks/heading_ceiling.py")
LOUD = replace(TRAIN_RANGES, length_m=(120, 150), speed_kn=(18, 22), p_wake=1.0, p_cloud=0.0, p_distractor=0.0)


def test_rotation_is_clockwise_on_screen_like_the_heading():
    x, y = ceiling["_rotate_about"](np.array(0.0), np.array(-1.0), np.array(90.0))  # "up" turned by 90°
    assert (float(x), float(y)) == pytest.approx((1.0, 0.0), abs=1e-12)


@pytest.mark.parametrize("knows_clutter", [False, True])
def test_the_oracle_finds_a_plain_wake_and_guesses_without_one(knows_clutter):
    chips = ceiling["draw_with_wakes"](3, 8, LOUD, 128)
    oracle = ceiling["oracle_heading_deg"]
    rng = np.random.default_rng(0)
    found, guessed = [], []
    for i in range(8):
        args = (chips["wake_signal"][i], tuple(chips["centre_px"][i]), chips["heading_grid_deg"][i], chips["length_m"][i] / 20 + 1)
        clutter = chips["wake_free"][i] if knows_clutter else None
        found.append(oracle(chips["data"][i], *args, clutter=clutter, rng=rng))
        # The same wake looked for in the chip without it: nothing to find, the answer is a guess.
        guessed.append(oracle(chips["wake_free"][i], *args, clutter=clutter, rng=rng))
    assert np.all(angular_error_deg(np.array(found), chips["heading_grid_deg"]) < 3.0)
    assert np.sum(angular_error_deg(np.array(guessed), chips["heading_grid_deg"]) <= 10.0) <= 3
