"""ONNX Runtime fast path reproduces eager PyTorch on the shipped weights."""

from __future__ import annotations

import numpy as np

from models.export import TOLERANCE, check_batch, enable_fast_path, max_output_difference
from models.inference import load_heading_model, predict_keypoints
from models.metrics import angular_error_deg
from models.wake_chips import BAND_NAMES, draw_chips


def test_onnx_matches_eager_and_becomes_the_default(tmp_path):
    model = load_heading_model(fast=False, threads=2)
    inputs = check_batch(model, count=8, seed=99)
    eager = model.run(inputs)
    enable_fast_path(model, threads=2, cache_dir=tmp_path)
    assert model.backend == "onnxruntime"
    diff = max_output_difference(eager, model.run(inputs))
    assert all(diff[name] <= TOLERANCE[name] for name in diff), diff
    chips = draw_chips(5, 8, size=128)
    fast = predict_keypoints(model, chips["data"], BAND_NAMES)
    model.session = None
    slow = predict_keypoints(model, chips["data"], BAND_NAMES)
    both = np.isfinite(fast.heading_grid_deg) & np.isfinite(slow.heading_grid_deg)
    assert np.all(angular_error_deg(fast.heading_grid_deg[both], slow.heading_grid_deg[both]) < 0.05)
    np.testing.assert_array_equal(fast.ambiguous, slow.ambiguous)
