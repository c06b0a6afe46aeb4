"""The ``process-scene`` flow: one Sentinel-2 product from disk to rows in the store.

Read top to bottom, it is the product's straight line: ingest → detect → chips → heading →
store. Each task calls one plain function of :mod:`pipeline`; the flow adds logging, retries
and the run record in Prefect, nothing else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline.chips import cut_chips
from pipeline.detect import detect_vessels
from pipeline.heading import estimate_headings, load_heading_model
from pipeline.ingest import open_scene
from pipeline.records import detection_records, scene_record
from pipeline.store import Store
from vesselwatch.settings import Settings


@dataclass
class ProcessSummary:
    """What one run of :func:`process_scene` did; times in seconds."""

    scene_id: str
    product_path: str
    n_detections: int
    n_headings: int
    seconds: dict[str, float] = field(default_factory=dict)


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
        detections = detect_vessels(scene, land_path=settings.resolved_land_path())
        chips = cut_chips(scene, detections, size_px=settings.chip_size_px)
        return SceneDetections(scene.metadata, detections, chips)


@task(cache_policy=NO_CACHE)
def infer_headings(chips: list, settings: Settings):
    """Run the wake-keypoint model over the chips (one batched call)."""
    model = load_heading_model(settings.resolved_heading_weights_path())
    return estimate_headings(chips, model)


@task(cache_policy=NO_CACHE)
def store_scene(found: SceneDetections, headings, database_url: str) -> int:
    """Replace the scene's rows in the store in one transaction; returns the detection count."""
    records = detection_records(found.metadata, found.detections, headings)
    Store.connect(database_url).replace_scene(scene_record(found.metadata, len(records)), records)
    return len(records)


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
    n_stored = store_scene(found, headings, database_url)
    seconds["store"] = time.perf_counter() - started

    n_headings = int((~headings.ambiguous & (headings.heading_deg == headings.heading_deg)).sum())
    logger.info(
        "scene %s: %d detections, %d headings", found.metadata.product_id, n_stored, n_headings
    )
    return ProcessSummary(found.metadata.product_id, str(product_path), n_stored, n_headings, seconds)
