"""Chips of the labelled vessels of the bundled real sen2ships port scenes, cut by the pipeline."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np

from pipeline.chips import Chip, cut_chips
from pipeline.ingest import open_scene

ROOT = Path(__file__).resolve().parent.parent
SEN2SHIPS = ROOT / "data" / "sen2ships"
#: The helpers of ``benchmarks/heading_sen2ships.py`` (decode_rle, mask_axis, Centres).
BENCH = runpy.run_path(str(ROOT / "benchmarks" / "heading_sen2ships.py"))


def vessel_chips(port: str, size_px: int = 128) -> tuple[list[Chip], np.ndarray]:
    """128 px B02 B03 B04 B08 chips centred on each labelled vessel of ``port``, and ``(n, 4)`` row, col, axis°, elongation."""
    coco = json.loads(next((SEN2SHIPS / port).glob("*_coco.json")).read_text())
    found = np.array([BENCH["mask_axis"](BENCH["decode_rle"](a["segmentation"])) for a in coco["annotations"]])
    with open_scene(SEN2SHIPS / port) as scene:
        chips = cut_chips(scene, BENCH["Centres"](found[:, 0], found[:, 1]), size_px, band_names=["B02", "B03", "B04", "B08"])
    return chips, found


def vessel_masks(port: str) -> list[np.ndarray]:
    """The labelled vessel masks of ``port`` (bool, scene grid), in the order of :func:`vessel_chips`."""
    coco = json.loads(next((SEN2SHIPS / port).glob("*_coco.json")).read_text())
    return [BENCH["decode_rle"](a["segmentation"]) for a in coco["annotations"]]
