"""Uploaded chips (``POST /heading``): the bytes of a PNG/JPEG picture, a (Geo)TIFF or a JPEG 2000 → a decoded chip.

The decoding is :func:`pipeline.chip_files.read_chip_file`, the reader ``vesselwatch heading`` uses,
so a file gets the same answer from both; the format is sniffed from its bytes, never trusted from
the file name or the declared content type. This module adds the upload's limits and turns the
reader's errors into problem documents (415 for a format it does not take, 422 for the rest).
"""

from __future__ import annotations

from api.problems import Problem
from pipeline.chip_files import ChipFile, ChipFormatError, read_chip_file
from vesselwatch.errors import InputError

#: Longest chip edge an upload may have, pixels (the shortest: ``pipeline.chip_files.MIN_EDGE_PX``).
MAX_EDGE_PX = 1024

__all__ = ["MAX_EDGE_PX", "decode_chip"]


def _bad_file(status: int, detail: str) -> Problem:
    return Problem(status, detail, invalid_params=[("file", detail)])


def decode_chip(content: bytes) -> ChipFile:
    """Decode an uploaded chip (PNG, JPEG, GeoTIFF or JPEG 2000, sniffed from its bytes).

    Raises
    ------
    Problem
        415 for anything but those formats, 422 for an unreadable or wrongly sized image, too much
        nodata, or georeferencing that cannot give a true bearing.
    """
    if not content:
        raise _bad_file(422, "the uploaded file is empty")
    try:
        return read_chip_file(content, max_edge_px=MAX_EDGE_PX)
    except ChipFormatError as error:
        raise _bad_file(415, f"the uploaded file: {error}") from None
    except InputError as error:
        raise _bad_file(422, f"the uploaded file: {error}") from None
