"""Users holding ShipWakes-format data evaluate the heading model with the accuracy benchmark's own command
and calibrate it on their real wakes with ``vesselwatch calibrate-heading --shipwakes``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
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


def test_calibrate_heading_fits_on_a_shipwakes_directory_and_says_so(tmp_path):
    import shutil

    from typer.testing import CliRunner

    from models.calibrate import calibrate_on_chips
    from models.inference import config_path_for, load_heading_model
    from models.shipwakes import hull_centred_chips, load_shipwakes
    from vesselwatch.cli import app
    from vesselwatch.settings import Settings

    _write_shipwakes(tmp_path / "sw", 24)
    shipped = Settings().resolved_heading_weights_path()
    weights = tmp_path / "copy.pt"
    shutil.copy(shipped, weights)
    shutil.copy(config_path_for(shipped), config_path_for(weights))
    before = json.loads(config_path_for(weights).read_text())
    result = CliRunner().invoke(app, ["calibrate-heading", str(weights), "--shipwakes", str(tmp_path / "sw")])
    assert result.exit_code == 0, result.output
    written = json.loads(config_path_for(weights).read_text())
    assert written["extra"]["calibration"]["set"].startswith("24 ShipWakes images of ")
    # Every image has a wake, so nothing here could be reported wrongly: the wake threshold is kept, not lowered.
    assert written["wake_probability_threshold"] == before["wake_probability_threshold"]
    assert written["extra"]["calibration"]["wake_probability_threshold"].startswith("kept")
    assert written["extra"]["training"] == before["extra"]["training"]  # nothing else lost
    # The written fit is the one of the real chips (8-bit RGB around the annotated hull), not a synthetic set.
    chips = hull_centred_chips(load_shipwakes(tmp_path / "sw"), 128)
    direct = calibrate_on_chips(load_heading_model(shipped, fast=False), chips["data"], chips["band_names"],
                                chips["heading_grid_deg"], np.ones(24, dtype=bool))
    assert written["uncertainty_scale"] == pytest.approx(direct.uncertainty_scale, abs=1e-4)
    assert direct.wake_probability_threshold == before["wake_probability_threshold"]
    assert direct.count == 24 and direct.precision_pct >= 80.0
    # A directory that is not ShipWakes is named, and the JSON is left as it was.
    bad = CliRunner().invoke(app, ["calibrate-heading", str(weights), "--shipwakes", str(tmp_path)])
    assert bad.exit_code == 2 and "imgs/ and annotations/" in bad.output
    assert json.loads(config_path_for(weights).read_text()) == written
    (tmp_path / "empty" / "imgs").mkdir(parents=True)
    (tmp_path / "empty" / "annotations").mkdir()
    empty = CliRunner().invoke(app, ["calibrate-heading", str(weights), "--shipwakes", str(tmp_path / "empty")])
    assert empty.exit_code == 2 and str(tmp_path / "empty") in empty.output and "no ShipWakes images" in empty.output
    with pytest.raises(ValueError, match="no chip with a wake"):
        calibrate_on_chips(load_heading_model(shipped, fast=False), chips["data"], chips["band_names"],
                           chips["heading_grid_deg"], np.zeros(24, dtype=bool))
    with pytest.raises(ValueError, match="one entry per chip"):
        calibrate_on_chips(load_heading_model(shipped, fast=False), chips["data"], chips["band_names"],
                           chips["heading_grid_deg"][:3], np.ones(24, dtype=bool))
