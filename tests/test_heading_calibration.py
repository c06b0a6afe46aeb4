"""Calibration: sigma scale for ±2σ coverage, wake threshold for the precision of reported headings."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from models.calibrate import (
    calibrate, reported_precision, uncertainty_scale_for_coverage, uncertainty_scales_by_wake,
    wake_threshold_for_precision,
)
from models.inference import config_path_for, load_heading_model, predict_keypoints
from models.metrics import angular_error_deg
from models.wake_chips import BAND_NAMES, draw_chips
from vesselwatch.settings import Settings


def test_reported_precision_matches_counting_chip_by_chip():
    rng = np.random.default_rng(5)
    p = rng.uniform(size=300)
    correct = rng.uniform(size=300) < p  # confident chips are right more often
    thresholds = np.array([0.0, 0.25, 0.5, float(p[17]), 0.9, 1.0])
    expected = [correct[p >= t].mean() if (p >= t).any() else np.nan for t in thresholds]
    np.testing.assert_allclose(reported_precision(p, correct, thresholds), expected)
    with pytest.raises(ValueError, match="correct: expected the shape"):
        reported_precision(p, correct[:-1], thresholds)


def test_wake_threshold_is_the_lowest_that_reaches_the_precision():
    # 80 right headings at p = 0.9, 20 wrong ones at 0.505, 0.515, .., 0.695: precision 80/100 at 0.5,
    # 80/85 at 0.65, 80/84 at 0.66 and 1.0 from 0.70 on.
    p = np.concatenate([np.full(80, 0.9), 0.505 + 0.01 * np.arange(20)])
    correct = np.arange(100) < 80
    threshold, reached = wake_threshold_for_precision(p, correct, 0.95)
    assert threshold == pytest.approx(0.66)  # 80 / 84 = 0.952
    assert reached == pytest.approx(80 / 84)
    assert wake_threshold_for_precision(p, correct, 0.8)[0] == pytest.approx(0.5)
    # Unreachable: every heading wrong -> the top of the grid, and what it reaches there.
    p[:10] = 0.97
    assert wake_threshold_for_precision(p, np.zeros(100, bool), 0.95) == (pytest.approx(0.95), 0.0)
    with pytest.raises(ValueError, match="precision"):
        wake_threshold_for_precision(p, correct, 1.5)


def test_uncertainty_scale_puts_the_chosen_share_inside_two_sigma():
    rng = np.random.default_rng(9)
    sigma = rng.uniform(1.0, 5.0, 4000)
    error = np.abs(rng.normal(0.0, 3.0 * sigma))  # the raw sigma is 3x too small
    scale = uncertainty_scale_for_coverage(np.append(error, np.nan), np.append(sigma, 1.0), 0.95)
    assert scale == pytest.approx(3.0 * 1.96 / 2.0, rel=0.05)
    assert np.mean(error <= 2.0 * scale * sigma) == pytest.approx(0.95, abs=1e-3)
    with pytest.raises(ValueError, match="coverage"):
        uncertainty_scale_for_coverage(error, sigma, 0.0)


def test_fitted_threshold_gives_the_reported_precision_at_inference():
    model = load_heading_model(fast=False, threads=2)
    fitted = calibrate(model, count=160, seed=2024)
    assert 0.5 <= fitted.wake_probability_threshold <= 0.95
    chips = draw_chips(2024, 160, size=128)
    model.config = model.config.replace(wake_probability_threshold=fitted.wake_probability_threshold)
    pred = predict_keypoints(model, chips["data"], BAND_NAMES, tta=False)  # as calibrated
    reported = np.isfinite(pred.heading_grid_deg)
    assert np.all(pred.ambiguous[~reported]) and np.all(pred.visibility[~reported, 1] < fitted.wake_probability_threshold)
    correct = chips["visible"][:, 1] & (angular_error_deg(pred.heading_grid_deg, chips["heading_grid_deg"]) <= 10.0)
    assert 100.0 * correct[reported].mean() == pytest.approx(fitted.precision_pct)
    assert fitted.precision_pct >= 95.0 or fitted.wake_probability_threshold == pytest.approx(0.95)
    # Each reported sigma is the raw one times its wake band's factor.
    model.config = model.config.replace(uncertainty_scale_bins=fitted.uncertainty_scale_bins)
    binned = predict_keypoints(model, chips["data"], BAND_NAMES, tta=False)
    model.config = model.config.replace(uncertainty_scale=1.0, uncertainty_scale_bins=())
    raw = predict_keypoints(model, chips["data"], BAND_NAMES, tta=False)
    factor = model.config.replace(uncertainty_scale_bins=fitted.uncertainty_scale_bins).uncertainty_factor(raw.visibility[:, 1])
    np.testing.assert_allclose(binned.uncertainty_deg[reported], (raw.uncertainty_deg * factor)[reported], rtol=1e-6)


def test_calibrate_heading_writes_both_fits_into_the_weights_json(tmp_path):
    from typer.testing import CliRunner

    from vesselwatch.cli import app

    shipped = Settings().resolved_heading_weights_path()
    weights = tmp_path / "copy.pt"
    shutil.copy(shipped, weights)
    raw = json.loads(config_path_for(shipped).read_text())
    raw.update(uncertainty_scale=1.0, wake_probability_threshold=0.5)
    config_path_for(weights).write_text(json.dumps(raw))
    result = CliRunner().invoke(app, ["calibrate-heading", str(weights), "--count", "96"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    written = json.loads(config_path_for(weights).read_text())
    assert written["uncertainty_scale"] == pytest.approx(summary["uncertainty_scale"], abs=1e-4) != 1.0
    assert written["wake_probability_threshold"] == summary["wake_probability_threshold"]
    assert "96 synthetic chips" in written["extra"]["calibration"]["set"]
    assert written["extra"]["training"] == raw["extra"]["training"]  # nothing else lost


def test_calibrate_heading_names_a_missing_json(tmp_path):
    from typer.testing import CliRunner

    from vesselwatch.cli import app

    lone = tmp_path / "lone.pt"
    lone.write_bytes(b"")
    result = CliRunner().invoke(app, ["calibrate-heading", str(lone)])
    assert result.exit_code == 2
    assert "lone.pt" in result.stderr and "lone.json" in result.stderr


def test_sigma_factor_follows_the_wake_probability_band():
    from models.preprocess import PreprocessConfig

    config = PreprocessConfig(uncertainty_scale=0.7, uncertainty_scale_bins=((0.0, 2.0), (0.9, 1.1), (0.99, 0.9)))
    np.testing.assert_allclose(config.uncertainty_factor(np.array([0.5, 0.9, 0.95, 0.99, 1.0])), [2.0, 1.1, 1.1, 0.9, 0.9])
    np.testing.assert_allclose(PreprocessConfig(uncertainty_scale=0.7).uncertainty_factor(np.array([0.2, 1.0])), [0.7, 0.7])


def test_bins_survive_the_json_round_trip(tmp_path):
    from models.preprocess import PreprocessConfig

    config = PreprocessConfig(uncertainty_scale_bins=((0.0, 2.0), (0.99, 0.9)))
    config.to_json(tmp_path / "c.json")
    assert PreprocessConfig.from_json(tmp_path / "c.json") == config


def test_scales_by_wake_band_fit_each_band_and_merge_thin_ones():
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(0.5, 0.9, 400), rng.uniform(0.9, 0.99, 400), rng.uniform(0.99, 1.0, 400)])
    sigma = np.ones(1200)
    true_factor = np.select([p < 0.9, p < 0.99], [3.0, 1.5], 0.8)
    error = np.abs(rng.normal(0.0, true_factor))
    bins = uncertainty_scales_by_wake(error, sigma, p)
    assert [lo for lo, _ in bins] == [0.0, 0.9, 0.99]
    for (lo, factor), truth in zip(bins, (3.0, 1.5, 0.8)):
        assert factor == pytest.approx(truth * 1.96 / 2.0, rel=0.15), lo
    thin = uncertainty_scales_by_wake(error[:830], sigma[:830], p[:830])  # 30 chips above 0.99: merged
    assert [lo for lo, _ in thin] == [0.0, 0.9]
