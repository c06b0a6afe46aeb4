"""Multi-scale inference: the zoom resampling, keypoints mapped back to the chip, the most confident pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.inference import HeadingModel, predict_keypoints
from models.preprocess import PreprocessConfig, cubic_resample_matrix, prepare_batch, zoom_crop_px
from vesselwatch.commands.heading import parse_zoom_scales
from vesselwatch.errors import InputError

BANDS = ("B02", "B03", "B04", "B08")


@pytest.mark.parametrize("source", [51, 43, 37, 64])
def test_cubic_resample_matches_torch_bicubic(source):
    rng = np.random.default_rng(source)
    x = rng.random((2, 4, source, source), dtype=np.float32)
    matrix = cubic_resample_matrix(source, 64)
    ours = np.einsum("ih,nchw,jw->ncij", matrix, x, matrix)
    theirs = F.interpolate(torch.from_numpy(x), size=(64, 64), mode="bicubic", align_corners=False).numpy()
    assert np.allclose(ours, theirs, atol=1e-5)
    assert np.allclose(matrix.sum(axis=1), 1.0, atol=1e-6)


def test_zoomed_input_magnifies_the_centre_about_the_crop():
    config = PreprocessConfig()
    chip = np.full((1, 4, 128, 128), 0.05, dtype=np.float32)
    chip[0, :, 70, 50] = 0.5  # a bright pixel: row 70, column 50 (centre x = 50.5, y = 70.5)
    inputs, offset = prepare_batch(chip, BANDS, config, zoom=1.5)
    crop = zoom_crop_px(64, 1.5)
    assert inputs.shape == (1, 4, 64, 64) and crop == 43
    row, col = np.unravel_index(np.argmax(inputs[0, 0]), (64, 64))
    # input pixel centre -> chip: offset + (index + 0.5) * crop / 64 lands on the bright pixel
    assert abs(offset[0] + (col + 0.5) * crop / 64 - 50.5) < 0.75
    assert abs(offset[1] + (row + 0.5) * crop / 64 - 70.5) < 0.75


class _BrightestPixelNet:
    """Stands in for a network: the hull is the input's brightest pixel, the wake end 10 input px below.

    The wake logit of call ``k`` (0: zoom 1, then one call per zoom) is ``logits[k]``: a scalar, or
    one per chip for the first call.
    """

    def __init__(self, logits):
        self.logits = logits
        self.calls = 0

    def __call__(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        n, _, size, _ = inputs.shape
        flat = np.argmax(inputs[:, 0].reshape(n, -1), axis=1)
        row, col = np.divmod(flat, size)
        hull = np.stack([col + 0.5, row + 0.5], axis=-1) / (size / 2) - 1
        keypoints = np.repeat(hull[:, None], 4, axis=1)
        keypoints[:, 1, 1] += 10 / (size / 2)
        logits = np.broadcast_to(np.asarray(self.logits[self.calls], dtype=np.float64)[..., None], (n, 4))
        self.calls += 1
        return {"keypoints": keypoints.astype(np.float32), "visibility_logits": logits.astype(np.float32),
                "log_kappa": np.full((n,), 6.0, np.float32)}


def _fake_model(config: PreprocessConfig, logits=(1.0, 2.0, 3.0)) -> HeadingModel:
    model = HeadingModel(network=None, config=config, weights_path=None)
    model.run = _BrightestPixelNet(logits)  # instance attribute shadows the method
    return model


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


def test_a_zoomed_answer_comes_back_in_chip_pixels():
    chip = np.full((3, 4, 128, 128), 0.05, dtype=np.float32)
    spots = [(60, 61), (66, 58), (63, 70)]  # (row, column) near the centre, inside every zoom's crop
    for i, (r, c) in enumerate(spots):
        chip[i, :, r, c] = 0.5
    one = predict_keypoints(_fake_model(PreprocessConfig(wake_probability_threshold=0.0)), chip, BANDS, tta=False)
    config = PreprocessConfig(wake_probability_threshold=0.0, zoom_scales=(1.25, 1.5), zoom_below_probability=1.0)
    model = _fake_model(config, logits=(1.0, 3.0, 2.0))  # zoom 1.25 the most confident, not the last
    zoomed = predict_keypoints(model, chip, BANDS, tta=False)
    assert model.run.calls == 3
    truth = np.array([[c + 0.5, r + 0.5] for r, c in spots])
    assert np.abs(one.keypoints_px[:, 0] - truth).max() < 1e-6
    assert np.abs(zoomed.keypoints_px[:, 0] - truth).max() < 0.5  # bicubic peak within half a chip pixel
    # The wake end sits 10 input px below: 10 chip px at zoom 1, 10 * 51 / 64 at zoom 1.25; heading 0° (up) both.
    assert np.allclose(zoomed.keypoints_px[:, 1, 1] - zoomed.keypoints_px[:, 0, 1], 10 * 51 / 64, atol=1e-6)
    assert np.allclose(np.mod(zoomed.heading_grid_deg + 180, 360) - 180, 0.0, atol=1e-6)
    # The wake probability is the mean logit of the three looks (1, 3, 2); the others the chosen pass's.
    assert np.allclose(zoomed.visibility[:, 1], _sigmoid(2.0))
    assert np.allclose(zoomed.visibility[:, 0], _sigmoid(3.0))


def test_only_the_less_confident_chips_rerun_and_the_others_keep_their_answer():
    chip = np.full((4, 4, 100, 100), 0.05, dtype=np.float32)
    chip[:, :, 52, 47] = 0.5
    first = np.array([5.0, 1.0, 5.0, 0.5])  # chips 0 and 2 above the gate (p 0.993 > 0.9)
    config = PreprocessConfig(wake_probability_threshold=0.0, zoom_scales=(1.5,), zoom_below_probability=0.9)
    model = _fake_model(config, logits=(first, 0.8))  # the zoom beats chip 3's first look, not chip 1's
    pred = predict_keypoints(model, chip, BANDS, tta=False)
    assert model.run.calls == 2
    offset_y = pred.keypoints_px[:, 1, 1] - pred.keypoints_px[:, 0, 1]
    assert np.allclose(offset_y, [10, 10, 10, 10 * 43 / 64], atol=1e-6)  # only chip 3 answered by the zoom
    expected = [_sigmoid(5.0), _sigmoid(0.9), _sigmoid(5.0), _sigmoid(0.65)]  # rerun chips: mean of their two logits
    assert np.allclose(pred.visibility[:, 1], expected)


def test_confident_chips_skip_the_zoom_passes():
    chip = np.full((2, 4, 96, 96), 0.05, dtype=np.float32)
    chip[:, :, 48, 48] = 0.5
    # First pass: logit 1 -> probability 0.73, above the gate of 0.5: no chip reruns.
    model = _fake_model(PreprocessConfig(wake_probability_threshold=0.0, zoom_scales=(1.5,), zoom_below_probability=0.5))
    predict_keypoints(model, chip, BANDS, tta=False)
    assert model.run.calls == 1
    model = _fake_model(PreprocessConfig(wake_probability_threshold=0.0, zoom_scales=(1.5,), zoom_below_probability=0.9))
    predict_keypoints(model, chip, BANDS, tta=False)
    assert model.run.calls == 2


def test_a_chip_smaller_than_the_zoom_crop_maps_back_through_the_padding():
    chip = np.full((1, 4, 40, 40), 0.05, dtype=np.float32)
    chip[0, :, 18, 23] = 0.5
    config = PreprocessConfig(wake_probability_threshold=0.0, zoom_scales=(1.25,), zoom_below_probability=1.0)
    pred = predict_keypoints(_fake_model(config, logits=(0.0, 1.0)), chip, BANDS, tta=False)
    assert np.abs(pred.keypoints_px[0, 0] - [23.5, 18.5]).max() < 0.5


@pytest.mark.parametrize("bad", [(1.0,), (0.5,), (5.0,), (True,), (1.005,), (1.5, 1.5), 1.5])
def test_impossible_zooms_are_refused(bad):
    with pytest.raises(ValueError, match="zoom_scales"):
        PreprocessConfig(zoom_scales=bad)
    with pytest.raises(ValueError, match="zoom_below_probability"):
        PreprocessConfig(zoom_below_probability=1.5)


def test_zoom_scales_survive_the_json_round_trip(tmp_path):
    config = PreprocessConfig(zoom_scales=(1.25, 1.5), zoom_below_probability=0.999)
    config.to_json(tmp_path / "w.json")
    again = PreprocessConfig.from_json(tmp_path / "w.json")
    assert again.zoom_scales == (1.25, 1.5) and again.zoom_below_probability == 0.999
    assert PreprocessConfig.from_dict({}).zoom_scales == ()  # older JSONs: one pass
    assert PreprocessConfig(zoom_scales=[1.5]).zoom_scales == (1.5,)


def test_zoom_option_parses_and_names_bad_items():
    assert parse_zoom_scales("1.25, 1.5") == (1.25, 1.5)
    assert parse_zoom_scales("") == ()
    with pytest.raises(InputError, match="'x' is not a number"):
        parse_zoom_scales("1.25,x")
    with pytest.raises(InputError, match="above 1 and at most 4"):
        parse_zoom_scales("0.8")


def test_calibrate_heading_writes_the_zooms_it_calibrated_with(tmp_path):
    import json
    import shutil

    from typer.testing import CliRunner

    from models.inference import config_path_for
    from vesselwatch.cli import app
    from vesselwatch.settings import Settings

    shipped = Settings().resolved_heading_weights_path()
    weights = tmp_path / "copy.pt"
    shutil.copy(shipped, weights)
    shutil.copy(config_path_for(shipped), config_path_for(weights))
    runner = CliRunner()
    result = runner.invoke(app, ["calibrate-heading", str(weights), "--count", "64", "--zoom-scales", "1.5", "--zoom-below", "0.99"])
    assert result.exit_code == 0, result.output
    written = json.loads(config_path_for(weights).read_text())
    assert written["zoom_scales"] == [1.5] and written["zoom_below_probability"] == 0.99
    result = runner.invoke(app, ["calibrate-heading", str(weights), "--count", "64"])  # recalibrated, zooms kept
    assert result.exit_code == 0, result.output
    kept = json.loads(config_path_for(weights).read_text())
    assert kept["zoom_scales"] == [1.5] and kept["zoom_below_probability"] == 0.99
    result = runner.invoke(app, ["calibrate-heading", str(weights), "--count", "64", "--zoom-scales", ""])
    assert result.exit_code == 0, result.output
    assert json.loads(config_path_for(weights).read_text())["zoom_scales"] == []
    result = runner.invoke(app, ["calibrate-heading", str(weights), "--count", "64", "--zoom-scales", "0.5"])
    assert result.exit_code == 2 and "above 1 and at most 4" in result.output
