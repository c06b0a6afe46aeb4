"""Turn one processed scene (metadata, detections, headings, enrichment) into store records.

Detection ids are deterministic: the scene id plus the centroid pixel rounded to 0.1 px, so
re-processing a product yields the same ids and the store replaces rather than duplicates.
Alert ids are the detection id plus the area id (scene + vessel + area), equally stable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.store import DetectionRecord, SceneRecord


def detection_ids(scene_id: str, row: np.ndarray, col: np.ndarray) -> list[str]:
    """Deterministic ids ``<scene_id>/r<row>c<col>`` with the centroid in tenths of a pixel.

    >>> detection_ids("S2", np.array([10.04]), np.array([7.5]))
    ['S2/r00100c00075']
    """
    rows = np.rint(np.asarray(row, dtype=float) * 10).astype(np.int64)
    cols = np.rint(np.asarray(col, dtype=float) * 10).astype(np.int64)
    return [f"{scene_id}/r{r:05d}c{c:05d}" for r, c in zip(rows, cols)]


def alert_id(detection_id: str, area_id: str) -> str:
    """Deterministic alert id ``<detection_id>/area/<area_id>`` (scene + vessel + area).

    >>> alert_id("S2/r00100c00075", "555")
    'S2/r00100c00075/area/555'
    """
    return f"{detection_id}/area/{area_id}"


def _optional(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def scene_record(metadata: Any, n_detections: int, *, footprint_wkt: str | None = None) -> SceneRecord:
    """The store row of a scene from its :class:`pipeline.ingest.SceneMetadata`."""
    return SceneRecord(
        scene_id=metadata.product_id,
        path=str(metadata.path),
        crs=metadata.crs.to_string(),
        width=int(metadata.width),
        height=int(metadata.height),
        n_detections=n_detections,
        acquired=metadata.acquired,
        tile_id=metadata.tile_id,
        level=metadata.level,
        baseline=metadata.baseline,
        footprint_wkt=footprint_wkt,
    )


def detection_records(
    metadata: Any,
    detections: Any,
    headings: Any | None = None,
    enrichment: Sequence[dict[str, Any]] | None = None,
    motion: Any | None = None,
) -> list[DetectionRecord]:
    """Store rows for a scene's detections, with headings and enrichment when those steps ran.

    Parameters
    ----------
    metadata
        The scene's :class:`pipeline.ingest.SceneMetadata`.
    detections
        :class:`pipeline.detect.Detections` (equal-length arrays).
    headings
        :class:`pipeline.heading.HeadingResults` aligned with ``detections``, or ``None``.
    enrichment
        One JSON-ready dict per detection (:meth:`pipeline.enrich.Enrichment.as_dicts`), or ``None``.
    motion
        :class:`pipeline.motion.Motion` aligned with ``detections``, or ``None``; its ``speed_kn``
        and ``motion_axis_deg`` join each detection's enrichment where the enrichment has no value
        for them yet (a speed from elsewhere, an AIS match, is kept).
    """
    if enrichment is not None and len(enrichment) != len(detections.row):
        raise ValueError(f"{len(enrichment)} enrichment entries for {len(detections.row)} detections")
    if motion is not None:
        if len(motion) != len(detections.row):
            raise ValueError(f"{len(motion)} motion entries for {len(detections.row)} detections")
        merged = []
        for i, measured in enumerate(motion.as_dicts()):
            entry = dict(enrichment[i]) if enrichment is not None else {}
            entry.update({key: value for key, value in measured.items() if entry.get(key) is None})
            merged.append(entry)
        enrichment = merged
    ids = detection_ids(metadata.product_id, detections.row, detections.col)
    records = []
    for i, detection_id in enumerate(ids):
        heading: dict[str, Any] = {}
        if headings is not None:
            heading = {
                "heading_deg": _optional(headings.heading_deg[i]),
                "heading_uncertainty_deg": _optional(headings.uncertainty_deg[i]),
                "heading_ambiguous": bool(headings.ambiguous[i]),
                "wake_on_land": bool(headings.wake_on_land[i]),
                "keypoints": headings.keypoints_dict(i),
            }
        records.append(
            DetectionRecord(
                detection_id=detection_id,
                scene_id=metadata.product_id,
                acquired=metadata.acquired,
                lon=float(detections.lon[i]),
                lat=float(detections.lat[i]),
                row=float(detections.row[i]),
                col=float(detections.col[i]),
                length_m=float(detections.length_m[i]),
                width_m=float(detections.width_m[i]),
                score=float(detections.score[i]),
                enrichment=None if enrichment is None else enrichment[i],
                **heading,
            )
        )
    return records
