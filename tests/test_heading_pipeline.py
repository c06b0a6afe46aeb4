"""Heading step: shipped weights give correct headings, grid-north conversion, georeferenced keypoints."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer

from models.inference import config_path_for, load_heading_model, predict_keypoints
from models.metrics import angular_error_deg
from models.wake_chips import BAND_NAMES, ChipRanges, draw_chips
from pipeline.heading import HeadingResults, estimate_headings, true_heading_deg
from vesselwatch.settings import Settings

EASY = ChipRanges(
    length_m=(60.0, 200.0), speed_kn=(12.0, 20.0), p_wake=1.0, noise_sigma=(0.0005, 0.001),
    swell_amplitude=(0.0, 0.001), p_glint=0.0, p_cloud=0.0, p_stretch=0.0, p_rgb_only=0.0, jitter_px=1.0,
    p_distractor=0.0,
)


@pytest.fixture(scope="module")
def model():
    return load_heading_model(fast=False, threads=2)


@pytest.fixture(scope="module")
def easy_chips():
    return draw_chips(31337, 12, EASY, size=128)


def test_shipped_weights_and_config_travel_together():
    weights = Settings().resolved_heading_weights_path()
    assert weights.exists() and weights.stat().st_size <= 20 * 1024 * 1024
    assert config_path_for(weights).exists()


def test_the_weights_json_decides_the_output_stride_and_a_mismatch_is_named(tmp_path):
    import torch

    from models.network import create_model
    from models.preprocess import PreprocessConfig
    from vesselwatch.errors import ProductError

    config = PreprocessConfig(input_size=32, output_stride=16)
    weights = tmp_path / "fine.pt"
    torch.save(create_model(config.architecture, len(config.bands), 32, output_stride=16).state_dict(), weights)
    config.to_json(config_path_for(weights))
    model = load_heading_model(weights, fast=False, threads=1)
    assert model.network.feature_size == 2
    assert predict_keypoints(model, draw_chips(1, 2, size=32)["data"], BAND_NAMES).keypoints_px.shape == (2, 4, 2)
    config.replace(output_stride=32).to_json(config_path_for(weights))
    with pytest.raises(ProductError, match="fine.pt.*do not fit"):
        load_heading_model(weights, fast=False, threads=1)
    # The lateral stride-8 branch is read from the JSON too.
    config = config.replace(fine_channels=8)
    torch.save(create_model(config.architecture, len(config.bands), 32, output_stride=16, fine_channels=8).state_dict(), weights)
    config.to_json(config_path_for(weights))
    assert load_heading_model(weights, fast=False, threads=1).network.fine_channels == 8
    config.replace(fine_channels=0).to_json(config_path_for(weights))
    with pytest.raises(ProductError, match="fine.pt.*do not fit"):
        load_heading_model(weights, fast=False, threads=1)


@pytest.mark.parametrize("detail_channels", [0, 4])
def test_a_centre_head_is_read_from_the_json_and_its_onnx_export_matches_eager(tmp_path, detail_channels):
    import torch

    from models.export import TOLERANCE, check_batch, enable_fast_path, max_output_difference
    from models.network import create_model
    from models.preprocess import PreprocessConfig
    from vesselwatch.errors import ProductError

    config = PreprocessConfig(input_size=32, output_stride=16, fine_channels=8, head="centre", detail_channels=detail_channels)
    weights = tmp_path / "centre.pt"
    torch.manual_seed(3)
    network = create_model(config.architecture, len(config.bands), 32, 16, 8, "centre", detail_channels)
    torch.nn.init.normal_(network.centre_out.weight, std=0.5)  # a peaked, non-trivial soft arg-max
    if detail_channels:  # the stride-4 branch (space to depth) must export too, not just its zero start
        torch.nn.init.normal_(network.detail_fuse.weight, std=0.5)
    torch.save(network.state_dict(), weights)
    config.to_json(config_path_for(weights))
    model = load_heading_model(weights, fast=False, threads=1)
    enable_fast_path(model, threads=1, cache_dir=tmp_path)  # raises unless ONNX matches eager
    assert model.backend == "onnxruntime" and model.network.head_kind == "centre"
    assert model.network.detail_channels == detail_channels
    inputs = check_batch(model, count=4, seed=5)
    fast = model.run(inputs)
    model.session = None
    diff = max_output_difference(model.run(inputs), fast)
    assert all(diff[name] <= TOLERANCE[name] for name in diff), diff
    assert predict_keypoints(model, draw_chips(1, 2, size=32)["data"], BAND_NAMES).keypoints_px.shape == (2, 4, 2)
    config.replace(head="grid", detail_channels=0).to_json(config_path_for(weights))
    with pytest.raises(ProductError, match="centre.pt.*do not fit"):
        load_heading_model(weights, fast=False, threads=1)
    config.replace(detail_channels=4 - detail_channels).to_json(config_path_for(weights))
    with pytest.raises(ProductError, match="centre.pt.*do not fit"):
        load_heading_model(weights, fast=False, threads=1)


def test_shipped_model_finds_headings_within_10_deg_on_easy_chips(model, easy_chips):
    pred = predict_keypoints(model, easy_chips["data"], BAND_NAMES)
    errors = angular_error_deg(pred.heading_grid_deg, easy_chips["heading_grid_deg"])
    assert np.count_nonzero(errors <= 10.0) >= 11, errors
    assert not pred.ambiguous.all()
    # Hull keypoint near the truth (chip pixels), uncertainty finite and positive.
    hull_error_px = np.hypot(*(pred.keypoints_px[:, 0] - easy_chips["keypoints"][:, 0]).T)
    assert np.median(hull_error_px) < 3.0
    assert np.all(pred.uncertainty_deg[np.isfinite(pred.heading_grid_deg)] > 0)


def test_no_wake_chips_are_flagged_ambiguous(model):
    still = draw_chips(4040, 12, replace(EASY, p_wake=0.0), size=128)
    pred = predict_keypoints(model, still["data"], BAND_NAMES)
    assert np.count_nonzero(pred.ambiguous) >= 10
    assert np.all(np.isnan(pred.heading_grid_deg[pred.ambiguous & (pred.visibility[:, 1] < 0.5)]))


def test_by_default_only_uncertain_chips_run_the_dihedral_symmetries(model):
    chips = draw_chips(515, 48, size=128)
    plain = predict_keypoints(model, chips["data"], BAND_NAMES, tta=False)
    full = predict_keypoints(model, chips["data"], BAND_NAMES, tta=True)
    limit, previous = 3.0, model.config
    try:
        model.config = previous.replace(tta_above_sigma_deg=None)  # unset: no augmentation by default
        unset = predict_keypoints(model, chips["data"], BAND_NAMES)
        model.config = previous.replace(tta_above_sigma_deg=limit)
        auto = predict_keypoints(model, chips["data"], BAND_NAMES)
    finally:
        model.config = previous
    np.testing.assert_array_equal(unset.heading_grid_deg, plain.heading_grid_deg)
    uncertain = np.isfinite(plain.uncertainty_deg) & (plain.uncertainty_deg > limit)
    assert 0 < uncertain.sum() < len(chips["data"]) - 5  # the set holds both kinds
    # The augmented chips run in a smaller batch than in ``full``: fp32 convolutions sum in another
    # order, a few 1e-6 degrees apart; a chip given its plain heading would be far more than 1e-4 off.
    np.testing.assert_allclose(auto.heading_grid_deg[uncertain], full.heading_grid_deg[uncertain], atol=1e-4)
    np.testing.assert_allclose(auto.uncertainty_deg[uncertain], full.uncertainty_deg[uncertain], atol=1e-4)
    np.testing.assert_array_equal(auto.heading_grid_deg[~uncertain], plain.heading_grid_deg[~uncertain])


def test_true_heading_adds_grid_north():
    np.testing.assert_allclose(true_heading_deg([0.0, 350.0, np.nan], [2.5, 20.0, 1.0]), [2.5, 10.0, np.nan])


def test_estimate_headings_converts_to_true_north_and_georeferences_keypoints(model, easy_chips):
    crs = "EPSG:32631"
    transform = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5800000.0)
    chips = [
        SimpleNamespace(data=easy_chips["data"][i], band_names=list(BAND_NAMES), transform=transform, crs=crs,
                        grid_north_deg=gn)
        for i, gn in zip(range(4), [0.0, 1.2, -3.0, 40.0])
    ]
    result = estimate_headings(chips, model)
    assert isinstance(result, HeadingResults) and len(result) == 4
    np.testing.assert_allclose(result.heading_deg, np.mod(result.heading_grid_deg + [0.0, 1.2, -3.0, 40.0], 360))
    x, y = result.keypoints_px[:, 0, 0], result.keypoints_px[:, 0, 1]
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(600000.0 + 10 * x, 5800000.0 - 10 * y)
    np.testing.assert_allclose(result.keypoints_lon[:, 0], lon, atol=1e-9)
    np.testing.assert_allclose(result.keypoints_lat[:, 0], lat, atol=1e-9)
    record = result.keypoints_dict(0)
    assert set(record) == {"hull", "wake_end", "arm_left_end", "arm_right_end"}
    assert record["hull"]["lon"] == pytest.approx(lon[0], abs=1e-6)
    assert len(estimate_headings([], model)) == 0


def test_rgb_png_chips_work_without_nir(model, easy_chips):
    rgb = easy_chips["data"][:6, [2, 1, 0]]
    pred = predict_keypoints(model, rgb, ["B04", "B03", "B02"])
    errors = angular_error_deg(pred.heading_grid_deg, easy_chips["heading_grid_deg"][:6])
    assert np.count_nonzero(errors <= 10.0) >= 5
