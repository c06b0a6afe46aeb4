"""``vesselwatch heading CHIP [--png OUT]`` on a GeoTIFF and a PNG chip."""

from __future__ import annotations

import json

import numpy as np
import rasterio
from affine import Affine
from PIL import Image
from typer.testing import CliRunner

from models.metrics import angular_error_deg
from models.wake_chips import ChipRanges, draw_chips
from pipeline.chips import grid_north_deg
from vesselwatch.cli import app

EASY = ChipRanges(length_m=(80.0, 200.0), speed_kn=(14.0, 20.0), p_wake=1.0, noise_sigma=(0.0005, 0.001),
                  p_glint=0.0, p_cloud=0.0, p_stretch=0.0, p_rgb_only=0.0, jitter_px=1.0, p_distractor=0.0)


def test_geotiff_chip_gives_a_true_heading_and_draws_a_png(tmp_path):
    chips = draw_chips(2024, 1, EASY, size=128)
    path = tmp_path / "chip.tif"
    transform = Affine(10.0, 0.0, 650000.0, 0.0, -10.0, 6400000.0)  # east of the UTM 31 central meridian
    with rasterio.open(path, "w", driver="GTiff", width=128, height=128, count=4, dtype="uint16",
                       crs="EPSG:32631", transform=transform) as dst:
        dst.write(np.round(chips["data"][0] * 10000).astype("uint16"))
        dst.descriptions = ("B02", "B03", "B04", "B08")
    png = tmp_path / "out.png"
    result = CliRunner().invoke(app, ["heading", str(path), "--png", str(png), "--eager"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    convergence = float(grid_north_deg("EPSG:32631", 650640.0, 6399360.0))
    assert out["georeferenced"] and abs(out["grid_north_deg"] - convergence) < 1e-3 and convergence > 0.5
    truth_true = (chips["heading_grid_deg"][0] + convergence) % 360
    assert angular_error_deg(out["heading_deg"], truth_true) <= 10.0
    assert out["keypoints"]["hull"]["lon"] is not None
    assert Image.open(png).size == (512, 512)


def test_png_chip_and_bad_input(tmp_path):
    chips = draw_chips(2025, 1, EASY, size=128)
    rgb = chips["data"][0][[2, 1, 0]]
    rgb = (np.clip((rgb - rgb.min()) / np.ptp(rgb), 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
    path = tmp_path / "chip.png"
    Image.fromarray(rgb).save(path)
    result = CliRunner().invoke(app, ["heading", str(path), "--eager"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert not out["georeferenced"]
    assert angular_error_deg(out["heading_grid_deg"], chips["heading_grid_deg"][0]) <= 10.0
    missing = CliRunner().invoke(app, ["heading", str(tmp_path / "nope.tif")])
    assert missing.exit_code == 2
