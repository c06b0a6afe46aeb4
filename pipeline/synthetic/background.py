"""The synthetic scene without vessels: sea clutter, swell, sun glint, land, cloud, cirrus, shadow.

Everything here is a pure function of the product pixel position and the scene parameters, so
any window of a 10980 x 10980 tile can be rendered on its own (the product is written strip by
strip) and a vessel patch sees exactly the background its strip will have. Large-scale fields
(cloud, cirrus, vegetation) live on a coarse grid of :data:`COARSE_PX` pixels and are interpolated
bilinearly; pixel-scale texture comes from small periodic noise images; swell and glint are
analytic. Only the sensor noise and the whitecap/glint sparkle are drawn per strip.

Arrays are ``(bands, rows, cols)`` float32 reflectance with bands in
:data:`pipeline.synthetic.radiometry.SCENE_BANDS` order (B02 B03 B04 B08 B11).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS
from scipy import ndimage

from pipeline.synthetic.land import rasterize_land
from pipeline.synthetic.radiometry import SCENE_BANDS, path_reflectance, toa_from_boa

__all__ = ["AtmosphereLayers", "SceneModel", "scl_classes"]

#: Pixels (10 m) per cell of the coarse grid holding the large-scale fields.
COARSE_PX = 16
#: Coarse cells kept around the product so shifted (shadow) and padded windows stay inside.
COARSE_MARGIN = 40
#: Opacities above which the scene classification says thin cirrus (10) or cloud (8, 9).
SCL_CIRRUS_OPACITY = 0.35
SCL_CLOUD_OPACITY = 0.35
_TEXTURE_PERIODS = (512, 509)
_NOISE_PERIOD = 1021

# Surface reflectance (BOA) per band B02 B03 B04 B08 B11.
_SEA = np.array([0.028, 0.024, 0.012, 0.009, 0.003], dtype=np.float32)
_SEA_CLUTTER = np.array([0.0014, 0.0013, 0.0010, 0.0011, 0.0005], dtype=np.float32)
_SWELL = np.array([0.0009, 0.0008, 0.0006, 0.0006, 0.0002], dtype=np.float32)
_GLINT_SPECTRUM = np.array([1.0, 1.0, 0.98, 0.95, 0.8], dtype=np.float32)
_VEGETATION = np.array([0.030, 0.060, 0.035, 0.320, 0.170], dtype=np.float32)
_BARE = np.array([0.090, 0.110, 0.130, 0.220, 0.260], dtype=np.float32)
# Top-of-atmosphere reflectance of an opaque water cloud and of a fully developed cirrus veil.
_CLOUD = np.array([0.55, 0.53, 0.52, 0.50, 0.31], dtype=np.float32)
_CIRRUS = np.array([0.035, 0.034, 0.033, 0.031, 0.012], dtype=np.float32)
_SENSOR_NOISE = np.array([0.0007, 0.0006, 0.0006, 0.0006, 0.0005], dtype=np.float32)


@dataclass(frozen=True)
class AtmosphereLayers:
    """Per-pixel opacities ``(rows, cols)`` float32 in 0..1 over a window."""

    cloud: np.ndarray
    cirrus: np.ndarray
    shadow: np.ndarray


@dataclass(frozen=True)
class SceneParameters:
    """Everything random about one scene, drawn once from the seed."""

    sea_gain: float
    glint_peak: float
    glint_centre_rc: tuple[float, float]
    glint_scale_px: tuple[float, float]
    swell_k: np.ndarray  # (trains, 2) radians per pixel along (row, col)
    swell_amplitude: np.ndarray
    swell_phase: np.ndarray
    cloud_fraction: float
    cloud_threshold: float
    cirrus_strength: float
    cirrus_threshold: float
    shadow_shift_rc: tuple[float, float]
    whitecap_density: float


class SceneModel:
    """A synthetic scene over a product grid of ``height x width`` pixels (10 m).

    Parameters
    ----------
    transform : affine.Affine
        Transform of the product grid (pixel (0, 0) upper left).
    crs : pyproj.CRS or int
        CRS of the product grid.
    height, width : int
        Product size, pixels.
    land : shapely geometry
        Land polygons in the product CRS.
    rng : numpy.random.Generator
        Source of every random scene parameter and field.
    cloud_fraction : float or None
        Fraction of the product under thick cloud (any opacity); ``None`` draws one (0..0.25, none
        in a quarter of the scenes).
    shadow_shift_rc : tuple of float
        Offset (rows, cols) from a cloud to its shadow, pixels (from sun angles and cloud height).
    """

    def __init__(self, transform: Affine, crs: CRS | int, height: int, width: int, land: shapely.Geometry,
                 rng: np.random.Generator, *, cloud_fraction: float | None = None,
                 shadow_shift_rc: tuple[float, float] = (-120.0, -40.0)) -> None:
        self.transform = transform
        self.crs = crs
        self.height = height
        self.width = width
        self.land = land
        coarse_shape = (
            -(-height // COARSE_PX) + 2 * COARSE_MARGIN,
            -(-width // COARSE_PX) + 2 * COARSE_MARGIN,
        )
        self._cloud_field = _fractal_field(rng, coarse_shape, beta=3.2)
        self._cirrus_field = _fractal_field(rng, coarse_shape, beta=3.0, stretch=float(rng.uniform(2.0, 5.0)),
                                            angle_deg=float(rng.uniform(0, 180)))
        self._vegetation_field = _fractal_field(rng, coarse_shape, beta=2.6)
        self._clutter = tuple(_smooth_texture(rng, p, sigma_px=0.9) for p in _TEXTURE_PERIODS)
        self._detail = tuple(_fractal_field(rng, (p, p), beta=2.9) for p in _TEXTURE_PERIODS)
        self._noise = rng.standard_normal((len(SCENE_BANDS), _NOISE_PERIOD, _NOISE_PERIOD), dtype=np.float32)
        self.parameters = self._draw_parameters(rng, cloud_fraction, shadow_shift_rc)

    # -- parameters -------------------------------------------------------------------------------
    def _draw_parameters(self, rng: np.random.Generator, cloud_fraction: float | None,
                         shadow_shift_rc: tuple[float, float]) -> SceneParameters:
        strong_glint = rng.random() < 0.25
        glint_peak = float(rng.uniform(0.015, 0.06) if strong_glint else rng.uniform(0.0, 0.008))
        centre = (float(rng.uniform(-0.5, 1.5) * self.height), float(rng.uniform(-0.5, 1.5) * self.width))
        scale = (float(rng.uniform(4000, 15000)), float(rng.uniform(4000, 15000)))
        n_trains = 3
        direction = rng.uniform(0, 2 * np.pi)
        directions = direction + rng.normal(0, 0.25, n_trains)
        wavelengths_px = rng.uniform(8.0, 25.0, n_trains)
        k = (2 * np.pi / wavelengths_px)[:, None] * np.column_stack([np.cos(directions), np.sin(directions)])
        amplitude = rng.uniform(0.4, 1.0, n_trains) / np.sqrt(n_trains)
        phase = rng.uniform(0, 2 * np.pi, n_trains)
        if cloud_fraction is None:
            cloud_fraction = float(rng.uniform(0.0, 0.25)) if rng.random() < 0.75 else 0.0
        core = self._cloud_field[COARSE_MARGIN:-COARSE_MARGIN, COARSE_MARGIN:-COARSE_MARGIN]
        cloud_threshold = float(np.quantile(core, 1.0 - cloud_fraction)) if cloud_fraction > 0 else np.inf
        has_cirrus = rng.random() < 0.5
        cirrus_fraction = float(rng.uniform(0.05, 0.4)) if has_cirrus else 0.0
        cirrus_threshold = float(np.quantile(self._cirrus_field, 1.0 - cirrus_fraction)) if has_cirrus else np.inf
        return SceneParameters(
            sea_gain=float(rng.uniform(0.8, 1.25)),
            glint_peak=glint_peak,
            glint_centre_rc=centre,
            glint_scale_px=scale,
            swell_k=k.astype(np.float64),
            swell_amplitude=amplitude,
            swell_phase=phase,
            cloud_fraction=float(cloud_fraction),
            cloud_threshold=cloud_threshold,
            cirrus_strength=float(rng.uniform(0.3, 1.0)) if has_cirrus else 0.0,
            cirrus_threshold=cirrus_threshold,
            shadow_shift_rc=shadow_shift_rc,
            whitecap_density=float(rng.uniform(2e-6, 2e-5)),
        )

    # -- surface ----------------------------------------------------------------------------------
    def surface_toa(self, row0: int, row1: int, col0: int, col1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-of-atmosphere reflectance of the cloud-free surface over a window.

        Returns
        -------
        toa : numpy.ndarray
            float32 ``(5, rows, cols)``.
        land : numpy.ndarray
            bool ``(rows, cols)``, pixel centre on land.
        vegetation : numpy.ndarray
            float32 ``(rows, cols)`` vegetated fraction of land pixels (0 on water).
        """
        p = self.parameters
        rows = np.arange(row0, row1)
        cols = np.arange(col0, col1)
        shape = (len(rows), len(cols))
        land = rasterize_land(self.land, self.transform @ Affine.translation(col0, row0), shape)
        clutter = self._texture(self._clutter, rows, cols)
        swell = self._swell(rows, cols)
        glint = self._glint(rows, cols)
        sea_boa = np.empty((len(SCENE_BANDS),) + shape, dtype=np.float32)
        glint_pattern = glint * (1.0 + 0.2 * swell + 0.15 * clutter)
        for b in range(len(SCENE_BANDS)):
            sea_boa[b] = _SEA[b] * p.sea_gain + _SEA_CLUTTER[b] * clutter + _SWELL[b] * swell
            sea_boa[b] += _GLINT_SPECTRUM[b] * glint_pattern
        vegetation = np.zeros(shape, dtype=np.float32)
        if land.any():
            veg_field = self._coarse(self._vegetation_field, rows, cols) + 0.5 * self._texture(self._detail, rows, cols)
            vegetation = np.clip(0.55 + 0.35 * veg_field, 0.0, 1.0).astype(np.float32)
            vegetation[~land] = 0.0
            for b in range(len(SCENE_BANDS)):
                land_boa = vegetation * _VEGETATION[b] + (1.0 - vegetation) * _BARE[b]
                sea_boa[b] = np.where(land, land_boa, sea_boa[b])
        return toa_from_boa(sea_boa).astype(np.float32, copy=False), land, vegetation

    # -- atmosphere -------------------------------------------------------------------------------
    def layers(self, row0: int, row1: int, col0: int, col1: int) -> AtmosphereLayers:
        """Cloud, cirrus and cloud-shadow opacities over a window."""
        rows = np.arange(row0, row1)
        cols = np.arange(col0, col1)
        shape = (len(rows), len(cols))
        cloud = self.cloud_opacity(rows[:, None], cols[None, :])
        dr, dc = self.parameters.shadow_shift_rc
        if np.isfinite(self.parameters.cloud_threshold):
            casting = self.cloud_opacity(rows[:, None] - dr, cols[None, :] - dc)
            shadow = (0.45 * casting * (1.0 - cloud)).astype(np.float32)
        else:
            shadow = np.zeros(shape, dtype=np.float32)
        cirrus = np.zeros(shape, dtype=np.float32)
        if self.parameters.cirrus_strength > 0:
            field = self._coarse(self._cirrus_field, rows, cols) + 0.15 * self._texture(self._detail, rows + 97, cols + 31)
            cirrus = self._cirrus_from_field(field)
        return AtmosphereLayers(cloud=np.broadcast_to(cloud, shape).astype(np.float32), cirrus=cirrus, shadow=shadow)

    def cloud_opacity(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Thick-cloud opacity (0..1) at integer pixel positions; ``rows``/``cols`` broadcast together."""
        threshold = self.parameters.cloud_threshold
        rows = np.asarray(rows)
        cols = np.asarray(cols)
        if not np.isfinite(threshold):
            return np.zeros(np.broadcast_shapes(rows.shape, cols.shape), dtype=np.float32)
        rows_i = np.floor(rows).astype(np.int64)
        cols_i = np.floor(cols).astype(np.int64)
        field = _bilinear(self._cloud_field, (rows_i + 0.5) / COARSE_PX - 0.5 + COARSE_MARGIN,
                          (cols_i + 0.5) / COARSE_PX - 0.5 + COARSE_MARGIN)
        field = field + 0.2 * _periodic(self._detail[0], rows_i, cols_i) + 0.1 * _periodic(self._detail[1], rows_i, cols_i)
        x = np.clip((field - threshold) / 0.8, 0.0, 1.0)
        return (x * x * (3.0 - 2.0 * x)).astype(np.float32)

    def cirrus_opacity(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Thin-cirrus opacity (0..1) at integer pixel positions; ``rows``/``cols`` broadcast together.

        Pointwise twin of the cirrus layer of :meth:`layers` (same field, same texture).
        """
        rows_i = np.floor(np.asarray(rows)).astype(np.int64)
        cols_i = np.floor(np.asarray(cols)).astype(np.int64)
        if self.parameters.cirrus_strength <= 0:
            return np.zeros(np.broadcast_shapes(rows_i.shape, cols_i.shape), dtype=np.float32)
        field = _bilinear(self._cirrus_field, (rows_i + 0.5) / COARSE_PX - 0.5 + COARSE_MARGIN,
                          (cols_i + 0.5) / COARSE_PX - 0.5 + COARSE_MARGIN)
        detail = 0.8 * _periodic(self._detail[0], rows_i + 97, cols_i + 31) \
            + 0.6 * _periodic(self._detail[1], rows_i + 97, cols_i + 31)
        return self._cirrus_from_field(field + 0.15 * detail)

    def _cirrus_from_field(self, field: np.ndarray) -> np.ndarray:
        p = self.parameters
        return (p.cirrus_strength * np.clip((field - p.cirrus_threshold) / 0.9, 0.0, 1.0)).astype(np.float32)

    def finish(self, toa: np.ndarray, land: np.ndarray, layers: AtmosphereLayers, row0: int, col0: int,
               rng: np.random.Generator) -> None:
        """Add sparkle, shadow, cirrus, cloud and sensor noise in place to ``toa`` of the window at ``(row0, col0)``."""
        _, h, w = toa.shape
        rows = np.arange(row0, row0 + h)
        cols = np.arange(col0, col0 + w)
        # Whitecaps and glint sparkle: isolated bright pixels on water.
        n_caps = rng.poisson(self.parameters.whitecap_density * h * w)
        r = rng.integers(0, h, n_caps)
        c = rng.integers(0, w, n_caps)
        water = ~land[r, c]
        glint_here = self._glint(rows[r], cols[c], pointwise=True)
        amplitude = rng.uniform(0.003, 0.012, n_caps).astype(np.float32) + 0.6 * glint_here
        for b, weight in enumerate((1.0, 1.0, 0.9, 0.45, 0.15)):
            np.add.at(toa[b], (r[water], c[water]), weight * amplitude[water])
        path = path_reflectance()
        toa -= path
        toa *= 1.0 - layers.shadow[None]
        toa += path
        if layers.cirrus.any():
            toa *= 1.0 - 0.2 * layers.cirrus[None]
            toa += _CIRRUS[:, None, None] * layers.cirrus[None]
        if layers.cloud.any():
            texture = self._texture(self._detail, rows, cols)
            brightness = np.clip(0.88 + 0.08 * texture, 0.6, 1.1)
            toa *= 1.0 - layers.cloud[None]
            toa += (_CLOUD[:, None, None] * brightness[None]) * layers.cloud[None]
        # Sensor noise: white Gaussian textures, shifted at random for every window (cheaper than
        # drawing 5 x rows x cols normals, and just as white to any detector).
        shifts = rng.integers(0, _NOISE_PERIOD, size=(toa.shape[0], 2))
        for b in range(toa.shape[0]):
            noise = _periodic_window(self._noise[b], rows + shifts[b, 0], cols + shifts[b, 1])
            toa[b] += _SENSOR_NOISE[b] * noise

    # -- fields -----------------------------------------------------------------------------------
    def _coarse(self, field: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Bilinear interpolation of a coarse field at the centres of pixel ``rows x cols`` (outer)."""
        u = (rows + 0.5) / COARSE_PX - 0.5 + COARSE_MARGIN
        v = (cols + 0.5) / COARSE_PX - 0.5 + COARSE_MARGIN
        i0 = np.clip(np.floor(u).astype(np.int64), 0, field.shape[0] - 2)
        j0 = np.clip(np.floor(v).astype(np.int64), 0, field.shape[1] - 2)
        fu = (u - i0).astype(np.float32)[:, None]
        fv = (v - j0).astype(np.float32)[None, :]
        along_rows = field[i0] * (1 - fu) + field[i0 + 1] * fu
        return along_rows[:, j0] * (1 - fv) + along_rows[:, j0 + 1] * fv

    @staticmethod
    def _texture(textures: tuple[np.ndarray, ...], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Sum of periodic textures over ``rows x cols`` (contiguous ranges); the periods are coprime."""
        out = None
        for weight, texture in zip((0.8, 0.6), textures):
            part = weight * _periodic_window(texture, rows, cols)
            out = part if out is None else out + part
        return out

    def _swell(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Sum of swell wave trains (unit-ish amplitude) over ``rows x cols`` via outer products."""
        p = self.parameters
        out = np.zeros((len(rows), len(cols)), dtype=np.float32)
        for (k_r, k_c), amplitude, phase in zip(p.swell_k, p.swell_amplitude, p.swell_phase):
            a = k_r * (rows + 0.5) + phase
            b = k_c * (cols + 0.5)
            out += (amplitude * np.cos(a)).astype(np.float32)[:, None] * np.cos(b).astype(np.float32)[None, :]
            out -= (amplitude * np.sin(a)).astype(np.float32)[:, None] * np.sin(b).astype(np.float32)[None, :]
        return out

    def _glint(self, rows: np.ndarray, cols: np.ndarray, *, pointwise: bool = False) -> np.ndarray:
        """Sun glint reflectance: a broad Gaussian lobe centred possibly off the product."""
        p = self.parameters
        gy = np.exp(-(((rows + 0.5) - p.glint_centre_rc[0]) / p.glint_scale_px[0]) ** 2).astype(np.float32)
        gx = np.exp(-(((cols + 0.5) - p.glint_centre_rc[1]) / p.glint_scale_px[1]) ** 2).astype(np.float32)
        if pointwise:
            return p.glint_peak * gy * gx
        return p.glint_peak * gy[:, None] * gx[None, :]


def scl_classes(land: np.ndarray, vegetation: np.ndarray, layers: AtmosphereLayers) -> np.ndarray:
    """Sen2Cor scene classification (uint8) of a window at 10 m.

    3 cloud shadow, 4 vegetation, 5 not vegetated, 6 water, 8 cloud medium probability,
    9 cloud high probability, 10 thin cirrus.
    """
    scl = np.where(land, np.where(vegetation >= 0.5, 4, 5), 6).astype(np.uint8)
    scl[layers.shadow > 0.2] = 3
    scl[layers.cirrus > SCL_CIRRUS_OPACITY] = 10
    scl[layers.cloud > SCL_CLOUD_OPACITY] = 8
    scl[layers.cloud > 0.7] = 9
    return scl


def _bilinear(field: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``field`` at fractional indices ``(u, v)`` (broadcast), clamped to the edges."""
    u = np.clip(u, 0, field.shape[0] - 1.001)
    v = np.clip(v, 0, field.shape[1] - 1.001)
    i0 = np.floor(u).astype(np.int64)
    j0 = np.floor(v).astype(np.int64)
    fu = (u - i0).astype(np.float32)
    fv = (v - j0).astype(np.float32)
    top = field[i0, j0] * (1 - fv) + field[i0, j0 + 1] * fv
    bottom = field[i0 + 1, j0] * (1 - fv) + field[i0 + 1, j0 + 1] * fv
    return top * (1 - fu) + bottom * fu


def _periodic_window(texture: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A periodic texture over the window ``rows x cols`` (contiguous integer ranges), by tiling."""
    period_r, period_c = texture.shape
    band = texture[np.asarray(rows) % period_r]
    start = int(cols[0]) % period_c if len(cols) else 0
    repeats = -(-(start + len(cols)) // period_c)
    return np.tile(band, (1, repeats))[:, start:start + len(cols)]


def _periodic(texture: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Samples of a periodic texture at integer positions (broadcast)."""
    p = texture.shape[0]
    return texture[rows % p, cols % p]


def _fractal_field(rng: np.random.Generator, shape: tuple[int, int], *, beta: float, stretch: float = 1.0,
                   angle_deg: float = 0.0) -> np.ndarray:
    """Zero-mean, unit-variance periodic noise with power spectrum ``|k|^-beta`` (optionally streaky)."""
    noise = rng.standard_normal(shape)
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.fftfreq(shape[1])[None, :]
    angle = np.radians(angle_deg)
    k_along = kx * np.cos(angle) + ky * np.sin(angle)
    k_across = -kx * np.sin(angle) + ky * np.cos(angle)
    k = np.hypot(k_along, k_across * stretch)
    k[0, 0] = np.inf
    field = np.real(np.fft.ifft2(np.fft.fft2(noise) * k ** (-beta / 2.0)))
    field -= field.mean()
    field /= field.std() + 1e-12
    return field.astype(np.float32)


def _smooth_texture(rng: np.random.Generator, period: int, *, sigma_px: float) -> np.ndarray:
    """Periodic Gaussian-smoothed white noise, unit variance (sea surface roughness at pixel scale)."""
    texture = ndimage.gaussian_filter(rng.standard_normal((period, period)), sigma_px, mode="wrap")
    texture /= texture.std()
    return texture.astype(np.float32)
