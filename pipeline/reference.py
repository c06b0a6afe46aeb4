"""Reference layers the alerts are measured against: oil platforms, protected areas, the coastline.

Real registers are loaded by path (``Settings.platforms_path``, ``protected_areas_path``,
``coastline_path``); the repository bundles small *synthetic* demo sets under
``data/reference/`` (see its README) so a fresh clone works offline.

Platforms
    CSV with BOEM ``PlatStruc``-like columns (``Complex ID Num``, ``Structure Number``,
    ``Structure Name``, ``Latitude``, ``Longitude``, ``Removal Date``; any case, spaces or
    underscores), or any point layer GDAL reads (GeoJSON, GeoPackage, shapefile). Structures with a
    removal date are left out unless ``include_removed=True``.
Protected areas
    Polygon layers GDAL reads (GeoJSON, GeoPackage, shapefile) with WDPA-style fields ``WDPAID``,
    ``NAME``, ``DESIG``, ``IUCN_CAT``, ``MARINE`` (all optional except a geometry), plus an optional
    per-area ``ALERT_RADIUS_KM``. Geometries are reprojected to WGS84 and normalised to
    longitudes in ``[-180, 180]``, split at the antimeridian (see :func:`split_antimeridian`).
Coastline
    The Natural Earth coastline (GeoJSON, gzip allowed), indexed by :mod:`geo.coastline`
    (exact distances to great-circle segments).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from vesselwatch.errors import InputError

log = logging.getLogger(__name__)

__all__ = [
    "Platforms",
    "ProtectedAreas",
    "load_platforms",
    "load_protected_areas",
    "split_antimeridian",
    "AreaMeasure",
    "CoastDistance",
    "ReferenceLayers",
    "load_reference_layers",
]

_PLATFORM_LON = ("longitude", "lon", "long", "lng", "x", "longitude_dd", "lon_dd", "surf_longitude")
_PLATFORM_LAT = ("latitude", "lat", "y", "latitude_dd", "lat_dd", "surf_latitude")
_PLATFORM_ID = ("platform_id", "id", "structure_id", "complex_id_num")
_PLATFORM_NAME = ("structure_name", "name", "platform_name", "str_name")
_PLATFORM_REMOVED = ("removal_date", "removed_date", "removed")


def _normalised(name: Any) -> str:
    """``"Complex ID Num"`` → ``"complex_id_num"``: case, spaces and punctuation folded."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def _find(columns: dict[str, Any], names: Sequence[str]) -> Any | None:
    for name in names:
        if name in columns:
            return columns[name]
    return None


def _json_safe(value: Any) -> Any:
    """Plain JSON value of a table cell: NaN/NaT → ``None``, numpy scalars → Python, dates → ISO text."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        try:
            import pandas as pd

            if pd.isna(value):
                return None
        except (TypeError, ValueError):
            pass
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


# -- platforms ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Platforms:
    """A platform register: equal-length arrays, one entry per structure.

    Attributes
    ----------
    platform_id : ndarray of str
        Register id (BOEM: ``<Complex ID Num>-<Structure Number>``; else an id column or the row number).
    name : ndarray of object
        Structure name, or ``None``.
    lon, lat : ndarray of float
        Position, degrees WGS84, lon in ``[-180, 180)``.
    properties : list of dict
        The register's other columns per platform, JSON-safe, names as in the file.
    source : str
        Where the register was read from.
    """

    platform_id: NDArray[np.object_]
    name: NDArray[np.object_]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    properties: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return int(self.lon.size)

    def index(self) -> Any:
        """An exact nearest-platform index (:class:`geo.nearest.PlatformIndex`) keyed by ``platform_id``."""
        from geo.nearest import PlatformIndex

        return PlatformIndex(self.lon, self.lat, ids=self.platform_id)

    def within_bbox(self, bbox: tuple[float, float, float, float] | None) -> NDArray[np.bool_]:
        """Mask of platforms inside ``(west, south, east, north)`` degrees (west > east crosses 180°)."""
        if bbox is None:
            return np.ones(len(self), dtype=bool)
        west, south, east, north = bbox
        in_lat = (self.lat >= south) & (self.lat <= north)
        in_lon = (self.lon >= west) & (self.lon <= east) if west <= east else (self.lon >= west) | (self.lon <= east)
        return in_lat & in_lon


def load_platforms(path: str | Path, *, include_removed: bool = False) -> Platforms:
    """Read a platform register (CSV with lon/lat columns, or a point layer GeoJSON/GPKG/SHP).

    Parameters
    ----------
    path
        The register file.
    include_removed
        Keep structures whose ``Removal Date`` is filled in (BOEM keeps removed platforms).

    Raises
    ------
    InputError
        When the file is missing, has no longitude/latitude, or a coordinate is out of range.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(f"platform register {path}: file does not exist")
    if path.suffix.lower() in {".csv", ".txt"} or path.name.lower().endswith(".csv.gz"):
        frame = pd.read_csv(path, encoding_errors="replace", low_memory=False, skipinitialspace=True)
        lon = lat = None
    else:
        import pyogrio

        frame = pyogrio.read_dataframe(path)
        if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
            frame = frame.to_crs("EPSG:4326")
        points = frame.geometry
        if len(frame) and not (points.geom_type == "Point").all():
            raise InputError(f"platform register {path}: geometries must all be points")
        lon, lat = points.x.to_numpy(float), points.y.to_numpy(float)
        frame = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    columns = {_normalised(c): c for c in frame.columns}
    if lon is None:
        lon_column, lat_column = _find(columns, _PLATFORM_LON), _find(columns, _PLATFORM_LAT)
        if lon_column is None or lat_column is None:
            raise InputError(
                f"platform register {path}: no longitude/latitude columns (tried {list(_PLATFORM_LON)} and "
                f"{list(_PLATFORM_LAT)}); columns are {list(frame.columns)}"
            )
        lon = pd.to_numeric(frame[lon_column], errors="coerce").to_numpy(float)
        lat = pd.to_numeric(frame[lat_column], errors="coerce").to_numpy(float)
    bad = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90) & (np.abs(lon) <= 360))
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise InputError(f"platform register {path}: invalid coordinates in rows {rows} (0-based data rows)")
    keep = np.ones(len(frame), dtype=bool)
    removed_column = _find(columns, _PLATFORM_REMOVED)
    if removed_column is not None and not include_removed:
        removed = frame[removed_column]
        keep = removed.isna().to_numpy() | (removed.astype(str).str.strip() == "").to_numpy()
    ids = _platform_ids(frame, columns)
    name_column = _find(columns, _PLATFORM_NAME)
    names = frame[name_column].to_numpy(object) if name_column is not None else np.full(len(frame), None, object)
    # Wrap only what lies outside [-180, 180]: the modulo would turn 2.9 into 2.9000000000000057.
    outside = (lon < -180.0) | (lon > 180.0)
    lon = np.where(outside, ((lon + 180.0) % 360.0) - 180.0, lon)
    records = frame.to_dict(orient="records")
    properties = [{str(k): _json_safe(v) for k, v in record.items()} for record, k_ in zip(records, keep) if k_]
    names = np.array([_json_safe(n) for n in names[keep]], dtype=object)
    log.info("platforms %s: %d structures (%d removed left out)", path, int(keep.sum()), int((~keep).sum()))
    return Platforms(ids[keep], names, lon[keep], lat[keep], properties, str(path))


def _platform_ids(frame: Any, columns: dict[str, Any]) -> NDArray[np.object_]:
    complex_column = columns.get("complex_id_num") or columns.get("complex_id")
    structure_column = columns.get("structure_number") or columns.get("structure_num") or columns.get("str_no")
    if complex_column is not None and structure_column is not None:
        return np.array(
            [f"{_id_text(c)}-{_id_text(s)}" for c, s in zip(frame[complex_column], frame[structure_column])],
            dtype=object,
        )
    id_column = _find(columns, _PLATFORM_ID)
    if id_column is not None:
        return np.array([_id_text(v) for v in frame[id_column]], dtype=object)
    return np.array([str(i) for i in range(len(frame))], dtype=object)


def _id_text(value: Any) -> str:
    """An id cell as text; whole floats (pandas reads integer columns with gaps as float) lose the ``.0``."""
    value = _json_safe(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


# -- protected areas ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProtectedAreas:
    """Protected areas with WDPA-style attributes; geometries in lon/lat degrees, split at 180°.

    Attributes
    ----------
    area_id : ndarray of str
        ``WDPAID`` as text (else an ``id`` column, else the row number).
    name, designation, iucn_category : ndarray of object
        ``NAME``, ``DESIG``, ``IUCN_CAT`` (``None`` where absent).
    marine : ndarray of object
        ``MARINE`` as WDPA codes it: ``"0"`` terrestrial, ``"1"`` coastal, ``"2"`` marine (``None`` absent).
    alert_radius_km : ndarray of float
        Per-area alert radius (``ALERT_RADIUS_KM`` column, else the default given to the loader).
    geometry : ndarray of shapely (Multi)Polygon
        Lon/lat, longitudes within ``[-180, 180]``, pieces split at the antimeridian, exterior rings
        counter-clockwise.
    """

    area_id: NDArray[np.object_]
    name: NDArray[np.object_]
    designation: NDArray[np.object_]
    iucn_category: NDArray[np.object_]
    marine: NDArray[np.object_]
    alert_radius_km: NDArray[np.float64]
    geometry: NDArray[np.object_]
    source: str = ""

    def __len__(self) -> int:
        return int(self.area_id.size)

    @classmethod
    def from_geometries(
        cls,
        area_ids: Sequence[str],
        geometries: Sequence[BaseGeometry],
        *,
        alert_radius_km: float | Sequence[float] = 10.0,
        names: Sequence[str | None] | None = None,
    ) -> ProtectedAreas:
        """Areas from lon/lat polygons (normalised with :func:`split_antimeridian`); other fields ``None``."""
        n = len(area_ids)
        nothing = np.full(n, None, dtype=object)
        radius = np.broadcast_to(np.asarray(alert_radius_km, dtype=np.float64), (n,)).copy()
        shapes = np.empty(n, dtype=object)
        shapes[:] = [split_antimeridian(g) for g in geometries]
        return cls(
            np.array([str(a) for a in area_ids], dtype=object),
            nothing.copy() if names is None else np.array(list(names), dtype=object),
            nothing.copy(), nothing.copy(), nothing.copy(), radius, shapes,
        )

    def take(self, index: Sequence[int] | NDArray[np.int64] | NDArray[np.bool_]) -> ProtectedAreas:
        """The areas at ``index`` (integer positions or a mask)."""
        return ProtectedAreas(
            self.area_id[index], self.name[index], self.designation[index], self.iucn_category[index],
            self.marine[index], self.alert_radius_km[index], self.geometry[index], self.source,
        )

    def properties(self, i: int) -> dict[str, Any]:
        """Stable exported properties of area ``i`` (see ``docs/alerts.md``)."""
        return {
            "area_id": str(self.area_id[i]),
            "name": self.name[i],
            "designation": self.designation[i],
            "iucn_category": self.iucn_category[i],
            "marine": self.marine[i],
            "alert_radius_km": float(self.alert_radius_km[i]),
        }


def _object_array(values: Sequence[Any]) -> NDArray[np.object_]:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _polygonal(geometry: BaseGeometry) -> Polygon | MultiPolygon:
    """The polygons of a repaired geometry as one (Multi)Polygon (slivers reduced to lines dropped)."""
    polygons = _polygons(geometry)
    if not polygons:
        raise InputError("a protected area has no area left after repairing its invalid polygon")
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def _normalised_areas(geometries: NDArray[np.object_]) -> NDArray[np.object_]:
    """:func:`split_antimeridian` of every area, vectorised for the common case (a WDPA file has 10⁵ areas).

    An area whose longitudes lie within ``[-180, 180]`` and span at most 180° cannot cross the
    antimeridian (a crossing ring jumps by more than 180°): it is only repaired where invalid and
    oriented, in bulk. The others go through :func:`split_antimeridian` one by one.
    """
    bounds = shapely.bounds(geometries)
    simple = (bounds[:, 0] >= -180.0) & (bounds[:, 2] <= 180.0) & (bounds[:, 2] - bounds[:, 0] <= 180.0)
    out = np.empty(geometries.shape, dtype=object)
    plain = geometries[simple]
    invalid = ~shapely.is_valid(plain)
    if invalid.any():
        plain = plain.copy()
        plain[invalid] = [_polygonal(g) for g in shapely.make_valid(plain[invalid])]
    out[simple] = shapely.orient_polygons(plain, exterior_cw=False)
    out[~simple] = [split_antimeridian(g) for g in geometries[~simple]]
    return out


def load_protected_areas(
    path: str | Path, *, default_radius_km: float = 10.0, marine_only: bool = False
) -> ProtectedAreas:
    """Read protected areas (GeoJSON, GeoPackage, shapefile, ...) with WDPA-style fields.

    Parameters
    ----------
    path
        Polygon layer; any CRS (reprojected to WGS84).
    default_radius_km
        Alert radius of areas without an ``ALERT_RADIUS_KM`` value.
    marine_only
        Drop areas whose ``MARINE`` is ``"0"`` (terrestrial).

    Raises
    ------
    InputError
        When the file is missing or holds non-polygon or empty geometries.
    """
    import pyogrio

    path = Path(path)
    if not path.exists():
        raise InputError(f"protected areas {path}: file does not exist")
    if default_radius_km <= 0 or not math.isfinite(default_radius_km):
        raise InputError(f"protected areas {path}: default_radius_km must be > 0, got {default_radius_km}")
    frame = pyogrio.read_dataframe(path)
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    columns = {_normalised(c): c for c in frame.columns if c != frame.geometry.name}
    n = len(frame)

    def column(*names: str) -> NDArray[np.object_]:
        found = _find(columns, names)
        if found is None:
            return np.full(n, None, dtype=object)
        return np.array([_json_safe(v) for v in frame[found]], dtype=object)

    raw_id = column("wdpaid", "wdpa_id", "site_id", "area_id", "id")
    area_id = np.array([str(i) if v is None else _id_text(v) for i, v in enumerate(raw_id)], dtype=object)
    if len(set(area_id.tolist())) != n:
        duplicates = sorted({a for a in area_id.tolist() if area_id.tolist().count(a) > 1})[:5]
        raise InputError(f"protected areas {path}: duplicate area ids {duplicates}")
    marine = np.array([None if v is None else _id_text(v) for v in column("marine")], dtype=object)
    radius = column("alert_radius_km", "alert_radi")  # shapefiles cut field names at 10 characters
    radius_km = np.array([default_radius_km if v is None else float(v) for v in radius], dtype=np.float64)
    if (radius_km <= 0).any() or not np.isfinite(radius_km).all():
        raise InputError(f"protected areas {path}: ALERT_RADIUS_KM must be positive")
    geometries = np.asarray(frame.geometry.values, dtype=object)
    kinds = shapely.get_type_id(geometries)  # -1 missing, 3 Polygon, 6 MultiPolygon
    bad = ~np.isin(kinds, (3, 6)) | shapely.is_empty(geometries)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        kind = None if geometries[i] is None else geometries[i].geom_type
        raise InputError(f"protected areas {path}: area {area_id[i]} has no polygon geometry ({kind})")
    geometries = _normalised_areas(geometries)
    areas = ProtectedAreas(
        area_id, column("name", "orig_name"), column("desig", "desig_eng"), column("iucn_cat"), marine,
        radius_km, geometries, str(path),
    )
    if marine_only:
        areas = areas.take(np.array([m != "0" for m in marine], dtype=bool))
    log.info("protected areas %s: %d areas", path, len(areas))
    return areas


def _unwrap_ring(coords: NDArray[np.float64]) -> NDArray[np.float64]:
    """Make a ring's longitudes continuous: steps of more than 180° are taken the short way round."""
    lon = coords[:, 0]
    step = np.diff(lon)
    step = step - 360.0 * np.round(step / 360.0)
    out = coords.copy()
    out[:, 0] = lon[0] + np.concatenate([[0.0], np.cumsum(step)])
    return out


def _polygons(geometry: BaseGeometry) -> list[Polygon]:
    """The non-empty polygons inside any geometry (collections flattened, lines and points dropped)."""
    if isinstance(geometry, Polygon):
        return [] if geometry.is_empty else [geometry]
    return [p for part in getattr(geometry, "geoms", []) for p in _polygons(part)]


def split_antimeridian(geometry: BaseGeometry) -> Polygon | MultiPolygon:
    """A lon/lat polygon with longitudes in ``[-180, 180]``, cut into pieces at the antimeridian.

    Rings may come in three forms: already within ``[-180, 180]`` and not crossing (returned
    oriented), *unwrapped* beyond 180 (``[170, 190]``), or naively jumping from ``179`` to
    ``-179``; a jump of more than 180° between consecutive vertices is taken as a crossing (no
    real protected area spans half the globe in longitude). Exterior rings come out
    counter-clockwise, holes clockwise (RFC 7946).

    Examples
    --------
    >>> square = Polygon([(179, -1), (-179, -1), (-179, 1), (179, 1)])
    >>> pieces = split_antimeridian(square)
    >>> pieces.geom_type, sorted(round(p.area, 6) for p in pieces.geoms)
    ('MultiPolygon', [2.0, 2.0])
    >>> sorted(tuple(round(v, 6) for v in p.bounds) for p in pieces.geoms)
    [(-180.0, -1.0, -179.0, 1.0), (179.0, -1.0, 180.0, 1.0)]
    """
    polygons = list(geometry.geoms) if isinstance(geometry, MultiPolygon) else [geometry]
    pieces: list[Polygon] = []
    for polygon in polygons:
        exterior = _unwrap_ring(np.asarray(polygon.exterior.coords)[:, :2])
        shift = 360.0 * math.floor((exterior[:, 0].min() + 180.0) / 360.0)  # bring the west end into [-180, 180)
        exterior[:, 0] -= shift
        holes = []
        for interior in polygon.interiors:
            hole = _unwrap_ring(np.asarray(interior.coords)[:, :2])
            hole[:, 0] -= 360.0 * round((hole[:, 0].mean() - exterior[:, 0].mean()) / 360.0)
            holes.append(hole)
        unwrapped = shapely.make_valid(Polygon(exterior, holes))
        for offset in (0.0, -360.0):
            window = box(-180.0 - offset, -90.0, 180.0 - offset, 90.0)
            part = unwrapped.intersection(window)
            if part.is_empty:
                continue
            part = shapely.affinity.translate(part, xoff=offset) if offset else part
            pieces.extend(_polygons(part))
    if not pieces:
        raise InputError("polygon is empty after normalising longitudes")
    oriented = [shapely.geometry.polygon.orient(p, sign=1.0) for p in pieces]
    return oriented[0] if len(oriented) == 1 else MultiPolygon(oriented)


# -- measuring areas ------------------------------------------------------------------------------
class AreaMeasure:
    """Containment, boundary distance and heading-ray entry for protected areas, asked per pair.

    Every method takes *pairs*: equal-length arrays of a vessel position ``(lon, lat)`` (degrees)
    and an area number ``area`` (index into the :class:`ProtectedAreas`), so only the (vessel,
    area) pairs that :meth:`pairs_within` found near each other are measured, however large the
    register. The geometry is :mod:`geo.areas` (edges are great-circle arcs; exact inside test,
    point-to-arc boundary distance and first entry of a great-circle ray); each area's
    :class:`geo.areas.ProtectedAreas` is built the first time a vessel comes near it.
    """

    def __init__(self, areas: ProtectedAreas) -> None:
        self.areas = areas
        self.geometry = np.asarray(areas.geometry, dtype=object)
        self._tree = shapely.STRtree(self.geometry)
        self._spherical: dict[int, Any] = {}

    def _area(self, j: int) -> Any:
        """The :class:`geo.areas.ProtectedAreas` of area ``j`` alone (built once)."""
        if j not in self._spherical:
            from geo.areas import ProtectedAreas as SphericalAreas

            self._spherical[j] = SphericalAreas([self.geometry[j]], ids=[self.areas.area_id[j]])
        return self._spherical[j]

    def pairs_within(
        self, lon: NDArray[np.float64], lat: NDArray[np.float64], extra_km: float = 0.0
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.bool_]]:
        """Vessel/area pairs where the vessel is inside the area or within its alert radius (+ ``extra_km``).

        Returns
        -------
        (vessel, area, distance_km, inside) : tuple of ndarray
            Pair indices sorted by vessel then area, the boundary distance (0 inside) and containment.
        """
        lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool))
        if lon.size == 0 or len(self.areas) == 0:
            return empty
        reach_km = float(np.max(self.areas.alert_radius_km)) + float(extra_km)
        # a generous lon/lat box around each vessel (great-circle edges bulge a little past the
        # planar outline, hence the 0.05° margin): the exact test follows
        dlat = reach_km / 111.0 + 0.05
        dlon = np.minimum(dlat / np.maximum(np.cos(np.radians(np.minimum(np.abs(lat) + dlat, 89.9))), 1e-6), 180.0)
        found = [
            self._tree.query(shapely.box(lon - dlon + shift, lat - dlat, lon + dlon + shift, lat + dlat))
            for shift in (0.0, 360.0, -360.0)  # boxes that reach past 180° find areas on the other side
        ]
        pairs = np.unique(np.concatenate(found, axis=1), axis=1)
        vessel, area = pairs[0].astype(np.int64), pairs[1].astype(np.int64)
        inside = self.contains(lon[vessel], lat[vessel], area)
        distance = np.zeros(vessel.size)
        outside = ~inside
        distance[outside] = self.boundary_distance_km(lon[vessel][outside], lat[vessel][outside], area[outside])
        near = inside | (distance <= self.areas.alert_radius_km[area] + float(extra_km))
        return vessel[near], area[near], distance[near], inside[near]

    def contains(
        self, lon: NDArray[np.float64], lat: NDArray[np.float64], area: NDArray[np.int64]
    ) -> NDArray[np.bool_]:
        """Whether each vessel lies inside (or on the boundary of) its paired area."""
        lon, lat, area = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64), np.asarray(area)
        out = np.zeros(area.shape, dtype=bool)
        for j in np.unique(area):
            rows = area == j
            out[rows] = self._area(int(j)).contains(lon[rows], lat[rows])[:, 0]
        return out

    def boundary_distance_km(
        self, lon: NDArray[np.float64], lat: NDArray[np.float64], area: NDArray[np.int64]
    ) -> NDArray[np.float64]:
        """Great-circle distance (km) from each vessel to the boundary of its paired area.

        For a vessel outside an area split at the antimeridian this is the distance to its real
        boundary (the cut lies inside the area, so never nearer); vessels inside are not asked.
        """
        lon, lat, area = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64), np.asarray(area)
        out = np.empty(area.shape)
        for j in np.unique(area):
            rows = area == j
            out[rows] = self._area(int(j)).boundary_distance_km(lon[rows], lat[rows])[:, 0]
        return out

    def ray_entry(
        self,
        lon: NDArray[np.float64],
        lat: NDArray[np.float64],
        bearing_deg: NDArray[np.float64],
        area: NDArray[np.int64],
        max_km: float,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Where a great-circle ray from each vessel along ``bearing_deg`` first enters its paired area.

        Returns
        -------
        (entry_km, entry_lon, entry_lat) : tuple of ndarray
            Distance along the ray (km) and the entry point; NaN where the ray does not enter
            within ``max_km``; 0 for a vessel already inside.
        """
        lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        bearing, area = np.asarray(bearing_deg, dtype=np.float64), np.asarray(area)
        entry_km, entry_lon, entry_lat = (np.full(lon.shape, np.nan) for _ in range(3))
        for j in np.unique(area):
            rows = np.flatnonzero(area == j)
            hit = self._area(int(j)).ray_entry(lon[rows], lat[rows], bearing[rows], lookahead_km=max_km)
            enters = hit.enters[:, 0]
            entry_km[rows[enters]] = hit.distance_km[enters, 0]
            entry_lon[rows[enters]] = hit.lon[enters, 0]
            entry_lat[rows[enters]] = hit.lat[enters, 0]
        return entry_km, entry_lon, entry_lat


class CoastDistance:
    """Great-circle distance (km) from points to the coastline: ``CoastDistance.from_file(path)(lon, lat)``.

    A callable over :class:`geo.coastline.CoastlineIndex` (exact point-to-arc distances, coastline
    segments taken as great-circle arcs).
    """

    def __init__(self, index: Any) -> None:
        self.index = index

    @classmethod
    def from_lines(cls, lines: Sequence[ArrayLike]) -> CoastDistance:
        """Index polylines given as ``(n, 2)`` lon/lat arrays."""
        from geo.coastline import CoastlineIndex, LineChunk

        coords = [np.asarray(line, dtype=np.float64)[:, :2] for line in lines]
        if not coords:
            raise InputError("coastline: no lines given")
        stacked = np.concatenate(coords)
        starts = np.concatenate([np.arange(len(c)) == 0 for c in coords])
        return cls(CoastlineIndex.from_chunks([LineChunk(stacked[:, 0].copy(), stacked[:, 1].copy(), starts)]))

    @classmethod
    def from_file(cls, path: str | Path) -> CoastDistance:
        """Index a coastline file (Natural Earth GeoJSON, ``.gz`` allowed, or anything pyogrio reads)."""
        from geo.coastline import CoastlineIndex

        path = Path(path)
        if not path.exists():
            raise InputError(f"coastline {path}: file does not exist")
        return cls(CoastlineIndex.from_file(path))

    def __call__(self, lon: ArrayLike, lat: ArrayLike) -> NDArray[np.float64]:
        lon = np.asarray(lon, dtype=np.float64).reshape(-1)
        lat = np.asarray(lat, dtype=np.float64).reshape(-1)
        if lon.size == 0:
            return np.zeros(0)
        return np.asarray(self.index.query(lon, lat).distance_km, dtype=np.float64)


@dataclass(frozen=True)
class ReferenceLayers:
    """The reference layers one scene is measured against; a layer not configured is ``None``."""

    platforms: Any | None = None
    coast_distance_km: CoastDistance | None = None
    areas: AreaMeasure | None = None


def load_reference_layers(
    *,
    platforms_path: str | Path | None,
    protected_areas_path: str | Path | None,
    coastline_path: str | Path | None,
    default_radius_km: float = 10.0,
) -> ReferenceLayers:
    """Load platforms, protected areas and the coastline (each optional: ``None`` path, no layer).

    Raises
    ------
    InputError
        When a given file is missing or unreadable (a configured layer is never silently dropped).
    """
    platforms = load_platforms(platforms_path) if platforms_path is not None else None
    areas = None
    if protected_areas_path is not None:
        areas = load_protected_areas(protected_areas_path, default_radius_km=default_radius_km)
    return ReferenceLayers(
        platforms=platforms.index() if platforms is not None and len(platforms) else None,
        coast_distance_km=CoastDistance.from_file(coastline_path) if coastline_path is not None else None,
        areas=AreaMeasure(areas) if areas is not None and len(areas) else None,
    )
