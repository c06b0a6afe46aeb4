"""Preprocessing that travels with the weights: band selection, centre crop, zoom, robust normalisation.

The same :class:`PreprocessConfig` is saved as JSON next to the state_dict (timm's
``pretrained_cfg`` idea), so inference can never disagree with training. Pure numpy.

Normalisation is per chip and per band: ``asinh((x - median) / (1.4826 * MAD + eps))``. It removes
the level (L1C path radiance vs L2A, thin cloud, 0..255 PNG vs 0..1 reflectance once scaled) and the
gain (contrast stretches), and the ``asinh`` keeps a bright hull from saturating everything else.

A *zoom* ``s`` feeds the network the centre ``input_size / s`` px of the chip resampled (bicubic,
pixel-area aligned) to ``input_size``: a vessel of 1-2 px then covers more of the network's first
cells. :func:`models.inference.predict_keypoints` runs the zooms listed in ``zoom_scales`` for the
less confident chips.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vesselwatch.errors import InputError

__all__ = [
    "PreprocessConfig", "select_bands", "center_crop", "zoom_crop_px", "cubic_resample_matrix", "normalize",
    "fill_nonfinite", "prepare_batch",
]


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything inference must do to a chip exactly as training did.

    Attributes
    ----------
    architecture : str
        timm model name of the backbone.
    bands : tuple of str
        Input planes, in order. When ``fallback_band`` is missing from a chip (an RGB PNG), it is
        replaced by the mean of the visible bands, as training did for a fraction of chips.
    input_size : int
        Edge of the centre crop fed to the network, pixels of the 10 m grid (resampled only for the
        passes at ``zoom_scales``).
    normalization : str
        ``"robust_asinh"``: per chip and band ``asinh((x - median) / (1.4826 MAD + eps))``.
    eps : float
        Reflectance floor of the robust scale.
    keypoint_names : tuple of str
        Order of the keypoint axis of every output.
    coordinates : str
        Meaning of the network's keypoint outputs.
    uncertainty_scale : float
        Factor applied to the von Mises sigma so that truth lies within ±2 sigma for ≥ 90% of a
        calibration set (fitted after training, see :mod:`models.calibrate`).
    uncertainty_scale_bins : tuple of (float, float)
        ``(lowest wake probability, factor)`` pairs in increasing order: a chip's sigma factor is
        that of the last pair whose probability it reaches (a faint wake's sigma understates its
        error more than a clear one's). Empty: ``uncertainty_scale`` for every chip.
    wake_probability_threshold : float
        Below this predicted wake visibility the direction is ambiguous (no usable wake).
    tta_above_sigma_deg : float or None
        By default, chips whose calibrated sigma exceeds this many degrees also run the 8 dihedral
        symmetries (test-time augmentation); ``None``: no chip does unless asked.
    ambiguous_sigma_deg : float
        Calibrated sigma above which the heading is flagged ambiguous even with a wake.
    output_stride : int
        Backbone output stride (32: the crop ends as 2 x 2 cells at 64 px; 16: 4 x 4, last stage dilated).
    fine_channels : int
        Width of the head's lateral branch on the backbone's stride-8 features (0: none).
    head : str
        ``"grid"``: the flattened cells feed a dense layer; ``"centre"``: a soft arg-max over the
        stride-8 cells finds the hull and the other outputs are read where it is.
    detail_channels : int
        Width of the centre head's branch on the backbone's stride-4 features (0: none).
    zoom_scales : tuple of float
        Extra passes at these zooms (each > 1: the centre ``input_size / zoom`` px resampled to
        ``input_size``) for the chips whose wake probability at zoom 1 is below
        ``zoom_below_probability``; per chip the pass with the highest wake probability answers,
        with the mean logit of all its passes as its wake probability.
        Empty: one pass.
    zoom_below_probability : float
        See ``zoom_scales`` (0..1; 1 runs the zooms for nearly every chip).
    """

    architecture: str = "efficientnet_b0"
    bands: tuple[str, ...] = ("B02", "B03", "B04", "B08")
    fallback_band: str = "B08"
    input_size: int = 64
    pixel_m: float = 10.0
    normalization: str = "robust_asinh"
    eps: float = 0.002
    keypoint_names: tuple[str, ...] = ("hull", "wake_end", "arm_left_end", "arm_right_end")
    coordinates: str = "normalised to the crop: x_norm = 2 * x_px / input_size - 1 (x right, y down, rasterio pixel edges)"
    uncertainty_scale: float = 1.0
    uncertainty_scale_bins: tuple[tuple[float, float], ...] = ()
    wake_probability_threshold: float = 0.5
    tta_above_sigma_deg: float | None = None
    ambiguous_sigma_deg: float = 30.0
    output_stride: int = 32
    fine_channels: int = 0
    head: str = "grid"
    detail_channels: int = 0
    zoom_scales: tuple[float, ...] = ()
    zoom_below_probability: float = 1.0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse values no network or preprocessing could run with (a hand-edited JSON, say)."""
        if not isinstance(self.input_size, numbers.Integral) or isinstance(self.input_size, bool) or self.input_size < 16:
            raise ValueError(f"input_size: expected an integer of at least 16 px, got {self.input_size!r}")
        if self.normalization != "robust_asinh":
            raise ValueError(f"normalization: only 'robust_asinh' is implemented, got {self.normalization!r}")
        threshold = self.wake_probability_threshold
        if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool) or not 0.0 <= threshold <= 1.0:
            raise ValueError(f"wake_probability_threshold: expected a number in 0..1, got {threshold!r}")
        if not self.bands or not all(isinstance(b, str) for b in self.bands):
            raise ValueError(f"bands: expected a non-empty list of band names, got {self.bands!r}")
        if not isinstance(self.zoom_scales, (tuple, list)):
            raise ValueError(f"zoom_scales: expected a list of zooms, got {self.zoom_scales!r}")
        object.__setattr__(self, "zoom_scales", tuple(self.zoom_scales))
        for zoom in self.zoom_scales:
            if not isinstance(zoom, numbers.Real) or isinstance(zoom, bool) or not 1.0 < zoom <= 4.0:
                raise ValueError(f"zoom_scales: expected zooms above 1 and at most 4, got {list(self.zoom_scales)!r}")
            crop = zoom_crop_px(self.input_size, zoom)
            if crop >= self.input_size:
                raise ValueError(f"zoom_scales: zoom {zoom:g} crops {crop} px of a {self.input_size} px input, "
                                 "no zoom at all")
        if len(set(self.zoom_scales)) != len(self.zoom_scales):
            raise ValueError(f"zoom_scales: each zoom once, got {list(self.zoom_scales)!r}")
        gate = self.zoom_below_probability
        if not isinstance(gate, numbers.Real) or isinstance(gate, bool) or not 0.0 <= gate <= 1.0:
            raise ValueError(f"zoom_below_probability: expected a number in 0..1, got {gate!r}")

    def to_json(self, path: str | Path) -> None:
        """Write the configuration as JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> PreprocessConfig:
        """Read a configuration written by :meth:`to_json`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_dict(cls, raw: dict) -> PreprocessConfig:
        """A configuration from its dict form (a JSON object, a checkpoint's copy); unknown keys are ignored."""
        if not isinstance(raw, dict):
            raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
        raw = dict(raw)
        for key in ("bands", "keypoint_names", "zoom_scales"):
            if key in raw:
                raw[key] = tuple(raw[key])
        if "uncertainty_scale_bins" in raw:
            raw["uncertainty_scale_bins"] = tuple((float(lo), float(f)) for lo, f in raw["uncertainty_scale_bins"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def uncertainty_factor(self, wake_probability: np.ndarray) -> np.ndarray:
        """Sigma factor per chip from its wake probability ``(N,)`` (0..1), see ``uncertainty_scale_bins``."""
        p = np.asarray(wake_probability, dtype=np.float64)
        if not self.uncertainty_scale_bins:
            return np.full(p.shape, self.uncertainty_scale)
        lowest = np.array([lo for lo, _ in self.uncertainty_scale_bins])
        factors = np.array([f for _, f in self.uncertainty_scale_bins])
        index = np.clip(np.searchsorted(lowest, p, side="right") - 1, 0, len(factors) - 1)
        return factors[index]

    def replace(self, **changes) -> PreprocessConfig:
        """A copy with some fields changed."""
        return PreprocessConfig(**{**asdict(self), **changes})


def select_bands(data: np.ndarray, band_names: Sequence[str], config: PreprocessConfig) -> np.ndarray:
    """Pick ``config.bands`` from ``(N, bands, H, W)`` data, filling a missing NIR from the visible mean.

    Raises
    ------
    InputError
        If a required band other than ``config.fallback_band`` is missing.
    """
    names = list(band_names)
    planes = []
    visible = [names.index(b) for b in config.bands if b != config.fallback_band and b in names]
    for band in config.bands:
        if band in names:
            planes.append(data[:, names.index(band)])
        elif band == config.fallback_band and visible:
            planes.append(data[:, visible].mean(axis=1))
        else:
            raise InputError(f"band_names: chip lacks band {band!r} (has {names}); the model needs {list(config.bands)}")
    return np.stack(planes, axis=1).astype(np.float32, copy=False)


def center_crop(data: np.ndarray, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Centre crop ``(N, C, H, W)`` to ``size x size`` (reflect-padding smaller chips).

    Returns
    -------
    tuple
        The crop and its offset ``(col0, row0)`` in the input's pixel coordinates (negative when padded),
        so ``x_chip = x_crop + col0``.
    """
    height, width = data.shape[-2:]
    pad_y, pad_x = max(size - height, 0), max(size - width, 0)
    if pad_y or pad_x:
        data = np.pad(
            data, ((0, 0), (0, 0), (pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2)), mode="reflect"
        )
    row0 = (data.shape[-2] - size) // 2
    col0 = (data.shape[-1] - size) // 2
    crop = data[..., row0 : row0 + size, col0 : col0 + size]
    return crop, (col0 - pad_x // 2, row0 - pad_y // 2)


def zoom_crop_px(input_size: int, zoom: float) -> int:
    """Edge (px of the chip) of the centre crop that a ``zoom`` resamples to ``input_size`` (at least 8)."""
    return max(8, int(round(input_size / zoom)))


def cubic_resample_matrix(source_px: int, target_px: int) -> np.ndarray:
    """``(target_px, source_px)`` float32 weights of a bicubic resampling along one axis.

    Pixel areas are aligned (output pixel ``i`` covers source ``[i, i + 1) * source_px / target_px``,
    PyTorch's ``align_corners=False``), Keys' cubic with ``a = -0.75`` as in PyTorch and OpenCV,
    the edge pixel repeated beyond the border. Rows sum to 1.
    """
    scale = source_px / target_px
    centre = (np.arange(target_px) + 0.5) * scale - 0.5
    first = np.floor(centre).astype(int)
    t = centre - first
    a = -0.75
    weights = np.stack([
        ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
        ((a + 2) * t - (a + 3)) * t * t + 1,
        ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
        ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a,
    ], axis=1)
    matrix = np.zeros((target_px, source_px), dtype=np.float64)
    rows = np.repeat(np.arange(target_px), 4)
    cols = np.clip(first[:, None] + np.arange(-1, 3)[None, :], 0, source_px - 1).ravel()
    np.add.at(matrix, (rows, cols), weights.ravel())
    return matrix.astype(np.float32)


def normalize(data: np.ndarray, eps: float = 0.002) -> np.ndarray:
    """Per chip and band robust standardisation with an ``asinh`` squash.

    ``data`` is ``(..., H, W)``; the median and MAD are taken over each plane's pixels (the last two
    axes): ``asinh((x - median) / (1.4826 MAD + eps))``, float32, same shape; ``data`` is not modified.
    """
    flat = data.reshape(*data.shape[:-2], -1)
    median = np.median(flat, axis=-1, keepdims=True)
    # One scratch array serves the deviations' median (partitioned in place), then z and its asinh:
    # the same numbers as the plain expressions, with three fewer full-size arrays (inference's hot path).
    scratch = np.subtract(flat, median)
    np.abs(scratch, out=scratch)
    mad = np.median(scratch, axis=-1, keepdims=True, overwrite_input=True)
    z = np.subtract(flat, median, out=scratch)
    z /= 1.4826 * mad + eps
    return np.arcsinh(z, out=z).reshape(data.shape).astype(np.float32, copy=False)


def prepare_batch(
    data: np.ndarray, band_names: Sequence[str], config: PreprocessConfig, zoom: float = 1.0,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Chips ``(N, bands, H, W)`` reflectance -> network input ``(N, C, S, S)`` and the crop offset.

    With ``zoom`` other than 1 the crop is the centre :func:`zoom_crop_px` px, resampled to
    ``S = config.input_size``: an input pixel ``x_in`` is chip pixel ``offset + x_in * crop / S``.
    """
    if data.ndim != 4:
        raise InputError(f"data: expected (N, bands, H, W), got shape {data.shape}")
    if 0 in data.shape[-2:]:
        raise InputError(f"data: chips have no pixels, shape {data.shape}")
    size = config.input_size if zoom == 1.0 else zoom_crop_px(config.input_size, zoom)
    # Crop first (a view unless the chip is smaller and gets reflect-padded), so the band selection
    # below copies the crop, not the whole chip: the same numbers, as both work pixel by pixel.
    crop, offset = center_crop(data, size)
    crop = fill_nonfinite(select_bands(crop, band_names, config))
    if size != config.input_size:
        matrix = cubic_resample_matrix(size, config.input_size)
        crop = np.einsum("ih,nchw,jw->ncij", matrix, crop, matrix, optimize=True)
    return normalize(crop, config.eps), offset


def fill_nonfinite(data: np.ndarray) -> np.ndarray:
    """NaN/inf pixels (nodata) of ``(N, C, H, W)`` chips set to their chip and band's median (0 when none is finite).

    One nodata pixel would otherwise turn the band's median, and so the whole chip's answer, into NaN.
    Chips without such pixels are returned as they are.
    """
    finite = np.isfinite(data)
    if finite.all():
        return data
    flat = np.where(finite, data, np.nan).reshape(*data.shape[:-2], -1)
    with np.errstate(all="ignore"):
        counts = finite.reshape(flat.shape).sum(axis=-1, keepdims=True)
        median = np.nanmedian(np.where(counts > 0, flat, 0.0), axis=-1, keepdims=True)
    filled = np.where(finite.reshape(flat.shape), flat, median)
    return filled.reshape(data.shape).astype(data.dtype, copy=False)
