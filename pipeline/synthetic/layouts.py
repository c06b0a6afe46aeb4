"""Writing a synthetic product to disk in one of three layouts.

``safe``
    ``<product_id>.SAFE/`` as ESA ships it: ``MTD_MSIL1C.xml`` or ``MTD_MSIL2A.xml``, and
    ``GRANULE/<granule_id>/`` with ``MTD_TL.xml`` and lossless JPEG 2000 bands under
    ``IMG_DATA/`` (L1C: ``T31UET_<time>_B02.jp2``; L2A: ``R10m/T31UET_<time>_B02_10m.jp2``,
    ``R20m/T31UET_<time>_B11_20m.jp2``, ``R20m/T31UET_<time>_SCL_20m.jp2``).
``cog``
    one Cloud-Optimized GeoTIFF per band (``B02.tif`` ... ``SCL.tif``) and a STAC item
    ``<product_id>.json`` whose assets are keyed by band, with ``raster:bands`` scale and offset.
``geotiff``
    one tiled GeoTIFF per band (``T31UET_<time>_B02.tif`` ...) and a sidecar ``metadata.json``.

Bands are first written strip by strip into tiled GeoTIFFs (the final files for ``geotiff``,
staging files otherwise) and then copied once into JPEG 2000 or COG, so no layout ever holds a
full band in memory.
"""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.windows import Window

from pipeline.synthetic.identity import ProductIdentity, earth_sun_distance_factor
from pipeline.synthetic.radiometry import (
    BAND_IDS, BAND_RESOLUTION_M, CENTRAL_WAVELENGTH_NM, COMMON_NAMES, QUANTIFICATION_VALUE,
)

__all__ = ["LAYOUTS", "BandFile", "ProductMetadata", "ProductWriter"]

LAYOUTS = ("safe", "cog", "geotiff")

#: Lossless JPEG 2000 as ESA writes it (OpenJPEG, reversible 5/3 wavelet, 1024 px code tiles).
JP2_OPTIONS = {"QUALITY": "100", "REVERSIBLE": "YES", "YCC": "NO", "BLOCKXSIZE": "1024", "BLOCKYSIZE": "1024"}
COG_OPTIONS = {"COMPRESS": "DEFLATE", "PREDICTOR": "2", "BLOCKSIZE": "512", "OVERVIEWS": "AUTO", "RESAMPLING": "AVERAGE"}
GTIFF_OPTIONS = {"tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate", "predictor": 2, "zlevel": 3}
STAGING_OPTIONS = {"tiled": True, "blockxsize": 512, "blockysize": 512}
#: OpenJPEG holds a whole band while encoding (about 0.5 GB for a full 10 m band): at most this many
#: at once keeps a full tile under 2.5 GB of memory whatever the core count.
MAX_PARALLEL_ENCODES = 3

_SOLAR_IRRADIANCE = {"B01": 1874.3, "B02": 1959.75, "B03": 1824.93, "B04": 1512.79, "B05": 1425.78,
                     "B06": 1291.13, "B07": 1175.57, "B08": 1041.28, "B8A": 953.93, "B09": 817.58,
                     "B10": 365.41, "B11": 247.08, "B12": 87.75}
_SCL_NAMES = {0: "NO_DATA", 1: "SATURATED_DEFECTIVE", 2: "CAST_SHADOWS", 3: "CLOUD_SHADOWS", 4: "VEGETATION",
              5: "NOT_VEGETATED", 6: "WATER", 7: "UNCLASSIFIED", 8: "CLOUD_MEDIUM_PROBA", 9: "CLOUD_HIGH_PROBA",
              10: "THIN_CIRRUS", 11: "SNOW_ICE"}
_ESA = "https://psd-14.sentinel2.eo.esa.int/PSD/"


@dataclass(frozen=True)
class BandFile:
    """One raster of the product: band name, native resolution (m), dtype and final path."""

    band: str
    resolution_m: int
    dtype: str
    path: Path


@dataclass
class ProductMetadata:
    """What the metadata files say about the product (filled in after the rasters are written)."""

    identity: ProductIdentity
    transform: Affine  # 10 m grid of the product
    width: int
    height: int
    add_offset: int
    sun_zenith_deg: float
    sun_azimuth_deg: float
    footprint_lonlat: list[tuple[float, float]]  # closed ring, lon/lat
    cloud_cover_pct: float = 0.0
    scl_percentages: dict[int, float] = field(default_factory=dict)


class ProductWriter:
    """Open all band rasters of a product, accept strips, then finish the layout.

    Parameters
    ----------
    layout : {"safe", "cog", "geotiff"}
        Output layout.
    out_dir : pathlib.Path
        Product directory (created).
    identity : ProductIdentity
        Names and level.
    transform : affine.Affine
        10 m transform of the product grid.
    crs : str
        CRS of the grid, e.g. ``"EPSG:32631"``.
    height, width : int
        10 m grid size.
    """

    def __init__(self, layout: str, out_dir: Path, identity: ProductIdentity, transform: Affine, crs: str,
                 height: int, width: int) -> None:
        self.layout = layout
        self.out_dir = Path(out_dir)
        self.identity = identity
        self.transform = transform
        self.crs = crs
        self.height = height
        self.width = width
        bands = ["B02", "B03", "B04", "B08", "B11"] + (["SCL"] if identity.level == "L2A" else [])
        self.band_files = {b: self._band_file(b) for b in bands}
        self._staging_dir = self.out_dir / ".staging" if layout != "geotiff" else None
        self._datasets: dict[str, rasterio.io.DatasetWriter] = {}

    # -- rasters ----------------------------------------------------------------------------------
    def open(self) -> None:
        """Create every band raster (staging GeoTIFF, or the final GeoTIFF for ``geotiff``)."""
        for band, spec in self.band_files.items():
            factor = spec.resolution_m // 10
            target = self._staging_path(band)
            target.parent.mkdir(parents=True, exist_ok=True)
            options = GTIFF_OPTIONS if self.layout == "geotiff" else STAGING_OPTIONS
            self._datasets[band] = rasterio.open(
                target, "w", driver="GTiff", width=-(-self.width // factor), height=-(-self.height // factor),
                count=1, dtype=spec.dtype, crs=self.crs, transform=self.transform @ Affine.scale(factor),
                nodata=0, **options,
            )

    def write(self, band: str, array: np.ndarray, row0: int) -> None:
        """Write ``array`` (rows, cols) at the band's own resolution starting at row ``row0``."""
        self._datasets[band].write(array, 1, window=Window(0, row0, array.shape[1], array.shape[0]))

    def finish(self, description: ProductMetadata) -> list[Path]:
        """Close the rasters, convert them for the layout, write its metadata; return all files written."""
        for dataset in self._datasets.values():
            dataset.close()
        self._datasets.clear()
        written = [spec.path for spec in self.band_files.values()]
        if self.layout == "safe":
            self._convert("JP2OpenJPEG", JP2_OPTIONS)
            written += self._write_safe_metadata(description)
        elif self.layout == "cog":
            self._convert("COG", COG_OPTIONS)
            written.append(self._write_stac_item(description))
        else:
            written.append(self._write_sidecar(description))
        if self._staging_dir is not None:
            shutil.rmtree(self._staging_dir, ignore_errors=True)
        return written

    def _convert(self, driver: str, options: dict[str, str]) -> None:
        """Copy every staged band into its final format, bands in parallel (GDAL releases the GIL)."""
        def convert(band: str) -> None:
            spec = self.band_files[band]
            spec.path.parent.mkdir(parents=True, exist_ok=True)
            # No PAM sidecars (.aux.xml): ESA products have none, NODATA is stated in the metadata.
            with rasterio.Env(GDAL_PAM_ENABLED="NO"):
                rasterio.shutil.copy(self._staging_path(band), spec.path, driver=driver, **options)

        workers = max(1, min(len(self.band_files), os.cpu_count() or 1, MAX_PARALLEL_ENCODES))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(convert, self.band_files))

    def abort(self) -> None:
        """Close whatever is open and remove staging files (after an error)."""
        for dataset in self._datasets.values():
            dataset.close()
        self._datasets.clear()
        if self._staging_dir is not None:
            shutil.rmtree(self._staging_dir, ignore_errors=True)

    @property
    def product_path(self) -> Path:
        """What to hand to a reader: the ``.SAFE`` folder, the STAC item, or the GeoTIFF folder."""
        if self.layout == "safe":
            return self.safe_dir
        if self.layout == "cog":
            return self.out_dir / f"{self.identity.product_id}.json"
        return self.out_dir

    @property
    def safe_dir(self) -> Path:
        return self.out_dir / f"{self.identity.product_id}.SAFE"

    @property
    def granule_dir(self) -> Path:
        return self.safe_dir / "GRANULE" / self.identity.granule_id

    def _band_file(self, band: str) -> BandFile:
        resolution = 20 if band == "SCL" else BAND_RESOLUTION_M[band]
        dtype = "uint8" if band == "SCL" else "uint16"
        stem = self.identity.file_stem
        if self.layout == "safe":
            img = self.granule_dir / "IMG_DATA"
            if self.identity.level == "L1C":
                path = img / f"{stem}_{band}.jp2"
            else:
                path = img / f"R{resolution}m" / f"{stem}_{band}_{resolution}m.jp2"
        elif self.layout == "cog":
            path = self.out_dir / f"{band}.tif"
        else:
            path = self.out_dir / f"{stem}_{band}.tif"
        return BandFile(band=band, resolution_m=resolution, dtype=dtype, path=path)

    def _staging_path(self, band: str) -> Path:
        if self._staging_dir is None:
            return self.band_files[band].path
        return self._staging_dir / f"{band}.tif"

    # -- SAFE metadata ----------------------------------------------------------------------------
    def _write_safe_metadata(self, d: ProductMetadata) -> list[Path]:
        level = self.identity.level
        product_xml = self.safe_dir / f"MTD_MSI{level}.xml"
        tile_xml = self.granule_dir / "MTD_TL.xml"
        _write_xml(_product_metadata_xml(d, self.band_files, self.safe_dir), product_xml)
        _write_xml(_tile_metadata_xml(d), tile_xml)
        manifest = self.safe_dir / "manifest.safe"
        _write_xml(_manifest_xml(self.safe_dir, [product_xml, tile_xml, *(b.path for b in self.band_files.values())]),
                   manifest)
        return [product_xml, tile_xml, manifest]

    # -- STAC -------------------------------------------------------------------------------------
    def _write_stac_item(self, d: ProductMetadata) -> Path:
        identity = self.identity
        scale = 1.0 / QUANTIFICATION_VALUE
        assets = {}
        for band, spec in self.band_files.items():
            factor = spec.resolution_m // 10
            transform = self.transform @ Affine.scale(factor)
            shape = [-(-self.height // factor), -(-self.width // factor)]
            asset = {
                "href": f"./{spec.path.name}",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "title": f"{band} - {spec.resolution_m}m",
                "roles": ["data"] if band == "SCL" else ["data", "reflectance"],
                "gsd": spec.resolution_m,
                "proj:code": self.crs,
                "proj:shape": shape,
                "proj:transform": [transform.a, transform.b, transform.c, transform.d, transform.e, transform.f],
            }
            if band == "SCL":
                asset["raster:bands"] = [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20, "unit": "class"}]
                asset["classification:classes"] = [
                    {"value": k, "name": v.lower()} for k, v in _SCL_NAMES.items()
                ]
            else:
                asset["eo:bands"] = [{"name": band, "common_name": COMMON_NAMES[band],
                                      "center_wavelength": round(CENTRAL_WAVELENGTH_NM[band] / 1000.0, 4)}]
                asset["raster:bands"] = [{"nodata": 0, "data_type": "uint16", "spatial_resolution": spec.resolution_m,
                                          "scale": scale, "offset": d.add_offset * scale}]
            assets[band] = asset
        ring = [list(p) for p in d.footprint_lonlat]
        lons = [p[0] for p in ring]
        lats = [p[1] for p in ring]
        properties = {
            "datetime": _iso(identity.acquired),
            "platform": identity.platform,
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "gsd": 10,
            "eo:cloud_cover": round(d.cloud_cover_pct, 4),
            "proj:code": self.crs,
            "grid:code": f"MGRS-{identity.tile.tile_id}",
            "mgrs:utm_zone": identity.tile.zone,
            "mgrs:latitude_band": identity.tile.tile_id[2],
            "mgrs:grid_square": identity.tile.tile_id[3:],
            "processing:level": identity.level,
            "s2:product_type": f"S2MSI{identity.level[1:]}",
            "s2:product_uri": f"{identity.product_id}.SAFE",
            "s2:processing_baseline": identity.baseline,
            "s2:mgrs_tile": identity.tile.tile_id,
            "s2:datatake_id": identity.datatake_id,
            "s2:quantification_value": QUANTIFICATION_VALUE,
            "s2:reflectance_conversion_factor": earth_sun_distance_factor(identity.acquired),
            "view:sun_azimuth": round(d.sun_azimuth_deg, 4),
            "view:sun_elevation": round(90.0 - d.sun_zenith_deg, 4),
            "sat:relative_orbit": identity.relative_orbit,
            "sat:absolute_orbit": identity.absolute_orbit,
            ("s2:boa_add_offset" if identity.level == "L2A" else "s2:radio_add_offset"): d.add_offset,
            "created": _iso(identity.processed),
        }
        for index, pct in d.scl_percentages.items():
            properties[f"s2:{_SCL_NAMES[index].lower()}_percentage"] = round(pct, 4)
        item = {
            "type": "Feature",
            "stac_version": "1.1.0",
            "stac_extensions": [
                "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
                "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
                "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
                "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
                "https://stac-extensions.github.io/view/v1.0.0/schema.json",
                "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
                "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
                "https://stac-extensions.github.io/classification/v1.1.0/schema.json",
            ],
            "id": identity.product_id,
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "bbox": [min(lons), min(lats), max(lons), max(lats)],
            "properties": properties,
            "assets": assets,
            "links": [],
        }
        path = self.product_path
        path.write_text(json.dumps(item, indent=2))
        return path

    # -- GeoTIFF sidecar --------------------------------------------------------------------------
    def _write_sidecar(self, d: ProductMetadata) -> Path:
        identity = self.identity
        offsets = {b: d.add_offset for b in self.band_files if b != "SCL"}
        sidecar = {
            "product_id": identity.product_id,
            "acquired": _iso(identity.acquired),
            "tile_id": identity.tile.tile_id,
            "level": identity.level,
            "baseline": identity.baseline,
            "quantification_value": QUANTIFICATION_VALUE,
            "offsets": offsets,
            ("boa_add_offset" if identity.level == "L2A" else "radio_add_offset"): offsets,
            "nodata": 0,
            "crs": self.crs,
            "spacecraft": identity.spacecraft,
            "cloud_cover": round(d.cloud_cover_pct, 4),
            "sun_zenith_deg": round(d.sun_zenith_deg, 4),
            "sun_azimuth_deg": round(d.sun_azimuth_deg, 4),
            "bands": {b: {"file": s.path.name, "resolution_m": s.resolution_m} for b, s in self.band_files.items()},
        }
        path = self.out_dir / "metadata.json"
        path.write_text(json.dumps(sidecar, indent=2))
        return path


# -- XML ------------------------------------------------------------------------------------------
def _sub(parent: ET.Element, tag: str, text: object | None = None, **attributes: object) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: str(v) for k, v in attributes.items()})
    if text is not None:
        element.text = str(text)
    return element


def _write_xml(root: ET.Element, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)


def _product_metadata_xml(d: ProductMetadata, band_files: dict[str, BandFile], safe_dir: Path) -> ET.Element:
    """``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``: product info, radiometry and quality indicators."""
    identity = d.identity
    l2a = identity.level == "L2A"
    kind = "Level-2A" if l2a else "Level-1C"
    root = ET.Element(f"n1:{kind}_User_Product", {
        "xmlns:n1": f"{_ESA}User_Product_{kind}.xsd",
        "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
    })
    general = _sub(root, "n1:General_Info")
    info = _sub(general, "Product_Info" if not l2a else "L2A_Product_Info")
    _sub(info, "PRODUCT_START_TIME", _iso(identity.acquired))
    _sub(info, "PRODUCT_STOP_TIME", _iso(identity.acquired))
    _sub(info, "PRODUCT_URI", f"{identity.product_id}.SAFE")
    _sub(info, "PROCESSING_LEVEL", kind)
    _sub(info, "PRODUCT_TYPE", f"S2MSI{identity.level[1:]}")
    _sub(info, "PROCESSING_BASELINE", identity.baseline)
    _sub(info, "GENERATION_TIME", _iso(identity.processed))
    datatake = _sub(info, "Datatake", datatakeIdentifier=identity.datatake_id)
    _sub(datatake, "SPACECRAFT_NAME", f"Sentinel-2{identity.spacecraft[-1]}")
    _sub(datatake, "DATATAKE_TYPE", "INS-NOBS")
    _sub(datatake, "DATATAKE_SENSING_START", _iso(identity.acquired))
    _sub(datatake, "SENSING_ORBIT_NUMBER", identity.relative_orbit)
    _sub(datatake, "SENSING_ORBIT_DIRECTION", "DESCENDING")
    query = _sub(info, "Query_Options", completeSingleTile="true")
    _sub(query, "PRODUCT_FORMAT", "SAFE_COMPACT")
    band_list = _sub(query, "Band_List")
    for band in band_files:
        if band != "SCL":
            _sub(band_list, "BAND_NAME", band.replace("B0", "B"))
    organisation = _sub(info, "Product_Organisation" if not l2a else "L2A_Product_Organisation")
    granules = _sub(_sub(organisation, "Granule_List"), "Granule", granuleIdentifier=identity.granule_id,
                    imageFormat="JPEG2000")
    for spec in band_files.values():
        _sub(granules, "IMAGE_FILE", spec.path.relative_to(safe_dir).with_suffix("").as_posix())

    image = _sub(general, "Product_Image_Characteristics" if not l2a else "L2A_Product_Image_Characteristics")
    for text, index in (("NODATA", 0), ("SATURATED", 65535)):
        special = _sub(image, "Special_Values")
        _sub(special, "SPECIAL_VALUE_TEXT", text)
        _sub(special, "SPECIAL_VALUE_INDEX", index)
    if l2a:
        quantification = _sub(image, "QUANTIFICATION_VALUES_LIST")
        _sub(quantification, "BOA_QUANTIFICATION_VALUE", QUANTIFICATION_VALUE, unit="none")
        _sub(quantification, "AOT_QUANTIFICATION_VALUE", "1000.0", unit="none")
        _sub(quantification, "WVP_QUANTIFICATION_VALUE", "1000.0", unit="cm")
    else:
        _sub(image, "QUANTIFICATION_VALUE", QUANTIFICATION_VALUE, unit="none")
    if d.add_offset != 0:
        offsets = _sub(image, "BOA_ADD_OFFSET_VALUES_LIST" if l2a else "Radiometric_Offset_List")
        for band_id in BAND_IDS.values():
            _sub(offsets, "BOA_ADD_OFFSET" if l2a else "RADIO_ADD_OFFSET", d.add_offset, band_id=band_id)
    conversion = _sub(image, "Reflectance_Conversion")
    _sub(conversion, "U", f"{earth_sun_distance_factor(identity.acquired):.12f}")
    irradiance = _sub(conversion, "Solar_Irradiance_List")
    for band, band_id in BAND_IDS.items():
        _sub(irradiance, "SOLAR_IRRADIANCE", _SOLAR_IRRADIANCE[band], bandId=band_id, unit="W/m²/µm")
    spectral = _sub(image, "Spectral_Information_List")
    for band, band_id in BAND_IDS.items():
        information = _sub(spectral, "Spectral_Information", bandId=band_id, physicalBand=band.replace("B0", "B"))
        _sub(information, "RESOLUTION", BAND_RESOLUTION_M[band])
        wavelength = _sub(information, "Wavelength")
        _sub(wavelength, "CENTRAL", CENTRAL_WAVELENGTH_NM[band], unit="nm")
    if l2a:
        classes = _sub(image, "Scene_Classification_List")
        for index, name in _SCL_NAMES.items():
            item = _sub(classes, "Scene_Classification_ID")
            _sub(item, "SCENE_CLASSIFICATION_TEXT", f"SC_{name}")
            _sub(item, "SCENE_CLASSIFICATION_INDEX", index)

    geometric = _sub(root, "n1:Geometric_Info")
    footprint = _sub(_sub(_sub(geometric, "Product_Footprint"), "Product_Footprint"), "Global_Footprint")
    _sub(footprint, "EXT_POS_LIST", " ".join(f"{lat:.10g} {lon:.10g}" for lon, lat in d.footprint_lonlat))
    crs = _sub(geometric, "Coordinate_Reference_System")
    _sub(crs, "GEO_TABLES", "EPSG", version="1.0")
    _sub(crs, "HORIZONTAL_CS_TYPE", "GEOGRAPHIC")

    quality = _sub(root, "n1:Quality_Indicators_Info")
    _sub(quality, "Cloud_Coverage_Assessment", f"{d.cloud_cover_pct:.6f}")
    if l2a:
        content = _sub(quality, "Image_Content_QI")
        _l2a_percentages(content, d)
    return root


def _l2a_percentages(parent: ET.Element, d: ProductMetadata) -> None:
    names = {0: "NODATA_PIXEL_PERCENTAGE", 1: "SATURATED_DEFECTIVE_PIXEL_PERCENTAGE", 3: "CLOUD_SHADOW_PERCENTAGE",
             4: "VEGETATION_PERCENTAGE", 5: "NOT_VEGETATED_PERCENTAGE", 6: "WATER_PERCENTAGE",
             7: "UNCLASSIFIED_PERCENTAGE", 8: "MEDIUM_PROBA_CLOUDS_PERCENTAGE", 9: "HIGH_PROBA_CLOUDS_PERCENTAGE",
             10: "THIN_CIRRUS_PERCENTAGE", 11: "SNOW_ICE_PERCENTAGE"}
    for index, name in names.items():
        _sub(parent, name, f"{d.scl_percentages.get(index, 0.0):.6f}")


def _tile_metadata_xml(d: ProductMetadata) -> ET.Element:
    """Granule ``MTD_TL.xml``: tile id, sensing time, EPSG code, sizes and geoposition per resolution."""
    identity = d.identity
    kind = "Level-2A" if identity.level == "L2A" else "Level-1C"
    root = ET.Element(f"n1:{kind}_Tile_ID", {
        "xmlns:n1": f"{_ESA}S2_PDI_{kind}_Tile_Metadata.xsd",
        "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
    })
    general = _sub(root, "n1:General_Info")
    major_minor = identity.baseline
    _sub(general, "TILE_ID", f"{identity.spacecraft}_OPER_MSI_{identity.level}_TL_2{identity.spacecraft[-1]}PS_"
         f"{identity.processed:%Y%m%dT%H%M%S}_A{identity.absolute_orbit:06d}_T{identity.tile.tile_id}_N{major_minor}",
         metadataLevel="Brief")
    _sub(general, "DATASTRIP_ID", f"{identity.spacecraft}_OPER_MSI_{identity.level}_DS_2{identity.spacecraft[-1]}PS_"
         f"{identity.processed:%Y%m%dT%H%M%S}_S{identity.acquired:%Y%m%dT%H%M%S}_N{major_minor}", metadataLevel="Standard")
    _sub(general, "DOWNLINK_PRIORITY", "NOMINAL", metadataLevel="Standard")
    _sub(general, "SENSING_TIME", _iso(identity.acquired), metadataLevel="Standard")
    geometric = _sub(root, "n1:Geometric_Info")
    geocoding = _sub(geometric, "Tile_Geocoding", metadataLevel="Brief")
    _sub(geocoding, "HORIZONTAL_CS_NAME", identity.tile.crs_name)
    _sub(geocoding, "HORIZONTAL_CS_CODE", f"EPSG:{identity.tile.epsg}")
    for resolution in (10, 20, 60):
        factor = resolution // 10
        size = _sub(geocoding, "Size", resolution=resolution)
        _sub(size, "NROWS", -(-d.height // factor))
        _sub(size, "NCOLS", -(-d.width // factor))
    for resolution in (10, 20, 60):
        position = _sub(geocoding, "Geoposition", resolution=resolution)
        _sub(position, "ULX", f"{d.transform.c:.0f}")
        _sub(position, "ULY", f"{d.transform.f:.0f}")
        _sub(position, "XDIM", resolution)
        _sub(position, "YDIM", -resolution)
    angles = _sub(geometric, "Tile_Angles", metadataLevel="Standard")
    sun = _sub(angles, "Mean_Sun_Angle")
    _sub(sun, "ZENITH_ANGLE", f"{d.sun_zenith_deg:.6f}", unit="deg")
    _sub(sun, "AZIMUTH_ANGLE", f"{d.sun_azimuth_deg:.6f}", unit="deg")
    quality = _sub(root, "n1:Quality_Indicators_Info", metadataLevel="Standard")
    content = _sub(quality, "Image_Content_QI")
    _sub(content, "CLOUDY_PIXEL_PERCENTAGE", f"{d.cloud_cover_pct:.6f}")
    _sub(content, "DEGRADED_MSI_DATA_PERCENTAGE", 0)
    if identity.level == "L2A":
        _l2a_percentages(content, d)
    return root


def _manifest_xml(safe_dir: Path, files: list[Path]) -> ET.Element:
    """A minimal XFDU ``manifest.safe`` listing the product's data objects."""
    root = ET.Element("xfdu:XFDU", {"xmlns:xfdu": "urn:ccsds:schema:xfdu:1", "version": "esa/safe/sentinel/1.1/sentinel-2/msi"})
    section = _sub(root, "dataObjectSection")
    for index, file in enumerate(files):
        data = _sub(section, "dataObject", ID=f"object_{index}")
        location = _sub(_sub(data, "byteStream", size=file.stat().st_size if file.exists() else 0), "fileLocation",
                        locatorType="URL", href=f"./{file.relative_to(safe_dir).as_posix()}")
        location.text = None
    return root


def _iso(when) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, as ESA and STAC write times."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
