"""Synthetic Sentinel-2 wake chips for training and held-out evaluation of the heading model.

A chip is a small ``(bands, size, size)`` reflectance patch centred (up to a jitter) on one vessel,
drawn with :func:`models.wake_render.render_vessel` over a sea with clutter: sensor noise, swell,
sun glint, thin cloud, L1C (top of atmosphere, with path radiance) or L2A (surface) radiometry,
8-bit quantisation and random contrast stretching like the CLAHE-processed public chips, and now and
then a second vessel. Every random choice comes from ranges in :class:`ChipRanges`, so the held-out
set can use *other* ranges (:data:`HELDOUT_RANGES`) as well as other seeds.

Pure numpy + scipy; no torch import. Keypoints are pixel coordinates ``(x, y) = (col, row)`` of the
chip (rasterio convention), in the order of :data:`KEYPOINT_NAMES`; a wake keypoint that falls
outside the chip is moved back along its line to the chip border, because the model can only
locate what it sees (the heading only needs the direction).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from models.wake_render import VesselSpec, render_vessel

__all__ = [
    "BAND_NAMES",
    "CLEAR_WAKE_SNR",
    "HELDOUT_RANGES",
    "KEYPOINT_NAMES",
    "TRAIN_RANGES",
    "VISIBLE_WAKE_SNR",
    "ChipRanges",
    "SyntheticChip",
    "clip_keypoints_to_chip",
    "dihedral_transform",
    "draw_chip",
    "draw_chips",
]

#: Bands of a synthetic chip, in order (the 10 m Sentinel-2 bands).
BAND_NAMES: tuple[str, ...] = ("B02", "B03", "B04", "B08")
#: Keypoint order of every array in this package.
KEYPOINT_NAMES: tuple[str, ...] = ("hull", "wake_end", "arm_left_end", "arm_right_end")

# Open-water surface reflectance (L2A) per band, and the path radiance L1C adds on top.
_WATER_L2A = np.array([0.045, 0.035, 0.020, 0.010], dtype=np.float32)
_PATH_RADIANCE_L1C = np.array([0.075, 0.050, 0.032, 0.018], dtype=np.float32)


@dataclass(frozen=True)
class ChipRanges:
    """Ranges every random choice of the generator is drawn from (uniform unless stated)."""

    length_m: tuple[float, float] = (10.0, 350.0)  # log-uniform
    length_to_beam: tuple[float, float] = (4.5, 9.0)
    speed_kn: tuple[float, float] = (3.0, 30.0)
    p_wake: float = 0.85
    water_gain: tuple[float, float] = (0.5, 1.8)
    noise_sigma: tuple[float, float] = (0.0005, 0.004)
    swell_amplitude: tuple[float, float] = (0.0, 0.004)
    swell_wavelength_px: tuple[float, float] = (4.0, 20.0)
    p_glint: float = 0.3
    glint: tuple[float, float] = (0.03, 0.15)
    p_cloud: float = 0.25
    cloud_opacity: tuple[float, float] = (0.05, 0.5)
    p_l1c: float = 0.5
    p_stretch: float = 0.3
    p_rgb_only: float = 0.1  # NIR replaced by the visible mean, as for an RGB PNG input
    jitter_px: float = 3.0
    p_distractor: float = 0.1


#: Ranges used for training.
TRAIN_RANGES = ChipRanges()
#: A corner of the training ranges with faint wakes (small, slow vessels), oversampled on request
#: (``TrainConfig.faint_fraction``) because that is where the model misses most. Noise, glint and
#: cloud stay in the training ranges: nothing here comes from :data:`HELDOUT_RANGES`.
FAINT_RANGES = replace(TRAIN_RANGES, length_m=(10.0, 60.0), speed_kn=(3.0, 12.0))
#: Other ranges for the held-out test set: shifted sizes and speeds, more noise, stronger glint and
#: thicker cloud than training ever saw, larger position jitter, more distractors.
HELDOUT_RANGES = ChipRanges(
    length_m=(12.0, 300.0),
    length_to_beam=(4.0, 10.0),
    speed_kn=(4.0, 26.0),
    p_wake=0.8,
    water_gain=(0.4, 2.0),
    noise_sigma=(0.001, 0.006),
    swell_amplitude=(0.001, 0.005),
    swell_wavelength_px=(6.0, 30.0),
    p_glint=0.4,
    glint=(0.02, 0.2),
    p_cloud=0.3,
    cloud_opacity=(0.05, 0.6),
    p_l1c=0.6,
    p_stretch=0.4,
    p_rgb_only=0.1,
    jitter_px=4.0,
    p_distractor=0.15,
)


@dataclass
class SyntheticChip:
    """One generated chip and its truth.

    Attributes
    ----------
    data : numpy.ndarray
        float32 ``(bands, size, size)`` reflectance-like values (0..1), bands :data:`BAND_NAMES`.
    keypoints : numpy.ndarray
        ``(4, 2)`` pixel coordinates ``(x, y)`` in :data:`KEYPOINT_NAMES` order; NaN where absent.
    visible : numpy.ndarray
        ``(4,)`` bool, whether each keypoint is present.
    heading_grid_deg : float
        True direction of travel, degrees clockwise from grid up.
    length_m, speed_kn : float
        Vessel length and speed (speed 0 when it has no wake).
    has_wake : bool
        Whether a wake was drawn.
    """

    data: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray
    heading_grid_deg: float
    length_m: float
    speed_kn: float
    has_wake: bool
    extras: dict = field(default_factory=dict)


def clip_keypoints_to_chip(keypoints: np.ndarray, size: int, margin: float = 0.5) -> np.ndarray:
    """Move keypoints outside the chip back along the ray from the hull to the chip border.

    Parameters
    ----------
    keypoints : numpy.ndarray
        ``(..., 4, 2)`` pixel coordinates; index 0 is the hull (ray origin).
    size : int
        Chip edge length, pixels.
    margin : float
        Distance kept from the border, pixels.

    Returns
    -------
    numpy.ndarray
        Same shape; points inside the chip (and NaN) are unchanged. Wake/arm points whose hull lies
        outside the chip become NaN.
    """
    kp = np.array(keypoints, dtype=np.float64, copy=True)
    lo, hi = margin, size - margin
    origin = kp[..., :1, :]
    delta = kp[..., 1:, :] - origin
    with np.errstate(divide="ignore", invalid="ignore"):
        # Largest t in [0, 1] keeping origin + t * delta inside [lo, hi] on both axes.
        t_hi = np.where(delta > 0, (hi - origin) / delta, np.inf)
        t_lo = np.where(delta < 0, (lo - origin) / delta, np.inf)
    t = np.clip(np.minimum(np.minimum(t_hi, t_lo).min(axis=-1), 1.0), 0.0, 1.0)
    kp[..., 1:, :] = origin + t[..., None] * delta
    hull_inside = np.all((origin >= 0) & (origin <= size), axis=-1)  # (..., 1)
    kp[..., 1:, :] = np.where(hull_inside[..., None], kp[..., 1:, :], np.nan)
    return kp


def dihedral_transform(
    image: np.ndarray, keypoints: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Apply one of the 8 exact square symmetries to a chip and its keypoints.

    ``k % 4`` quarter turns clockwise, then a left-right mirror when ``k >= 4``. Under a mirror the
    left and right Kelvin arms swap so that ``arm_left_end`` stays left of the direction of travel.

    Parameters
    ----------
    image : numpy.ndarray
        ``(..., size, size)`` array (leading axes such as bands are kept).
    keypoints : numpy.ndarray
        ``(4, 2)`` pixel coordinates ``(x, y)`` in :data:`KEYPOINT_NAMES` order.
    k : int
        Symmetry index 0..7.

    Returns
    -------
    tuple of numpy.ndarray
        Transformed image (a new contiguous array) and keypoints. A grid heading ``h`` becomes
        ``h + 90 * (k % 4)``, then ``-h`` when mirrored (see :func:`dihedral_heading_deg`).
    """
    if not 0 <= k < 8:
        raise ValueError(f"k: symmetry index must be 0..7, got {k}")
    size = image.shape[-1]
    if image.shape[-2] != size:
        raise ValueError(f"image: expected a square chip, got {image.shape}")
    kp = np.asarray(keypoints, dtype=np.float64).copy()
    img = image
    for _ in range(k % 4):
        img = np.rot90(img, k=-1, axes=(-2, -1))  # clockwise: (x, y) -> (size - y, x)
        kp = np.stack([size - kp[:, 1], kp[:, 0]], axis=-1)
    if k >= 4:
        img = img[..., ::-1]
        kp[:, 0] = size - kp[:, 0]
        kp = kp[[0, 1, 3, 2]]
    return np.ascontiguousarray(img), kp


def dihedral_heading_deg(heading_grid_deg: np.ndarray | float, k: int) -> np.ndarray:
    """Grid heading after :func:`dihedral_transform` with symmetry ``k``, degrees in [0, 360)."""
    h = np.asarray(heading_grid_deg, dtype=np.float64) + 90.0 * (k % 4)
    if k >= 4:
        h = -h
    return np.mod(h, 360.0)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _smooth_field(rng: np.random.Generator, size: int, sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-std spatially correlated noise (size x size)."""
    noise = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma_px, mode="wrap")
    std = noise.std()
    return (noise - noise.mean()) / (std if std > 0 else 1.0)


def _sea(rng: np.random.Generator, ranges: ChipRanges, size: int) -> tuple[np.ndarray, dict]:
    """Background sea (bands, size, size) in surface reflectance, with swell, glint and noise."""
    gain = _uniform(rng, ranges.water_gain)
    sea = np.broadcast_to((_WATER_L2A * gain)[:, None, None], (len(BAND_NAMES), size, size)).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    wavelength = _uniform(rng, ranges.swell_wavelength_px)
    direction = rng.uniform(0.0, 2.0 * math.pi)
    phase = (xx * math.cos(direction) + yy * math.sin(direction)) * (2.0 * math.pi / wavelength)
    swell = np.sin(phase + rng.uniform(0, 2 * math.pi)) * (0.6 + 0.4 * _smooth_field(rng, size, 6.0))
    amplitude = _uniform(rng, ranges.swell_amplitude)
    glint_level = 0.0
    if rng.random() < ranges.p_glint:
        glint_level = _uniform(rng, ranges.glint)
        gx, gy = rng.normal(size=2) * 0.3 / size
        ramp = 1.0 + gx * (xx - size / 2) + gy * (yy - size / 2)
        texture = 1.0 + 0.06 * _smooth_field(rng, size, 1.0)
        sea = sea + (glint_level * ramp * texture)[None].astype(np.float32)
        amplitude *= 1.0 + 8.0 * glint_level  # glint makes wave slopes visible
    sea = sea + (amplitude * swell)[None].astype(np.float32)
    return sea.astype(np.float32), {"glint": glint_level}


def _radiometry(rng: np.random.Generator, ranges: ChipRanges, data: np.ndarray) -> tuple[np.ndarray, dict]:
    """Thin cloud, L1C path radiance, sensor noise, quantisation, contrast stretch (in place-ish)."""
    size = data.shape[-1]
    info: dict = {"cloud": 0.0, "level": "L2A", "stretched": False}
    if rng.random() < ranges.p_cloud:
        opacity = _uniform(rng, ranges.cloud_opacity)
        cover = np.clip(opacity * (1.0 + 0.3 * _smooth_field(rng, size, rng.uniform(4.0, 16.0))), 0.0, 0.8)
        cloud_reflectance = np.float32(rng.uniform(0.25, 0.45))
        data = data * (1.0 - cover[None]) + cloud_reflectance * cover[None]
        info["cloud"] = opacity
    if rng.random() < ranges.p_l1c:
        data = data + (_PATH_RADIANCE_L1C * rng.uniform(0.7, 1.3))[:, None, None]
        info["level"] = "L1C"
    data = data + rng.normal(0.0, _uniform(rng, ranges.noise_sigma), size=data.shape)
    data = np.round(np.clip(data, 0.0, 1.0) * 10000.0) / 10000.0  # 1e-4 reflectance quantisation
    if rng.random() < ranges.p_rgb_only:
        data[3] = data[:3].mean(axis=0)
    if rng.random() < ranges.p_stretch:
        data = _contrast_stretch(rng, data)
        info["stretched"] = True
    return data.astype(np.float32), info


def _contrast_stretch(rng: np.random.Generator, data: np.ndarray) -> np.ndarray:
    """Per-band percentile stretch, gamma, local equalisation (CLAHE-like) and 8-bit quantisation."""
    out = np.empty_like(data)
    local_weight = rng.uniform(0.0, 0.7)
    gamma = rng.uniform(0.6, 1.5)
    for b in range(data.shape[0]):
        band = data[b]
        lo, hi = np.percentile(band, [rng.uniform(0.0, 2.0), rng.uniform(98.0, 100.0)])
        scaled = np.clip((band - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
        local_mean = ndimage.uniform_filter(scaled, size=max(3, data.shape[-1] // 4), mode="reflect")
        equalised = np.clip(scaled - local_mean + 0.5, 0.0, 1.0)
        mixed = (1.0 - local_weight) * scaled + local_weight * equalised
        out[b] = np.round(mixed**gamma * 255.0) / 255.0
    return out


#: Wake SNR (:func:`wake_snr`) below which the wake is faint against the chip's pixel spread (Rose
#: criterion for white clutter; an observer that filters out swell and glint texture still finds many).
VISIBLE_WAKE_SNR = 5.0
#: Wake SNR above which the wake is plain to see.
CLEAR_WAKE_SNR = 20.0


def wake_snr(wake_signal: np.ndarray, wake_free: np.ndarray, window_px: int = 64) -> float:
    """Matched-filter signal-to-clutter ratio of a wake in a chip, clutter taken as white per band.

    ``sqrt(sum over bands and pixels of (wake_signal / sigma_band)^2)`` over the centre
    ``window_px`` square (what the heading model sees), where ``sigma_band`` is the robust standard
    deviation (1.4826 MAD) of the wake-free twin's band there: sensor noise, swell, glint texture,
    cloud and other vessels all count as clutter. Below 5 (the Rose criterion for white clutter) the
    wake is faint against the chip's pixel spread; above 20 it is plain to see. Swell and glint
    texture are correlated clutter that a filter can partly remove, so this understates what an
    observer that whitens the clutter can see: one that also knows the vessel exactly finds 96% of
    the held-out wakes below 5 within 10° (``benchmarks/heading_ceiling.py``).

    Parameters
    ----------
    wake_signal : numpy.ndarray
        ``(bands, H, W)`` chip minus its wake-free twin (same draws, wake contrast 0).
    wake_free : numpy.ndarray
        ``(bands, H, W)`` the wake-free twin.
    window_px : int
        Edge of the centre window, pixels.
    """
    if wake_signal.shape != wake_free.shape or wake_signal.ndim != 3:
        raise ValueError(f"wake_signal, wake_free: expected equal (bands, H, W) shapes, got {wake_signal.shape}, {wake_free.shape}")
    h, w = wake_free.shape[-2:]
    r0, c0 = max((h - window_px) // 2, 0), max((w - window_px) // 2, 0)
    window = (slice(None), slice(r0, r0 + window_px), slice(c0, c0 + window_px))
    signal, free = wake_signal[window].astype(np.float64), wake_free[window].astype(np.float64)
    median = np.median(free, axis=(1, 2), keepdims=True)
    sigma = 1.4826 * np.median(np.abs(free - median), axis=(1, 2)) + 1e-6
    return float(np.sqrt(((signal / sigma[:, None, None]) ** 2).sum()))


def draw_chip(
    rng: np.random.Generator, ranges: ChipRanges = TRAIN_RANGES, size: int = 64, pixel_m: float = 10.0,
    *, measure_wake: bool = False, keep_vessel_signal: bool = False,
) -> SyntheticChip:
    """Draw one synthetic chip with a vessel near its centre and the truth to learn from.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every random choice (seed it for reproducible sets).
    ranges : ChipRanges
        Parameter ranges (:data:`TRAIN_RANGES` or :data:`HELDOUT_RANGES` or your own).
    size : int
        Chip edge, pixels.
    pixel_m : float
        Ground size of a pixel, metres.
    measure_wake : bool
        Also draw the chip's wake-free twin (same random draws, wake contrast 0) and store the
        wake's visibility, :func:`wake_snr`, in ``extras["wake_snr"]`` (0 without a wake). The chip
        itself is the same either way; drawing takes about twice as long.
    keep_vessel_signal : bool
        Implies ``measure_wake``; also keep, for an observer told the vessel exactly
        (``benchmarks/heading_ceiling.py``), ``extras["vessel_signal"]``: the chip minus the same chip
        drawn without this vessel, on the pixels its hull and wake cover (the vessel as it appears in
        the chip: after cloud, path radiance and contrast stretch), ``extras["vessel_free"]``: that
        chip without the vessel, and ``extras["centre_px"]``: the hull centre ``(x, y)``, pixels, the
        point the vessel turns about when the heading changes.
    """
    measure_wake = measure_wake or keep_vessel_signal
    sea, sea_info = _sea(rng, ranges, size)
    length = float(math.exp(rng.uniform(math.log(ranges.length_m[0]), math.log(ranges.length_m[1]))))
    beam = length / _uniform(rng, ranges.length_to_beam)
    has_wake = bool(rng.random() < ranges.p_wake)
    speed = _uniform(rng, ranges.speed_kn) if has_wake else 0.0
    heading = float(rng.uniform(0.0, 360.0))
    jitter = rng.uniform(-ranges.jitter_px, ranges.jitter_px, size=2)
    spec = VesselSpec(
        x=size / 2 + float(jitter[0]), y=size / 2 + float(jitter[1]), heading_grid_deg=heading,
        length_m=length, width_m=beam, speed_kn=speed, has_wake=has_wake,
    )
    if rng.random() < ranges.p_distractor:
        # Another vessel well away from the centre, so the model learns to follow the centre one.
        angle = rng.uniform(0, 2 * math.pi)
        radius = rng.uniform(0.3, 0.45) * size
        other_length = float(math.exp(rng.uniform(math.log(10.0), math.log(150.0))))
        other = VesselSpec(
            x=size / 2 + radius * math.cos(angle), y=size / 2 + radius * math.sin(angle),
            heading_grid_deg=float(rng.uniform(0, 360)), length_m=other_length, width_m=other_length / 6,
            speed_kn=float(rng.uniform(0, 20)), has_wake=bool(rng.random() < 0.7),
        )
        render_vessel(sea, BAND_NAMES, other, pixel_m=pixel_m, rng=rng)
    vessel_free = sea.copy() if keep_vessel_signal else None
    twin = (sea.copy(), copy.deepcopy(rng)) if measure_wake and has_wake else None
    truth = render_vessel(sea, BAND_NAMES, spec, pixel_m=pixel_m, rng=rng)
    keypoints = clip_keypoints_to_chip(truth.as_array(), size)
    visible = np.all(np.isfinite(keypoints), axis=-1)
    radiometry_rng = copy.deepcopy(rng) if twin is not None else None
    rng_before_radiometry = copy.deepcopy(rng) if keep_vessel_signal else None
    data, info = _radiometry(rng, ranges, sea)
    extras = {**sea_info, **info}
    if measure_wake:
        extras["wake_snr"] = 0.0
    if keep_vessel_signal:
        extras["centre_px"] = (spec.x, spec.y)
        free_data, _ = _radiometry(rng_before_radiometry, ranges, vessel_free)
        vessel_support = np.any(sea != vessel_free, axis=0)
        extras["vessel_signal"] = np.where(vessel_support[None], data - free_data, 0.0).astype(np.float32)
        extras["vessel_free"] = free_data
    if twin is not None:
        twin_sea, twin_rng = twin
        render_vessel(twin_sea, BAND_NAMES, replace(spec, wake_gain=0.0), pixel_m=pixel_m, rng=twin_rng)
        twin_data, _ = _radiometry(radiometry_rng, ranges, twin_sea)
        extras["wake_snr"] = wake_snr(data - twin_data, twin_data)
    return SyntheticChip(
        data=data, keypoints=keypoints, visible=visible, heading_grid_deg=heading, length_m=length,
        speed_kn=speed, has_wake=has_wake, extras=extras,
    )


def draw_chips(
    seed: int | np.random.SeedSequence, count: int, ranges: ChipRanges = TRAIN_RANGES, size: int = 64,
    *, measure_wake: bool = False,
) -> dict[str, np.ndarray]:
    """Draw ``count`` chips deterministically from ``seed``; return stacked arrays.

    Chip ``i`` depends only on ``(seed, i)``, so a set can be regenerated piecewise (resume).
    With ``measure_wake`` the result also holds ``wake_snr (N,)`` (see :func:`wake_snr`; 0 without
    a wake) and the chips are the same as without it.

    Returns
    -------
    dict
        ``data (N, bands, size, size) float32``, ``keypoints (N, 4, 2)``, ``visible (N, 4) bool``,
        ``heading_grid_deg (N,)``, ``length_m (N,)``, ``speed_kn (N,)``, ``has_wake (N,) bool``.
    """
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    chips = [draw_chip(np.random.default_rng(child), ranges, size, measure_wake=measure_wake) for child in sequence.spawn(count)]
    out = {
        "data": np.stack([c.data for c in chips]) if chips else np.zeros((0, len(BAND_NAMES), size, size), np.float32),
        "keypoints": np.array([c.keypoints for c in chips]).reshape(count, 4, 2),
        "visible": np.array([c.visible for c in chips], dtype=bool).reshape(count, 4),
        "heading_grid_deg": np.array([c.heading_grid_deg for c in chips], dtype=np.float64),
        "length_m": np.array([c.length_m for c in chips], dtype=np.float64),
        "speed_kn": np.array([c.speed_kn for c in chips], dtype=np.float64),
        "has_wake": np.array([c.has_wake for c in chips], dtype=bool),
    }
    if measure_wake:
        out["wake_snr"] = np.array([c.extras["wake_snr"] for c in chips], dtype=np.float64)
    return out
