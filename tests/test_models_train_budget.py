"""Sizing a training run to a wall-clock budget: the measured step rate and the epochs that fit."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import models.train
from models import train_budget
from models.preprocess import PreprocessConfig
from models.train import TrainConfig
from models.train_budget import epochs_for_budget, measure_step_rate
from vesselwatch.cli import app
from vesselwatch.errors import ProductError


def _config(run_dir, **changes):
    return replace(TrainConfig(run_dir=run_dir, seed=3, epochs=1, steps_per_epoch=2, batch_size=4, val_count=8,
                               warmup_steps=1, threads=1, preprocess=PreprocessConfig(input_size=32)), **changes)


def test_the_epochs_that_fit_count_the_steps_validation_and_checkpoint(tmp_path):
    config = _config(tmp_path, steps_per_epoch=200, batch_size=64, val_count=768)
    # 2 steps/s: an epoch is 100 s of steps + 768 chips of validation at 3 x 128 chips/s (2 s) + 3 s
    # for its checkpoint and plot = 105 s.
    assert epochs_for_budget(config, 60.0, 2.0) == int(0.9 * 3600 // 105) == 30
    assert epochs_for_budget(config, 60.0, 2.0, margin=1.0, epoch_overhead_s=0.0) == int(3600 // 102)
    assert epochs_for_budget(config, 60.0, 4.0) == int(0.9 * 3600 // 54)
    with pytest.raises(ValueError, match=r"one epoch of 200 steps takes about 1\.8 min"):
        epochs_for_budget(config, 1.0, 2.0)
    for minutes, rate in ((0.0, 2.0), (math.nan, 2.0), (10.0, 0.0), (10.0, math.inf)):
        with pytest.raises(ValueError, match="minutes|steps_per_second"):
            epochs_for_budget(config, minutes, rate)
    with pytest.raises(ValueError, match="margin"):
        epochs_for_budget(config, 60.0, 2.0, margin=1.5)


@pytest.mark.parametrize("workers", [0, 1])
def test_the_step_rate_is_measured_on_a_throwaway_network_without_touching_the_run(tmp_path, workers):
    run_dir = tmp_path / "run"
    rate = measure_step_rate(_config(run_dir, workers=workers, zoom_fraction=0.5, zoom_scales=(1.25,)), steps=2, warmup=1)
    assert math.isfinite(rate) and rate > 0
    assert not run_dir.exists()
    with pytest.raises(ValueError, match="steps >= 1"):
        measure_step_rate(_config(run_dir), steps=0)


def _shipwakes_folder(root: Path, count: int = 3) -> Path:
    """``count`` 48 px ShipWakes images (noise) with a hull and a wake end each."""
    (root / "imgs").mkdir(parents=True)
    (root / "annotations").mkdir()
    rng = np.random.default_rng(5)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, size=(48, 48, 3), dtype=np.uint8)).save(root / "imgs" / f"s{i}.png")
        tooltips = [{"x": 24.0 + i, "y": 24.0}, {"x": 10.0, "y": 30.0 - i}]
        (root / "annotations" / f"s{i}.json").write_text(json.dumps({"tooltips": tooltips}))
    return root


def test_the_step_rate_is_timed_on_the_batches_the_run_trains_on_shipwakes_share_included(tmp_path, monkeypatch):
    config = _config(tmp_path / "run", epochs=1, steps_per_epoch=3, shipwakes_dir=_shipwakes_folder(tmp_path / "sw"),
                     shipwakes_fraction=0.5)
    seen = {"probe": [], "run": []}

    def recorder(name, step):
        def record(model, ema, optimizer, batch, config, index):
            seen[name].append(batch)
            return step(model, ema, optimizer, batch, config, index)
        return record

    monkeypatch.setattr(train_budget, "train_step", recorder("probe", train_budget.train_step))
    monkeypatch.setattr(models.train, "train_step", recorder("run", models.train.train_step))
    measure_step_rate(config, steps=2, warmup=1)
    models.train.train(config)
    assert len(seen["probe"]) == len(seen["run"]) == 3
    for probe, run in zip(seen["probe"], seen["run"], strict=True):
        assert len(probe[0]) == 4  # 2 synthetic chips + 2 ShipWakes crops
        for mine, theirs in zip(probe, run, strict=True):
            np.testing.assert_array_equal(mine, theirs)


def test_the_step_rate_refuses_a_shipwakes_folder_as_the_run_does(tmp_path):
    (tmp_path / "empty" / "imgs").mkdir(parents=True)
    (tmp_path / "empty" / "annotations").mkdir()
    with pytest.raises(ProductError, match="no annotated ShipWakes images"):
        measure_step_rate(_config(tmp_path / "run", shipwakes_dir=tmp_path / "empty"), steps=1, warmup=0)


def test_cli_fit_minutes_sizes_a_new_run_that_resumes_with_its_own_epochs(tmp_path):
    run_dir = tmp_path / "run"
    args = ["train-heading", "--run-dir", str(run_dir), "--steps-per-epoch", "2", "--batch-size", "2", "--val-count", "4",
            "--input-size", "32"]
    result = CliRunner().invoke(app, args + ["--fit-minutes", "0.2", "--workers", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    saved = torch.load(run_dir / "last.pt", weights_only=False)
    assert summary["epochs"] == saved["config"]["epochs"] > 1  # two tiny steps an epoch: more than one fits 12 s
    assert saved["config"]["max_minutes"] == 0.2 and saved["config"]["workers"] == 1
    # Resumed without --fit-minutes or --epochs, the run keeps the schedule it was sized to.
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{"):])["epochs"] == saved["config"]["epochs"]
    for extra, words in ((["--fit-minutes", "0.2"], "--fit-minutes sizes a new run"),
                         (["--fit-minutes", "0.2", "--epochs", "3", "--no-resume"], "not both")):
        result = CliRunner().invoke(app, args + extra)
        assert result.exit_code == 2 and words in result.output, result.output


def test_cli_a_refused_budget_leaves_the_old_checkpoint_in_place(tmp_path):
    run_dir = tmp_path / "run"
    base = ["train-heading", "--run-dir", str(run_dir), "--batch-size", "2", "--val-count", "4", "--input-size", "32"]
    assert CliRunner().invoke(app, base + ["--epochs", "1", "--steps-per-epoch", "1"]).exit_code == 0
    before = (run_dir / "last.pt").read_bytes()
    result = CliRunner().invoke(app, base + ["--no-resume", "--steps-per-epoch", "100000", "--fit-minutes", "0.1"])
    assert result.exit_code == 2 and "one epoch of 100000 steps takes about" in result.output, result.output
    assert (run_dir / "last.pt").read_bytes() == before  # --no-resume removes it only once the run is sized


def test_cli_names_a_shipwakes_folder_that_is_not_one_or_has_no_annotated_images(tmp_path):
    base = ["train-heading", "--run-dir", str(tmp_path / "run"), "--batch-size", "2", "--val-count", "4", "--input-size", "32",
            "--epochs", "1", "--steps-per-epoch", "1", "--shipwakes", str(tmp_path / "sw")]
    result = CliRunner().invoke(app, base)
    assert result.exit_code == 2 and "not a ShipWakes directory: expected imgs/ and annotations/" in result.output
    (tmp_path / "sw" / "imgs").mkdir(parents=True)
    (tmp_path / "sw" / "annotations").mkdir()
    (tmp_path / "sw" / "annotations" / "a.json").write_text('{"tooltips": []}')  # its PNG is missing
    result = CliRunner().invoke(app, base)
    assert result.exit_code == 2 and "no annotated images to mix in" in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_cli_fit_minutes_names_an_unreadable_shipwakes_image(tmp_path):
    root = _shipwakes_folder(tmp_path / "sw", count=1)
    (root / "imgs" / "s0.png").write_bytes(b"not a PNG")
    result = CliRunner().invoke(app, ["train-heading", "--run-dir", str(tmp_path / "run"), "--batch-size", "2",
                                      "--val-count", "4", "--input-size", "32", "--steps-per-epoch", "1",
                                      "--shipwakes", str(root), "--fit-minutes", "0.2"])
    assert result.exit_code == 2 and "s0.png" in result.output, result.output
    assert not (tmp_path / "run").exists()
