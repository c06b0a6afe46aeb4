"""ShipWakes-format loader on a tiny dataset written by the test."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from models.shipwakes import load_shipwakes, tooltips_to_keypoints
from vesselwatch.errors import InputError, ProductError


def _write(root, name, tooltips, size=(40, 30)):
    (root / "imgs").mkdir(exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 120, dtype=np.uint8)).save(root / "imgs" / f"{name}.png")
    (root / "annotations" / f"{name}.json").write_text(json.dumps({"tooltips": tooltips}))


def test_loads_images_and_keypoints_in_order(tmp_path):
    _write(tmp_path, "b_three", [{"x": 20, "y": 10}, {"x": 20, "y": 25}, {"x": 12, "y": 22}])
    _write(tmp_path, "a_two", [{"x": 5.5, "y": 6.5}, {"x": 30, "y": 6.5}])
    samples = load_shipwakes(tmp_path)
    assert [s.name for s in samples] == ["a_two", "b_three"]
    two, three = samples
    assert two.data.shape == (3, 30, 40) and two.data.dtype == np.float32
    assert 0.0 <= two.data.min() and two.data.max() <= 1.0
    np.testing.assert_allclose(two.keypoints[:2], [[5.5, 6.5], [30, 6.5]])
    assert two.visible.tolist() == [True, True, False, False]
    # Travelling up (hull above wake end), a point at smaller x is on the left (west) side.
    assert three.visible.tolist() == [True, True, True, False]
    np.testing.assert_allclose(three.keypoints[2], [12, 22])


def test_third_point_on_the_right_goes_to_the_right_arm():
    kp = tooltips_to_keypoints([{"x": 20, "y": 10}, {"x": 20, "y": 25}, {"x": 28, "y": 22}])
    assert np.all(np.isnan(kp[2])) and kp[3].tolist() == [28, 22]


def test_malformed_annotations_name_the_file(tmp_path):
    _write(tmp_path, "bad", [{"x": 1, "y": 2}])
    with pytest.raises(InputError, match="bad.json"):
        load_shipwakes(tmp_path)
    with pytest.raises(ProductError):
        load_shipwakes(tmp_path / "missing")


def test_hull_centred_chips_put_the_hull_in_the_middle_and_keep_the_heading(tmp_path):
    from models.shipwakes import hull_centred_chips

    _write(tmp_path, "north", [{"x": 20, "y": 10}, {"x": 20, "y": 25}], size=(40, 30))  # smaller than the chip
    _write(tmp_path, "east", [{"x": 150, "y": 60}, {"x": 100, "y": 60}], size=(200, 120))
    chips = hull_centred_chips(load_shipwakes(tmp_path), size=64)
    assert chips["data"].shape == (2, 3, 64, 64) and chips["band_names"] == ("B04", "B03", "B02")
    assert chips["names"].tolist() == ["east", "north"]
    np.testing.assert_allclose(chips["keypoints"][:, 0], [[32, 32], [32, 32]])
    np.testing.assert_allclose(chips["heading_grid_deg"], [90.0, 0.0])
    np.testing.assert_allclose(chips["keypoints"][0, 1], [-18, 32])  # wake end beyond the chip edge: kept as is
    with pytest.raises(InputError, match="no ShipWakes images"):
        hull_centred_chips([], size=64)
