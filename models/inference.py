"""Batched inference of the wake-keypoint model: keypoints, grid heading, uncertainty, ambiguity.

Load once with :func:`load_heading_model` (weights and their preprocessing JSON by path; nothing
downloads), then call :func:`predict_keypoints` on ``(N, bands, H, W)`` reflectance chips. The
fast path (ONNX Runtime) is used when it reproduces the eager PyTorch outputs within tolerance on
a check batch; otherwise inference stays in eager PyTorch under ``torch.inference_mode``.

Heading = grid bearing from the predicted wake end to the predicted hull (the direction of
travel). Its sigma comes from the network's von Mises concentration, scaled by the calibration
factor stored with the weights for the chip's wake probability. Test-time dihedral augmentation
averages the 8 symmetric predictions and adds their spread to sigma: by default only for the chips
whose sigma exceeds ``tta_above_sigma_deg`` (also stored with the weights), or for all or none with
``tta=True``/``False``. Multi-scale inference: a chip whose wake probability is below
``zoom_below_probability`` also runs zoomed in (``zoom_scales``, see :mod:`models.preprocess`): the
pass with the highest wake probability gives its keypoints and heading, and its wake probability is
the mean logit of the passes; it helps small vessels whose hull and wake span a few pixels. A chip
whose wake is not found (wake probability below the fitted threshold) gets NaN heading and
``ambiguous=True``: without a wake the bow/stern direction is a coin toss.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import torch

from models.metrics import keypoint_heading_deg
from models.network import WakeKeypointNet, create_model_for
from models.preprocess import PreprocessConfig, prepare_batch, zoom_crop_px
from vesselwatch.errors import InputError, ProductError

__all__ = ["HeadingModel", "KeypointPrediction", "load_heading_model", "predict_keypoints", "config_path_for", "decode_outputs"]

logger = logging.getLogger(__name__)


def config_path_for(weights_path: str | Path) -> Path:
    """The preprocessing JSON saved with a weights file (same stem, ``.json``)."""
    return Path(weights_path).with_suffix(".json")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class HeadingModel:
    """A loaded model: eager network, its preprocessing, and optionally an ONNX Runtime session."""

    network: WakeKeypointNet
    config: PreprocessConfig
    weights_path: Path
    session: object | None = None  # onnxruntime.InferenceSession when the fast path is active

    @property
    def backend(self) -> str:
        """``"onnxruntime"`` when the fast path is active, else ``"torch"``."""
        return "onnxruntime" if self.session is not None else "torch"

    def run(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Raw network outputs for preprocessed inputs ``(N, C, S, S)`` float32."""
        if self.session is not None:
            keypoints, visibility, log_kappa = self.session.run(None, {"input": np.ascontiguousarray(inputs)})
            return {"keypoints": keypoints, "visibility_logits": visibility, "log_kappa": log_kappa}
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(inputs)).contiguous(memory_format=torch.channels_last)
            out = self.network(x)
            return {k: v.numpy() for k, v in out.items()}


@dataclass
class KeypointPrediction:
    """Predictions for N chips (arrays along the first axis).

    Attributes
    ----------
    keypoints_px : numpy.ndarray
        ``(N, 4, 2)`` ``(x, y)`` chip pixel coordinates (rasterio convention), order
        hull, wake_end, arm_left_end, arm_right_end; NaN where the keypoint is judged absent.
    visibility : numpy.ndarray
        ``(N, 4)`` probability that each keypoint is present.
    heading_grid_deg : numpy.ndarray
        ``(N,)`` direction of travel, degrees clockwise from grid up; NaN without a usable wake.
    uncertainty_deg : numpy.ndarray
        ``(N,)`` calibrated 1-sigma of the heading, degrees (truth within ±2 sigma for ≥ 90%).
    ambiguous : numpy.ndarray
        ``(N,)`` bool: no usable wake, or sigma above the configured limit.
    """

    keypoints_px: np.ndarray
    visibility: np.ndarray
    heading_grid_deg: np.ndarray
    uncertainty_deg: np.ndarray
    ambiguous: np.ndarray

    def __len__(self) -> int:
        return len(self.heading_grid_deg)


def load_heading_model(
    weights_path: str | Path | None = None, *, fast: bool | None = None, threads: int | None = None
) -> HeadingModel:
    """Load weights and their preprocessing JSON; optionally enable the ONNX Runtime fast path.

    Parameters
    ----------
    weights_path : path, optional
        state_dict file; default ``Settings().resolved_heading_weights_path()``.
    fast : bool, optional
        ``None`` (default): use ONNX Runtime when it matches eager within tolerance, else eager.
        ``True``: require it (raise if it does not match). ``False``: eager PyTorch only.
    threads : int, optional
        Intra-op threads for both backends (default: library default).

    Raises
    ------
    ProductError
        When the weights or their JSON are missing or do not fit the network.
    """
    if weights_path is None:
        from vesselwatch.settings import Settings

        weights_path = Settings().resolved_heading_weights_path()
    weights_path = Path(weights_path)
    json_path = config_path_for(weights_path)
    if not weights_path.is_file():
        raise ProductError(weights_path, "heading model weights not found" if not weights_path.exists()
                           else "heading model weights path is not a file")
    if not json_path.is_file():
        raise ProductError(json_path, "preprocessing config missing next to the weights")
    try:
        config = PreprocessConfig.from_json(json_path)
        network = create_model_for(config)
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError) as exc:
        raise ProductError(json_path, f"not a usable preprocessing config: {exc}") from exc
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ProductError(weights_path, f"not a PyTorch state_dict torch can load safely: {first}") from exc
    if not isinstance(state, dict):
        raise ProductError(weights_path, f"expected a state_dict (dict of tensors), got {type(state).__name__}")
    try:
        network.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        lines = str(exc).strip().splitlines()
        detail = " ".join(lines[:2])[:400] + (" …" if len(lines) > 2 or len(" ".join(lines[:2])) > 400 else "")
        raise ProductError(weights_path, f"weights do not fit {config.architecture} with {len(config.bands)} bands: {detail}") from exc
    if threads:
        torch.set_num_threads(threads)
    network = network.eval().to(memory_format=torch.channels_last)
    model = HeadingModel(network, config, weights_path)
    if fast is False:
        return model
    from models.export import enable_fast_path

    try:
        enable_fast_path(model, threads=threads)
    except Exception as exc:  # the fast path is an optimisation; eager always works
        if fast:
            raise
        logger.warning("ONNX Runtime fast path unavailable, using eager PyTorch: %s", exc)
    return model


def decode_outputs(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Raw network outputs -> ``heading`` (grid, degrees), raw ``sigma`` (degrees, before the
    calibration factor: ``1 / sqrt(kappa)``) and keypoint ``visibility`` (probabilities; column 1
    is the wake's). Training's validation and inference read the network through this one decoding.
    """
    return {
        "heading": keypoint_heading_deg(raw["keypoints"]),
        "sigma": np.degrees(np.exp(-0.5 * raw["log_kappa"].astype(np.float64))),
        "visibility": _sigmoid(raw["visibility_logits"].astype(np.float64)),
    }


def _outputs_to_prediction(raw: dict[str, np.ndarray], config: PreprocessConfig, offset: tuple[int, int],
                           crop_px: int | None = None) -> dict:
    """Raw network outputs -> keypoints in chip pixels, visibility, heading and raw sigma (degrees).

    ``crop_px``: edge of the chip crop the input was resampled from (default: ``input_size``, none).
    """
    size = config.input_size
    keypoints = (raw["keypoints"].astype(np.float64) + 1.0) * (size / 2.0)  # input pixels
    keypoints = keypoints * ((crop_px or size) / size) + np.array(offset, dtype=np.float64)  # chip pixels
    return {"keypoints": keypoints, **decode_outputs(raw)}


def _circular_mean_and_spread_deg(angles_deg: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Circular mean (degrees) and circular standard deviation (degrees) along ``axis``."""
    rad = np.radians(angles_deg)
    c, s = np.cos(rad).mean(axis=axis), np.sin(rad).mean(axis=axis)
    r = np.clip(np.hypot(c, s), 1e-12, 1.0)
    return np.mod(np.degrees(np.arctan2(s, c)), 360.0), np.degrees(np.sqrt(-2.0 * np.log(r)))


def _dihedral_heading_deg(
    model: HeadingModel, inputs: np.ndarray, heading: np.ndarray, batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Circular mean and spread (degrees) of ``heading`` and the 7 other dihedral predictions of ``inputs``."""
    headings = [heading]
    for k in range(1, 8):
        quarter, mirror = k % 4, k >= 4
        x = np.rot90(inputs, k=-quarter, axes=(-2, -1))
        if mirror:
            x = x[..., ::-1]
        h = _outputs_to_prediction(_run_batched(model, x, batch_size), model.config, (0, 0))["heading"]
        # Undo the symmetry on the heading: mirror first, then the quarter turns.
        h = -h if mirror else h
        headings.append(np.mod(h - 90.0 * quarter, 360.0))
    return _circular_mean_and_spread_deg(np.stack(headings))


def _best_zoom(
    model: HeadingModel, data: np.ndarray, band_names: Sequence[str], inputs: np.ndarray, pred: dict, batch_size: int,
) -> tuple[np.ndarray, dict]:
    """Rerun the chips below ``zoom_below_probability`` at each of ``zoom_scales``.

    Per rerun chip the most confident pass gives the keypoints, heading and sigma; its wake
    probability becomes the mean logit of all its passes (each look's evidence averaged: the
    maximum would give clutter several chances to pass for a wake). Returns the per-chip network
    inputs of the chosen passes and the predictions (copies where changed).
    """
    config = model.config
    rerun = np.flatnonzero(pred["visibility"][:, 1] < config.zoom_below_probability)
    if not config.zoom_scales or rerun.size == 0:
        return inputs, pred
    inputs, pred = inputs.copy(), {k: v.copy() for k, v in pred.items()}
    best = pred["visibility"][rerun, 1].copy()
    logit_sum = _logit(best)
    for zoom in config.zoom_scales:
        zoomed, offset = prepare_batch(data[rerun], band_names, config, zoom=zoom)
        out = _outputs_to_prediction(_run_batched(model, zoomed, batch_size), config, offset,
                                     zoom_crop_px(config.input_size, zoom))
        probability = out["visibility"][:, 1]
        logit_sum += _logit(probability)
        better = probability > best
        best[better] = probability[better]
        chips = rerun[better]
        inputs[chips] = zoomed[better]
        for key, value in out.items():
            pred[key][chips] = value[better]
    pred["visibility"][rerun, 1] = _sigmoid(logit_sum / (1 + len(config.zoom_scales)))
    return inputs, pred


def _sigmoid(logit: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logit))


def _logit(probability: np.ndarray) -> np.ndarray:
    p = np.clip(probability, 1e-7, 1.0 - 1e-7)
    return np.log(p) - np.log1p(-p)


def _run_batched(model: HeadingModel, inputs: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(inputs), batch_size):
        for key, value in model.run(np.ascontiguousarray(inputs[start : start + batch_size])).items():
            parts.setdefault(key, []).append(value)
    return {k: np.concatenate(v) for k, v in parts.items()}


def predict_keypoints(
    model: HeadingModel,
    data: np.ndarray,
    band_names: Sequence[str],
    *,
    batch_size: int = 256,
    tta: bool | None = None,
) -> KeypointPrediction:
    """Predict keypoints and heading for chips ``(N, bands, H, W)`` of reflectance (0..1).

    Chips larger than the model input are centre-cropped (the detection sits at the centre);
    smaller ones are reflect-padded. Chips below the weights' ``zoom_below_probability`` also run at
    their ``zoom_scales`` (the most confident pass answers; the wake probability is the passes'
    mean logit). Keypoints come back in the input chip's pixel coordinates.

    Parameters
    ----------
    model : HeadingModel
        From :func:`load_heading_model`.
    data : numpy.ndarray
        float32 ``(N, bands, H, W)`` (a single chip ``(bands, H, W)`` is accepted too).
    band_names : sequence of str
        Name of each band plane.
    batch_size : int
        Chips per forward pass.
    tta : bool or None
        Also run the 8 dihedral symmetries, average their headings and fold their spread into the
        uncertainty: ``True`` for every chip (8x cost), ``False`` for none, ``None`` (default) for
        the chips whose sigma exceeds ``config.tta_above_sigma_deg`` (none when that is unset).
    """
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 3:
        data = data[None]
    if data.ndim != 4 or data.shape[1] != len(band_names):
        raise InputError(f"data: expected (N, {len(band_names)} bands, H, W), got {data.shape}")
    config = model.config
    if len(data) == 0:
        empty = np.zeros((0,))
        return KeypointPrediction(np.zeros((0, 4, 2)), np.zeros((0, 4)), empty, empty, empty.astype(bool))
    inputs, offset = prepare_batch(data, band_names, config)
    pred = _outputs_to_prediction(_run_batched(model, inputs, batch_size), config, offset)
    inputs, pred = _best_zoom(model, data, band_names, inputs, pred, batch_size)
    wake_probability = pred["visibility"][:, 1]
    heading, sigma = pred["heading"], pred["sigma"] * config.uncertainty_factor(wake_probability)
    no_wake = wake_probability < config.wake_probability_threshold
    if tta is None:
        limit = config.tta_above_sigma_deg
        selected = ~no_wake & ~(sigma <= limit) if limit is not None else np.zeros(len(sigma), dtype=bool)
    else:
        selected = np.full(len(sigma), bool(tta))
    if selected.any():
        heading, sigma = heading.copy(), sigma.copy()
        heading[selected], spread = _dihedral_heading_deg(model, inputs[selected], heading[selected], batch_size)
        sigma[selected] = np.hypot(sigma[selected], spread)
    keypoints = pred["keypoints"].copy()
    absent = pred["visibility"] < 0.5
    absent[:, 0] = False
    keypoints[absent] = np.nan
    heading = np.where(no_wake, np.nan, heading)
    sigma = np.where(no_wake, np.nan, sigma)
    ambiguous = no_wake | ~(sigma <= config.ambiguous_sigma_deg)
    return KeypointPrediction(keypoints, pred["visibility"], heading, sigma, ambiguous)
