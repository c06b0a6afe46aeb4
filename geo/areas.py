"""Protected areas on the sphere: inside test, distance to the boundary, heading-ray entry.

An area is a polygon or multipolygon in ``lon, lat`` degrees whose edges are great-circle arcs
between consecutive vertices (so an edge from lon 179 to lon -179 crosses the antimeridian the short
way: antimeridian-crossing areas need no splitting). Each polygon part is projected gnomonically
about its own centre; the gnomonic projection maps great circles to straight lines, so the planar
polygon (tested with shapely) has exactly the same inside, and a great-circle ray is a straight
segment whose first crossing with an edge is the exact entry point. Parts must fit in a cap of
80 degrees around their centre.

Boundary distances are exact point-to-arc distances (:class:`geo.coastline.CoastlineIndex` over
the rings). An area supplied already split at the antimeridian (a MultiPolygon whose parts meet at
lon ±180) is still inside-tested and ray-tested correctly, but the cut counts as boundary for
:meth:`ProtectedAreas.boundary_distance_km`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from geo.coastline import CoastlineIndex, LineChunk
from geo.earth import EARTH_RADIUS_KM
from geo.haversine import destination_point
from geo.unit_vectors import from_unit_vectors, to_unit_vectors
from geo.validation import check_finite, check_lon_lat, check_nonnegative
from vesselwatch.errors import InputError

FloatArray = NDArray[np.float64]

__all__ = ["ProtectedAreas", "RayEntry"]

_MAX_PART_RADIUS_DEG = 80.0


@dataclass(frozen=True)
class RayEntry:
    """Where heading rays first enter each area; arrays ``(n_points, n_areas)``.

    ``enters`` is True when the great-circle ray enters (or starts inside) the area within the
    look-ahead; then ``distance_km`` is the distance along the ray to the entry (0 when inside)
    and ``lon, lat`` the entry point; elsewhere ``inf`` / NaN.
    """

    enters: NDArray[np.bool_]
    distance_km: FloatArray
    lon: FloatArray
    lat: FloatArray


@dataclass
class _Part:
    centre: FloatArray
    east: FloatArray
    north: FloatArray
    cap_rad: float
    polygon: shapely.Polygon  # gnomonic plane
    edges: FloatArray  # (m, 4): x0, y0, x1, y1 in the gnomonic plane

    def project(self, xyz: FloatArray) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
        depth = xyz @ self.centre
        front = depth > 1e-9
        safe = np.where(front, depth, 1.0)
        return (xyz @ self.east) / safe, (xyz @ self.north) / safe, front

    def unproject(self, gx: FloatArray, gy: FloatArray) -> FloatArray:
        v = self.centre + gx[..., None] * self.east + gy[..., None] * self.north
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


class ProtectedAreas:
    """A set of protected areas (polygons / multipolygons in lon/lat degrees).

    Parameters
    ----------
    geometries : sequence of shapely Polygon or MultiPolygon
        Coordinates ``lon, lat`` degrees; edges are great-circle arcs.
    ids : sequence, optional
        One id per area (default ``0..m-1``).

    Examples
    --------
    >>> from shapely.geometry import Polygon
    >>> box = Polygon([(179, -1), (-179, -1), (-179, 1), (179, 1)])  # across the antimeridian
    >>> areas = ProtectedAreas([box], ids=["reserve"])
    >>> areas.contains([180.0, 0.0], [0.0, 0.0])[:, 0].tolist()
    [True, False]
    >>> areas.boundary_distance_km(180.0, 0.0).round(1).tolist()
    [[111.2]]
    >>> hit = areas.ray_entry(177.0, 0.0, 90.0, lookahead_km=300.0)
    >>> bool(hit.enters[0, 0]), round(float(hit.distance_km[0, 0]), 1), round(float(hit.lon[0, 0]), 6)
    (True, 222.4, 179.0)
    >>> bool(areas.ray_entry(177.0, 0.0, 270.0, lookahead_km=300.0).enters[0, 0])  # heading away
    False
    """

    def __init__(self, geometries: Any, ids: ArrayLike | None = None) -> None:
        geometries = list(geometries)
        if not geometries:
            raise InputError("no protected areas given")
        self.ids = np.arange(len(geometries)) if ids is None else np.asarray(ids)
        if self.ids.shape[0] != len(geometries):
            raise InputError(f"ids has {self.ids.shape[0]} values for {len(geometries)} areas")
        self.geometries = geometries
        self._parts: list[list[_Part]] = []
        self._boundaries: list[CoastlineIndex] = []
        for number, geometry in enumerate(geometries):
            polygons = list(getattr(geometry, "geoms", [geometry]))
            if not polygons or any(p.geom_type != "Polygon" or p.is_empty for p in polygons):
                raise InputError(f"area {number} ({self.ids[number]!r}) is not a non-empty (Multi)Polygon")
            self._parts.append([_make_part(p, number) for p in polygons])
            rings = [r for p in polygons for r in [p.exterior, *p.interiors]]
            coords = [np.asarray(r.coords)[:, :2] for r in rings]
            starts = np.concatenate([np.r_[True, np.zeros(len(c) - 1, bool)] for c in coords])
            stacked = np.concatenate(coords)
            self._boundaries.append(CoastlineIndex.from_chunks(
                [LineChunk(stacked[:, 0].copy(), stacked[:, 1].copy(), starts)], tile_level=0, max_segment_km=20.0
            ))

    def __len__(self) -> int:
        return len(self._parts)

    @classmethod
    def from_file(cls, path: str | Path, *, id_column: str | None = None) -> ProtectedAreas:
        """Read areas from any vector file geopandas reads (reprojected to EPSG:4326)."""
        import geopandas as gpd

        path = Path(path)
        if not path.exists():
            raise InputError(f"protected-area file {path} does not exist")
        frame = gpd.read_file(path)
        if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
            frame = frame.to_crs("EPSG:4326")
        if id_column is not None and id_column not in frame.columns:
            raise InputError(f"{path}: id column {id_column!r} not found; columns are {list(frame.columns)}")
        ids = frame[id_column].to_numpy() if id_column else None
        return cls(list(frame.geometry.values), ids)

    def contains(self, lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
        """Whether each point lies inside (or on the boundary of) each area: ``(n, n_areas)``."""
        xyz = _points(lon, lat)
        out = np.zeros((xyz.shape[0], len(self)), dtype=bool)
        for a, parts in enumerate(self._parts):
            for part in parts:
                out[:, a] |= _inside(part, xyz)
        return out

    def boundary_distance_km(self, lon: ArrayLike, lat: ArrayLike) -> FloatArray:
        """Exact distance (km) from each point to each area's boundary: ``(n, n_areas)``."""
        lon, lat = check_lon_lat(lon, lat)
        lon, lat = np.broadcast_arrays(lon, lat)
        return np.stack([b.query(lon.ravel(), lat.ravel()).distance_km for b in self._boundaries], axis=1)

    def ray_entry(
        self, lon: ArrayLike, lat: ArrayLike, heading_deg: ArrayLike, *, lookahead_km: float
    ) -> RayEntry:
        """Where the great-circle ray from ``(lon, lat)`` along ``heading_deg`` (true, clockwise from
        north) first enters each area within ``lookahead_km`` (< 5000 km)."""
        lon, lat = check_lon_lat(lon, lat)
        heading = check_finite(heading_deg, "heading_deg")
        lookahead = float(check_nonnegative(lookahead_km, "lookahead_km"))
        if lookahead >= 5000.0:
            raise InputError(f"lookahead_km must be < 5000 km, got {lookahead}")
        lon, lat, heading = (a.ravel() for a in np.broadcast_arrays(lon, lat, heading))
        n = lon.size
        start = to_unit_vectors(lon, lat)
        end = to_unit_vectors(*destination_point(lon, lat, heading, lookahead))
        distance = np.full((n, len(self)), np.inf)
        entry = np.full((n, len(self), 3), np.nan)
        reach = lookahead / EARTH_RADIUS_KM
        for a, parts in enumerate(self._parts):
            for part in parts:
                near = np.flatnonzero(
                    np.arccos(np.clip(start @ part.centre, -1, 1)) <= part.cap_rad + reach + 1e-9
                )
                if near.size == 0:
                    continue
                d, point = _first_entry(part, start[near], end[near])
                better = d < distance[near, a]
                distance[near[better], a] = d[better]
                entry[near[better], a] = point[better]
        enters = np.isfinite(distance) & (distance <= lookahead + 1e-9)
        distance = np.where(enters, distance, np.inf)
        entry_lon, entry_lat = from_unit_vectors(np.where(enters[..., None], entry, np.nan))
        return RayEntry(enters, distance, entry_lon, entry_lat)


def _points(lon: ArrayLike, lat: ArrayLike) -> FloatArray:
    lon, lat = check_lon_lat(lon, lat)
    lon, lat = np.broadcast_arrays(lon, lat)
    return to_unit_vectors(lon.ravel(), lat.ravel())


def _make_part(polygon: shapely.Polygon, number: int) -> _Part:
    rings = [np.asarray(r.coords)[:, :2] for r in [polygon.exterior, *polygon.interiors]]
    xyz = [to_unit_vectors(r[:, 0], r[:, 1]) for r in rings]
    total = np.concatenate(xyz).sum(axis=0)
    if np.linalg.norm(total) < 1e-9:
        raise InputError(f"area {number}: polygon part has no defined centre (spans the globe)")
    centre = total / np.linalg.norm(total)
    cap = float(np.arccos(np.clip(np.concatenate(xyz) @ centre, -1, 1)).max())
    if np.degrees(cap) > _MAX_PART_RADIUS_DEG:
        raise InputError(f"area {number}: a polygon part extends {np.degrees(cap):.1f} deg from its centre (max 80)")
    helper = np.array([0.0, 0.0, 1.0]) if abs(centre[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    east = np.cross(helper, centre)
    east /= np.linalg.norm(east)
    north = np.cross(centre, east)
    part = _Part(centre, east, north, cap, shapely.Polygon(), np.zeros((0, 4)))
    planar = []
    edges = []
    for ring in xyz:
        gx, gy, _ = part.project(ring)
        planar.append(np.column_stack([gx, gy]))
        edges.append(np.column_stack([gx[:-1], gy[:-1], gx[1:], gy[1:]]))
    part.polygon = shapely.Polygon(planar[0], planar[1:])
    shapely.prepare(part.polygon)
    part.edges = np.concatenate(edges)
    return part


def _inside(part: _Part, xyz: FloatArray) -> NDArray[np.bool_]:
    gx, gy, front = part.project(xyz)
    inside = np.zeros(xyz.shape[0], dtype=bool)
    rows = np.flatnonzero(front)
    inside[rows] = shapely.intersects_xy(part.polygon, gx[rows], gy[rows])
    return inside


def _first_entry(part: _Part, start: FloatArray, end: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Distance (km) along each ray to its first contact with the part, and the contact point."""
    n = start.shape[0]
    distance = np.full(n, np.inf)
    point = np.full((n, 3), np.nan)
    sx, sy, s_front = part.project(start)
    ex, ey, e_front = part.project(end)
    inside = _inside(part, start)
    distance[inside] = 0.0
    point[inside] = start[inside]
    rows = np.flatnonzero(~inside & s_front & e_front)  # both ends in front: the ray maps to a segment
    if rows.size == 0:
        return distance, point
    e = part.edges
    for lo in range(0, rows.size, max(1, 2_000_000 // max(1, e.shape[0]))):
        r = rows[lo : lo + max(1, 2_000_000 // max(1, e.shape[0]))]
        px, py = sx[r, None], sy[r, None]
        dx, dy = (ex[r] - sx[r])[:, None], (ey[r] - sy[r])[:, None]
        ax, ay = e[None, :, 0], e[None, :, 1]
        bx, by = (e[:, 2] - e[:, 0])[None, :], (e[:, 3] - e[:, 1])[None, :]
        denom = dx * by - dy * bx
        with np.errstate(invalid="ignore", divide="ignore"):
            t = ((ax - px) * by - (ay - py) * bx) / denom
            s = ((ax - px) * dy - (ay - py) * dx) / denom
        hit = (denom != 0) & (t >= 0) & (t <= 1) & (s >= 0) & (s <= 1)
        t = np.where(hit, t, np.inf)
        first = t.min(axis=1)
        ok = np.isfinite(first)
        if ok.any():
            gx = px[ok, 0] + first[ok] * dx[ok, 0]
            gy = py[ok, 0] + first[ok] * dy[ok, 0]
            contact = part.unproject(gx, gy)
            cross = np.cross(start[r[ok]], contact)
            angle = np.arctan2(np.linalg.norm(cross, axis=1), np.einsum("ij,ij->i", start[r[ok]], contact))
            distance[r[ok]] = angle * EARTH_RADIUS_KM
            point[r[ok]] = contact
    return distance, point
