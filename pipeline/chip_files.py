"""Chip files: a PNG/JPEG picture, a (Geo)TIFF or a JPEG 2000, on disk or as bytes → reflectance bands and georeferencing.

One reader for ``vesselwatch heading CHIP`` and ``POST /heading``, so both answer the same file alike.
The format is told by the file's first bytes, never by its name or declared type.

Pictures (PNG, JPEG)
    8- or 16-bit RGB(A) or grey, read as bands B04 B03 B02 scaled to 0..1 (grey: one plane for all
    three). No NIR: the model fills it as it was trained to for RGB chips, and the wake-on-land
    check (NDWI) does not run.
(Geo)TIFF, JPEG 2000 and (from disk) other rasters GDAL reads
    Bands named by their descriptions when those are Sentinel-2 names (``B02``, ``b8a``)
    or colour names (``blue``, ``green``, ``red``, ``nir``: STAC's common names);
    otherwise by their declared colours when those are red, green and blue; a declared alpha band
    is the transparency mask (0 or NaN: a hole), except the alpha GDAL declares for band 4 of every
    8-bit 4-band TIFF when it holds an image (not only 0 and 255), which is data; otherwise one
    band is a grey picture, three an RGB picture, four or more B02 B03 B04 B08 (and extras).
    Integer data: 8-bit / 255, else Sentinel-2 digital numbers / 10000 (or / 65535 for
    full-range exports above 20000), judged on the valid pixels. Declared nodata and NaN pixels are
    filled with their band's median, unless they cover more than ``MAX_NODATA_SHARE`` of the centre.
    A CRS with a non-identity transform makes the chip georeferenced: it must then be north-up with
    square ground pixels (:func:`pipeline.chips.chip_grid_problem`). Its ground pixel size is kept:
    a chip far from the heading model's 10 m is answered, with a warning (:func:`pixel_size_warning`).
"""

from __future__ import annotations

import io
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.chips import chip_grid_problem, grid_north_deg, ground_pixel_m
from vesselwatch.errors import InputError

__all__ = ["ChipFile", "ChipFormatError", "MAX_NODATA_SHARE", "MIN_EDGE_PX", "PIXEL_SIZE_TOLERANCE", "centre_nodata_share",
           "chip_warnings", "pixel_size_warning", "read_chip_file"]

PNG_MAGIC, JPEG_MAGIC = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: JPEG 2000: the JP2 signature box and a bare codestream (Sentinel-2's own band files are JP2).
JP2_MAGICS = (b"\x00\x00\x00\x0cjP  ", b"\xff\x4f\xff\x51")
#: Smallest chip edge, pixels (the pipeline cuts 128; the model sees the central 64).
MIN_EDGE_PX = 16
#: Most bands a chip file may have.
MAX_BANDS = 16
_S2_NAMES = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
_RGB = ["B04", "B03", "B02"]


#: Largest share of nodata pixels in the centre of a chip that is filled and run; above it the chip is refused.
MAX_NODATA_SHARE = 0.25
#: Relative difference between a chip's ground pixel and the model's above which the answer carries a warning.
PIXEL_SIZE_TOLERANCE = 0.25


def pixel_size_warning(pixel_m: float | None, model_pixel_m: float, tolerance: float = PIXEL_SIZE_TOLERANCE) -> str | None:
    """A sentence for a chip whose ground pixel (metres) is more than ``tolerance`` off the model's, else None.

    The model learnt hulls, Kelvin arms and wake lengths at ``model_pixel_m``: at 20 m a vessel
    looks half its size, so the answer is less trustworthy, not wrong by a known amount. Chips
    without georeferencing (``pixel_m`` None) cannot be judged and get None.
    """
    if pixel_m is None or not np.isfinite(pixel_m):
        return None
    if abs(pixel_m - model_pixel_m) <= tolerance * model_pixel_m:
        return None
    return (f"pixels are {pixel_m:.1f} m on the ground; the heading model was trained on {model_pixel_m:g} m "
            f"pixels, so treat this heading with care (resample the chip to {model_pixel_m:g} m in a projected CRS, "
            f"e.g. {_warp_command(model_pixel_m)})")


def _warp_command(model_pixel_m: float) -> str:
    """The gdalwarp call the warnings suggest: a projected CRS at the model's pixel size (metres)."""
    return f"gdalwarp -t_srs EPSG:326NN -tr {model_pixel_m:g} {model_pixel_m:g}"


def centre_nodata_share(nodata: np.ndarray, size: int = 64) -> float:
    """Share of nodata pixels in the central ``size`` × ``size`` px (what the heading model sees) of an ``(H, W)`` mask."""
    nodata = np.asarray(nodata, dtype=bool)
    height, width = nodata.shape
    row0, col0 = max((height - size) // 2, 0), max((width - size) // 2, 0)
    centre = nodata[row0 : row0 + size, col0 : col0 + size]
    return float(centre.mean()) if centre.size else 0.0


def chip_warnings(chip: Any, model_pixel_m: float) -> list[str]:
    """Every warning an answer for ``chip`` (a :class:`ChipFile`, or anything with ``gcp_count`` and ``pixel_m``) carries."""
    out = []
    if chip.gcp_count:
        out.append(f"georeferenced by {chip.gcp_count} ground control points only: the heading is in the image grid "
                   f"with up taken as north; warp the chip (e.g. {_warp_command(model_pixel_m)}) for a true bearing")
    pixel = pixel_size_warning(chip.pixel_m, model_pixel_m)
    return out + ([pixel] if pixel is not None else [])


class ChipFormatError(InputError):
    """The bytes are neither a picture nor a raster this reader takes (HTTP 415 in the API)."""


@dataclass
class ChipFile:
    """A decoded chip.

    Attributes
    ----------
    data : numpy.ndarray
        float32 ``(bands, H, W)`` reflectance, nodata filled.
    band_names : list of str
        Sentinel-2 name of each plane of ``data``.
    format : str
        ``"png"``, ``"jpeg"``, ``"jpeg2000"`` or ``"geotiff"`` (any other raster GDAL read).
    transform, crs
        Georeferencing, or None for a chip in pixels only.
    grid_north_deg : float
        True bearing of the chip's grid up at its centre (0 without georeferencing).
    nodata_pixels : int
        Pixels that were nodata or NaN in any band, and filled.
    pixel_m : float or None
        Ground size of a pixel at the chip's centre, metres (mean of across and down); None
        without georeferencing.
    gcp_count : int
        Ground control points of a chip georeferenced by them only (no transform): the reader does
        not warp, so the chip stays in its image grid (:func:`chip_warnings` says so).
    """

    data: np.ndarray
    band_names: list[str]
    format: str
    transform: Any = None
    crs: Any = None
    grid_north_deg: float = 0.0
    nodata_pixels: int = 0
    pixel_m: float | None = None
    gcp_count: int = 0

    @property
    def georeferenced(self) -> bool:
        """Whether the chip has a CRS and transform (its heading is then a true bearing)."""
        return self.crs is not None


def _check_size(height: int, width: int, max_edge_px: int | None) -> None:
    top = max_edge_px if max_edge_px is not None else float("inf")
    if not (MIN_EDGE_PX <= height <= top and MIN_EDGE_PX <= width <= top):
        limit = f"{MIN_EDGE_PX}..{max_edge_px}" if max_edge_px is not None else f"at least {MIN_EDGE_PX}"
        raise InputError(f"chip is {width} x {height} px; each edge must be {limit} px")


def _read_picture(source: Path | bytes, max_edge_px: int | None) -> tuple[np.ndarray, str]:
    """A PNG/JPEG as ``(3, H, W)`` planes B04 B03 B02 in 0..1, and its format name."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            _check_size(image.height, image.width, max_edge_px)
            image.load()
            kind = "png" if image.format == "PNG" else "jpeg"  # a camera JPEG may open as PIL's "MPO"
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: convert("RGB") would clip it to 255
                grey = np.asarray(image, dtype=np.float32) / 65535.0
                return np.stack([grey, grey, grey]), kind
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
            return np.ascontiguousarray(np.moveaxis(rgb, -1, 0)), kind
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        detail = type(error).__name__ if isinstance(source, bytes) else error  # bytes: no buffer address in the text
        raise InputError(f"picture could not be decoded: {detail}") from error


#: Sentinel-2 band of each visible colour a raster may declare (GDAL colour interpretation).
_COLOUR_BANDS = {"red": "B04", "green": "B03", "blue": "B02"}


def _band_names(count: int, descriptions: tuple, colours: tuple[str, ...] = ()) -> tuple[list[str], list[int]]:
    """Names of a raster's bands and the 0-based indices of the bands to read (``colours``: lower-case
    GDAL colour interpretation names, e.g. ``"red"``, ``"alpha"``).

    Sentinel-2 descriptions win; else declared colours (an RGB or RGBA picture saved as TIFF: red,
    green and blue are named B04 B03 B02, an alpha band is the mask, not data); else by count.
    """
    named = [_s2_name(d) for d in descriptions]
    if named and all(named) and len(set(named)) == len(named):
        return named, list(range(count))
    keep = [i for i in range(count) if not (i < len(colours) and colours[i] == "alpha")]
    if colours and {colours[i] for i in keep} == set(_COLOUR_BANDS) and len(keep) == 3:
        return [_COLOUR_BANDS[colours[i]] for i in keep], keep
    return _names_by_count(len(keep), alpha=count - len(keep)), keep


#: Band descriptions other tools write, as Sentinel-2 names (STAC ``eo`` common names included).
_DESCRIPTION_ALIASES = {"BLUE": "B02", "GREEN": "B03", "RED": "B04", "NIR": "B08", "NIR08": "B8A", "REDEDGE": "B05",
                        "SWIR16": "B11", "SWIR22": "B12", "COASTAL": "B01"}


def _s2_name(description: object) -> str:
    """A band description as a Sentinel-2 name (``"b02"`` → ``"B02"``; ``"nir"`` → ``"B08"``), or ``""``.

    Unpadded ``"B2"`` and ``"Band 2"`` are not taken: tools write ``b1..bN`` and ``Band N`` for the
    file's N-th band, whatever it holds (and Landsat's B1-B4 are other bands).
    """
    text = str(description).strip().upper().replace(" ", "").replace("_", "") if description else ""
    text = _DESCRIPTION_ALIASES.get(text, text)
    return text if text in _S2_NAMES else ""


def _image_in_default_alpha(every: np.ndarray, colours: list[str]) -> bool:
    """Whether the alpha GDAL declares by default for an 8-bit 4-band TIFF holds an image, not a mask.

    GDAL calls band 4 of every such file alpha, a B02 B03 B04 B08 chip written without
    descriptions included. A mask holds only 0 and 255 and some 255 (opaque); anything else is data.
    Alpha declared any other way (another type, another place) is taken as declared.
    """
    if every.dtype != np.uint8 or every.shape[0] != 4 or [i for i, c in enumerate(colours) if c == "alpha"] != [3]:
        return False
    band = every[3]
    return not (np.isin(band, (0, 255)).all() and (band == 255).any())


def _names_by_count(count: int, alpha: int = 0) -> list[str]:
    """Band names of a raster without Sentinel-2 descriptions or declared colours, by how many bands it has."""
    if count == 1 or count == 3:
        return ["B08"] if count == 1 else list(_RGB)
    if count >= 4:
        return ["B02", "B03", "B04", "B08"] + [f"extra{i}" for i in range(count - 4)]
    besides = f" besides {alpha} alpha" if alpha else ""
    raise InputError(f"chip has {count} bands{besides} without Sentinel-2 or colour names (band descriptions) or "
                     "declared colours; expected 1 (grey), 3 (RGB) or 4+ (B02 B03 B04 B08)")


def _to_reflectance(raw: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Integer chips to 0..1 (8-bit / 255, DN / 10000, full-range / 65535, judged on ``valid`` pixels)."""
    if raw.dtype == np.uint8:
        return raw.astype(np.float32) / 255.0
    if np.issubdtype(raw.dtype, np.integer):
        top = raw[valid].max(initial=0) if valid.any() else 0
        return raw.astype(np.float32) / (10000.0 if top <= 20000 else 65535.0)
    return raw.astype(np.float32)


def _read_raster(source: Path | bytes, max_edge_px: int | None):
    """A raster as float32 reflectance with NaN at nodata, its band names, transform and CRS."""
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.MemoryFile(source) if isinstance(source, bytes) else nullcontext() as memory:
            with (memory.open() if memory is not None else rasterio.open(source)) as dataset:
                _check_size(dataset.height, dataset.width, max_edge_px)
                if dataset.count > MAX_BANDS:
                    raise InputError(f"raster has {dataset.count} bands; at most {MAX_BANDS}")
                colours = [c.name.lower() for c in dataset.colorinterp]
                every = dataset.read() if "alpha" in colours else None
                if every is not None and _image_in_default_alpha(every, colours):
                    colours[3] = "undefined"
                names, keep = _band_names(dataset.count, dataset.descriptions, tuple(colours))
                if every is not None:
                    # Holes by hand: GDAL masks with alpha only in some layouts, and would with a demoted one.
                    kept = every[keep]
                    holes = kept == dataset.nodata if dataset.nodata is not None else np.zeros(kept.shape, bool)
                    for i in (i for i, c in enumerate(colours) if c == "alpha"):
                        holes |= ((every[i] == 0) | ~np.isfinite(every[i]))[None]
                    masked = np.ma.MaskedArray(kept, mask=holes)
                else:
                    masked = dataset.read(masked=True)
                transform, crs = dataset.transform, dataset.crs
                gcp_count = len(dataset.gcps[0])
    except RasterioError as error:
        detail = "not a readable (Geo)TIFF or JPEG 2000" if isinstance(source, bytes) else error  # bytes: no /vsimem path
        raise InputError(f"raster could not be read: {detail}") from error
    nodata = np.ma.getmaskarray(masked)
    raw = np.ma.getdata(masked)
    data = _to_reflectance(raw, ~nodata)
    data[nodata] = np.nan
    return data, names, transform, crs, gcp_count


def read_chip_file(source: Path | bytes, *, max_edge_px: int | None = None) -> ChipFile:
    """Decode a chip file (see the module docstring for what is taken and how).

    Parameters
    ----------
    source : Path or bytes
        A file on disk, or its bytes (an upload).
    max_edge_px : int, optional
        Refuse chips with a longer edge (checked before the pixels are read).

    Raises
    ------
    ChipFormatError
        Bytes that are neither PNG/JPEG, TIFF nor JPEG 2000.
    InputError
        An unreadable or wrongly sized file, too many bands, too much nodata, or georeferencing that
        cannot give a true bearing; the message says which.
    """
    if isinstance(source, bytes):
        if not source:
            raise InputError("the file is empty")
        head = source[:8]
    else:
        if source.is_dir():
            raise InputError("is a directory, not a chip file")
        try:
            with open(source, "rb") as handle:
                head = handle.read(8)
        except OSError as error:
            raise InputError(f"cannot read chip: {error}") from error
    if head.startswith((PNG_MAGIC, JPEG_MAGIC)):
        planes, kind = _read_picture(source, max_edge_px)
        return ChipFile(planes, list(_RGB), kind)
    if isinstance(source, bytes) and head[:4] not in TIFF_MAGICS and not head.startswith(JP2_MAGICS):
        raise ChipFormatError("neither PNG, JPEG, (Geo)TIFF nor JPEG 2000")
    data, names, transform, crs, gcp_count = _read_raster(source, max_edge_px)
    if len(names) == 1:  # one band: a grey picture, every visible plane the same, no NIR
        data, names = np.repeat(data, 3, axis=0), list(_RGB)
    holes = ~np.isfinite(data).all(axis=0)
    if holes.any():
        from models.preprocess import fill_nonfinite

        share = centre_nodata_share(holes)
        if share > MAX_NODATA_SHARE:
            raise InputError(f"{100 * share:.0f}% of the chip's central 64 px are nodata (at most "
                             f"{100 * MAX_NODATA_SHARE:.0f}%): a heading needs the sea around the vessel")
        data = fill_nonfinite(data[None])[0]
    kind = "jpeg2000" if head.startswith(JP2_MAGICS) else "geotiff"
    chip = ChipFile(data, names, kind, nodata_pixels=int(holes.sum()))
    if crs is None or transform.is_identity:
        chip.gcp_count = gcp_count
        return chip  # pixels only: grid up is taken as north
    height, width = data.shape[1:]
    try:
        sides = ground_pixel_m(transform, crs, height, width)
    except ValueError as error:
        raise InputError(str(error)) from error
    problem = chip_grid_problem(transform, crs, height, width, sides)
    if problem is not None:
        raise InputError(problem)
    cx, cy = transform @ (width / 2.0, height / 2.0)
    chip.transform, chip.crs = transform, crs
    chip.pixel_m = round(float(np.mean(sides)), 3)  # mm: what the CLI and the API both print
    chip.grid_north_deg = float(grid_north_deg(crs, np.array([cx]), np.array([cy]))[0])
    return chip
