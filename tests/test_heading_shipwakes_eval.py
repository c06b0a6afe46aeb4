"""Users holding ShipWakes-format data evaluate the heading model with the accuracy benchmark's own command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from models.wake_chips import BAND_NAMES, ChipRanges, draw_chips

ROOT = Path(__file__).resolve().parents[1]
EASY = ChipRanges(length_m=(80.0, 200.0), speed_kn=(14.0, 20.0), p_wake=1.0, noise_sigma=(0.0005, 0.001),
                  p_glint=0.0, p_cloud=0.0, p_stretch=0.0, p_rgb_only=0.0, jitter_px=1.0, p_distractor=0.0)


def _write_shipwakes(root: Path, count: int) -> np.ndarray:
    """Synthetic chips saved as ShipWakes PNGs (8-bit RGB, stretched) with tooltip keypoints; returns headings."""
    chips = draw_chips(77, count, EASY, size=160)
    (root / "imgs").mkdir(parents=True)
    (root / "annotations").mkdir()
    rgb = chips["data"][:, [BAND_NAMES.index(b) for b in ("B04", "B03", "B02")]]
    for i in range(count):
        lo, hi = np.percentile(rgb[i], [1, 99.5])
        png = np.clip((rgb[i] - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8).transpose(1, 2, 0)
        Image.fromarray(png).save(root / "imgs" / f"chip{i:03d}.png")
        points = [chips["keypoints"][i, k] for k in (0, 1)]
        tooltips = [{"x": float(x), "y": float(y)} for x, y in points]
        (root / "annotations" / f"chip{i:03d}.json").write_text(json.dumps({"tooltips": tooltips}))
    return chips["heading_grid_deg"]


def test_accuracy_benchmark_runs_on_a_shipwakes_directory(tmp_path):
    _write_shipwakes(tmp_path / "sw", 16)
    run = subprocess.run(
        [sys.executable, "benchmarks/heading_accuracy.py", "--shipwakes", str(tmp_path / "sw"), "--no-tta"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "ShipWakes" in run.stdout and "16 images" in run.stdout
    row = next(line for line in run.stdout.splitlines() if line.startswith("vesselwatch B0") and "all with wake" in line)
    n, median, _, within_10 = row.split("all with wake")[1].split()[:4]
    assert int(n) == 16
    assert float(within_10) >= 80.0 and float(median) < 5.0, run.stdout
    assert "no wake" not in run.stdout  # every ShipWakes image has a wake
    stood_by = next(line for line in run.stdout.splitlines() if "wake, not flagged" in line)
    n_stood_by, _, _, within_10_stood_by = stood_by.split("wake, not flagged")[1].split()[:4]
    assert int(n_stood_by) <= 16 and float(within_10_stood_by) >= float(within_10)  # misses split off the flagged ones


def test_accuracy_benchmark_names_a_directory_that_is_not_shipwakes(tmp_path):
    run = subprocess.run(
        [sys.executable, "benchmarks/heading_accuracy.py", "--shipwakes", str(tmp_path), "--no-tta"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode != 0 and "imgs/ and annotations/" in run.stderr
