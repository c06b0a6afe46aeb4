"""Exact nearest-platform search on the sphere (and on the WGS84 ellipsoid), ties included.

:class:`PlatformIndex` answers, for a batch of points, the great-circle distance to the nearest
platform and **every** platform at that distance.

Tie rule
--------
A platform is reported as nearest when its distance, computed by :func:`geo.haversine.distance_km`
(the same float64 kernel, query point first), is exactly equal (``==``) to the smallest such
distance: the answer is identical, value for value, to the brute force
``d = distance_km(lon, lat, platform_lon, platform_lat); np.flatnonzero(d == d.min())``.
Platforms at identical coordinates (common in real registers) are therefore always tied. Tied
platforms are listed in ascending index order (the row order of the register).

How it is fast and still exact
------------------------------
Distinct platform coordinates ("sites") are indexed by an adaptive cube-face quadtree
(:mod:`geo.cube_cells`). For a cell with covering cap (centre ``c``, radius ``r``) and nearest site
at angle ``t0`` from ``c``, every point ``x`` of the cell has a site within ``t0 + r``, and a site
``p`` can only be nearest to ``x`` if ``angle(c, p) - r <= t0 + r``; so the sites within
``t0 + 2 r`` (plus a ``1e-9`` rad rounding margin) of ``c`` contain every possible nearest site of
every point of the cell. Cells are split until at most ``max_candidates`` sites remain; a query
then evaluates the exact haversine distance to those few candidates only. Leaves that still hold
more candidates at the deepest level fall back to a k-d tree on unit vectors with the same
``1e-9`` rad slack. With ``ellipsoidal=True`` candidates are preselected on the sphere within
``(a**2/b) / (b**2/a) = (a/b)**3`` (about 1.0101) times the spherical k-th nearest angle — a proven
bound, because every curve on the WGS84 ellipsoid is between ``b**2/a`` and ``a**2/b`` times as long
as on the unit sphere — then measured exactly with :data:`geo.earth.WGS84_GEOD`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from geo.cube_cells import cell_caps, cell_code, point_codes
from geo.earth import EARTH_RADIUS_KM, WGS84_GEOD, WGS84_MAX_CURVATURE_RADIUS_KM, WGS84_MIN_CURVATURE_RADIUS_KM
from geo.haversine import haversine_angle_rad
from geo.unit_vectors import angle_from_chord, chord_from_angle, to_unit_vectors
from geo.validation import check_lon_lat, check_nonnegative
from vesselwatch.errors import InputError

logger = logging.getLogger(__name__)

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

__all__ = ["PlatformIndex", "NearestPlatforms", "brute_force_nearest"]

#: Slack (radians, about 6 mm) added to every preselection bound to absorb float64 rounding.
_SLACK_RAD = 1e-9
#: Ratio between the largest and smallest WGS84 radius of curvature: ellipsoidal preselection bound.
_ELLIPSOID_RATIO = WGS84_MAX_CURVATURE_RADIUS_KM / WGS84_MIN_CURVATURE_RADIUS_KM
#: Sites fetched per cell while building, and how many of the nearest may eliminate the others.
_CELL_K = 48
#: Cells examined while building at most this many per site (+ base) before the rest fall back.
_CELL_BUDGET_PER_SITE = 100
_CELL_BUDGET_BASE = 100_000
#: Cells whose ball of possible nearest sites holds more than ``_CELL_K`` (a whole distant field)
#: fetch again with each wider count in turn before they are split (about half are complete at 128).
_CELL_K_WIDER = (128, 512)
_DOMINATORS = 4
#: ``x . (q - p)`` must exceed this everywhere in a cell for ``q`` to eliminate ``p`` there: it keeps
#: the haversine difference far above float64 rounding (about 1e-13 rad).
_DOMINATION_MARGIN = 1e-13

_LON_NAMES = ("lon", "longitude", "long", "lng", "x", "lon_dd", "longitude_dd")
_LAT_NAMES = ("lat", "latitude", "y", "lat_dd", "latitude_dd")
_ID_NAMES = ("id", "platform_id", "complex_id_num", "complex id num", "complex_id", "structure_name", "name")


@dataclass(frozen=True)
class NearestPlatforms:
    """Result of :meth:`PlatformIndex.query` for ``n`` query points.

    Attributes
    ----------
    distance_km : ndarray (n,)
        Distance to the nearest platform (km); ``inf`` where none lies within ``max_km``.
    tie_offsets : ndarray (n + 1,)
        Row ``i`` tied platforms are ``tie_index[tie_offsets[i]:tie_offsets[i + 1]]`` (CSR layout).
    tie_index : ndarray
        Row numbers (into the index's register) of the tied nearest platforms, ascending per query.
    k_distance_km, k_index : ndarray (n, k)
        The ``k`` nearest platforms ordered by (distance, row number); ``inf`` / ``-1`` pad rows
        with fewer than ``k`` platforms within ``max_km``.
    platform_ids : ndarray
        The register's ids, indexed by row number (``platform_ids[tie_index]`` are the tied ids).
    """

    distance_km: FloatArray
    tie_offsets: IntArray
    tie_index: IntArray
    k_distance_km: FloatArray
    k_index: IntArray
    platform_ids: NDArray[Any]

    def __len__(self) -> int:
        return int(self.distance_km.shape[0])

    @property
    def nearest_index(self) -> IntArray:
        """The lowest row number among the tied nearest platforms of each query (``-1`` if none)."""
        counts = np.diff(self.tie_offsets)
        first = np.full(len(self), -1, dtype=np.int64)
        has = counts > 0
        first[has] = self.tie_index[self.tie_offsets[:-1][has]]
        return first

    @property
    def tie_count(self) -> IntArray:
        """How many platforms are tied at the nearest distance, per query."""
        return np.diff(self.tie_offsets)

    def tied_index(self, i: int) -> IntArray:
        """Row numbers of the platforms tied nearest to query ``i``."""
        return self.tie_index[self.tie_offsets[i] : self.tie_offsets[i + 1]]

    def tied_ids(self, i: int) -> NDArray[Any]:
        """Ids of the platforms tied nearest to query ``i``."""
        return self.platform_ids[self.tied_index(i)]


def brute_force_nearest(
    lon: float, lat: float, platform_lon: ArrayLike, platform_lat: ArrayLike
) -> tuple[float, IntArray]:
    """Reference answer for one point: ``(min distance km, all row numbers at exactly that distance)``.

    This is the per-vessel vectorised function of the seed article (haversine to every platform,
    then ``np.where(d == d.min())``), kept as the definition the index must reproduce.

    Examples
    --------
    >>> brute_force_nearest(0.0, 0.0, [1.0, 0.0, -1.0, 1.0], [0.0, 2.0, 0.0, 0.0])
    (111.1950802335329, array([0, 2, 3]))
    """
    from geo.haversine import distance_km

    d = distance_km(lon, lat, platform_lon, platform_lat)
    return float(d.min()), np.flatnonzero(d == d.min())


class PlatformIndex:
    """Exact nearest-platform index over a register of platform coordinates.

    Parameters
    ----------
    lon, lat : array_like (m,)
        Platform coordinates in degrees (lon wrapped to ``[-180, 180)``; lat checked).
    ids : array_like (m,), optional
        Platform ids (any dtype); defaults to the row numbers.
    max_candidates : int
        Split quadtree cells until at most this many candidate sites remain (speed/memory knob).
    max_level : int
        Deepest quadtree level (level 16 cells are about 150 m across).

    Examples
    --------
    >>> index = PlatformIndex([1.0, 1.0, -1.0, 179.9], [0.0, 0.0, 0.0, 0.0], ids=["A", "B", "C", "D"])
    >>> result = index.query([0.0, -179.9], [0.0, 0.0])
    >>> result.distance_km.round(3).tolist()
    [111.195, 22.239]
    >>> [result.tied_ids(i).tolist() for i in range(len(result))]  # duplicates and mirror images tie
    [['A', 'B', 'C'], ['D']]
    >>> index.query(0.0, 0.0, max_km=50.0).tie_count.tolist()  # nothing within 50 km
    [0]
    """

    def __init__(
        self,
        lon: ArrayLike,
        lat: ArrayLike,
        ids: ArrayLike | None = None,
        *,
        max_candidates: int = 8,
        max_level: int = 16,
    ) -> None:
        lon, lat = check_lon_lat(np.ravel(lon), np.ravel(lat), "platform ")
        if lon.size == 0:
            raise InputError("platform register is empty: at least one platform is needed")
        self.lon = lon
        self.lat = lat
        self.platform_ids = np.arange(lon.size) if ids is None else np.asarray(ids)
        if self.platform_ids.shape != lon.shape:
            raise InputError(f"ids has {self.platform_ids.size} values for {lon.size} platforms")
        self.max_candidates = int(max_candidates)
        self.max_level = int(max_level)
        self._build_sites()
        self._platform_xyz = to_unit_vectors(lon, lat)
        self._platform_tree = cKDTree(self._platform_xyz)
        self._build_leaves()

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_dataframe(
        cls,
        frame: Any,
        *,
        lon_column: str | None = None,
        lat_column: str | None = None,
        id_column: str | None = None,
        **kwargs: Any,
    ) -> PlatformIndex:
        """Index a (Geo)DataFrame: point geometries (reprojected to EPSG:4326) or lon/lat columns.

        Column names are matched case-insensitively; by default ``lon``/``longitude``/``x`` and
        ``lat``/``latitude``/``y`` (so BOEM ``Latitude``/``LATITUDE`` registers load as they are).
        """
        columns = {str(c).strip().lower(): c for c in frame.columns}

        def pick(given: str | None, names: tuple[str, ...], what: str, required: bool = True) -> Any:
            if given is not None:
                if given in frame.columns:
                    return given
                if given.strip().lower() in columns:
                    return columns[given.strip().lower()]
                raise InputError(f"{what} column {given!r} not found; columns are {list(frame.columns)}")
            for name in names:
                if name in columns:
                    return columns[name]
            if required:
                raise InputError(f"no {what} column found (tried {list(names)}); columns are {list(frame.columns)}")
            return None

        geometry = getattr(frame, "geometry", None) if lon_column is None and lat_column is None else None
        if geometry is not None and hasattr(frame, "crs") and len(frame) and (geometry.geom_type == "Point").all():
            if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
                geometry = geometry.to_crs("EPSG:4326")
            lon, lat = geometry.x.to_numpy(float), geometry.y.to_numpy(float)
        else:
            lon = frame[pick(lon_column, _LON_NAMES, "longitude")].to_numpy(float)
            lat = frame[pick(lat_column, _LAT_NAMES, "latitude")].to_numpy(float)
        id_name = pick(id_column, _ID_NAMES, "id", required=id_column is not None)
        ids = None if id_name is None else frame[id_name].to_numpy()
        return cls(lon, lat, ids, **kwargs)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        lon_column: str | None = None,
        lat_column: str | None = None,
        id_column: str | None = None,
        **kwargs: Any,
    ) -> PlatformIndex:
        """Index a platform register file: CSV (lon/lat columns), GeoJSON, GeoPackage or shapefile.

        Raises
        ------
        InputError
            If the file is missing, has no usable lon/lat columns or point geometries.
        """
        path = Path(path)
        if not path.exists():
            raise InputError(f"platform register {path} does not exist")
        if path.suffix.lower() in (".csv", ".txt") or path.name.lower().endswith(".csv.gz"):
            import pandas as pd

            frame = pd.read_csv(path, encoding_errors="replace", low_memory=False)
        else:
            import geopandas as gpd

            frame = gpd.read_file(path)
        try:
            return cls.from_dataframe(frame, lon_column=lon_column, lat_column=lat_column, id_column=id_column, **kwargs)
        except InputError as error:
            raise InputError(f"{path}: {error}") from None

    def _build_sites(self) -> None:
        """Group platforms at identical coordinates into sites (they always tie)."""
        key = np.stack([self.lon, self.lat], axis=1)
        site_key, inverse = np.unique(key, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        order = np.argsort(inverse, kind="stable")  # members of a site stay in ascending row order
        self._site_members = order.astype(np.int64)
        self._site_sizes = np.bincount(inverse, minlength=site_key.shape[0]).astype(np.int64)
        self._site_offsets = np.concatenate([[0], np.cumsum(self._site_sizes)]).astype(np.int64)
        self._site_lon_rad = np.radians(site_key[:, 0])
        self._site_lat_rad = np.radians(site_key[:, 1])
        self._site_cos_lat = np.cos(self._site_lat_rad)
        self._site_xyz = to_unit_vectors(site_key[:, 0], site_key[:, 1])
        self._site_tree = cKDTree(self._site_xyz)
        self._all_sites_single = bool((self._site_sizes == 1).all())

    def _build_leaves(self) -> None:
        """Adaptive quadtree: split cells until their candidate set is small (see module docstring)."""
        m = min(self.max_candidates, self._site_xyz.shape[0])
        face = np.arange(6, dtype=np.int64)
        i = np.zeros(6, dtype=np.int64)
        j = np.zeros(6, dtype=np.int64)
        starts, cands_parts, counts = [], [], []
        processed = 0
        budget = _CELL_BUDGET_PER_SITE * self._site_xyz.shape[0] + _CELL_BUDGET_BASE
        for level in range(self.max_level + 1):
            if face.size == 0:
                break
            leaf_parts, count_parts, cand_parts = [], [], []
            for lo in range(0, face.size, 16384):
                sl = slice(lo, lo + 16384)
                leaf, count, cand = self._cell_candidates(face[sl], i[sl], j[sl], level, m)
                leaf_parts.append(leaf)
                count_parts.append(count)
                cand_parts.append(cand)
            leaf = np.concatenate(leaf_parts)
            count = np.concatenate(count_parts)
            cand = np.concatenate(cand_parts)
            processed += face.size
            budget_spent = processed + 4 * int((~leaf).sum()) > budget
            if level == self.max_level or budget_spent:
                # still too many: answered by the k-d tree fallback
                count = np.where(leaf, count, -1)
                leaf = np.ones_like(leaf)
            else:
                hopeless = count < 0  # beyond the pruning range: splitting cannot help
                leaf |= hopeless
            code = cell_code(face, i, j, level, self.max_level)
            starts.append(code[leaf])
            cands_parts.append(cand[leaf])
            counts.append(count[leaf])
            split = ~leaf
            face = np.repeat(face[split], 4)
            i = np.repeat(2 * i[split], 4) + np.tile([0, 0, 1, 1], int(split.sum()))
            j = np.repeat(2 * j[split], 4) + np.tile([0, 1, 0, 1], int(split.sum()))
        start = np.concatenate(starts)
        order = np.argsort(start)
        self._leaf_start = start[order]
        self._leaf_count = np.concatenate(counts)[order].astype(np.int8)
        self._leaf_cands = np.concatenate(cands_parts)[order].astype(np.int32)
        logger.debug("platform index: %d sites, %d leaves", self._site_xyz.shape[0], self._leaf_start.size)

    def _cell_candidates(
        self, face: IntArray, i: IntArray, j: IntArray, level: int, m: int
    ) -> tuple[NDArray[np.bool_], IntArray, IntArray]:
        """Candidate sites of cells: ``(is_leaf, count, candidates (cells, m) -1 padded)``.

        A site is a candidate when it lies within ``t0 + 2 r`` of the cell centre and no site among
        the cell centre's ``_DOMINATORS`` nearest is strictly closer to every point of the cell.
        Site ``q`` beats ``p`` everywhere in a cap ``(c, r)`` iff ``min over the cap of x . (q - p)
        > 0`` (chord distance squared differs by ``2 x . (q - p)``), and that minimum is
        ``(c . w) cos r - |c x w| sin r`` for ``w = q - p``: a linear, exact test.
        """
        centre, radius = cell_caps(face, i, j, level)
        leaf, count, out, complete = self._cap_candidates(centre, radius, m, _CELL_K)
        for k in _CELL_K_WIDER:  # a whole distant field inside the ball: look at more sites before splitting
            again = np.flatnonzero(~complete)
            for lo in range(0, again.size, 1024):
                rows = again[lo : lo + 1024]
                leaf[rows], count[rows], out[rows], complete[rows] = self._cap_candidates(centre[rows], radius[rows], m, k)
        return leaf, count, out

    def _cap_candidates(
        self, centre: FloatArray, radius: FloatArray, m: int, k: int
    ) -> tuple[NDArray[np.bool_], IntArray, IntArray, NDArray[np.bool_]]:
        n_sites = self._site_xyz.shape[0]
        k = min(k, n_sites)
        chord, site = self._site_tree.query(centre, k=k)
        chord = chord.reshape(-1, k)
        site = site.reshape(-1, k)
        angle = angle_from_chord(chord)
        ball = angle <= angle[:, :1] + 2.0 * radius[:, None] + _SLACK_RAD
        complete = ~ball[:, -1] if k < n_sites else np.ones(centre.shape[0], dtype=bool)
        # far beyond a quarter circle the asin rounding grows: never prune there
        prunable = (angle[:, 0] + 2.0 * radius < 2.5)[:, None]
        xyz = self._site_xyz[site]  # (cells, k, 3)
        r = radius + _SLACK_RAD
        cos_r, sin_r = np.cos(r)[:, None], np.sin(r)[:, None]
        dominated = np.zeros(ball.shape, dtype=bool)
        for d in range(min(_DOMINATORS, k)):
            w = xyz[:, d : d + 1, :] - xyz  # (cells, k, 3)
            along = np.einsum("ci,cki->ck", centre, w)
            w_sq = np.einsum("cki,cki->ck", w, w)
            # |c x w| from |w|^2 - (c . w)^2, rounded up by 2e-8 |w| (the cancellation error bound)
            across = np.sqrt(np.maximum(w_sq - along * along, 0.0)) + 2e-8 * np.sqrt(w_sq)
            dominated |= along * cos_r - across * sin_r > _DOMINATION_MARGIN
        cand = ball & ~(dominated & prunable)
        count = cand.sum(axis=1)
        leaf = complete & (count <= m)
        # cells whose nearest site is nearly antipodal can never be pruned, however small
        count = np.where(leaf | (angle[:, 0] < 2.4), count, -1)
        # candidates first, nearest first
        order = np.argsort(~cand, axis=1, kind="stable")[:, :m]
        out = np.where(np.take_along_axis(cand, order, axis=1), np.take_along_axis(site, order, axis=1), -1)
        if out.shape[1] < m:
            out = np.pad(out, ((0, 0), (0, m - out.shape[1])), constant_values=-1)
        return leaf, count, out, complete

    def __len__(self) -> int:
        return int(self.lon.size)

    # -- queries -----------------------------------------------------------------------------
    def query(
        self,
        lon: ArrayLike,
        lat: ArrayLike,
        *,
        k: int = 1,
        max_km: float | None = None,
        ellipsoidal: bool = False,
    ) -> NearestPlatforms:
        """Nearest platforms of each point ``(lon, lat)`` (degrees, broadcast, flattened to ``n``).

        Parameters
        ----------
        k : int
            Also return the ``k`` nearest platforms (``k_distance_km``, ``k_index``).
        max_km : float, optional
            Ignore platforms farther than this; rows with none get ``inf`` and no ties.
        ellipsoidal : bool
            Measure exact WGS84 geodesic distances (``pyproj.Geod``) instead of the sphere; ties are
            then exact equalities of the geodesic distances in metres as ``Geod.inv`` returns them.

        Returns
        -------
        NearestPlatforms
        """
        lon, lat = check_lon_lat(lon, lat)
        lon, lat = np.broadcast_arrays(lon, lat)
        lon, lat = np.ascontiguousarray(lon.ravel()), np.ascontiguousarray(lat.ravel())
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        limit = np.inf if max_km is None else float(check_nonnegative(max_km, "max_km"))
        if k == 1 and not ellipsoidal:
            distance, site0, extra_rows, extra_sites = self._nearest_sites(lon, lat)
            far = distance > limit
            distance = np.where(far, np.inf, distance)
            offsets, tie_index = self._expand_sites(site0, extra_rows, extra_sites, far)
            counts = np.diff(offsets)
            k_index = np.full(counts.size, -1, dtype=np.int64)
            k_index[counts > 0] = tie_index[offsets[:-1][counts > 0]]
            return NearestPlatforms(
                distance, offsets, tie_index, distance[:, None].copy(), k_index[:, None].astype(np.int64),
                self.platform_ids,
            )
        return self._query_general(lon, lat, k, limit, ellipsoidal)

    def _nearest_sites(self, lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, IntArray, IntArray, IntArray]:
        """Exact nearest distance (km), one tied site per row, and the other tied sites (row, site)."""
        n = lon.size
        xyz = to_unit_vectors(lon, lat)
        lon_rad = np.radians(lon)
        lat_rad = np.radians(lat)
        cos_lat = np.cos(lat_rad)
        leaf = np.searchsorted(self._leaf_start, point_codes(xyz, self.max_level), side="right") - 1
        count = self._leaf_count[leaf]
        angle = np.empty(n)
        site0 = np.empty(n, dtype=np.int64)
        extra_rows: list[IntArray] = []
        extra_sites: list[IntArray] = []

        single = np.flatnonzero(count == 1)
        s = self._leaf_cands[leaf[single], 0].astype(np.int64)
        angle[single] = haversine_angle_rad(
            lon_rad[single], lat_rad[single], cos_lat[single],
            self._site_lon_rad[s], self._site_lat_rad[s], self._site_cos_lat[s],
        )
        site0[single] = s
        for c in range(2, self.max_candidates + 1):
            rows = np.flatnonzero(count == c)
            if rows.size:
                cands = self._leaf_cands[leaf[rows], :c].astype(np.int64)
                self._resolve(rows, cands, lon_rad, lat_rad, cos_lat, angle, site0, extra_rows, extra_sites)
        rows = np.flatnonzero(count < 0)
        if rows.size:
            cands = self._fallback_candidates(xyz[rows])
            self._resolve(rows, cands, lon_rad, lat_rad, cos_lat, angle, site0, extra_rows, extra_sites)
        rows_extra = np.concatenate(extra_rows) if extra_rows else np.empty(0, np.int64)
        sites_extra = np.concatenate(extra_sites) if extra_sites else np.empty(0, np.int64)
        order = np.argsort(rows_extra, kind="stable")
        return EARTH_RADIUS_KM * angle, site0, rows_extra[order], sites_extra[order]

    def _fallback_candidates(self, xyz: FloatArray) -> IntArray:
        """Candidate sites ``(rows, K)`` (``-1`` padded) within the nearest angle + slack, via the k-d tree."""
        chord, _ = self._site_tree.query(xyz, k=1)
        radius = chord_from_angle(angle_from_chord(chord) + _SLACK_RAD) * (1 + 1e-12) + 1e-15
        return _sites_within(self._site_tree, xyz, radius, start_k=8)

    def _resolve(
        self, rows: IntArray, cands: IntArray,
        lon_rad: FloatArray, lat_rad: FloatArray, cos_lat: FloatArray,
        angle: FloatArray, site0: IntArray, extra_rows: list[IntArray], extra_sites: list[IntArray],
    ) -> None:
        """Exact haversine to padded candidates; write min angle, first tied site and the extra ties."""
        valid = cands >= 0
        s = np.where(valid, cands, 0)
        a = haversine_angle_rad(
            lon_rad[rows, None], lat_rad[rows, None], cos_lat[rows, None],
            self._site_lon_rad[s], self._site_lat_rad[s], self._site_cos_lat[s],
        )
        a = np.where(valid, a, np.inf)
        best = a.min(axis=1)
        tie = a == best[:, None]
        first = np.argmax(tie, axis=1)
        angle[rows] = best
        site0[rows] = s[np.arange(rows.size), first]
        tie[np.arange(rows.size), first] = False
        r, col = np.nonzero(tie)
        if r.size:
            extra_rows.append(rows[r])
            extra_sites.append(s[r, col])

    def _expand_sites(
        self, site0: IntArray, extra_rows: IntArray, extra_sites: IntArray, far: NDArray[np.bool_]
    ) -> tuple[IntArray, IntArray]:
        """CSR of platform row numbers from the tied sites (ascending within each query)."""
        n = site0.size
        size0 = np.where(far, 0, self._site_sizes[site0])
        keep = ~far[extra_rows]
        extra_rows, extra_sites = extra_rows[keep], extra_sites[keep]
        counts = size0.copy()
        if extra_rows.size:
            np.add.at(counts, extra_rows, self._site_sizes[extra_sites])
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        out = np.empty(int(offsets[-1]), dtype=np.int64)
        if self._all_sites_single and extra_rows.size == 0:
            rows = np.flatnonzero(~far)
            out[offsets[rows]] = self._site_members[self._site_offsets[site0[rows]]]
            return offsets, out
        _ragged_fill(out, offsets[:-1], site0, size0, self._site_offsets, self._site_members)
        if extra_rows.size:
            sizes = self._site_sizes[extra_sites]
            # position of each extra site's block: after the first site and the earlier extras of its row
            cum = np.cumsum(sizes) - sizes
            group_start = np.searchsorted(extra_rows, extra_rows, side="left")
            before = cum - cum[group_start]
            _ragged_fill(out, offsets[extra_rows] + size0[extra_rows] + before, extra_sites, sizes,
                         self._site_offsets, self._site_members)
            for row in np.unique(extra_rows):
                out[offsets[row] : offsets[row + 1]].sort()
        return offsets, out

    def _query_general(self, lon: FloatArray, lat: FloatArray, k: int, limit: float, ellipsoidal: bool) -> NearestPlatforms:
        """k nearest and/or ellipsoidal distances: preselect on the sphere within a proven bound."""
        n = lon.size
        xyz = to_unit_vectors(lon, lat)
        kk = min(k, self._platform_xyz.shape[0])
        chord, _ = self._platform_tree.query(xyz, k=kk)
        chord = chord.reshape(n, kk)
        kth_angle = angle_from_chord(chord[:, -1])
        ratio = _ELLIPSOID_RATIO if ellipsoidal else 1.0
        radius_angle = kth_angle * ratio * (1 + 1e-12) + _SLACK_RAD
        if np.isfinite(limit):
            limit_angle = limit / (WGS84_MIN_CURVATURE_RADIUS_KM if ellipsoidal else EARTH_RADIUS_KM)
            radius_angle = np.minimum(radius_angle, limit_angle * (1 + 1e-12) + _SLACK_RAD)
        radius = chord_from_angle(radius_angle) * (1 + 1e-12) + 1e-15
        cands = _sites_within(self._platform_tree, xyz, radius, start_k=kk + 8)
        valid = cands >= 0
        p = np.where(valid, cands, 0)
        if ellipsoidal:
            rows, cols = np.nonzero(valid)
            _, _, metres = WGS84_GEOD.inv(lon[rows], lat[rows], self.lon[p[rows, cols]], self.lat[p[rows, cols]])
            dist = np.full(cands.shape, np.inf)
            dist[rows, cols] = np.asarray(metres, dtype=np.float64) / 1000.0
        else:
            lat_rad = np.radians(lat)
            plat_rad = np.radians(self.lat)
            a = haversine_angle_rad(
                np.radians(lon)[:, None], lat_rad[:, None], np.cos(lat_rad)[:, None],
                np.radians(self.lon)[p], plat_rad[p], np.cos(plat_rad)[p],
            )
            dist = np.where(valid, EARTH_RADIUS_KM * a, np.inf)
        dist = np.where(dist <= limit, dist, np.inf)
        index = np.where(np.isfinite(dist), p, np.iinfo(np.int64).max)
        order = np.lexsort((index, dist), axis=-1)
        dist = np.take_along_axis(dist, order, axis=1)
        index = np.take_along_axis(index, order, axis=1)
        best = dist[:, 0] if dist.shape[1] else np.full(n, np.inf)
        tie = (dist == best[:, None]) & np.isfinite(dist)
        counts = tie.sum(axis=1)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        tie_index = index[tie]  # row-major: ascending row number within each query
        k_dist = np.full((n, k), np.inf)
        k_index = np.full((n, k), -1, dtype=np.int64)
        width = min(k, dist.shape[1])
        k_dist[:, :width] = dist[:, :width]
        k_index[:, :width] = np.where(np.isfinite(dist[:, :width]), index[:, :width], -1)
        return NearestPlatforms(best.copy(), offsets, tie_index.astype(np.int64), k_dist, k_index, self.platform_ids)


def _sites_within(tree: cKDTree, xyz: FloatArray, radius: FloatArray, start_k: int) -> IntArray:
    """All points of ``tree`` within chord ``radius`` of each row, as a ``-1`` padded ``(n, K)`` array."""
    n = xyz.shape[0]
    total = tree.n
    k = min(max(start_k, 1), total)
    chord, idx = tree.query(xyz, k=k, distance_upper_bound=float(radius.max()) if n else 0.0)
    chord = np.asarray(chord).reshape(n, k)
    inside = chord <= radius[:, None]
    idx = np.where(inside, np.asarray(idx).reshape(n, k), -1)
    full = inside[:, -1] if k < total else np.zeros(n, bool)
    rows = np.flatnonzero(full)
    if rows.size:  # more points than k inside the radius: collect them exactly (rare)
        lists = tree.query_ball_point(xyz[rows], r=radius[rows])
        width = max(k, max(len(x) for x in lists))
        wide = np.full((n, width), -1, dtype=np.int64)
        wide[:, :k] = idx
        for row, members in zip(rows, lists):
            wide[row, : len(members)] = members
            wide[row, len(members) :] = -1
        idx = wide
    return idx.astype(np.int64)


def _ragged_fill(
    out: IntArray, positions: IntArray, sites: IntArray, sizes: IntArray, site_offsets: IntArray, members: IntArray
) -> None:
    """``out[positions[i] + t] = members[site_offsets[sites[i]] + t]`` for ``t < sizes[i]``."""
    total = int(sizes.sum())
    if total == 0:
        return
    step = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    out[np.repeat(positions, sizes) + step] = members[np.repeat(site_offsets[sites], sizes) + step]
