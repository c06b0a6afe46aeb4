"""Exact distance to a coastline made of great-circle arcs, divided into cube-face tiles.

A coastline is a set of polylines whose segments are great-circle arcs between consecutive
vertices (``lon, lat`` degrees, as in GeoJSON). :class:`CoastlineIndex` answers, for a batch of
points, the exact distance to the nearest *segment* (not the nearest vertex) and the nearest point
on it.

Divide and conquer
------------------
Vertices are assigned to the cube-face quadtree cells of :mod:`geo.cube_cells` at ``tile_level``
(level 0, the default: the 6 cube faces; level 2: 96 tiles). A segment belongs to the tile of its
first vertex; a segment that leaves its tile brings a copy of its end vertex along, so each tile
is self-contained: its vertices, which of them start a segment, a k-d tree of their unit vectors,
its longest segment ``l_max`` and a cap (centre, radius) containing all of its segments. Tiles are
built independently (in parallel, or on separate machines: the partition is what a Dask cluster
would spread) and the coastline is read in chunks, so memory is essentially the final arrays
(100 million vertices peaked at about 6.1 GB, densification temporaries included).

Provable bounds
---------------
* Tile: every point of a tile's segments lies in its cap, so ``angle(q, centre) - radius`` is a
  lower bound of the distance to anything in the tile; tiles whose bound is not below the best
  distance found so far are never opened.
* Segment: a segment starting at vertex ``v`` with length ``l`` is no closer than
  ``angle(q, v) - l``. Inside a tile, the vertices nearest to ``q`` are visited in rounds of ``K``
  (``K`` grows four-fold); the search stops when the ``K``-th nearest vertex is farther than
  ``best + l_max``, so no unvisited segment can be closer. Long segments are split at build time
  into pieces of at most ``max_segment_km`` along the same great circle (the geometry is
  unchanged), which keeps ``l_max`` and therefore the search small.

Zero-length segments (repeated vertices, present in Natural Earth 10m) have no great circle: they
are measured as points, never as a false 0 km. Unit vectors make the antimeridian and the poles
ordinary places.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from geo.cube_cells import cell_caps, point_cells
from geo.earth import EARTH_RADIUS_KM
from geo.unit_vectors import angle_from_chord, chord_from_angle, from_unit_vectors, to_unit_vectors
from geo.validation import check_lon_lat
from vesselwatch.errors import InputError

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

__all__ = ["CoastlineIndex", "CoastDistance", "LineChunk", "point_to_arc", "read_line_chunks"]


@dataclass(frozen=True)
class LineChunk:
    """A batch of whole polylines: vertex ``lon, lat`` (degrees) and ``line_start`` (True at each
    line's first vertex)."""

    lon: FloatArray
    lat: FloatArray
    line_start: BoolArray

    def __len__(self) -> int:
        return int(self.lon.size)


@dataclass(frozen=True)
class CoastDistance:
    """Result of :meth:`CoastlineIndex.query`: distance (km) and the nearest coast point (degrees)."""

    distance_km: FloatArray
    lon: FloatArray
    lat: FloatArray


def point_to_arc(q: FloatArray, a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Exact angle (radians) from unit vectors ``q`` to the great-circle arcs ``a -> b``, and the
    nearest point (unit vectors). Shapes ``(..., 3)`` broadcast.

    The arc normal is computed as ``a x (b - a)`` (exact for short arcs, where ``b - a`` is exact);
    an arc with identical endpoints is a point.

    Examples
    --------
    >>> q = to_unit_vectors(10.0, 1.0)
    >>> a, b = to_unit_vectors(0.0, 0.0), to_unit_vectors(20.0, 0.0)
    >>> angle, point = point_to_arc(q, a, b)
    >>> round(float(angle) * EARTH_RADIUS_KM, 3), [round(float(x), 6) for x in from_unit_vectors(point)]
    (111.195, [10.0, 0.0])
    >>> angle, _ = point_to_arc(q, a, a)  # zero-length segment: distance to the point, never 0
    >>> round(float(angle) * EARTH_RADIUS_KM, 1)
    1117.4
    """
    q, a, b = np.broadcast_arrays(np.asarray(q, float), np.asarray(a, float), np.asarray(b, float))
    normal = np.cross(a, b - a)
    norm = np.sqrt(np.einsum("...i,...i->...", normal, normal))
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = normal / norm[..., None]
        up = np.einsum("...i,...i->...", q, unit)
        inside = (
            (norm > 0.0)
            & (np.einsum("...i,...i->...", q, np.cross(unit, a)) >= 0.0)
            & (np.einsum("...i,...i->...", q, np.cross(b, unit)) >= 0.0)
        )
        foot = q - up[..., None] * unit
        foot_norm = np.sqrt(np.einsum("...i,...i->...", foot, foot))
        inside &= foot_norm > 0.0
        arc_angle = np.arctan2(np.abs(up), foot_norm)
        foot = foot / foot_norm[..., None]
    angle_a = _angle(q, a)
    angle_b = _angle(q, b)
    end_angle = np.minimum(angle_a, angle_b)
    end_point = np.where((angle_a <= angle_b)[..., None], a, b)
    angle = np.where(inside, np.minimum(arc_angle, end_angle), end_angle)
    point = np.where(inside[..., None], foot, end_point)
    return angle, point


def arc_angle(q: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
    """The angle of :func:`point_to_arc` only, from components (no nearest point; faster).

    Uses the same exact tests: with ``d = b - a`` and ``n = a x d``, the foot of ``q`` on the great
    circle lies inside the arc iff ``q.(n x a) = q.d - (q.a)(a.d) >= 0`` and
    ``q.(b x n) = (q.a)(b.d) - (q.d)(a.b) >= 0``.
    """
    qx, qy, qz = q[..., 0], q[..., 1], q[..., 2]
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    dx, dy, dz = bx - ax, by - ay, bz - az
    nx, ny, nz = ay * dz - az * dy, az * dx - ax * dz, ax * dy - ay * dx
    norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    qa = qx * ax + qy * ay + qz * az
    qd = qx * dx + qy * dy + qz * dz
    ad = ax * dx + ay * dy + az * dz
    bd = bx * dx + by * dy + bz * dz
    ab = ax * bx + ay * by + az * bz
    inside = (norm > 0.0) & (qd - qa * ad >= 0.0) & (qa * bd - qd * ab >= 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        up = np.abs(qx * nx + qy * ny + qz * nz) / norm
    arc = np.arcsin(np.minimum(np.where(inside, up, 1.0), 1.0))
    ex, ey, ez = qx - ax, qy - ay, qz - az
    fx, fy, fz = qx - bx, qy - by, qz - bz
    chord = np.sqrt(np.minimum(ex * ex + ey * ey + ez * ez, fx * fx + fy * fy + fz * fz))
    ends = 2.0 * np.arcsin(np.minimum(0.5 * chord, 1.0))
    return np.where(inside, np.minimum(arc, ends), ends)


def _angle(a: FloatArray, b: FloatArray) -> FloatArray:
    cross = np.cross(a, b)
    return np.arctan2(np.sqrt(np.einsum("...i,...i->...", cross, cross)), np.einsum("...i,...i->...", a, b))


@dataclass
class _Tile:
    """One self-contained tile: vertices, segment starts, k-d tree and bounds."""

    xyz: FloatArray  # (n, 3) unit vectors
    has_next: BoolArray  # vertex i starts a segment to vertex i + 1
    tree: cKDTree
    max_segment_rad: float
    centre: FloatArray  # (3,)
    radius_rad: float


class CoastlineIndex:
    """Exact point-to-coastline distances over great-circle segments, tiled on the cube faces.

    Build with :meth:`from_file` (GeoJSON, optionally gzipped, or anything pyogrio reads) or
    :meth:`from_chunks` (an iterable of :class:`LineChunk`).

    Examples
    --------
    >>> chunk = LineChunk(np.array([179.0, -179.0, 10.0, 10.0]), np.array([0.0, 0.0, 80.0, 80.0]),
    ...                   np.array([True, False, True, False]))
    >>> index = CoastlineIndex.from_chunks([chunk])
    >>> result = index.query([180.0, 10.0], [1.0, 90.0])
    >>> result.distance_km.round(3).tolist()  # across the antimeridian; a zero-length line near the pole
    [111.195, 1111.951]
    >>> result.lon.round(6).tolist(), result.lat.round(6).tolist()
    ([-180.0, 10.0], [0.0, 80.0])
    """

    def __init__(self, tiles: list[_Tile]) -> None:
        if not tiles:
            raise InputError("coastline has no vertices")
        self.tiles = tiles
        self._centres = np.stack([t.centre for t in tiles])
        self._radii = np.array([t.radius_rad for t in tiles])

    @property
    def n_vertices(self) -> int:
        """Vertices stored (after splitting long segments, with tile-crossing end copies)."""
        return int(sum(t.xyz.shape[0] for t in self.tiles))

    @property
    def n_segments(self) -> int:
        """Great-circle segments indexed (zero-length ones included)."""
        return int(sum(int(t.has_next.sum()) for t in self.tiles))

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path, **kwargs: object) -> CoastlineIndex:
        """Index the lines of a file, reading it in chunks (see :func:`read_line_chunks`)."""
        chunk_vertices = int(kwargs.pop("chunk_vertices", 2_000_000))  # type: ignore[arg-type]
        return cls.from_chunks(read_line_chunks(path, chunk_vertices=chunk_vertices), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_chunks(
        cls,
        chunks: Iterable[LineChunk],
        *,
        tile_level: int = 0,
        max_segment_km: float = 2.0,
        workers: int = 1,
    ) -> CoastlineIndex:
        """Index polylines given as chunks of whole lines.

        Parameters
        ----------
        tile_level : int
            Quadtree level of the tiles (``6 * 4**tile_level`` cells; empty ones are dropped).
        max_segment_km : float
            Longer segments are split along their great circle into pieces at most this long.
        workers : int
            Threads used to build the tiles' k-d trees.
        """
        max_segment_rad = max_segment_km / EARTH_RADIUS_KM
        parts: dict[int, list[tuple[FloatArray, BoolArray]]] = {}
        for chunk in chunks:
            for tile_id, xyz, has_next in _tile_chunk(chunk, tile_level, max_segment_rad):
                parts.setdefault(tile_id, []).append((xyz, has_next))
        tile_ids = sorted(parts)

        def build(tile_id: int) -> _Tile:
            pieces = parts[tile_id]
            xyz = np.concatenate([p[0] for p in pieces]) if len(pieces) > 1 else pieces[0][0]
            has_next = np.concatenate([p[1] for p in pieces]) if len(pieces) > 1 else pieces[0][1]
            pieces.clear()
            starts = np.flatnonzero(has_next)
            seg = _angle(xyz[starts], xyz[starts + 1]) if starts.size else np.zeros(0)
            face, i, j = _tile_of(tile_id, tile_level)
            centre, _ = cell_caps(np.array([face]), np.array([i]), np.array([j]), tile_level)
            radius = float(_angle(xyz, centre[0]).max()) + 1e-12
            tree = cKDTree(xyz, copy_data=False, balanced_tree=False, compact_nodes=False, leafsize=32)
            return _Tile(xyz, has_next, tree, float(seg.max(initial=0.0)) * (1 + 1e-12) + 1e-15, centre[0], radius)

        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                tiles = list(pool.map(build, tile_ids))
        else:
            tiles = [build(t) for t in tile_ids]
        logger.debug("coastline index: %d tiles", len(tiles))
        return cls(tiles)

    # -- queries -----------------------------------------------------------------------------
    def query(self, lon: ArrayLike, lat: ArrayLike, *, workers: int = 1, chunk_size: int = 65536) -> CoastDistance:
        """Distance (km) from each ``(lon, lat)`` (degrees, broadcast) to the nearest coast segment.

        Returns the nearest coast point too. ``workers`` threads process chunks of ``chunk_size``
        points in parallel.
        """
        lon, lat = check_lon_lat(lon, lat)
        lon, lat = np.broadcast_arrays(lon, lat)
        shape = lon.shape
        xyz = to_unit_vectors(lon.ravel(), lat.ravel())
        n = xyz.shape[0]
        angle = np.empty(n)
        point = np.empty((n, 3))

        def run(lo: int) -> None:
            sl = slice(lo, min(lo + chunk_size, n))
            angle[sl], point[sl] = self._query_unit(xyz[sl])

        starts = range(0, n, chunk_size)
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(run, starts))
        else:
            for lo in starts:
                run(lo)
        out_lon, out_lat = from_unit_vectors(point)
        return CoastDistance((EARTH_RADIUS_KM * angle).reshape(shape), out_lon.reshape(shape), out_lat.reshape(shape))

    def _query_unit(self, q: FloatArray) -> tuple[FloatArray, FloatArray]:
        n = q.shape[0]
        best = np.full(n, np.inf)
        point = np.zeros((n, 3))
        # arccos loses ~1e-8 rad near 0: subtract a margin so the bound stays a lower bound
        lower = np.arccos(np.clip(q @ self._centres.T, -1.0, 1.0)) - self._radii[None, :] - 1e-7
        first = np.argmin(lower, axis=1)
        for t in np.unique(first):
            rows = np.flatnonzero(first == t)
            self._search_tile(t, q, rows, best, point)
        for t in range(len(self.tiles)):
            rows = np.flatnonzero((lower[:, t] < best) & (first != t))
            if rows.size:
                self._search_tile(t, q, rows, best, point)
        return best, point

    def _search_tile(self, t: int, q: FloatArray, rows: IntArray, best: FloatArray, point: FloatArray) -> None:
        """Improve ``best``/``point`` of ``rows`` with the segments of tile ``t`` (exact, see module doc)."""
        tile = self.tiles[t]
        total = tile.xyz.shape[0]
        slack = tile.max_segment_rad + 1e-12
        k = min(16, total)
        while rows.size:
            qs = q[rows]
            limit = np.minimum(best[rows] + slack, np.pi)
            chord, idx = tile.tree.query(qs, k=k, distance_upper_bound=float(chord_from_angle(limit.max())) * (1 + 1e-12) + 1e-15)
            chord = chord.reshape(rows.size, k)
            idx = idx.reshape(rows.size, k)
            present = idx < total
            vi = np.where(present, idx, 0)
            nxt = np.minimum(np.where(tile.has_next[vi], vi + 1, vi), total - 1)
            angle = arc_angle(qs[:, None, :], tile.xyz[vi], tile.xyz[nxt])
            angle = np.where(present, angle, np.inf)
            col = np.argmin(angle, axis=1)
            line = np.arange(rows.size)
            found = angle[line, col]
            better = np.flatnonzero(found < best[rows])
            if better.size:
                rb, cb = rows[better], col[better]
                exact, near = point_to_arc(q[rb], tile.xyz[vi[better, cb]], tile.xyz[nxt[better, cb]])
                best[rb] = exact
                point[rb] = near
            if k >= total:
                break
            kth = angle_from_chord(chord[:, -1])  # inf when fewer than k vertices are within the bound
            pending = kth <= best[rows] + slack
            rows = rows[pending]
            k = min(4 * k, total)


def _tile_of(tile_id: int, level: int) -> tuple[int, int, int]:
    size = 1 << level
    return tile_id // (size * size), (tile_id // size) % size, tile_id % size


def _tile_chunk(chunk: LineChunk, level: int, max_segment_rad: float) -> Iterator[tuple[int, FloatArray, BoolArray]]:
    """Split a chunk of lines into per-tile vertex runs (with end copies of tile-crossing segments)."""
    lon, lat = check_lon_lat(chunk.lon, chunk.lat, "coastline ")
    xyz = to_unit_vectors(lon, lat)
    line_start = np.asarray(chunk.line_start, dtype=bool).copy()
    if line_start.size:
        line_start[0] = True
    xyz, line_start = _split_long_segments(xyz, line_start, max_segment_rad)
    n = xyz.shape[0]
    if n == 0:
        return
    has_next = np.zeros(n, dtype=bool)
    has_next[:-1] = ~line_start[1:]
    face, i, j = point_cells(xyz, level)
    size = 1 << level
    tile = (face * size + i) * size + j
    crossing = np.flatnonzero(has_next[:-1] & (tile[:-1] != tile[1:]))
    # each crossing segment's end vertex is copied into the start vertex's tile, right after it
    order_key = np.concatenate([np.arange(n) * 2, crossing * 2 + 1])
    all_tile = np.concatenate([tile, tile[crossing]])
    all_vertex = np.concatenate([np.arange(n), crossing + 1])
    all_next = np.concatenate([has_next, np.zeros(crossing.size, dtype=bool)])
    order = np.lexsort((order_key, all_tile))
    all_tile, all_vertex, all_next = all_tile[order], all_vertex[order], all_next[order]
    bounds = np.flatnonzero(np.diff(all_tile)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, all_tile.size]):
        yield int(all_tile[lo]), np.ascontiguousarray(xyz[all_vertex[lo:hi]]), all_next[lo:hi].copy()


def _split_long_segments(xyz: FloatArray, line_start: BoolArray, max_rad: float) -> tuple[FloatArray, BoolArray]:
    """Insert vertices along the great circle of segments longer than ``max_rad`` (geometry unchanged)."""
    n = xyz.shape[0]
    if n < 2:
        return xyz, line_start
    seg_valid = ~line_start[1:]
    length = _angle(xyz[:-1], xyz[1:])
    pieces = np.where(seg_valid & (length > max_rad), np.ceil(length / max_rad), 1).astype(np.int64)
    pieces = np.minimum(pieces, 1_000_000)
    if (pieces == 1).all():
        return xyz, line_start
    extra = pieces - 1
    repeat = np.r_[extra + 1, 1]  # vertex i followed by extra[i] inserted points
    out_start = np.cumsum(repeat) - repeat
    total = int(repeat.sum())
    out = np.empty((total, 3))
    out[out_start] = xyz
    new_start = np.zeros(total, dtype=bool)
    new_start[out_start] = line_start
    seg = np.repeat(np.arange(n - 1), extra)
    step = np.arange(seg.size) - np.repeat(np.cumsum(extra) - extra, extra) + 1
    frac = step / pieces[seg]
    a, b, theta = xyz[seg], xyz[seg + 1], length[seg]
    with np.errstate(invalid="ignore", divide="ignore"):
        wa = np.sin((1 - frac) * theta) / np.sin(theta)
        wb = np.sin(frac * theta) / np.sin(theta)
    inserted = wa[:, None] * a + wb[:, None] * b
    inserted /= np.linalg.norm(inserted, axis=1)[:, None]
    out[np.repeat(out_start[:-1], extra) + step] = inserted
    return out, new_start


def read_line_chunks(path: str | Path, *, chunk_vertices: int = 2_000_000) -> Iterator[LineChunk]:
    """Read the (Multi)LineString and Polygon boundaries of a file as chunks of whole lines.

    GeoJSON (``.json``/``.geojson``, optionally ``.gz``) is parsed directly; other formats go
    through pyogrio in batches of features. Coordinates are ``lon, lat`` degrees (EPSG:4326).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"coastline file {path} does not exist")
    name = path.name.lower()
    if name.endswith((".json", ".geojson", ".json.gz", ".geojson.gz")):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
        features = data.get("features", [data]) if isinstance(data, dict) else data
        lines = (line for feature in features for line in _geojson_lines(feature.get("geometry", feature)))
        yield from _batch_lines(lines, chunk_vertices)
        return
    import pyogrio
    import shapely

    info = pyogrio.read_info(path)
    total = int(info["features"])
    step = max(1, chunk_vertices // 100)
    for skip in range(0, total, step):
        frame = pyogrio.read_dataframe(path, skip_features=skip, max_features=step)
        if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
            frame = frame.to_crs("EPSG:4326")
        geoms = shapely.boundary(frame.geometry.values) if frame.geom_type.str.contains("Polygon").any() else frame.geometry.values
        parts = shapely.get_parts(geoms)
        coords, index = shapely.get_coordinates(parts, return_index=True)
        if coords.size:
            line_start = np.r_[True, index[1:] != index[:-1]]
            yield LineChunk(coords[:, 0].copy(), coords[:, 1].copy(), line_start)


def _geojson_lines(geometry: dict) -> Iterator[list]:
    kind = geometry.get("type")
    coords = geometry.get("coordinates", [])
    if kind == "LineString":
        yield coords
    elif kind in ("MultiLineString", "Polygon"):
        yield from coords
    elif kind == "MultiPolygon":
        for polygon in coords:
            yield from polygon
    elif kind == "GeometryCollection":
        for part in geometry.get("geometries", []):
            yield from _geojson_lines(part)


def _batch_lines(lines: Iterable[list], chunk_vertices: int) -> Iterator[LineChunk]:
    buffer: list[np.ndarray] = []
    count = 0
    for line in lines:
        array = np.asarray(line, dtype=np.float64).reshape(-1, 2 if len(line) == 0 else len(line[0]))[:, :2]
        if array.shape[0] == 0:
            continue
        buffer.append(array)
        count += array.shape[0]
        if count >= chunk_vertices:
            yield _chunk_of(buffer)
            buffer, count = [], 0
    if buffer:
        yield _chunk_of(buffer)


def _chunk_of(arrays: list[np.ndarray]) -> LineChunk:
    coords = np.concatenate(arrays)
    line_start = np.zeros(coords.shape[0], dtype=bool)
    line_start[np.cumsum([0] + [a.shape[0] for a in arrays[:-1]])] = True
    return LineChunk(coords[:, 0].copy(), coords[:, 1].copy(), line_start)
