"""Enrich detections with where they are: nearest platforms, distance to the coast, protected areas.

Every detection gets, from the reference layers (:mod:`pipeline.reference`):

- ``nearest_platform_ids`` / ``nearest_platform_km``: every platform at exactly the smallest
  great-circle distance (ties kept, register order, see :mod:`geo.nearest`), and that distance;
- ``coast_km``: great-circle distance to the coastline;
- ``inside_area_ids``: the protected areas the vessel is in; ``near_area_ids``: those it is
  outside of but within the area's alert radius; ``nearest_area_id`` / ``nearest_area_km``: the
  closest of those (0 km inside).

A layer that is not given leaves its fields ``None`` rather than guessing.

Examples
--------
>>> from geo.nearest import PlatformIndex
>>> index = PlatformIndex([-1.0, 1.0], [52.0, 52.0], ids=["P1", "P2"])
>>> found = enrich_positions(np.array([0.0]), np.array([52.0]), platforms=index)
>>> found.as_dicts()[0]["nearest_platform_ids"]  # equidistant: both kept
['P1', 'P2']
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.reference import AreaMeasure, ReferenceLayers

log = logging.getLogger(__name__)

__all__ = ["Enrichment", "enrich_detections", "enrich_positions"]

#: Signature of a coast-distance function: ``(lon, lat) -> km`` over arrays.
CoastDistance = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]


@dataclass(frozen=True)
class Enrichment:
    """Enrichment of ``n`` detections (arrays and per-detection lists, aligned with the detections).

    Attributes
    ----------
    nearest_platform_km : ndarray (n,)
        Distance to the nearest platform, km; NaN without a platform register.
    nearest_platform_ids : list of list of str
        Every platform tied at that distance (register order); empty without a register.
    coast_km : ndarray (n,)
        Distance to the coastline, km; NaN without a coastline.
    inside_area_ids, near_area_ids : list of list of str
        Areas the vessel is inside / outside but within the area's alert radius.
    nearest_area_id : list of (str or None)
        The closest of those areas (inside ones first, at 0 km).
    nearest_area_km : ndarray (n,)
        Its distance, km (0 inside, NaN when no area is near).
    """

    nearest_platform_km: NDArray[np.float64]
    nearest_platform_ids: list[list[str]]
    coast_km: NDArray[np.float64]
    inside_area_ids: list[list[str]]
    near_area_ids: list[list[str]]
    nearest_area_id: list[str | None]
    nearest_area_km: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.coast_km.size)

    def as_dicts(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per detection (the ``enrichment`` of :class:`pipeline.store.DetectionRecord`)."""

        def number(value: float) -> float | None:
            return round(float(value), 6) if math.isfinite(value) else None

        return [
            {
                "nearest_platform_ids": self.nearest_platform_ids[i],
                "nearest_platform_count": len(self.nearest_platform_ids[i]),
                "nearest_platform_km": number(self.nearest_platform_km[i]),
                "coast_km": number(self.coast_km[i]),
                "inside_area_ids": self.inside_area_ids[i],
                "near_area_ids": self.near_area_ids[i],
                "nearest_area_id": self.nearest_area_id[i],
                "nearest_area_km": number(self.nearest_area_km[i]),
            }
            for i in range(len(self))
        ]


def enrich_detections(detections: Any, layers: ReferenceLayers) -> list[dict[str, Any]]:
    """JSON-ready enrichment of a scene's :class:`pipeline.detect.Detections` (one dict each)."""
    return enrich_positions(
        detections.lon, detections.lat,
        platforms=layers.platforms, coast_distance_km=layers.coast_distance_km, areas=layers.areas,
    ).as_dicts()


def enrich_positions(
    lon: ArrayLike,
    lat: ArrayLike,
    *,
    platforms: Any | None = None,
    coast_distance_km: CoastDistance | None = None,
    areas: AreaMeasure | None = None,
) -> Enrichment:
    """Measure detections at ``(lon, lat)`` (degrees) against the reference layers given.

    Parameters
    ----------
    lon, lat : array_like (n,)
        Detection centroids, WGS84 degrees.
    platforms : geo.nearest.PlatformIndex, optional
        Platform index (:meth:`pipeline.reference.Platforms.index`).
    coast_distance_km : callable, optional
        ``(lon, lat) -> km`` (e.g. :class:`pipeline.reference.CoastDistance`).
    areas : AreaMeasure, optional
        Protected areas with their alert radii.
    """
    lon = np.asarray(lon, dtype=np.float64).reshape(-1)
    lat = np.asarray(lat, dtype=np.float64).reshape(-1)
    n = lon.size
    nearest_km = np.full(n, np.nan)
    nearest_ids: list[list[str]] = [[] for _ in range(n)]
    if platforms is not None and n:
        result = platforms.query(lon, lat)
        nearest_km = np.asarray(result.distance_km, dtype=np.float64)
        nearest_ids = [[str(v) for v in result.tied_ids(i)] for i in range(n)]
    coast_km = np.full(n, np.nan)
    if coast_distance_km is not None and n:
        coast_km = np.asarray(coast_distance_km(lon, lat), dtype=np.float64).reshape(n)
    inside_ids: list[list[str]] = [[] for _ in range(n)]
    near_ids: list[list[str]] = [[] for _ in range(n)]
    nearest_area: list[str | None] = [None] * n
    nearest_area_km = np.full(n, np.nan)
    if areas is not None and n:
        vessel, area, distance, inside = areas.pairs_within(lon, lat)
        ids = areas.areas.area_id
        # closest first (inside areas at 0 km), then by area id: a stable order for the lists
        order = np.lexsort((ids[area].astype(str), distance, vessel))
        for v, a, d, is_in in zip(vessel[order], area[order], distance[order], inside[order]):
            (inside_ids if is_in else near_ids)[v].append(str(ids[a]))
            if nearest_area[v] is None:
                nearest_area[v], nearest_area_km[v] = str(ids[a]), float(d)
    log.debug("enriched %d detections", n)
    return Enrichment(nearest_km, nearest_ids, coast_km, inside_ids, near_ids, nearest_area, nearest_area_km)
