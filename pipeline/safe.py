"""Read the layout of an ESA ``.SAFE`` product (folder or zip), Level-1C or Level-2A.

Band files are JPEG 2000 under ``GRANULE/<granule>/IMG_DATA/`` (L1C: ``*_B02.jp2``; L2A:
``R10m/*_B02_10m.jp2``, ``R20m/*_B11_20m.jp2``, ``R20m/*_SCL_20m.jp2``); when a band exists at
several resolutions the finest is used. Radiometry comes from ``MTD_MSIL1C.xml`` /
``MTD_MSIL2A.xml``: ``QUANTIFICATION_VALUE`` (or ``BOA_QUANTIFICATION_VALUE``) and the per-band
``RADIO_ADD_OFFSET`` / ``BOA_ADD_OFFSET`` (``band_id`` 0..12 = B01..B12 with B8A at 8).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

from pipeline.ingest import (
    BAND_IDS,
    BandFile,
    ProductDescription,
    datetime_from_name,
    parse_datetime,
    parse_level,
    tile_from_name,
)
from vesselwatch.errors import ProductError

_BAND_FILE = re.compile(r"_(B0[1-9]|B1[0-2]|B8A|SCL)(?:_(\d+)m)?\.jp2$", re.IGNORECASE)
_PRODUCT_MTD = re.compile(r"(^|/)MTD_MSIL(1C|2A)\.xml$")
_TILE_MTD = re.compile(r"(^|/)GRANULE/[^/]+/MTD_TL\.xml$")

#: ESA no-data digital number.
ESA_NODATA = 0


def find_product_metadata(folder: Path) -> Path | None:
    """``MTD_MSIL1C.xml`` or ``MTD_MSIL2A.xml`` at the top of a SAFE folder, or None."""
    for name in ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml"):
        if (folder / name).is_file():
            return folder / name
    return None


def describe_safe(path: Path) -> ProductDescription:
    """List band files and metadata of a SAFE folder or zip (opens no raster).

    Raises
    ------
    ProductError
        No product metadata XML, unreadable XML or zip, no band files.
    """
    if path.is_file():
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                mtd_name = next((n for n in names if _PRODUCT_MTD.search(n) and n.count("/") <= 1), None)
                tl_name = next((n for n in names if _TILE_MTD.search(n)), None)
                mtd_text = archive.read(mtd_name) if mtd_name else None
                tl_text = archive.read(tl_name) if tl_name else None
        except (zipfile.BadZipFile, OSError) as error:
            raise ProductError(path, f"not a readable zip: {error}") from error
        members = [n for n in names if "/IMG_DATA/" in f"/{n}" and _BAND_FILE.search(n)]
        gdal_paths = {n: f"/vsizip/{path.resolve().as_posix()}/{n}" for n in members}
        product_name = PurePosixPath(mtd_name).parent.name if mtd_name else path.stem
        mtd_label = f"{path}!{mtd_name}" if mtd_name else str(path)
    else:
        mtd_path = find_product_metadata(path)
        mtd_name = mtd_path.name if mtd_path else None
        mtd_text = mtd_path.read_bytes() if mtd_path else None
        tl_files = sorted(path.glob("GRANULE/*/MTD_TL.xml"))
        tl_text = tl_files[0].read_bytes() if tl_files else None
        files = sorted(p for p in path.glob("GRANULE/*/IMG_DATA/**/*") if _BAND_FILE.search(p.name))
        members = [p.relative_to(path).as_posix() for p in files]
        gdal_paths = {m: str(path / m) for m in members}
        product_name = path.name
        mtd_label = str(mtd_path or path)
    if product_name.upper().endswith(".SAFE"):
        product_name = product_name[:-5]
    if mtd_text is None:
        raise ProductError(path, "no MTD_MSIL1C.xml or MTD_MSIL2A.xml: not a SAFE product")

    try:
        root = ElementTree.fromstring(mtd_text)
    except ElementTree.ParseError as error:
        raise ProductError(mtd_label, f"product metadata is not valid XML: {error}") from error
    fields = _text_fields(root)
    quantification = _quantification(root)
    if quantification is None:
        raise ProductError(mtd_label, "no QUANTIFICATION_VALUE in product metadata")
    offsets = _band_offsets(root)

    bands: dict[str, BandFile] = {}
    resolution: dict[str, int] = {}
    for member in members:
        match = _BAND_FILE.search(member)
        band = match.group(1).upper()
        res = int(match.group(2)) if match.group(2) else 0
        if band in bands and resolution[band] <= res:
            continue
        resolution[band] = res
        if band == "SCL":
            bands[band] = BandFile(band=band, path=gdal_paths[member], scale=1.0, offset=0.0, nodata=None)
        else:
            offset = offsets.get(band, 0.0)
            bands[band] = BandFile(band=band, path=gdal_paths[member], scale=1.0 / quantification,
                                   offset=offset / quantification, nodata=ESA_NODATA)
    if not bands:
        raise ProductError(path, "no band files under GRANULE/*/IMG_DATA/")

    tile_id = tile_from_name(product_name)
    if tile_id is None and tl_text is not None:
        try:
            tl_fields = _text_fields(ElementTree.fromstring(tl_text))
            tile_id = tile_from_name(tl_fields.get("TILE_ID", ""))
        except ElementTree.ParseError:
            tile_id = None
    if tile_id is None:
        tile_id = tile_from_name(" ".join(members))

    level = parse_level(fields.get("PROCESSING_LEVEL")) or parse_level(fields.get("PRODUCT_TYPE")) \
        or parse_level(mtd_name) or parse_level(product_name)
    return ProductDescription(
        product_id=product_name,
        path=path,
        layout="safe",
        bands=bands,
        acquired=parse_datetime(fields.get("PRODUCT_START_TIME")) or datetime_from_name(product_name),
        tile_id=tile_id,
        level=level,
        baseline=fields.get("PROCESSING_BASELINE"),
        radiometry="metadata",
    )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text_fields(root: ElementTree.Element) -> dict[str, str]:
    """First text of every element, keyed by tag without namespace."""
    fields: dict[str, str] = {}
    for element in root.iter():
        text = (element.text or "").strip()
        if text:
            fields.setdefault(_local(element.tag), text)
    return fields


def _quantification(root: ElementTree.Element) -> float | None:
    for element in root.iter():
        tag = _local(element.tag)
        if tag in ("QUANTIFICATION_VALUE", "BOA_QUANTIFICATION_VALUE") and (element.text or "").strip():
            return float(element.text)
    return None


def _band_offsets(root: ElementTree.Element) -> dict[str, float]:
    """``RADIO_ADD_OFFSET``/``BOA_ADD_OFFSET`` per band name (band_id 0..12 = B01..B12, B8A at 8)."""
    offsets: dict[str, float] = {}
    for element in root.iter():
        if _local(element.tag) in ("RADIO_ADD_OFFSET", "BOA_ADD_OFFSET") and (element.text or "").strip():
            band_id = int(element.get("band_id", element.get("bandId", "-1")))
            if 0 <= band_id < len(BAND_IDS):
                offsets[BAND_IDS[band_id]] = float(element.text)
    return offsets
