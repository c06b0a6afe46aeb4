"""The ``process-scene`` flow: one Sentinel-2 product from disk to rows in the store.

Read top to bottom, it is the product's straight line: ingest → detect → chips → heading →
speed → enrich → alerts → store. Each task calls one plain function of :mod:`pipeline`; the flow
adds logging, retries and the run record in Prefect, nothing else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline.alerts import AlertRules, alerts_for_records
from pipeline.chips import detect_and_cut
from pipeline.dedup import DEFAULT_OVERLAP_RADIUS_M
from pipeline.enrich import enrich_detections
from pipeline.heading import estimate_headings, load_heading_model
from pipeline.ingest import open_scene
from pipeline.motion import Motion, measure_motion
from pipeline.records import detection_records, scene_record
from pipeline.reference import ReferenceLayers, load_reference_layers
from pipeline.store import AlertRecord, DetectionRecord, Store
from vesselwatch.settings import Settings


@dataclass
class ProcessSummary:
    """What one run of :func:`process_scene` did; times in seconds."""

    scene_id: str
    product_path: str
    n_detections: int
    n_headings: int
    seconds: dict[str, float] = field(default_factory=dict)
    n_alerts: int = 0


@dataclass
class SceneDetections:
    """Output of the ingest + detect + chip step."""

    metadata: object
    detections: object
    chips: list


@task(cache_policy=NO_CACHE)
def detect_and_chip(product_path: str, settings: Settings) -> SceneDetections:
    """Open the product, find vessels over water and cut a chip around each."""
    with open_scene(product_path) as scene:
        detections, chips = detect_and_cut(
            scene, size_px=settings.chip_size_px, land_path=settings.resolved_land_path()
        )
        return SceneDetections(scene.metadata, detections, chips)


@task(cache_policy=NO_CACHE)
def infer_headings(chips: list, settings: Settings):
    """Run the wake-keypoint model over the chips (one batched call)."""
    model = load_heading_model(settings.resolved_heading_weights_path())
    return estimate_headings(chips, model)


@task(cache_policy=NO_CACHE)
def measure_speeds(chips: list) -> Motion:
    """Speed and axis of motion of hulls under way, from their shift between B02 and B04 (about 1 s apart)."""
    return measure_motion(chips)


@task(cache_policy=NO_CACHE)
def load_reference(settings: Settings) -> ReferenceLayers:
    """Platforms, protected areas and coastline named by the settings (bundled demo sets by default)."""
    return load_reference_layers(
        platforms_path=settings.resolved_platforms_path(),
        protected_areas_path=settings.resolved_protected_areas_path(),
        coastline_path=settings.resolved_coastline_path(),
        default_radius_km=settings.alert_radius_km,
    )


@task(cache_policy=NO_CACHE)
def enrich(found: SceneDetections, layers: ReferenceLayers) -> list[dict]:
    """Nearest platforms (ties kept), coast distance and nearby protected areas of each detection."""
    return enrich_detections(found.detections, layers)


@task(cache_policy=NO_CACHE)
def build_records(found: SceneDetections, headings, enrichment: list[dict], motion: Motion) -> list[DetectionRecord]:
    """The scene's detections as store records (deterministic ids)."""
    return detection_records(found.metadata, found.detections, headings, enrichment, motion)


@task(cache_policy=NO_CACHE)
def raise_alerts(records: list[DetectionRecord], layers: ReferenceLayers, settings: Settings) -> list[AlertRecord]:
    """Vessels inside protected areas or heading into them within the look-ahead."""
    return alerts_for_records(records, layers.areas, AlertRules(lookahead_km=settings.alert_lookahead_km))


@task(cache_policy=NO_CACHE)
def store_scene(found: SceneDetections, records: list[DetectionRecord], alerts: list[AlertRecord], database_url: str):
    """Replace the scene's detections and alerts in one transaction, merging overlap copies of one pass."""
    return Store.connect(database_url).replace_scene(
        scene_record(found.metadata, len(records)), records, alerts, overlap_radius_m=DEFAULT_OVERLAP_RADIUS_M
    )


@flow(name="process-scene", log_prints=False)
def process_scene(product_path: str, database_url: str | None = None) -> ProcessSummary:
    """Process one Sentinel-2 product (SAFE folder/zip, STAC item, or GeoTIFF folder) into the store.

    Parameters
    ----------
    product_path
        Path of the product on disk.
    database_url
        SQLAlchemy URL or SQLite file path; default from settings (``VESSELWATCH_DATABASE_URL``).
    """
    logger = get_run_logger()
    settings = Settings()
    database_url = database_url or settings.resolved_database_url()
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    found = detect_and_chip(str(Path(product_path)), settings)
    seconds["ingest_detect_chips"] = time.perf_counter() - started

    started = time.perf_counter()
    headings = infer_headings(found.chips, settings)
    seconds["heading"] = time.perf_counter() - started

    started = time.perf_counter()
    motion = measure_speeds(found.chips)
    seconds["motion"] = time.perf_counter() - started

    started = time.perf_counter()
    layers = load_reference(settings)
    enrichment = enrich(found, layers)
    records = build_records(found, headings, enrichment, motion)
    seconds["enrich"] = time.perf_counter() - started

    started = time.perf_counter()
    alerts = raise_alerts(records, layers, settings)
    seconds["alerts"] = time.perf_counter() - started

    started = time.perf_counter()
    stored = store_scene(found, records, alerts, database_url)
    seconds["store"] = time.perf_counter() - started

    n_headings = int((~headings.ambiguous & (headings.heading_deg == headings.heading_deg)).sum())
    logger.info(
        "scene %s: %d detections, %d headings, %d alerts (%d overlap copies merged)",
        found.metadata.product_id, stored.n_detections, n_headings, stored.n_alerts, len(stored.merged),
    )
    return ProcessSummary(
        found.metadata.product_id, str(product_path), stored.n_detections, n_headings, seconds, stored.n_alerts
    )
