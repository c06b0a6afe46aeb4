"""Sentinel-2 tile geometry: MGRS 100 km squares, their UTM CRS and 10 m pixel grid.

Sentinel-2 Level-1C/2A products are cut into the tiles of the Military Grid Reference System:
a tile ``31UET`` is UTM zone 31, latitude band U, 100 km square column E, row T. Its raster is
10980 x 10980 pixels of 10 m (109.8 km, overlapping the neighbouring squares by 9.8 km) whose
upper-left corner is the upper-left corner of the 100 km square.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import CRS, Geod, Transformer

from vesselwatch.errors import InputError

__all__ = [
    "DEFAULT_TILE_ID",
    "TILE_SIZE_PX",
    "MgrsTile",
    "grid_north_deg",
    "parse_tile",
    "pixel_to_lonlat",
]

#: A North Sea tile off the Dutch coast (Zeeland / South Holland): sea in the west, land in the east.
DEFAULT_TILE_ID = "31UET"
#: Width and height of a full tile at 10 m, pixels.
TILE_SIZE_PX = 10980
#: Side of a tile, metres.
TILE_SIZE_M = 109800.0

_LATITUDE_BANDS = "CDEFGHJKLMNPQRSTUVWX"  # 8 degrees each from 80 S; X spans 72-84 N
_COLUMN_SETS = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")
_ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUV"
_TILE_PATTERN = re.compile(r"^T?(\d{1,2})([C-HJ-NP-X])([A-HJ-NP-Z])([A-HJ-NP-V])$")
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class MgrsTile:
    """A Sentinel-2 tile: MGRS 100 km square and the origin of its 10 m grid.

    Attributes
    ----------
    tile_id : str
        Five-character MGRS identifier, e.g. ``"31UET"`` (no leading ``T``).
    zone : int
        UTM zone number, 1..60.
    northern : bool
        Whether the tile lies in the northern hemisphere.
    ulx_m, uly_m : float
        Upper-left corner of the tile in the UTM CRS, metres.
    """

    tile_id: str
    zone: int
    northern: bool
    ulx_m: float
    uly_m: float

    @property
    def epsg(self) -> int:
        """EPSG code of the tile's UTM CRS (326zz north, 327zz south)."""
        return (32600 if self.northern else 32700) + self.zone

    @property
    def crs(self) -> CRS:
        """The tile's UTM CRS (WGS 84)."""
        return CRS.from_epsg(self.epsg)

    @property
    def crs_name(self) -> str:
        """Human name as ESA writes it, e.g. ``"WGS84 / UTM zone 31N"``."""
        return f"WGS84 / UTM zone {self.zone}{'N' if self.northern else 'S'}"

    def transform(self, pixel_m: float = 10.0, *, row_off: int = 0, col_off: int = 0) -> Affine:
        """Affine transform of the tile grid at ``pixel_m``, shifted by a pixel offset (rows, cols)."""
        return Affine(pixel_m, 0.0, self.ulx_m + col_off * pixel_m, 0.0, -pixel_m, self.uly_m - row_off * pixel_m)


def parse_tile(tile_id: str) -> MgrsTile:
    """Parse an MGRS tile identifier (``"31UET"``, ``"T32VMK"``) into its UTM zone and origin.

    The upper-left corner is the top-left corner of the 100 km square: the column letter gives the
    easting (letter sets ``A-H``, ``J-R``, ``S-Z`` repeat every three zones, 100 km each from
    100 000 m), the row letter the northing modulo 2000 km (``A-V`` without I and O; even zones
    start at ``F``), and the latitude band resolves the 2000 km ambiguity.

    Examples
    --------
    >>> t = parse_tile("31UET")
    >>> t.epsg, t.ulx_m, t.uly_m
    (32631, 500000.0, 5800000.0)
    >>> parse_tile("T32VMK").uly_m
    6500000.0
    """
    match = _TILE_PATTERN.match(tile_id.strip().upper())
    if match is None:
        raise InputError(f"tile {tile_id!r}: expected an MGRS tile id like 31UET (zone, band, two square letters)")
    zone_text, band, column, row = match.groups()
    zone = int(zone_text)
    if not 1 <= zone <= 60:
        raise InputError(f"tile {tile_id!r}: UTM zone {zone} is outside 1..60")
    columns = _COLUMN_SETS[(zone - 1) % 3]
    if column not in columns:
        raise InputError(f"tile {tile_id!r}: column letter {column} does not exist in zone {zone} (use {columns})")
    easting_m = 100000.0 * (columns.index(column) + 1)
    row_index = (_ROW_LETTERS.index(row) - (5 if zone % 2 == 0 else 0)) % 20
    northern = band >= "N"
    band_south_deg = -80.0 + 8.0 * _LATITUDE_BANDS.index(band)
    band_north_deg = 84.0 if band == "X" else band_south_deg + 8.0
    central_lon = -183.0 + 6.0 * zone
    utm = Transformer.from_crs(4326, (32600 if northern else 32700) + zone, always_xy=True)
    _, band_northings = utm.transform([central_lon, central_lon], [band_south_deg, band_north_deg])
    band_middle_m = 0.5 * (band_northings[0] + band_northings[1])
    # The square whose centre lies nearest the middle of the latitude band, among the 2000 km cycles.
    cycles = np.arange(0, 6) * 2_000_000.0 + row_index * 100000.0
    south_edge_m = float(cycles[np.argmin(np.abs(cycles + 50000.0 - band_middle_m))])
    return MgrsTile(
        tile_id=f"{zone:02d}{band}{column}{row}", zone=zone, northern=northern,
        ulx_m=easting_m, uly_m=south_edge_m + 100000.0,
    )


def pixel_to_lonlat(transform: Affine, crs: CRS | int | str, col: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude (degrees, WGS 84) of continuous pixel coordinates ``(col, row)``.

    ``col, row`` follow rasterio: the centre of pixel (r, c) is ``(c + 0.5, r + 0.5)``.
    """
    x, y = _apply(transform, np.asarray(col, dtype=np.float64), np.asarray(row, dtype=np.float64))
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
    lon, lat = to_lonlat.transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def grid_north_deg(crs: CRS | int | str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """True bearing (degrees clockwise from north) of the grid-up direction at map points ``(x, y)``.

    This is the meridian convergence as the contracts define it: ``true = grid + grid_north_deg``.
    Computed geodesically from a 100 m step along grid up, so it holds for any projected CRS.

    Examples
    --------
    On the central meridian of a UTM zone grid up is true north; east of it (northern hemisphere)
    grid up points east of north:

    >>> float(np.round(grid_north_deg(32631, 500000.0, 5800000.0), 6))
    0.0
    >>> bool(grid_north_deg(32631, 600000.0, 5800000.0) > 1.0)
    True
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
    lon0, lat0 = to_lonlat.transform(x, y)
    lon1, lat1 = to_lonlat.transform(x, y + 100.0)
    azimuth, _, _ = _GEOD.inv(np.asarray(lon0), np.asarray(lat0), np.asarray(lon1), np.asarray(lat1))
    azimuth = np.asarray(azimuth, dtype=np.float64)
    return np.where(np.abs(azimuth) < 1e-9, 0.0, azimuth)


def _apply(transform: Affine, col: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``transform @ (col, row)``."""
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    return a * col + b * row + c, d * col + e * row + f


def tile_bounds_lonlat(tile: MgrsTile, *, margin_m: float = 0.0) -> tuple[float, float, float, float]:
    """Longitude/latitude bounding box ``(west, south, east, north)`` of the full tile plus a margin."""
    xs = np.linspace(tile.ulx_m - margin_m, tile.ulx_m + TILE_SIZE_M + margin_m, 25)
    ys = np.linspace(tile.uly_m - TILE_SIZE_M - margin_m, tile.uly_m + margin_m, 25)
    gx, gy = np.meshgrid(xs, ys)
    edge = np.zeros_like(gx, dtype=bool)
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
    to_lonlat = Transformer.from_crs(tile.epsg, 4326, always_xy=True)
    lon, lat = to_lonlat.transform(gx[edge], gy[edge])
    return float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat))

