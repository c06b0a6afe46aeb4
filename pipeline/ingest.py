"""Open a Sentinel-2 product from disk as a :class:`Scene`: bands by name, as reflectance.

Three layouts are understood, whatever the CRS:

* a ``.SAFE`` folder or its ``.zip`` (Level-1C or Level-2A, see :mod:`pipeline.safe`);
* a STAC item JSON whose assets are per-band rasters (see :mod:`pipeline.stac`);
* any folder of single-band GeoTIFFs whose file names contain the band name (``B02``, ``B8A``,
  ``SCL``), optionally with a sidecar JSON of metadata (see :func:`open_band_folder`).

Every layout is reduced to a set of :class:`BandFile` (where the raster is and how its digital
numbers become reflectance) plus :class:`SceneMetadata`; :class:`Scene` then reads any band in
any window of the scene's reference (10 m) grid, with 20 m bands resampled onto it.

Radiometry
----------
ESA products store ``DN = reflectance * QUANTIFICATION_VALUE - offset`` with ``offset`` the
``RADIO_ADD_OFFSET`` (L1C) or ``BOA_ADD_OFFSET`` (L2A) of the band (−1000 from processing
baseline 04.00), and 0 meaning no data. Reflectance is ``(DN + offset) / QUANTIFICATION_VALUE``.

A folder of GeoTIFFs without metadata has an unknown scale. The heuristic used then (and flagged
as ``SceneMetadata.radiometry == "assumed"``): 16-bit data whose 99.9th percentile exceeds
20 000 is taken as the full-range export of Sentinel Hub (``reflectance * 65535``, which is what
the sen2ships scenes are), anything else as ESA-style ``reflectance * 10000``. The detector does
not rely on this scale: it works in units of local background statistics.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from vesselwatch.errors import InputError, ProductError

log = logging.getLogger(__name__)

#: Sentinel-2 band names in ``band_id`` order (the ids used in product metadata).
BAND_IDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)

#: Bands every product must have: the detector's visible, NIR and SWIR inputs.
REQUIRED_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08", "B11")

#: STAC / common band names mapped to Sentinel-2 band names.
COMMON_NAMES: dict[str, str] = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
    "rededge2": "B06", "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09",
    "cirrus": "B10", "swir16": "B11", "swir22": "B12", "scl": "SCL",
}

#: A band name inside a file name: ``B02``, ``B8A``, ``SCL``, not preceded/followed by letters or digits.
_BAND_IN_NAME = re.compile(r"(?<![A-Za-z0-9])(B0[1-9]|B1[0-2]|B8A|SCL)(?![0-9A-Za-z])")

#: Maximum GDAL block cache while a scene is open; counted in the process RSS. Large enough
#: for a row of decoded 1024 px JPEG 2000 tiles of every band, so overlapping block reads of a
#: SAFE product decode each tile once.
GDAL_CACHE_MB = 768

Level = Literal["L1C", "L2A"]


@dataclass(frozen=True)
class BandFile:
    """Where one band lies and how its digital numbers become reflectance.

    ``reflectance = DN * scale + offset``; pixels equal to ``nodata`` become NaN.
    ``path`` is anything GDAL opens (a file, or a ``/vsizip/`` path inside a zip).
    """

    band: str
    path: str
    scale: float = 1.0 / 10000.0
    offset: float = 0.0
    nodata: float | None = None


@dataclass(frozen=True)
class SceneMetadata:
    """What is known about a product; grid fields describe the reference (10 m) grid.

    Attributes
    ----------
    product_id : str
        Product name (SAFE name without extension, STAC item id, or folder name).
    acquired : datetime or None
        Acquisition (product start) time, timezone-aware UTC.
    tile_id : str or None
        MGRS tile such as ``"31UET"``.
    level : {"L1C", "L2A"} or None
        Processing level: top-of-atmosphere (L1C) or surface (L2A) reflectance.
    crs, transform, width, height
        The reference grid: CRS, affine of pixel corners, size in pixels.
    baseline : str or None
        ESA processing baseline such as ``"05.09"``.
    path : Path
        What was opened.
    layout : {"safe", "stac", "geotiff"}
        Which reader understood the product.
    radiometry : {"metadata", "assumed"}
        Whether the DN-to-reflectance scale came from the product or from the heuristic.
    """

    product_id: str
    acquired: datetime | None
    tile_id: str | None
    level: Level | None
    crs: CRS
    transform: Affine
    width: int
    height: int
    baseline: str | None
    path: Path
    layout: str = "geotiff"
    radiometry: str = "metadata"

    @property
    def pixel_size(self) -> tuple[float, float]:
        """Pixel width and height in CRS units (both positive)."""
        return abs(self.transform.a), abs(self.transform.e)


@dataclass
class ProductDescription:
    """What a layout reader returns: metadata without the grid, and the band files."""

    product_id: str
    path: Path
    layout: str
    bands: dict[str, BandFile]
    acquired: datetime | None = None
    tile_id: str | None = None
    level: Level | None = None
    baseline: str | None = None
    radiometry: str = "metadata"
    extra: dict[str, Any] = field(default_factory=dict)


class Scene:
    """An opened product: band access by name as float32 reflectance on the 10 m grid.

    Use as a context manager (``with open_scene(path) as scene:``); the band files stay open
    until the block exits.
    """

    def __init__(self, description: ProductDescription, *, required_bands: Sequence[str] = REQUIRED_BANDS):
        self._description = description
        self._required = tuple(required_bands)
        self._stack: ExitStack | None = None
        self._datasets: dict[str, rasterio.io.DatasetReader] = {}
        self._held: tuple[tuple[int, int, int, int], dict[str, np.ndarray]] | None = None
        self.metadata: SceneMetadata | None = None

    # -- context management ------------------------------------------------------------------
    def __enter__(self) -> Scene:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        """Open every band file and fix the reference grid; raises ProductError on bad input."""
        if self._stack is not None:
            return
        description = self._description
        missing = [b for b in self._required if b not in description.bands]
        if missing:
            raise ProductError(description.path, f"band(s) {', '.join(missing)} missing "
                               f"(found: {', '.join(sorted(description.bands)) or 'none'})")
        stack = ExitStack()
        try:
            stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 1024 * 1024, GDAL_NUM_THREADS="ALL_CPUS"))
            for band, band_file in description.bands.items():
                self._datasets[band] = stack.enter_context(_open_band(band_file))
        except BaseException:
            stack.close()
            self._datasets = {}
            raise
        self._stack = stack
        self.metadata = self._grid_metadata()
        self._check_alignment()
        if description.radiometry == "assumed":
            self._assume_scale()

    def close(self) -> None:
        """Close the band files (idempotent)."""
        if self._stack is not None:
            self._stack.close()
        self._stack = None
        self._datasets = {}

    # -- public API --------------------------------------------------------------------------
    @property
    def band_names(self) -> list[str]:
        """Reflectance bands available, in Sentinel-2 order (SCL excluded)."""
        return [b for b in BAND_IDS if b in self._description.bands]

    @property
    def has_scl(self) -> bool:
        """Whether a scene classification layer (L2A) is available."""
        return "SCL" in self._description.bands

    @property
    def band_files(self) -> dict[str, BandFile]:
        """The band files with their radiometric scale and offset."""
        return dict(self._description.bands)

    def read(self, band: str, window: Window | None = None, out_resolution_m: float = 10) -> np.ndarray:
        """Read one band as float32 reflectance on the scene grid.

        Parameters
        ----------
        band : str
            Sentinel-2 band name (``"B08"``) or common name (``"nir"``).
        window : Window, optional
            Window in scene (10 m) pixels; must lie inside the scene. Default: the whole scene.
        out_resolution_m : float
            Output pixel size. The default (10) is the scene grid itself; a coarser size gives
            a block-averaged overview of the same window.

        Returns
        -------
        numpy.ndarray
            float32 array (rows, cols); offsets and quantification applied, no-data as NaN.
        """
        name = self._band_name(band)
        if name == "SCL":
            raise InputError("SCL is a classification, not reflectance: use Scene.read_scl")
        band_file = self._description.bands[name]
        dn = self._read_on_grid(name, window, out_resolution_m, Resampling.average)
        out = dn.astype(np.float32)
        out *= np.float32(band_file.scale)
        out += np.float32(band_file.offset)
        if band_file.nodata is not None:
            out[dn == band_file.nodata] = np.nan
        return out

    def read_scl(self, window: Window | None = None) -> np.ndarray | None:
        """Scene classification (uint8, ESA classes; 6 = water) on the 10 m grid, or None."""
        if not self.has_scl:
            return None
        return self._read_on_grid("SCL", window, 10, Resampling.nearest).astype(np.uint8)

    @contextmanager
    def hold(self, window: Window) -> Iterator[None]:
        """Keep what is read over exactly ``window`` in memory while the block runs.

        Inside the block, a band read over ``window`` on the 10 m grid is kept, and later reads
        of that band over windows inside ``window`` are cut from it instead of decoded again:
        the detector reads a block, and the chips of the vessels found in it come from the same
        pixels (for JPEG 2000 bands, decoding is most of the cost). Results are identical to
        reading from the files. One window is held at a time.
        """
        self._held = (_window_ints(window, self._require_open()), {})
        try:
            yield
        finally:
            self._held = None

    def full_window(self) -> Window:
        """The window covering the whole scene."""
        meta = self._require_open()
        return Window(0, 0, meta.width, meta.height)

    # -- internals ---------------------------------------------------------------------------
    def _require_open(self) -> SceneMetadata:
        if self.metadata is None:
            raise InputError(f"scene {self._description.path} is not open: use `with open_scene(...)`")
        return self.metadata

    def _band_name(self, band: str) -> str:
        name = COMMON_NAMES.get(band.lower(), band.upper())
        if name not in self._description.bands:
            raise InputError(f"{self._description.path}: no band {band!r} (have {', '.join(self.band_names)})")
        return name

    def _grid_metadata(self) -> SceneMetadata:
        description = self._description
        # The reference grid is the finest band; ties go to B08 then B02, the 10 m bands.
        order = sorted(self._datasets.items(), key=lambda kv: (abs(kv[1].transform.a), kv[0] != "B08", kv[0]))
        band, reference = order[0]
        return SceneMetadata(
            product_id=description.product_id,
            acquired=description.acquired,
            tile_id=description.tile_id,
            level=description.level,
            crs=reference.crs,
            transform=reference.transform,
            width=reference.width,
            height=reference.height,
            baseline=description.baseline,
            path=description.path,
            layout=description.layout,
            radiometry=description.radiometry,
        )

    def _check_alignment(self) -> None:
        meta = self._require_open()
        left, top = meta.transform.c, meta.transform.f
        right = left + meta.transform.a * meta.width
        bottom = top + meta.transform.e * meta.height
        tolerance = 1.5 * max(meta.pixel_size)
        for band, dataset in self._datasets.items():
            path = self._description.bands[band].path
            if dataset.crs != meta.crs:
                raise ProductError(path, f"band {band} is in {dataset.crs}, the scene in {meta.crs}")
            b = dataset.bounds
            if max(abs(b.left - left), abs(b.top - top), abs(b.right - right), abs(b.bottom - bottom)) > 2 * tolerance:
                raise ProductError(path, f"band {band} covers {tuple(b)}, not the scene extent "
                                   f"{(left, bottom, right, top)}")

    def _assume_scale(self) -> None:
        """Pick reflectance = DN/65535 or DN/10000 for products without radiometric metadata."""
        sample = self._read_on_grid("B02", None, 10 * max(1, min(self.metadata.width, self.metadata.height) // 256),
                                    Resampling.nearest)
        high = float(np.percentile(sample, 99.9)) if sample.size else 0.0
        scale = 1.0 / 65535.0 if high > 20000 else 1.0 / 10000.0
        log.info("%s: no radiometric metadata; 99.9th percentile of B02 DN is %.0f, assuming reflectance = DN * %.3g",
                 self._description.path, high, scale)
        bands = {b: replace(f, scale=scale, offset=0.0) for b, f in self._description.bands.items() if b != "SCL"}
        if "SCL" in self._description.bands:
            bands["SCL"] = self._description.bands["SCL"]
        self._description.bands = bands

    def _read_on_grid(self, band: str, window: Window | None, out_resolution_m: float,
                      resampling: Resampling) -> np.ndarray:
        """Read a band's DN over a window of the reference grid (nearest for finer output).

        The array returned may be shared with the window held by :meth:`hold`: do not modify it.
        """
        meta = self._require_open()
        row0, col0, height, width = _window_ints(window, meta)
        factor = out_resolution_m / 10.0 if abs(meta.pixel_size[0] - 10.0) < 0.5 else out_resolution_m / meta.pixel_size[0]
        held = self._held
        if held is not None and abs(factor - 1.0) <= 0.05:
            (h_row, h_col, h_height, h_width), kept = held
            if band in kept and h_row <= row0 and h_col <= col0 and row0 + height <= h_row + h_height \
                    and col0 + width <= h_col + h_width:
                return kept[band][row0 - h_row:row0 - h_row + height, col0 - h_col:col0 - h_col + width]
            if (row0, col0, height, width) == (h_row, h_col, h_height, h_width):
                kept[band] = self._read_dn(band, 1.0, resampling, row0, col0, height, width)
                return kept[band]
        return self._read_dn(band, factor, resampling, row0, col0, height, width)

    def _read_dn(self, band: str, factor: float, resampling: Resampling,
                 row0: int, col0: int, height: int, width: int) -> np.ndarray:
        meta = self._require_open()
        dataset = self._datasets[band]
        path = self._description.bands[band].path
        try:
            if abs(factor - 1.0) > 0.05:
                out_shape = (max(1, round(height / factor)), max(1, round(width / factor)))
                src_window = _source_window(dataset.transform, meta.transform, row0, col0, height, width)
                return dataset.read(1, window=src_window, out_shape=out_shape, resampling=resampling)
            if dataset.transform == meta.transform:
                return dataset.read(1, window=Window(col0, row0, width, height))
            return _read_resampled(dataset, meta.transform, row0, col0, height, width)
        except RasterioError as error:
            raise ProductError(path, f"cannot read band {band}: {_first_line(error)}") from error


def _window_ints(window: Window | None, meta: SceneMetadata) -> tuple[int, int, int, int]:
    if window is None:
        return 0, 0, meta.height, meta.width
    row0, col0 = int(round(window.row_off)), int(round(window.col_off))
    height, width = int(round(window.height)), int(round(window.width))
    if row0 < 0 or col0 < 0 or height <= 0 or width <= 0 or row0 + height > meta.height or col0 + width > meta.width:
        raise InputError(f"window {window} is not inside the scene ({meta.height} rows x {meta.width} cols)")
    return row0, col0, height, width


def _source_window(source: Affine, reference: Affine, row0: int, col0: int, height: int, width: int) -> Window:
    """The window of ``source`` pixels covering reference pixels [row0, row0+height) x [col0, col0+width)."""
    x0, y0 = reference @ (col0, row0)
    x1, y1 = reference @ (col0 + width, row0 + height)
    c0, r0 = ~source @ (x0, y0)
    c1, r1 = ~source @ (x1, y1)
    return Window(c0, r0, c1 - c0, r1 - r0)


def _read_resampled(dataset: rasterio.io.DatasetReader, reference: Affine, row0: int, col0: int,
                    height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resampling of a coarser (or shifted) band onto reference pixels.

    Both grids are north-up in the same CRS, so rows and columns map independently: the source
    index of every output column (row) is found once and the block is gathered with ``np.ix_``.
    For a 20 m band on the 10 m grid of the same tile this is exact pixel replication.
    """
    src = dataset.transform
    x = reference.c + reference.a * (np.arange(col0, col0 + width) + 0.5)
    y = reference.f + reference.e * (np.arange(row0, row0 + height) + 0.5)
    cols = np.clip(np.floor((x - src.c) / src.a).astype(np.int64), 0, dataset.width - 1)
    rows = np.clip(np.floor((y - src.f) / src.e).astype(np.int64), 0, dataset.height - 1)
    c_lo, c_hi, r_lo, r_hi = cols.min(), cols.max(), rows.min(), rows.max()
    block = dataset.read(1, window=Window(c_lo, r_lo, c_hi - c_lo + 1, r_hi - r_lo + 1))
    return block[np.ix_(rows - r_lo, cols - c_lo)]


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class _OpenedBand:
    """Context manager opening one band file and checking it is georeferenced and readable."""

    def __init__(self, band_file: BandFile):
        self.band_file = band_file
        self.dataset: rasterio.io.DatasetReader | None = None

    def __enter__(self) -> rasterio.io.DatasetReader:
        band_file = self.band_file
        try:
            dataset = rasterio.open(band_file.path)
        except RasterioError as error:
            raise ProductError(band_file.path, f"band {band_file.band} cannot be opened: {_first_line(error)}") from error
        self.dataset = dataset
        try:
            if dataset.crs is None or dataset.transform == Affine.identity():
                raise ProductError(band_file.path, f"band {band_file.band} has no georeferencing (no CRS or transform)")
            if dataset.transform.b != 0 or dataset.transform.d != 0:
                raise ProductError(band_file.path, f"band {band_file.band} is rotated; only north-up grids are supported")
            # A truncated file usually opens fine and fails on its last blocks: read one pixel there.
            dataset.read(1, window=Window(dataset.width - 1, dataset.height - 1, 1, 1))
        except RasterioError as error:
            dataset.close()
            raise ProductError(band_file.path, f"band {band_file.band} is corrupt or truncated: {_first_line(error)}") from error
        except BaseException:
            dataset.close()
            raise
        return dataset

    def __exit__(self, *exc_info: object) -> None:
        if self.dataset is not None:
            self.dataset.close()


def _open_band(band_file: BandFile) -> _OpenedBand:
    return _OpenedBand(band_file)


# -- layout detection ------------------------------------------------------------------------

def open_scene(path: str | Path, *, required_bands: Sequence[str] = REQUIRED_BANDS) -> Scene:
    """Open a product in any supported layout.

    Parameters
    ----------
    path : str or Path
        A ``.SAFE`` folder, a ``.zip`` of one, a STAC item ``.json``, or a folder of per-band
        GeoTIFFs (band name in each file name).
    required_bands : sequence of str
        Bands that must be present (default B02 B03 B04 B08 B11).

    Returns
    -------
    Scene
        Already open; use it as a context manager so its files are closed.

    Raises
    ------
    ProductError
        Unknown layout, missing band, unreadable or ungeoreferenced band file.
    """
    path = Path(path)
    if not path.exists():
        raise ProductError(path, "does not exist")
    description = describe_product(path)
    scene = Scene(description, required_bands=required_bands)
    scene.open()
    return scene


def describe_product(path: Path) -> ProductDescription:
    """Recognise the layout of ``path`` and list its band files and metadata (opens no raster)."""
    from pipeline import safe, stac  # layout readers import this module's dataclasses

    if path.is_file() and path.suffix.lower() == ".zip":
        return safe.describe_safe(path)
    if path.is_file() and path.suffix.lower() == ".json":
        return stac.describe_stac_item(path)
    if path.is_dir():
        if path.suffix.upper() == ".SAFE" or (path / "GRANULE").is_dir() or safe.find_product_metadata(path):
            return safe.describe_safe(path)
        items = stac.find_stac_items(path)
        if items:
            return stac.describe_stac_item(items[0])
        # An output folder holding one product (``OUT_DIR/<name>.SAFE`` next to truth files).
        inner = [p for p in path.iterdir() if p.suffix.upper() == ".SAFE" and p.is_dir()]
        if len(inner) == 1 and not any(band_in_name(p.name) for p in path.glob("*.tif*")):
            return safe.describe_safe(inner[0])
        return describe_band_folder(path)
    raise ProductError(path, "not a SAFE folder or zip, a STAC item JSON, or a folder of band GeoTIFFs")


def band_in_name(name: str) -> str | None:
    """The Sentinel-2 band named in a file name, or None.

    >>> band_in_name("T31UET_20230601T103631_B8A_20m.jp2")
    'B8A'
    >>> band_in_name("2022-05-14_Sentinel-2_L2A_B02_(Raw).tiff")
    'B02'
    >>> band_in_name("thumbnail.tif") is None
    True
    """
    matches = _BAND_IN_NAME.findall(name)
    return matches[-1] if matches else None


_TIFF_SUFFIXES = (".tif", ".tiff")


def describe_band_folder(folder: Path) -> ProductDescription:
    """A folder of single-band GeoTIFFs (file name contains the band) with an optional sidecar JSON.

    The sidecar is any ``*.json`` in the folder that is not a COCO annotation file. Recognised keys
    (top level or under ``"properties"``): ``product_id``/``id``, ``acquired``/``datetime``/
    ``PRODUCT_START_TIME``, ``tile_id``/``s2:mgrs_tile``, ``level``, ``baseline``/
    ``s2:processing_baseline``/``PROCESSING_BASELINE``, ``quantification_value``/
    ``QUANTIFICATION_VALUE``, and per-band additive offsets ``offsets``/``radio_add_offset``/
    ``boa_add_offset`` (a number, or a mapping band name or band id to number).
    Without a sidecar the scale is assumed (see the module docstring).
    """
    bands: dict[str, BandFile] = {}
    for file in sorted(folder.iterdir()):
        if file.suffix.lower() not in _TIFF_SUFFIXES or not file.is_file():
            continue
        band = band_in_name(file.name)
        if band is None:
            continue
        if band in bands:
            raise ProductError(folder, f"two files for band {band}: {Path(bands[band].path).name}, {file.name}")
        bands[band] = BandFile(band=band, path=str(file))
    if not bands:
        raise ProductError(folder, "no band GeoTIFF found (file names must contain B02, B03, ..., B8A, SCL)")

    sidecar = _find_sidecar(folder)
    properties: dict[str, Any] = {}
    if sidecar is not None:
        try:
            raw = json.loads(sidecar.read_text())
        except (OSError, ValueError) as error:
            raise ProductError(sidecar, f"sidecar metadata is not valid JSON: {error}") from error
        properties = {**raw, **raw.get("properties", {})} if isinstance(raw, dict) else {}

    product_id = str(_first(properties, "product_id", "id", "PRODUCT_ID") or folder.name)
    names = " ".join([folder.name, *(Path(b.path).name for b in bands.values())])
    acquired = parse_datetime(_first(properties, "acquired", "datetime", "PRODUCT_START_TIME", "start_datetime"))
    if acquired is None:
        acquired = datetime_from_name(names)
    level = parse_level(_first(properties, "level", "processing_level", "processing:level", "s2:product_type")) \
        or parse_level(names)
    tile_id = _first(properties, "tile_id", "s2:mgrs_tile", "mgrs_tile") or tile_from_name(names)
    baseline = _first(properties, "baseline", "processing_baseline", "s2:processing_baseline", "PROCESSING_BASELINE")

    quantification = _first(properties, "quantification_value", "QUANTIFICATION_VALUE", "BOA_QUANTIFICATION_VALUE",
                            "s2:quantification_value")
    offsets = _first(properties, "offsets", "radio_add_offset", "boa_add_offset", "RADIO_ADD_OFFSET", "BOA_ADD_OFFSET",
                     "add_offset")
    nodata = _first(properties, "nodata", "NODATA")
    radiometry = "assumed"
    if quantification is not None:
        radiometry = "metadata"
        q = float(quantification)
        nodata_value = 0.0 if nodata is None else float(nodata)
        bands = {
            b: replace(f, scale=1.0 / q, offset=band_offset(offsets, b) / q, nodata=nodata_value) if b != "SCL" else f
            for b, f in bands.items()
        }
    if "SCL" in bands:
        bands["SCL"] = replace(bands["SCL"], scale=1.0, offset=0.0, nodata=None)
    return ProductDescription(
        product_id=product_id, path=folder, layout="geotiff", bands=bands, acquired=acquired,
        tile_id=str(tile_id) if tile_id else None, level=level, baseline=str(baseline) if baseline else None,
        radiometry=radiometry,
    )


def _find_sidecar(folder: Path) -> Path | None:
    candidates = [p for p in sorted(folder.glob("*.json")) if not p.name.endswith("_coco.json")]
    preferred = [p for p in candidates if p.stem.lower() in {"metadata", "scene", "product", "sidecar"}]
    return (preferred or candidates or [None])[0]


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in mapping and mapping[key] is not None:
            return mapping[key]
    return None


def band_offset(offsets: Any, band: str) -> float:
    """Additive DN offset of ``band`` from a number or a mapping keyed by band name or band id.

    >>> band_offset({"B02": -1000}, "B02"), band_offset({"1": -1000}, "B02"), band_offset(-1000, "B11")
    (-1000.0, -1000.0, -1000.0)
    >>> band_offset(None, "B02")
    0.0
    """
    if offsets is None:
        return 0.0
    if isinstance(offsets, (int, float, str)):
        return float(offsets)
    if isinstance(offsets, Mapping):
        band_id = BAND_IDS.index(band) if band in BAND_IDS else None
        for key in (band, band.lower(), str(band_id), band_id):
            if key in offsets:
                return float(offsets[key])
    return 0.0


def parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 time (``Z`` allowed) as an aware UTC datetime; naive input is taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip().replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


_NAME_TIMES = (
    (re.compile(r"(\d{8}T\d{6})"), "%Y%m%dT%H%M%S"),
    (re.compile(r"(\d{4}-\d{2}-\d{2}-\d{2}_\d{2})"), "%Y-%m-%d-%H_%M"),
    (re.compile(r"(\d{4}-\d{2}-\d{2})"), "%Y-%m-%d"),
)


def datetime_from_name(name: str) -> datetime | None:
    """The first acquisition time written in a product or file name, as UTC.

    >>> datetime_from_name("S2A_MSIL1C_20230601T103631_N0509_R008_T31UET_20230601T124017")
    datetime.datetime(2023, 6, 1, 10, 36, 31, tzinfo=datetime.timezone.utc)
    >>> datetime_from_name("2022-05-14-00_00_2022-05-14-23_59_Sentinel-2_L2A_B02_(Raw).tiff")
    datetime.datetime(2022, 5, 14, 0, 0, tzinfo=datetime.timezone.utc)
    """
    for pattern, fmt in _NAME_TIMES:
        match = pattern.search(name)
        if match:
            try:
                return datetime.strptime(match.group(1), fmt).replace(tzinfo=timezone.utc)
            except ValueError:
                continue
    return None


def tile_from_name(name: str) -> str | None:
    """MGRS tile id (``"31UET"``) from ``..._T31UET_...`` in a name, or None."""
    match = re.search(r"(?<![A-Za-z0-9])T(\d{2}[C-X][A-Z]{2})(?![A-Za-z0-9])", name)
    return match.group(1) if match else None


def parse_level(value: Any) -> Level | None:
    """``"L1C"``/``"L2A"`` from a level string, product type or name (``MSIL2A``, ``Level-1C``...)."""
    if value is None:
        return None
    text = str(value).upper().replace("-", "").replace("_", "")
    if "L2A" in text or "LEVEL2A" in text or "MSI2A" in text:
        return "L2A"
    if "L1C" in text or "LEVEL1C" in text or "MSI1C" in text:
        return "L1C"
    return None


def iter_windows(height: int, width: int, block_px: int, overlap_px: int) -> Iterable[tuple[Window, Window]]:
    """Tile a grid into blocks: yields (read window with overlap, core window), both in scene pixels.

    Cores partition the grid exactly; each read window is its core grown by ``overlap_px`` and
    clipped to the grid.

    >>> [(w.row_off, w.height, c.row_off, c.height) for w, c in iter_windows(10, 4, 6, 2)]
    [(0, 8, 0, 6), (4, 6, 6, 4)]
    """
    for row0 in range(0, height, block_px):
        for col0 in range(0, width, block_px):
            core = Window(col0, row0, min(block_px, width - col0), min(block_px, height - row0))
            r0, c0 = max(0, row0 - overlap_px), max(0, col0 - overlap_px)
            r1 = min(height, row0 + core.height + overlap_px)
            c1 = min(width, col0 + core.width + overlap_px)
            yield Window(c0, r0, c1 - c0, r1 - r0), core
