"""Write one synthetic Sentinel-2 product and its truth: the entry point of the package.

One scene is made at the surface (sea, land, glint), seen through one atmosphere, given vessels
and clouds, and then written as Level-1C top-of-atmosphere or Level-2A surface reflectance in ESA
digital numbers, strip by strip, in the chosen layout. ``truth.geojson`` lists every vessel.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from affine import Affine
from pyproj import CRS

from pipeline.synthetic.background import SCL_CIRRUS_OPACITY, SCL_CLOUD_OPACITY, SceneModel, scl_classes
from pipeline.synthetic.identity import make_identity, sun_angles_deg
from pipeline.synthetic.land import land_in_tile, rasterize_land
from pipeline.synthetic.layouts import LAYOUTS, ProductMetadata, ProductWriter
from pipeline.synthetic.radiometry import SCENE_BANDS, add_offset_dn, boa_from_toa, parse_baseline, reflectance_to_dn
from pipeline.synthetic.tiles import DEFAULT_TILE_ID, TILE_SIZE_PX, grid_north_deg, parse_tile, pixel_to_lonlat
from pipeline.synthetic.truth import write_truth
from pipeline.synthetic.vessels import default_vessel_count, place_vessels, render_vessels, sample_vessels
from vesselwatch.errors import InputError
from vesselwatch.settings import Settings

__all__ = ["ProductInfo", "write_product"]

log = logging.getLogger(__name__)

#: Rows rendered at once; even, so the 20 m bands split cleanly (memory ~ 60 * width * STRIP_ROWS bytes).
STRIP_ROWS = 512
PIXEL_M = 10.0
LEVELS = ("L1C", "L2A")


@dataclass(frozen=True)
class ProductInfo:
    """What :func:`write_product` wrote.

    Attributes
    ----------
    out_dir : pathlib.Path
        The output directory (holds the product and ``truth.geojson``).
    product_path : pathlib.Path
        What to open: the ``.SAFE`` folder (``safe``), the STAC item JSON (``cog``) or the folder of
        GeoTIFFs (``geotiff``, the output directory itself).
    truth_path : pathlib.Path
        ``out_dir / "truth.geojson"``.
    band_paths : dict of str to pathlib.Path
        Raster file of each band (``B02 B03 B04 B08 B11``, plus ``SCL`` for L2A).
    metadata_paths : list of pathlib.Path
        Metadata files (SAFE XML and manifest, STAC item, or sidecar JSON).
    """

    out_dir: Path
    product_path: Path
    truth_path: Path
    band_paths: dict[str, Path]
    metadata_paths: list[Path]
    layout: str
    level: str
    product_id: str
    tile_id: str
    crs: CRS
    transform: Affine
    width: int
    height: int
    baseline: str
    add_offset: int
    acquired: datetime
    n_vessels: int
    cloud_cover_pct: float
    seconds: float = 0.0
    files: list[Path] = field(default_factory=list)


def write_product(
    out_dir: str | Path,
    *,
    seed: int,
    size_px: int = 1024,
    layout: str = "safe",
    level: str = "L1C",
    tile_id: str = DEFAULT_TILE_ID,
    offset_px: tuple[int, int] = (0, 0),
    baseline: str = "05.10",
    n_vessels: int | None = None,
    cloud_fraction: float | None = None,
    acquired: datetime | None = None,
    land_path: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> ProductInfo:
    """Write a synthetic Sentinel-2 product of a real MGRS tile and its vessel truth.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Output directory (created; files of an earlier product of the same name are replaced).
    seed : int
        Everything random follows from it: the same arguments give the same bytes.
    size_px : int
        Width and height of the product on the 10 m grid, at most 10980 (the full tile).
    layout : {"safe", "cog", "geotiff"}
        On-disk layout, see :mod:`pipeline.synthetic.layouts`.
    level : {"L1C", "L2A"}
        Top-of-atmosphere or surface reflectance (L2A adds the SCL band).
    tile_id : str
        MGRS tile, default ``31UET`` (North Sea off Zeeland, UTM 31N).
    offset_px : tuple of int
        ``(row, col)`` of the product's upper-left pixel in the tile grid; ``(0, 0)`` is the tile
        corner (open sea for 31UET), ``(0, 8000)`` reaches the Dutch coast.
    baseline : str
        Processing baseline; from ``04.00`` the products carry an additive offset of -1000.
    n_vessels : int or None
        Vessels to place; ``None`` means one per 6 km² of water (3..600). Vessels that find no
        room on open water are dropped, so fewer may be written.
    cloud_fraction : float or None
        Fraction under thick cloud, 0..1; ``None`` draws one from the seed (often 0..0.3).
    acquired : datetime or None
        Sensing time (UTC); ``None`` derives one from the seed.
    land_path : path or None
        Land polygons, default the bundled Natural Earth 1:10m land.
    cache_dir : path or None
        Per-tile land cache, default ``var/synthetic`` of the settings.

    Returns
    -------
    ProductInfo
    """
    started = time.perf_counter()
    settings = Settings()
    if layout not in LAYOUTS:
        raise InputError(f"layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if level not in LEVELS:
        raise InputError(f"level {level!r}: expected L1C or L2A")
    parse_baseline(baseline)
    tile = parse_tile(tile_id)
    row_off, col_off = (int(v) for v in offset_px)
    if not 16 <= size_px:
        raise InputError(f"size_px {size_px}: a product needs at least 16 pixels a side")
    if row_off < 0 or col_off < 0 or row_off + size_px > TILE_SIZE_PX or col_off + size_px > TILE_SIZE_PX:
        raise InputError(f"size_px {size_px} at offset {offset_px}: the product must lie inside the "
                         f"{TILE_SIZE_PX} x {TILE_SIZE_PX} tile")
    if cloud_fraction is not None and not 0.0 <= cloud_fraction <= 1.0:
        raise InputError(f"cloud_fraction {cloud_fraction}: expected a fraction between 0 and 1")
    if n_vessels is not None and n_vessels < 0:
        raise InputError(f"n_vessels {n_vessels}: expected zero or more")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_earlier_product(out_dir)
    land = land_in_tile(tile, Path(land_path) if land_path else settings.resolved_land_path(),
                        Path(cache_dir) if cache_dir else settings.var_dir / "synthetic")
    transform = tile.transform(PIXEL_M, row_off=row_off, col_off=col_off)
    identity = make_identity(tile, level, baseline, seed, acquired)
    centre_lon, centre_lat = pixel_to_lonlat(transform, tile.epsg, np.array([size_px / 2]), np.array([size_px / 2]))
    zenith, azimuth = sun_angles_deg(identity.acquired, float(centre_lon[0]), float(centre_lat[0]))

    rng = np.random.default_rng([seed, 20240601])
    shadow_shift = _shadow_shift_rc(rng, zenith, azimuth, tile.epsg, transform, size_px)
    model = SceneModel(transform, tile.epsg, size_px, size_px, land, rng, cloud_fraction=cloud_fraction,
                       shadow_shift_rc=shadow_shift)
    water_km2 = _water_km2(model)
    count = default_vessel_count(water_km2) if n_vessels is None else int(n_vessels)
    vessels = place_vessels(rng, sample_vessels(rng, count), model, pixel_m=PIXEL_M)
    deltas = render_vessels(model, vessels, seed, pixel_m=PIXEL_M)
    log.info("%s: %d of %d vessels placed on %.0f km² of water", identity.product_id, len(vessels), count, water_km2)

    writer = ProductWriter(layout, out_dir, identity, transform, f"EPSG:{tile.epsg}", size_px, size_px)
    add_offset = add_offset_dn(baseline)
    counts = np.zeros(12, dtype=np.int64)
    cloudy = 0
    writer.open()
    try:
        for row0 in range(0, size_px, STRIP_ROWS):
            row1 = min(row0 + STRIP_ROWS, size_px)
            toa, land_mask, vegetation = model.surface_toa(row0, row1, 0, size_px)
            deltas.add_to(toa, row0, row1, 0, size_px)
            layers = model.layers(row0, row1, 0, size_px)
            model.finish(toa, land_mask, layers, row0, 0, np.random.default_rng([seed, row0, 77]))
            reflectance = boa_from_toa(toa) if level == "L2A" else toa
            for b, band in enumerate(SCENE_BANDS[:4]):
                writer.write(band, reflectance_to_dn(reflectance[b], add_offset), row0)
            writer.write("B11", reflectance_to_dn(_block_mean(reflectance[4]), add_offset), row0 // 2)
            cloudy += int(np.count_nonzero((layers.cloud > SCL_CLOUD_OPACITY) | (layers.cirrus > SCL_CIRRUS_OPACITY)))
            if level == "L2A":
                scl = scl_classes(land_mask, vegetation, layers)[::2, ::2]
                counts += np.bincount(scl.ravel(), minlength=12)[:12]
                writer.write("SCL", np.ascontiguousarray(scl), row0 // 2)
            del toa, reflectance, layers
        cloud_cover_pct = 100.0 * cloudy / float(size_px * size_px)
        description = ProductMetadata(
            identity=identity, transform=transform, width=size_px, height=size_px, add_offset=add_offset,
            sun_zenith_deg=zenith, sun_azimuth_deg=azimuth,
            footprint_lonlat=_footprint(transform, tile.epsg, size_px),
            cloud_cover_pct=cloud_cover_pct,
            scl_percentages={i: 100.0 * c / max(counts.sum(), 1) for i, c in enumerate(counts)} if level == "L2A" else {},
        )
        files = writer.finish(description)
    except BaseException:
        writer.abort()
        raise
    truth_path = write_truth(out_dir / "truth.geojson", vessels, deltas.keypoints, transform, tile.epsg,
                             product_id=identity.product_id)
    seconds = time.perf_counter() - started
    log.info("%s: %s %s %d px written in %.1f s", identity.product_id, layout, level, size_px, seconds)
    return ProductInfo(
        out_dir=out_dir, product_path=writer.product_path, truth_path=truth_path,
        band_paths={b: s.path for b, s in writer.band_files.items()},
        metadata_paths=[f for f in files if f not in {s.path for s in writer.band_files.values()}],
        layout=layout, level=level, product_id=identity.product_id, tile_id=tile.tile_id, crs=CRS.from_epsg(tile.epsg),
        transform=transform, width=size_px, height=size_px, baseline=baseline, add_offset=add_offset,
        acquired=identity.acquired, n_vessels=len(vessels), cloud_cover_pct=cloud_cover_pct, seconds=seconds,
        files=[*files, truth_path],
    )


#: What a product written here may leave in its directory (and nothing else is ever removed).
_PRODUCT_ENTRIES = ("S2?_MSIL1C_*.SAFE", "S2?_MSIL2A_*.SAFE", "S2?_MSIL1C_*.json", "S2?_MSIL2A_*.json",
                    "B02.tif", "B03.tif", "B04.tif", "B08.tif", "B11.tif", "SCL.tif", "T?????_*_B??.tif",
                    "T?????_*_SCL.tif", "metadata.json", "truth.geojson", ".staging")


def _remove_earlier_product(out_dir: Path) -> None:
    """Delete the files of a synthetic product written earlier into ``out_dir``, so that a reader
    never finds two products (or two files of one band) there."""
    for pattern in _PRODUCT_ENTRIES:
        for entry in out_dir.glob(pattern):
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _block_mean(band: np.ndarray) -> np.ndarray:
    """2 x 2 mean (10 m -> 20 m); an odd last row or column is averaged with itself."""
    rows, cols = band.shape
    padded = np.pad(band, ((0, rows % 2), (0, cols % 2)), mode="edge")
    return padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).mean(axis=(1, 3))


def _water_km2(model: SceneModel) -> float:
    """Water area of the product from a coarse land raster, km²."""
    step = 10
    shape = (-(-model.height // step), -(-model.width // step))
    land = rasterize_land(model.land, model.transform @ Affine.scale(step), shape)
    return float((~land).mean()) * model.height * model.width * (PIXEL_M / 1000.0) ** 2


def _shadow_shift_rc(rng: np.random.Generator, zenith_deg: float, azimuth_deg: float, epsg: int,
                     transform: Affine, size_px: int) -> tuple[float, float]:
    """Offset (rows, cols) from a cloud to its shadow: away from the sun by ``height * tan(zenith)``."""
    cloud_height_m = float(rng.uniform(1000.0, 3000.0))
    distance_px = cloud_height_m * np.tan(np.radians(min(zenith_deg, 75.0))) / PIXEL_M
    x, y = transform @ (size_px / 2, size_px / 2)
    grid_bearing = np.radians(azimuth_deg + 180.0 - float(grid_north_deg(epsg, x, y)))
    return float(-distance_px * np.cos(grid_bearing)), float(distance_px * np.sin(grid_bearing))


def _footprint(transform: Affine, epsg: int, size_px: int) -> list[tuple[float, float]]:
    """Closed lon/lat ring of the product outline (corners, counter-clockwise)."""
    cols = np.array([0, size_px, size_px, 0, 0], dtype=np.float64)
    rows = np.array([size_px, size_px, 0, 0, size_px], dtype=np.float64)
    lon, lat = pixel_to_lonlat(transform, epsg, cols, rows)
    return [(float(a), float(b)) for a, b in zip(lon, lat)]

