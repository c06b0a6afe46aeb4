"""Physics renderer for a vessel and its wake on a Sentinel-2-like reflectance array.

Used both to draw training chips for the wake-keypoint model and by the synthetic product
writer, so it imports only numpy (never torch) and touches only a window around the vessel:
rendering on a full 10980 x 10980 tile allocates nothing of tile size.

Coordinates follow rasterio: pixel (row r, col c) covers x in [c, c + 1), y in [r, r + 1);
a point is ``(x, y) = (col, row)`` in continuous pixel units. Headings are grid bearings in
degrees clockwise from grid up (the -row direction).

Physics, kept deliberately simple and documented:

* **Hull**: an elongated, pointed footprint ``length_m x width_m`` drawn with area-weighted
  (supersampled) coverage, so a 10 m boat is a faint sub-pixel blur and a 350 m tanker a 35 px
  streak. Steel decks and superstructure are brightest in NIR (B08), then SWIR, then visible.
* **Kelvin arms**: two thin lines leaving the bow at the half-angle ``alpha`` either side of the
  track. ``alpha`` is Kelvin's ``arcsin(1/3) = 19.47 deg`` at low hull Froude number
  ``Fr = U / sqrt(g L)`` and narrows as ``1 / (2 sqrt(2 pi) Fr)`` above ``Fr ~ 0.59``
  (Rabaud & Moisy 2013, "Ship wakes: Kelvin or Mach angle?", PRL 110, 214503). Their contrast
  grows with hull size and speed and decays along the arm.
* **Turbulent centre wake**: a line behind the stern whose length is the distance travelled during
  a persistence time (``U * tau``, ``tau`` ~ 30-70 s) plus a few hull lengths, widening from about
  the beam to several beams. Outside sun glint it is bright (foam and bubbles, strongest in the
  visible); inside glint it is dark (surfactants and damped capillary waves suppress glint).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geo.earth import KNOT_M_S

__all__ = [
    "KELVIN_HALF_ANGLE_DEG",
    "VesselSpec",
    "WakeKeypoints",
    "froude_number",
    "kelvin_half_angle_deg",
    "render_vessel",
    "turbulent_wake_length_m",
]

#: Kelvin's deep-water wake half-angle, arcsin(1/3), degrees.
KELVIN_HALF_ANGLE_DEG = math.degrees(math.asin(1.0 / 3.0))
GRAVITY_M_S2 = 9.81

# Reflectance added by a fully covered hull pixel, per band (typical deck/superstructure, TOA-like).
_HULL_REFLECTANCE = {"B02": 0.10, "B03": 0.12, "B04": 0.13, "B08": 0.24, "B8A": 0.23, "B11": 0.17, "B12": 0.13}
# Relative contrast of foam (turbulent wake, bright Kelvin crests) per band: water absorbs NIR/SWIR.
_FOAM_WEIGHT = {"B02": 1.0, "B03": 1.0, "B04": 0.9, "B08": 0.55, "B8A": 0.5, "B11": 0.2, "B12": 0.15}
# Glint lies on every band roughly equally; a wake that suppresses glint darkens every band.
_GLINT_BANDS = ("B02", "B03", "B04", "B08", "B8A", "B11", "B12")


@dataclass(frozen=True)
class VesselSpec:
    """One vessel to draw.

    Attributes
    ----------
    x, y : float
        Hull centre (midpoint of bow and stern) in pixel coordinates (col, row) of the target array.
    heading_grid_deg : float
        Direction of travel, degrees clockwise from grid up.
    length_m, width_m : float
        Hull length and beam, metres.
    speed_kn : float
        Speed through the water, knots. Zero means no wake whatever ``has_wake`` says.
    has_wake : bool
        Whether to draw the wake (Kelvin arms and turbulent wake).
    wake_gain : float
        Factor on the wake's contrast (1 = physical). 0 draws a wake-free twin that consumes the
        random generator exactly as the real one does, which is how a wake's visibility is measured.
    """

    x: float
    y: float
    heading_grid_deg: float
    length_m: float
    width_m: float
    speed_kn: float
    has_wake: bool
    wake_gain: float = 1.0


@dataclass(frozen=True)
class WakeKeypoints:
    """Wake keypoints in pixel coordinates ``(x, y)`` of the rendered array; NaN where absent.

    Attributes
    ----------
    hull : tuple of float
        Wake apex: the stern point where the turbulent wake starts (heading keypoint 1).
    wake_end : tuple of float
        Far end of the turbulent wake along its centre line (heading keypoint 2).
    arm_left_end, arm_right_end : tuple of float
        Ends of the Kelvin arms, left and right of the direction of travel.
    """

    hull: tuple[float, float]
    wake_end: tuple[float, float]
    arm_left_end: tuple[float, float]
    arm_right_end: tuple[float, float]

    def as_array(self) -> np.ndarray:
        """Keypoints as a ``(4, 2)`` float array ordered hull, wake_end, arm_left_end, arm_right_end."""
        return np.array([self.hull, self.wake_end, self.arm_left_end, self.arm_right_end], dtype=np.float64)


_NAN2 = (math.nan, math.nan)


def froude_number(speed_kn: np.ndarray | float, length_m: np.ndarray | float) -> np.ndarray:
    """Hull Froude number ``U / sqrt(g L)`` (dimensionless) from speed in knots and length in metres."""
    speed_m_s = np.asarray(speed_kn, dtype=np.float64) * KNOT_M_S
    return speed_m_s / np.sqrt(GRAVITY_M_S2 * np.maximum(np.asarray(length_m, dtype=np.float64), 1e-6))


def kelvin_half_angle_deg(froude: np.ndarray | float) -> np.ndarray:
    """Apparent Kelvin wake half-angle, degrees, for a hull Froude number.

    Kelvin's 19.47 deg below ``Fr ~ 0.59``; above, the Mach-like law ``alpha = 1 / (2 sqrt(2 pi) Fr)``
    of Rabaud & Moisy (2013), continuous at the crossover.

    Examples
    --------
    >>> round(float(kelvin_half_angle_deg(0.3)), 2)
    19.47
    >>> round(float(kelvin_half_angle_deg(1.0)), 2)
    11.43
    """
    fr = np.maximum(np.asarray(froude, dtype=np.float64), 1e-9)
    mach_like_rad = 1.0 / (2.0 * math.sqrt(2.0 * math.pi) * fr)
    return np.degrees(np.minimum(math.radians(KELVIN_HALF_ANGLE_DEG), mach_like_rad))


def turbulent_wake_length_m(
    speed_kn: np.ndarray | float, length_m: np.ndarray | float, persistence_s: np.ndarray | float = 45.0
) -> np.ndarray:
    """Visible length of the turbulent centre wake, metres: ``U * tau + 2 L`` (zero when stopped)."""
    speed_m_s = np.asarray(speed_kn, dtype=np.float64) * KNOT_M_S
    length = np.asarray(length_m, dtype=np.float64)
    return np.where(speed_m_s > 0, speed_m_s * np.asarray(persistence_s) + 2.0 * length, 0.0)


def _unit_vectors(heading_grid_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Forward and right-hand unit vectors (dx, dy) in pixel space for a grid bearing."""
    h = math.radians(heading_grid_deg)
    forward = np.array([math.sin(h), -math.cos(h)])
    right = np.array([math.cos(h), math.sin(h)])  # forward rotated 90 deg clockwise
    return forward, right


def _window(points: np.ndarray, margin: float, height: int, width: int) -> tuple[int, int, int, int] | None:
    """Integer window ``(row0, row1, col0, col1)`` covering ``points`` (x, y) plus margin, clipped."""
    finite = points[np.all(np.isfinite(points), axis=1)]
    col0 = max(int(math.floor(finite[:, 0].min() - margin)), 0)
    col1 = min(int(math.ceil(finite[:, 0].max() + margin)), width)
    row0 = max(int(math.floor(finite[:, 1].min() - margin)), 0)
    row1 = min(int(math.ceil(finite[:, 1].max() + margin)), height)
    if row1 <= row0 or col1 <= col0:
        return None
    return row0, row1, col0, col1


def _hull_coverage(
    along: np.ndarray, across: np.ndarray, half_length_px: float, half_width_px: float
) -> np.ndarray:
    """Fraction of a supersampled pixel inside the hull: a rectangle with a pointed bow third.

    ``along`` and ``across`` have a trailing supersample axis; coverage is their mean.
    """
    # The beam narrows linearly to a point over the forward 30% of the length (the bow).
    bow_start = 0.4 * half_length_px
    taper = np.clip((half_length_px - along) / max(half_length_px - bow_start, 1e-6), 0.0, 1.0)
    half_beam = np.where(along > bow_start, half_width_px * taper, half_width_px)
    inside = (np.abs(along) <= half_length_px) & (np.abs(across) <= half_beam)
    return inside.mean(axis=-1)


def render_vessel(
    reflectance: np.ndarray,
    band_names: Sequence[str],
    spec: VesselSpec,
    *,
    pixel_m: float = 10.0,
    rng: np.random.Generator,
) -> WakeKeypoints:
    """Draw one vessel and its wake into ``reflectance`` in place; return the wake keypoints.

    Parameters
    ----------
    reflectance : numpy.ndarray
        float32 array ``(bands, H, W)`` of top-of-atmosphere-like reflectance (0..1). Only a window
        around the vessel is read and written.
    band_names : sequence of str
        Sentinel-2 band name of each plane (``B02 B03 B04 B08 B11``, also ``B8A B12``); planes with
        other names are left untouched.
    spec : VesselSpec
        The vessel: position in pixels, grid heading, size in metres, speed in knots.
    pixel_m : float
        Ground size of one pixel, metres.
    rng : numpy.random.Generator
        Source of the small random variations (hull brightness, wake contrast, decay).

    Returns
    -------
    WakeKeypoints
        Keypoints in pixel coordinates of ``reflectance``; wake points are NaN without a wake. They
        may lie outside the array when the wake leaves it.
    """
    if reflectance.ndim != 3 or reflectance.shape[0] != len(band_names):
        raise ValueError(
            f"reflectance: expected shape (bands={len(band_names)}, H, W), got {reflectance.shape}"
        )
    if not (spec.length_m > 0 and spec.width_m > 0):
        raise ValueError(f"spec: length_m and width_m must be positive, got {spec.length_m}, {spec.width_m}")
    if not (np.isfinite(spec.x) and np.isfinite(spec.y) and np.isfinite(spec.heading_grid_deg)):
        raise ValueError(f"spec: position and heading must be finite, got {spec}")
    _, height, width = reflectance.shape
    forward, right = _unit_vectors(spec.heading_grid_deg)
    centre = np.array([spec.x, spec.y], dtype=np.float64)
    length_px = spec.length_m / pixel_m
    width_px = spec.width_m / pixel_m
    stern = centre - forward * (length_px / 2.0)
    bow = centre + forward * (length_px / 2.0)

    has_wake = bool(spec.has_wake and spec.speed_kn > 0.0)
    froude = float(froude_number(spec.speed_kn, spec.length_m))
    alpha_deg = float(kelvin_half_angle_deg(froude))
    persistence_s = float(rng.uniform(30.0, 70.0))
    turbulent_px = float(turbulent_wake_length_m(spec.speed_kn, spec.length_m, persistence_s)) / pixel_m
    # Kelvin arms: visible where the hull makes waves tall enough to see at 10 m (size and speed).
    arm_strength = float(np.clip((spec.length_m - 15.0) / 120.0, 0.0, 1.0) * np.clip((froude - 0.08) / 0.25, 0.0, 1.0))
    has_arms = has_wake and arm_strength > 0.05
    arm_px = 0.7 * turbulent_px + 2.0 * length_px

    wake_end = stern - forward * turbulent_px if has_wake else np.array(_NAN2)
    cos_a, sin_a = math.cos(math.radians(alpha_deg)), math.sin(math.radians(alpha_deg))
    arm_left_dir = -forward * cos_a - right * sin_a
    arm_right_dir = -forward * cos_a + right * sin_a
    arm_left_end = bow + arm_left_dir * arm_px if has_arms else np.array(_NAN2)
    arm_right_end = bow + arm_right_dir * arm_px if has_arms else np.array(_NAN2)
    keypoints = WakeKeypoints(
        hull=(float(stern[0]), float(stern[1])),
        wake_end=(float(wake_end[0]), float(wake_end[1])),
        arm_left_end=(float(arm_left_end[0]), float(arm_left_end[1])),
        arm_right_end=(float(arm_right_end[0]), float(arm_right_end[1])),
    )

    extent = np.stack([bow, stern, wake_end, arm_left_end, arm_right_end])
    window = _window(extent, margin=4.0 + width_px * 3.0, height=height, width=width)
    if window is None:
        return keypoints
    row0, row1, col0, col1 = window
    rows = np.arange(row0, row1, dtype=np.float64) + 0.5
    cols = np.arange(col0, col1, dtype=np.float64) + 0.5
    dx = cols[None, :] - centre[0]
    dy = rows[:, None] - centre[1]
    along = dx * forward[0] + dy * forward[1]  # + toward the bow, pixels from hull centre
    across = dx * right[0] + dy * right[1]  # + to the right of travel

    planes = {name: i for i, name in enumerate(band_names)}
    patch = reflectance[:, row0:row1, col0:col1]  # a view: writes go to the caller's array
    glint_idx = [planes[b] for b in _GLINT_BANDS if b in planes]
    sea_nir = float(np.median(patch[planes["B08"]])) if "B08" in planes else float(np.median(patch[glint_idx])) if glint_idx else 0.0

    if has_wake:
        _draw_wake(
            patch, planes, along, across, sea_nir=sea_nir, length_px=length_px, width_px=width_px,
            turbulent_px=turbulent_px, alpha_deg=alpha_deg, arm_px=arm_px,
            arm_strength=arm_strength if has_arms else 0.0, speed_kn=spec.speed_kn, gain=spec.wake_gain, rng=rng,
        )
    _draw_hull(patch, planes, centre, forward, right, row0, col0, length_px, width_px, rng)
    return keypoints


def _draw_hull(
    patch: np.ndarray,
    planes: dict[str, int],
    centre: np.ndarray,
    forward: np.ndarray,
    right: np.ndarray,
    row0: int,
    col0: int,
    length_px: float,
    width_px: float,
    rng: np.random.Generator,
) -> None:
    """Blend the hull into ``patch`` with area-weighted coverage (4 x 4 supersampling)."""
    half_extent = 0.5 * math.hypot(length_px, width_px) + 1.5
    r_lo = max(int(math.floor(centre[1] - half_extent)) - row0, 0)
    r_hi = min(int(math.ceil(centre[1] + half_extent)) - row0, patch.shape[1])
    c_lo = max(int(math.floor(centre[0] - half_extent)) - col0, 0)
    c_hi = min(int(math.ceil(centre[0] + half_extent)) - col0, patch.shape[2])
    if r_hi <= r_lo or c_hi <= c_lo:
        return
    sub = (np.arange(4) + 0.5) / 4.0
    sy, sx = np.meshgrid(sub, sub, indexing="ij")
    rows = np.arange(r_lo, r_hi, dtype=np.float64) + row0
    cols = np.arange(c_lo, c_hi, dtype=np.float64) + col0
    px = cols[None, :, None] + sx.ravel()[None, None, :] - centre[0]
    py = rows[:, None, None] + sy.ravel()[None, None, :] - centre[1]
    along = px * forward[0] + py * forward[1]
    across = px * right[0] + py * right[1]
    # A beam below a pixel still reflects: keep at least 0.35 px so a 10 m boat registers at all.
    coverage = _hull_coverage(along, across, length_px / 2.0, max(width_px, 0.35) / 2.0).astype(np.float32)
    brightness = float(rng.uniform(0.7, 1.4))
    for band, idx in planes.items():
        if band not in _HULL_REFLECTANCE:
            continue
        target = np.float32(_HULL_REFLECTANCE[band] * brightness)
        view = patch[idx, r_lo:r_hi, c_lo:c_hi]
        # A fully covered pixel becomes half sea (shadow, wet deck) plus the hull target; partial
        # coverage blends linearly, so sub-pixel hulls stay faint.
        view *= 1.0 - 0.5 * coverage
        view += coverage * target


def _draw_wake(
    patch: np.ndarray,
    planes: dict[str, int],
    along: np.ndarray,
    across: np.ndarray,
    *,
    sea_nir: float,
    length_px: float,
    width_px: float,
    turbulent_px: float,
    alpha_deg: float,
    arm_px: float,
    arm_strength: float,
    speed_kn: float,
    gain: float = 1.0,
    rng: np.random.Generator,
) -> None:
    """Add the turbulent centre wake and the Kelvin arms to ``patch`` in place (contrast times ``gain``)."""
    behind_stern = -(along + length_px / 2.0)  # pixels behind the stern, + along the wake
    behind_bow = -(along - length_px / 2.0)
    glinty = sea_nir > 0.045
    speed_gain = float(np.clip(speed_kn / 15.0, 0.25, 1.5))
    size_gain = float(np.clip(0.35 + length_px / 12.0, 0.35, 1.2))

    # Turbulent wake: Gaussian cross-profile widening from ~beam to several beams, fading with distance.
    t = behind_stern / max(turbulent_px, 1e-6)
    sigma = 0.45 + 0.5 * width_px * (1.0 + 3.0 * np.clip(t, 0.0, 1.0))
    fade = np.clip(1.0 - t, 0.0, 1.0) ** float(rng.uniform(0.6, 1.4))
    onset = np.clip(behind_stern + 1.0, 0.0, 1.0)  # smooth start at the stern
    # Widening spreads the same foam over more area: peak amplitude falls as the wake widens.
    turbulent = onset * fade * np.exp(-0.5 * (across / sigma) ** 2) * (0.45 + 0.5 * width_px) / sigma

    # Kelvin arms: thin crests at |across| = behind_bow * tan(alpha), decaying along the arm.
    cos_a, sin_a = math.cos(math.radians(alpha_deg)), math.sin(math.radians(alpha_deg))
    arm_t = np.zeros_like(along)
    arms = np.zeros_like(along)
    if arm_strength > 0.0:
        s_arm = behind_bow * cos_a + np.abs(across) * sin_a  # distance along the arm
        d_arm = np.abs(-behind_bow * sin_a + np.abs(across) * cos_a)  # distance off the arm
        arm_t = s_arm / max(arm_px, 1e-6)
        arm_sigma = 0.5 + 0.015 * np.clip(s_arm, 0.0, None)
        arms = (
            (s_arm > 0) * np.clip(1.0 - arm_t, 0.0, 1.0) ** 1.5 * np.exp(-0.5 * (d_arm / arm_sigma) ** 2) * 0.5 / arm_sigma
        )
        arms *= arm_strength

    turbulent_contrast = float(rng.uniform(0.6, 1.3)) * speed_gain * size_gain * gain
    arm_contrast = float(rng.uniform(0.5, 1.2)) * speed_gain * gain
    if glinty:
        # Glint suppression: the wake darkens every band by a fraction of the glint above the water floor.
        darken = np.clip(0.55 * turbulent_contrast * turbulent + 0.35 * arm_contrast * arms, 0.0, 0.85)
        for band in _GLINT_BANDS:
            if band in planes:
                view = patch[planes[band]]
                glint = np.maximum(view - 0.02, 0.0)
                view -= (darken * glint).astype(np.float32)
    else:
        bright = 0.05 * turbulent_contrast * turbulent + 0.03 * arm_contrast * arms
        for band, weight in _FOAM_WEIGHT.items():
            if band in planes:
                patch[planes[band]] += (weight * bright).astype(np.float32)
