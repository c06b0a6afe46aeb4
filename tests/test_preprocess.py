"""The network's input: standardisation (``normalize``) and chip preparation (``prepare_batch``)."""

from __future__ import annotations

import numpy as np
import pytest

from models.preprocess import PreprocessConfig, center_crop, normalize, prepare_batch, select_bands
from vesselwatch.errors import InputError


def _reference(data: np.ndarray, eps: float) -> np.ndarray:
    """The standardisation as the model card states it: asinh((x - median) / (1.4826 MAD + eps)) per chip and band."""
    flat = data.reshape(*data.shape[:-2], -1)
    median = np.median(flat, axis=-1, keepdims=True)
    mad = np.median(np.abs(flat - median), axis=-1, keepdims=True)
    return np.arcsinh((flat - median) / (1.4826 * mad + eps)).reshape(data.shape).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # float64: direct callers' arrays
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


@pytest.mark.parametrize("band_names", [("B02", "B03", "B04", "B08"), ("B08", "B04", "B03", "B02", "B11"),
                                        ("B02", "B03", "B04")])
@pytest.mark.parametrize(("edge_px", "zoom"), [(100, 1.0), (100, 1.5), (40, 1.0), (40, 1.25)])
def test_prepare_batch_picks_bands_on_the_crop_as_on_the_whole_chip(band_names, edge_px, zoom):
    """Bands are picked after the centre crop (less to copy): the same input as picking them first,
    whatever the chip's band order, extra bands, a missing NIR (filled from the visible mean), a chip
    smaller than the input (reflect-padded) or a zoomed pass."""
    config = PreprocessConfig()
    rng = np.random.default_rng(7)
    chips = rng.gamma(2.0, 0.02, size=(3, len(band_names), edge_px, edge_px)).astype(np.float32)
    chips[0, 0, edge_px // 2, edge_px // 2] = np.nan  # a nodata pixel inside the crop
    got, offset = prepare_batch(chips, band_names, config, zoom=zoom)
    selected = select_bands(chips, band_names, config)
    whole, expected_offset = prepare_batch(selected, config.bands, config, zoom=zoom)
    assert offset == expected_offset
    np.testing.assert_array_equal(got, whole)
    if zoom == 1.0:  # and, spelled out: crop, fill nodata with the plane's median, standardise
        crop, _ = center_crop(selected, config.input_size)
        filled = np.where(np.isfinite(crop), crop, np.nanmedian(crop, axis=(-2, -1), keepdims=True))
        np.testing.assert_array_equal(got, normalize(filled, config.eps))


def test_chips_without_pixels_are_refused_by_name():
    with pytest.raises(InputError, match="no pixels"):
        prepare_batch(np.zeros((2, 4, 0, 0), np.float32), ("B02", "B03", "B04", "B08"), PreprocessConfig())
