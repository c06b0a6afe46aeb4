"""Vessels of a synthetic scene: sampling, placement on open water, rendering and truth.

Each vessel is drawn by :func:`models.wake_render.render_vessel` (contract 1) into its own patch
of the cloud-free scene; the change it makes is kept as a sparse delta and added to every strip
of the product it touches, so a vessel looks the same however the product is cut into strips.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from affine import Affine
from scipy import ndimage

from models.wake_render import VesselSpec, kelvin_half_angle_deg, froude_number, render_vessel, turbulent_wake_length_m
from pipeline.synthetic.background import SCL_CIRRUS_OPACITY, SCL_CLOUD_OPACITY, SceneModel
from pipeline.synthetic.land import rasterize_land
from pipeline.synthetic.radiometry import SCENE_BANDS
from pipeline.synthetic.tiles import grid_north_deg

__all__ = ["VesselDeltas", "Vessels", "place_vessels", "render_vessels", "sample_vessels"]

log = logging.getLogger(__name__)

#: Longest persistence of the turbulent wake the renderer may draw, seconds (bounds its footprint).
_MAX_PERSISTENCE_S = 70.0
#: Clearance kept between a vessel's footprint and land or another footprint, metres.
_CLEARANCE_M = 80.0
#: Resolution of the distance-to-land grid used for placement, metres.
_PLACEMENT_GRID_M = 50.0
#: A vessel counts as under cloud where the thick-cloud opacity at its hull centre reaches this (or
#: where the scene classification marks its hull as cloud or thin cirrus).
UNDER_CLOUD_OPACITY = 0.25


@dataclass
class Vessels:
    """Equal-length arrays, one entry per vessel; positions in product pixel coordinates.

    ``col, row`` are the hull centre ``(x, y)`` in the rasterio convention; headings in degrees
    clockwise (grid: from grid up; true: from true north); lengths in metres; speed in knots.
    """

    col: np.ndarray
    row: np.ndarray
    heading_grid_deg: np.ndarray
    heading_deg: np.ndarray
    length_m: np.ndarray
    width_m: np.ndarray
    speed_kn: np.ndarray
    has_wake: np.ndarray
    under_cloud: np.ndarray
    cloud_opacity: np.ndarray
    cirrus_opacity: np.ndarray

    def __len__(self) -> int:
        return len(self.col)

    def take(self, index: np.ndarray) -> Vessels:
        """The vessels selected by ``index`` (boolean mask or integer positions)."""
        return Vessels(**{name: getattr(self, name)[index] for name in self.__dataclass_fields__})


@dataclass
class VesselDeltas:
    """Sparse change of the top-of-atmosphere reflectance made by all vessels, sorted by row.

    ``rows, cols`` (int32) are product pixels, ``values`` float32 ``(5, n)`` per scene band.
    ``keypoints`` is ``(vessels, 4, 2)`` pixel ``(x, y)`` of hull, wake end, left and right arm
    ends in product pixel coordinates, NaN where absent.
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    keypoints: np.ndarray

    def add_to(self, toa: np.ndarray, row0: int, row1: int, col0: int, col1: int) -> None:
        """Add the deltas falling inside the window to ``toa`` ``(5, row1-row0, col1-col0)`` in place."""
        lo, hi = np.searchsorted(self.rows, [row0, row1])
        rows, cols, values = self.rows[lo:hi], self.cols[lo:hi], self.values[:, lo:hi]
        inside = (cols >= col0) & (cols < col1)
        for b in range(toa.shape[0]):
            np.add.at(toa[b], (rows[inside] - row0, cols[inside] - col0), values[b, inside])


def default_vessel_count(water_km2: float) -> int:
    """One vessel per 6 km² of water, between 3 and 600."""
    return int(np.clip(round(water_km2 / 6.0), 3, 600))


def sample_vessels(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw sizes, speeds and grid headings of ``n`` vessels (no positions yet).

    About 15 % are small boats of 10-20 m; the rest 20-350 m, log-normal around 80 m. About 22 %
    have no wake (moored, drifting: under one knot).
    """
    small = rng.random(n) < 0.15
    length = np.where(small, rng.uniform(10.0, 20.0, n), np.clip(rng.lognormal(np.log(80.0), 0.7, n), 20.0, 350.0))
    width = np.clip(length / rng.uniform(4.5, 7.5, n), 3.0, 60.0)
    has_wake = rng.random(n) >= 0.22
    speed = np.where(has_wake, np.where(small, rng.uniform(5.0, 30.0, n), rng.uniform(4.0, 22.0, n)),
                     rng.uniform(0.0, 1.0, n))
    heading_grid = rng.uniform(0.0, 360.0, n)
    return {"length_m": length, "width_m": width, "has_wake": has_wake, "speed_kn": speed,
            "heading_grid_deg": heading_grid}


def footprint_px(attributes: dict[str, np.ndarray], pixel_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bounding circle of everything the renderer may draw for each vessel.

    Returns
    -------
    offset_x, offset_y : numpy.ndarray
        From the hull centre to the circle centre, pixels.
    radius : numpy.ndarray
        Circle radius, pixels (also the margin the renderer adds around its points).
    """
    points = _extent_points(attributes, pixel_m)  # (n, 5, 2) relative to hull centre
    finite = np.isfinite(points).all(axis=2)
    lo = np.where(finite[..., None], points, np.inf).min(axis=1)
    hi = np.where(finite[..., None], points, -np.inf).max(axis=1)
    centre = 0.5 * (lo + hi)
    distance = np.where(finite, np.hypot(points[..., 0] - centre[:, None, 0], points[..., 1] - centre[:, None, 1]), 0.0)
    margin = 4.0 + 3.0 * attributes["width_m"] / pixel_m + 2.0
    return centre[:, 0], centre[:, 1], distance.max(axis=1) + margin


def place_vessels(rng: np.random.Generator, attributes: dict[str, np.ndarray], model: SceneModel, *,
                  pixel_m: float = 10.0, attempts: int = 400) -> Vessels:
    """Put vessels on open water, footprints apart from land and from each other.

    Vessels are placed largest footprint first; one that finds no room after ``attempts`` random
    positions is dropped (and logged).
    """
    n = len(attributes["length_m"])
    offset_x, offset_y, radius = footprint_px(attributes, pixel_m)
    distance_to_land_px = _distance_to_land(model, pixel_m)
    edge = attributes["length_m"] / pixel_m / 2.0 + 6.0
    placed_index: list[int] = []
    placed_xy: list[tuple[float, float]] = []
    circles = np.empty((0, 3))
    for i in np.argsort(-radius):
        lo_x, hi_x = edge[i], model.width - edge[i]
        lo_y, hi_y = edge[i], model.height - edge[i]
        if hi_x <= lo_x or hi_y <= lo_y:
            continue
        x = rng.uniform(lo_x, hi_x, attempts)
        y = rng.uniform(lo_y, hi_y, attempts)
        cx, cy = x + offset_x[i], y + offset_y[i]
        ok = distance_to_land_px(cx, cy) >= radius[i] + _CLEARANCE_M / pixel_m
        if len(circles):
            gap = np.hypot(cx[:, None] - circles[None, :, 0], cy[:, None] - circles[None, :, 1])
            ok &= (gap >= radius[i] + circles[None, :, 2] + _CLEARANCE_M / pixel_m).all(axis=1)
        good = np.flatnonzero(ok)
        if not len(good):
            log.info("vessel of %.0f m dropped: no room on open water", attributes["length_m"][i])
            continue
        k = good[0]
        placed_index.append(int(i))
        placed_xy.append((float(x[k]), float(y[k])))
        circles = np.vstack([circles, [cx[k], cy[k], radius[i]]])
    order = np.argsort(placed_index)
    index = np.asarray(placed_index, dtype=np.int64)[order]
    xy = np.asarray(placed_xy, dtype=np.float64).reshape(-1, 2)[order]
    col, row = xy[:, 0], xy[:, 1]
    map_x, map_y = model.transform @ (col, row)
    heading_grid = attributes["heading_grid_deg"][index]
    heading_true = np.mod(heading_grid + grid_north_deg(model.crs, map_x, map_y), 360.0)
    rows_i, cols_i = np.floor(row).astype(np.int64), np.floor(col).astype(np.int64)
    opacity = model.cloud_opacity(rows_i, cols_i).astype(np.float64)
    cirrus = model.cirrus_opacity(rows_i, cols_i).astype(np.float64)
    # Under cloud where thick cloud dims the hull, or where the product's own cloud classification
    # (SCL 8/9/10, the cloud coverage) marks the hull as cloud or thin cirrus.
    under_cloud = (opacity >= UNDER_CLOUD_OPACITY) | (opacity > SCL_CLOUD_OPACITY) | (cirrus > SCL_CIRRUS_OPACITY)
    return Vessels(
        col=col, row=row, heading_grid_deg=heading_grid, heading_deg=heading_true,
        length_m=attributes["length_m"][index], width_m=attributes["width_m"][index],
        speed_kn=attributes["speed_kn"][index],
        has_wake=attributes["has_wake"][index], under_cloud=under_cloud, cloud_opacity=opacity,
        cirrus_opacity=cirrus,
    )


def render_vessels(model: SceneModel, vessels: Vessels, seed: int, *, pixel_m: float = 10.0) -> VesselDeltas:
    """Draw every vessel in its own patch of cloud-free top-of-atmosphere reflectance.

    Each vessel gets its own random stream ``(seed, vessel index)``, so its rendering does not
    depend on the others or on how the product is split.
    """
    attributes = {"length_m": vessels.length_m, "width_m": vessels.width_m, "speed_kn": vessels.speed_kn,
                  "has_wake": vessels.has_wake, "heading_grid_deg": vessels.heading_grid_deg}
    points = _extent_points(attributes, pixel_m)
    reach = np.nanmax(np.hypot(points[..., 0], points[..., 1]), axis=1)
    reach = reach + 4.0 + 3.0 * vessels.width_m / pixel_m + 4.0
    all_rows, all_cols, all_values = [], [], []
    keypoints = np.full((len(vessels), 4, 2), np.nan)
    for i in range(len(vessels)):
        r = int(np.ceil(reach[i]))
        row0, col0 = int(np.floor(vessels.row[i])) - r, int(np.floor(vessels.col[i])) - r
        row1, col1 = row0 + 2 * r + 1, col0 + 2 * r + 1
        before, _, _ = model.surface_toa(row0, row1, col0, col1)
        after = before.copy()
        spec = VesselSpec(
            x=float(vessels.col[i] - col0), y=float(vessels.row[i] - row0),
            heading_grid_deg=float(vessels.heading_grid_deg[i]), length_m=float(vessels.length_m[i]),
            width_m=float(vessels.width_m[i]), speed_kn=float(vessels.speed_kn[i]), has_wake=bool(vessels.has_wake[i]),
        )
        found = render_vessel(after, SCENE_BANDS, spec, pixel_m=pixel_m, rng=np.random.default_rng([seed, i, 0x5e55e1]))
        keypoints[i] = found.as_array() + np.array([col0, row0])
        delta = after - before
        changed = np.abs(delta).max(axis=0) > 1e-7
        if changed[0].any() or changed[-1].any() or changed[:, 0].any() or changed[:, -1].any():
            # The renderer drew up to the patch edge: its footprint outgrew the bound used here.
            log.warning("vessel %d: wake may be clipped at its %d px patch", i, 2 * r + 1)
        rr, cc = np.nonzero(changed)
        rr, cc = rr + row0, cc + col0
        inside = (rr >= 0) & (rr < model.height) & (cc >= 0) & (cc < model.width)
        all_rows.append(rr[inside].astype(np.int32))
        all_cols.append(cc[inside].astype(np.int32))
        all_values.append(delta[:, changed][:, inside])
    if not all_rows:
        empty = np.empty(0, dtype=np.int32)
        return VesselDeltas(empty, empty, np.empty((len(SCENE_BANDS), 0), np.float32), keypoints)
    rows = np.concatenate(all_rows)
    cols = np.concatenate(all_cols)
    values = np.concatenate(all_values, axis=1).astype(np.float32)
    order = np.argsort(rows, kind="stable")
    return VesselDeltas(rows[order], cols[order], values[:, order], keypoints)


def _extent_points(attributes: dict[str, np.ndarray], pixel_m: float) -> np.ndarray:
    """Bow, stern, farthest wake end and arm ends ``(n, 5, 2)`` relative to the hull centre, pixels."""
    length_px = attributes["length_m"] / pixel_m
    heading = np.radians(attributes["heading_grid_deg"])
    forward = np.stack([np.sin(heading), -np.cos(heading)], axis=1)
    right = np.stack([np.cos(heading), np.sin(heading)], axis=1)
    moving = attributes["has_wake"] & (attributes["speed_kn"] > 0)
    turbulent_px = turbulent_wake_length_m(attributes["speed_kn"], attributes["length_m"], _MAX_PERSISTENCE_S) / pixel_m
    arm_px = 0.7 * turbulent_px + 2.0 * length_px
    alpha = np.radians(kelvin_half_angle_deg(froude_number(attributes["speed_kn"], attributes["length_m"])))
    bow = forward * (length_px / 2)[:, None]
    stern = -bow
    wake_end = stern - forward * turbulent_px[:, None]
    back = -forward * np.cos(alpha)[:, None]
    side = right * np.sin(alpha)[:, None]
    left_end = bow + (back - side) * arm_px[:, None]
    right_end = bow + (back + side) * arm_px[:, None]
    points = np.stack([bow, stern, wake_end, left_end, right_end], axis=1)
    points[~moving, 2:] = np.nan
    return points


def _distance_to_land(model: SceneModel, pixel_m: float):
    """A function ``(x, y) pixels -> distance to the nearest land, pixels`` from a coarse land grid."""
    factor = _PLACEMENT_GRID_M / pixel_m
    margin_px = 400.0
    height = int(np.ceil((model.height + 2 * margin_px) / factor))
    width = int(np.ceil((model.width + 2 * margin_px) / factor))
    transform = model.transform @ Affine.translation(-margin_px, -margin_px) @ Affine.scale(factor)
    land = rasterize_land(model.land, transform, (height, width))
    if not land.any():
        return lambda x, y: np.full(np.shape(x), np.inf)
    distance_cells = ndimage.distance_transform_edt(~land)

    def lookup(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        i = np.floor((np.asarray(y) + margin_px) / factor).astype(np.int64)
        j = np.floor((np.asarray(x) + margin_px) / factor).astype(np.int64)
        outside = (i < 0) | (i >= height) | (j < 0) | (j >= width)
        d = distance_cells[np.clip(i, 0, height - 1), np.clip(j, 0, width - 1)] * factor - factor
        # Beyond the grid only the grid's own land is known: stay conservative near its edge.
        return np.where(outside, 0.0, d)

    return lookup
