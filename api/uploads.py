"""Uploaded chips (``POST /heading``): PNG or GeoTIFF bytes → reflectance bands and georeferencing.

The format is sniffed from the first bytes, never trusted from the file name or the declared
content type. PNG
    8- or 16-bit RGB(A) or grey, read as bands B04/B03/B02 (grey: one plane used for all three)
    scaled to 0..1; the model fills the missing NIR band as it was trained to for RGB chips.
GeoTIFF
    Bands named by their descriptions when those are Sentinel-2 names (``B02``, ``B08``...);
    otherwise 4+ bands are read as B02, B03, B04, B08 and 3 bands as an RGB picture. Integer data
    are Sentinel-2 digital numbers (reflectance x 10000). A CRS and transform, when present, make
    the answer a true bearing with georeferenced keypoints.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from api.problems import Problem

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: Accepted chip edge lengths, pixels.
MIN_EDGE_PX, MAX_EDGE_PX = 16, 1024
_S2_BAND = re.compile(r"^B(0[1-9]|1[0-2]|8A)$")


@dataclass
class UploadedChip:
    """A decoded chip: ``data`` float32 ``(bands, H, W)`` reflectance, and georeferencing if any."""

    data: np.ndarray
    band_names: list[str]
    format: str
    transform: Any = None
    crs: Any = None


def _bad_file(status: int, detail: str) -> Problem:
    return Problem(status, detail, invalid_params=[("file", detail)])


def _check_size(height: int, width: int) -> None:
    if not (MIN_EDGE_PX <= height <= MAX_EDGE_PX and MIN_EDGE_PX <= width <= MAX_EDGE_PX):
        raise _bad_file(422, f"chip is {width} x {height} px; each edge must be {MIN_EDGE_PX}..{MAX_EDGE_PX} px")


def _decode_png(content: bytes) -> UploadedChip:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(content)) as image:
            image.load()
            _check_size(image.height, image.width)
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                grey = np.asarray(image, dtype=np.float32) / 65535.0
                planes = np.stack([grey, grey, grey])
            else:
                rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
                planes = np.moveaxis(rgb, -1, 0)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise _bad_file(422, f"PNG could not be decoded: {error}") from None
    return UploadedChip(np.ascontiguousarray(planes, dtype=np.float32), ["B04", "B03", "B02"], "png")


def _decode_tiff(content: bytes) -> UploadedChip:
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.MemoryFile(content) as memory, memory.open() as dataset:
            _check_size(dataset.height, dataset.width)
            if dataset.count > 16:
                raise _bad_file(422, f"GeoTIFF has {dataset.count} bands; at most 16")
            masked = dataset.read(masked=True)
            data = np.ma.getdata(masked).astype(np.float32)
            nodata = np.ma.getmaskarray(masked)
            descriptions = [(d or "").strip().upper() for d in dataset.descriptions]
            integer = np.issubdtype(np.dtype(dataset.dtypes[0]), np.integer)
            crs = dataset.crs
            transform = dataset.transform if crs is not None and not dataset.transform.is_identity else None
    except RasterioError as error:
        raise _bad_file(422, f"GeoTIFF could not be read: {error}") from None
    if all(_S2_BAND.match(d) for d in descriptions):
        names = descriptions
    elif data.shape[0] >= 4:
        names = ["B02", "B03", "B04", "B08"] + [f"extra{i}" for i in range(data.shape[0] - 4)]
    elif data.shape[0] == 3:
        names = ["B04", "B03", "B02"]
    else:
        raise _bad_file(422, f"GeoTIFF has {data.shape[0]} band(s); at least 3 (RGB) are needed")
    if integer:
        data /= 10000.0
    data[nodata] = np.nan
    if not np.isfinite(data).all():  # nodata and NaN pixels: their band's median, for the model and the speed step
        from models.preprocess import fill_nonfinite
        from pipeline.chips import MAX_NODATA_SHARE, centre_nodata_share

        share = centre_nodata_share(~np.isfinite(data).all(axis=0))
        if share > MAX_NODATA_SHARE:
            raise _bad_file(422, f"{100 * share:.0f}% of the chip's central 64 px are nodata (at most "
                                 f"{100 * MAX_NODATA_SHARE:.0f}%): a heading needs the sea around the vessel")

        data = fill_nonfinite(data[None])[0]
    return UploadedChip(data, names, "geotiff", transform, crs if transform is not None else None)


def decode_chip(content: bytes) -> UploadedChip:
    """Decode an uploaded chip (PNG or GeoTIFF, sniffed from its bytes).

    Raises
    ------
    Problem
        415 for anything but PNG/TIFF, 422 for an unreadable or wrongly sized image.
    """
    if not content:
        raise _bad_file(422, "the uploaded file is empty")
    if content.startswith(PNG_MAGIC):
        return _decode_png(content)
    if content[:4] in TIFF_MAGICS:
        return _decode_tiff(content)
    raise _bad_file(415, "the uploaded file is neither PNG nor (Geo)TIFF")
