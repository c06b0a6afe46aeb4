"""Sentinel-2 radiometry: reflectance to ESA digital numbers, and one simple atmosphere.

ESA ships reflectance as uint16 digital numbers (DN). From processing baseline 04.00 (January
2022) the products carry an additive offset so that negative surface reflectance survives:

    reflectance = (DN + ADD_OFFSET) / QUANTIFICATION_VALUE,  ADD_OFFSET = -1000, QUANTIFICATION_VALUE = 10000

``RADIO_ADD_OFFSET`` in Level-1C (top of atmosphere), ``BOA_ADD_OFFSET`` in Level-2A (bottom of
atmosphere). Earlier baselines have no offset. DN 0 is NODATA, 65535 saturated.

The synthetic scene is made once, at the surface, and seen through a linear atmosphere per band:
``toa = path + transmittance * boa`` (path radiance expressed as reflectance). Level-1C writes
``toa``, Level-2A inverts the same relation, so both levels come from one scene.
"""

from __future__ import annotations

import numpy as np

from vesselwatch.errors import InputError

__all__ = [
    "BAND_IDS",
    "BANDS_10M",
    "BANDS_20M",
    "NODATA_DN",
    "QUANTIFICATION_VALUE",
    "SCENE_BANDS",
    "add_offset_dn",
    "boa_from_toa",
    "parse_baseline",
    "reflectance_to_dn",
    "toa_from_boa",
]

QUANTIFICATION_VALUE = 10000
NODATA_DN = 0
SATURATED_DN = 65535

#: ESA's band_id (position in the 13-band list) of each band, as used in MTD_MSIL1C/2A.xml.
BAND_IDS: dict[str, int] = {
    "B01": 0, "B02": 1, "B03": 2, "B04": 3, "B05": 4, "B06": 5, "B07": 6,
    "B08": 7, "B8A": 8, "B09": 9, "B10": 10, "B11": 11, "B12": 12,
}
#: Native resolution of every band, metres.
BAND_RESOLUTION_M: dict[str, int] = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}
#: Central wavelength, nanometres (Sentinel-2B), for the metadata.
CENTRAL_WAVELENGTH_NM: dict[str, float] = {
    "B01": 442.2, "B02": 492.1, "B03": 559.0, "B04": 664.9, "B05": 703.8, "B06": 739.1, "B07": 779.7,
    "B08": 832.9, "B8A": 864.0, "B09": 943.2, "B10": 1376.9, "B11": 1610.4, "B12": 2185.7,
}
#: Bands the synthetic products contain, in plane order of the scene arrays.
SCENE_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08", "B11")
BANDS_10M: tuple[str, ...] = ("B02", "B03", "B04", "B08")
BANDS_20M: tuple[str, ...] = ("B11",)
COMMON_NAMES: dict[str, str] = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B11": "swir16"}

# Path radiance (as reflectance) and two-way transmittance of a clear maritime atmosphere.
_PATH_REFLECTANCE = np.array([0.045, 0.030, 0.019, 0.013, 0.004], dtype=np.float32)
_TRANSMITTANCE = np.array([0.82, 0.87, 0.90, 0.93, 0.95], dtype=np.float32)


def parse_baseline(baseline: str) -> tuple[int, int]:
    """``"05.10"`` -> ``(5, 10)``; raises :class:`InputError` for anything else.

    Examples
    --------
    >>> parse_baseline("04.00")
    (4, 0)
    """
    parts = str(baseline).strip().split(".")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise InputError(f"baseline {baseline!r}: expected a processing baseline like 05.10 (two digits, dot, two digits)")
    return int(parts[0]), int(parts[1])


def add_offset_dn(baseline: str) -> int:
    """``RADIO_ADD_OFFSET``/``BOA_ADD_OFFSET`` of a processing baseline: -1000 from 04.00, else 0.

    Examples
    --------
    >>> add_offset_dn("05.10"), add_offset_dn("03.01")
    (-1000, 0)
    """
    return -1000 if parse_baseline(baseline) >= (4, 0) else 0


def reflectance_to_dn(reflectance: np.ndarray, add_offset: int) -> np.ndarray:
    """ESA digital numbers (uint16) of reflectance: ``DN = reflectance * 10000 - add_offset``.

    Values are rounded and clipped to ``1..65535`` so that no valid pixel reads as NODATA (0).

    Examples
    --------
    >>> reflectance_to_dn(np.array([0.05, -0.2, 7.0]), -1000).tolist()
    [1500, 1, 65535]
    """
    dn = np.rint(np.asarray(reflectance, dtype=np.float32) * QUANTIFICATION_VALUE - add_offset)
    return np.clip(dn, NODATA_DN + 1, SATURATED_DN).astype(np.uint16)


def toa_from_boa(boa: np.ndarray, band_axis: int = 0) -> np.ndarray:
    """Top-of-atmosphere reflectance of surface reflectance ``boa`` (bands ``SCENE_BANDS`` on ``band_axis``)."""
    shape = [1] * np.ndim(boa)
    shape[band_axis] = len(SCENE_BANDS)
    return _PATH_REFLECTANCE.reshape(shape) + _TRANSMITTANCE.reshape(shape) * boa


def boa_from_toa(toa: np.ndarray, band_axis: int = 0) -> np.ndarray:
    """Inverse of :func:`toa_from_boa`: surface reflectance as an atmospheric correction would give."""
    shape = [1] * np.ndim(toa)
    shape[band_axis] = len(SCENE_BANDS)
    return (toa - _PATH_REFLECTANCE.reshape(shape)) / _TRANSMITTANCE.reshape(shape)


def path_reflectance(band_axis_ndim: int = 3) -> np.ndarray:
    """Path reflectance per scene band shaped to broadcast against ``(bands, rows, cols)`` arrays."""
    return _PATH_REFLECTANCE.reshape((-1,) + (1,) * (band_axis_ndim - 1))
