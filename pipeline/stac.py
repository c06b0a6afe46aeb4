"""Read a STAC item JSON whose assets are single-band rasters (for example Cloud-Optimized GeoTIFFs).

Bands are found by asset key (``"B02"`` or a common name such as ``"nir"``) or by the asset's
``eo:bands`` entry; hrefs are relative to the item file (``file://`` and absolute paths work too).
Radiometry, in order of preference: the asset's ``raster:bands`` ``scale``/``offset`` (reflectance =
DN * scale + offset); item properties ``s2:quantification_value`` / ``quantification_value`` with
``s2:radio_add_offset`` / ``s2:boa_add_offset`` / ``offsets`` (a number or per-band mapping); the
ESA convention implied by ``s2:processing_baseline`` (10000, and −1000 from baseline 04.00);
otherwise the scale is assumed as for a plain GeoTIFF folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pipeline.ingest import (
    BAND_IDS,
    COMMON_NAMES,
    BandFile,
    ProductDescription,
    band_offset,
    datetime_from_name,
    parse_datetime,
    parse_level,
    tile_from_name,
)
from vesselwatch.errors import ProductError


def find_stac_items(folder: Path) -> list[Path]:
    """JSON files directly in ``folder`` that are STAC items (``"type": "Feature"`` with assets)."""
    items = []
    for candidate in sorted(folder.glob("*.json")):
        try:
            if candidate.stat().st_size > 10_000_000:
                continue
            document = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(document, dict) and document.get("type") == "Feature" and isinstance(document.get("assets"), dict):
            items.append(candidate)
    return items


def describe_stac_item(path: Path) -> ProductDescription:
    """List band files and metadata of a STAC item (opens no raster).

    Raises
    ------
    ProductError
        Unreadable JSON, not an item, an asset href that does not exist, no band asset.
    """
    try:
        item = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ProductError(path, f"not a readable STAC item JSON: {error}") from error
    if not isinstance(item, dict) or not isinstance(item.get("assets"), dict):
        raise ProductError(path, "not a STAC item (no 'assets' object)")
    properties: dict[str, Any] = item.get("properties") or {}

    baseline = properties.get("s2:processing_baseline") or properties.get("processing_baseline")
    quantification = _first(properties, "s2:quantification_value", "quantification_value", "QUANTIFICATION_VALUE")
    offsets = _first(properties, "s2:radio_add_offset", "s2:boa_add_offset", "offsets", "radio_add_offset",
                     "boa_add_offset", "RADIO_ADD_OFFSET", "BOA_ADD_OFFSET")
    if quantification is None and baseline is not None:
        quantification = 10000.0
        if offsets is None and _baseline_number(str(baseline)) >= 4.0:
            offsets = -1000.0

    bands: dict[str, BandFile] = {}
    radiometry = "metadata"
    for key, asset in item["assets"].items():
        band = _asset_band(key, asset)
        if band is None or band in bands:
            continue
        href = _resolve_href(path, str(asset.get("href", "")))
        if not Path(href).exists() and not href.startswith("/vsi"):
            raise ProductError(path, f"asset {key!r} points to {href}, which does not exist")
        raster_bands = asset.get("raster:bands") or [{}]
        raster = raster_bands[0] if isinstance(raster_bands, list) and raster_bands else {}
        nodata = raster.get("nodata", properties.get("nodata"))
        if band == "SCL":
            bands[band] = BandFile(band=band, path=href, scale=1.0, offset=0.0, nodata=None)
        elif "scale" in raster or "offset" in raster:
            bands[band] = BandFile(band=band, path=href, scale=float(raster.get("scale", 1.0)),
                                   offset=float(raster.get("offset", 0.0)),
                                   nodata=None if nodata is None else float(nodata))
        elif quantification is not None:
            q = float(quantification)
            bands[band] = BandFile(band=band, path=href, scale=1.0 / q, offset=band_offset(offsets, band) / q,
                                   nodata=0.0 if nodata is None else float(nodata))
        else:
            radiometry = "assumed"
            bands[band] = BandFile(band=band, path=href, nodata=None if nodata is None else float(nodata))
    if not bands:
        raise ProductError(path, "no asset is a Sentinel-2 band (keys or eo:bands like B02, nir, swir16)")

    item_id = str(item.get("id") or path.stem)
    product_type = properties.get("s2:product_type") or properties.get("processing:level") or properties.get("level")
    tile = properties.get("s2:mgrs_tile") or properties.get("mgrs_tile") or properties.get("tile_id")
    if tile is None and "mgrs:utm_zone" in properties:
        tile = f"{int(properties['mgrs:utm_zone']):02d}{properties.get('mgrs:latitude_band', '')}" \
               f"{properties.get('mgrs:grid_square', '')}"
    return ProductDescription(
        product_id=item_id,
        path=path,
        layout="stac",
        bands=bands,
        acquired=parse_datetime(properties.get("datetime") or properties.get("start_datetime"))
        or datetime_from_name(item_id),
        tile_id=str(tile).lstrip("T") if tile else tile_from_name(item_id),
        level=parse_level(product_type) or parse_level(item_id),
        baseline=str(baseline) if baseline is not None else None,
        radiometry=radiometry,
        extra={"proj:code": properties.get("proj:code") or _epsg_code(properties.get("proj:epsg")),
               "eo:cloud_cover": properties.get("eo:cloud_cover")},
    )


def _first(mapping: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if mapping.get(key) is not None:
            return mapping[key]
    return None


def _epsg_code(epsg: Any) -> str | None:
    return f"EPSG:{int(epsg)}" if epsg is not None else None


def _baseline_number(baseline: str) -> float:
    try:
        return float(baseline)
    except ValueError:
        return 0.0


def _asset_band(key: str, asset: dict[str, Any]) -> str | None:
    """Sentinel-2 band name of an asset from its key or its ``eo:bands`` entry, or None."""
    candidates = [key]
    for entry in asset.get("eo:bands") or []:
        if isinstance(entry, dict):
            candidates += [str(entry.get("name", "")), str(entry.get("common_name", ""))]
    for candidate in candidates:
        upper = candidate.upper()
        if upper in BAND_IDS or upper == "SCL":
            return upper
        if candidate.lower() in COMMON_NAMES:
            return COMMON_NAMES[candidate.lower()]
    return None


def _resolve_href(item_path: Path, href: str) -> str:
    if href.startswith("file://"):
        return unquote(urlparse(href).path)
    if href.startswith("/vsi") or Path(href).is_absolute():
        return href
    return str((item_path.parent / href).resolve())
