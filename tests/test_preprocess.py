"""The network's input standardisation (``models.preprocess.normalize``)."""

from __future__ import annotations

import numpy as np
import pytest

from models.preprocess import normalize


def _reference(data: np.ndarray, eps: float) -> np.ndarray:
    """The standardisation as the model card states it: asinh((x - median) / (1.4826 MAD + eps)) per chip and band."""
    flat = data.reshape(*data.shape[:-2], -1)
    median = np.median(flat, axis=-1, keepdims=True)
    mad = np.median(np.abs(flat - median), axis=-1, keepdims=True)
    return np.arcsinh((flat - median) / (1.4826 * mad + eps)).reshape(data.shape).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # float64: the zoomed passes' resampled crops
def test_normalize_gives_the_stated_formula_exactly_and_leaves_its_input_alone(dtype):
    rng = np.random.default_rng(5)
    chips = (rng.gamma(2.0, 0.02, size=(6, 4, 80, 80)) + rng.normal(0, 0.3, size=(6, 4, 1, 1)) ** 2).astype(dtype)
    crop = chips[..., 8:72, 8:72]  # a centre crop is a view, as prepare_batch passes it
    contiguous = np.ascontiguousarray(crop)
    before = chips.copy()
    for data in (crop, contiguous):
        out = normalize(data, eps=0.002)
        assert out.dtype == np.float32 and out.shape == data.shape
        np.testing.assert_array_equal(out, _reference(data, 0.002))
    np.testing.assert_array_equal(chips, before)
    np.testing.assert_array_equal(contiguous, np.ascontiguousarray(crop))
    # Standardised per chip and band: each plane's median maps to 0, whatever its brightness.
    medians = np.median(normalize(contiguous).reshape(6, 4, -1), axis=-1)
    assert np.abs(medians).max() < 1e-3
