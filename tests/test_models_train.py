"""Training loop: deterministic, resumable from a checkpoint, writes metrics CSV + plot, exports weights."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl
import torch

from models.inference import file_sha256
from models.preprocess import PreprocessConfig
from models.train import TrainConfig, batch_worker_pool, epoch_batches, export_weights, train
from models.wake_chips import FAINT_RANGES, TRAIN_RANGES
from vesselwatch.errors import ProductError


def _config(run_dir, epochs):
    return TrainConfig(
        run_dir=run_dir, seed=3, epochs=epochs, steps_per_epoch=2, batch_size=4, val_count=8, warmup_steps=1,
        threads=1, preprocess=PreprocessConfig(input_size=32),
    )


def test_resumed_run_equals_uninterrupted_run_and_writes_metrics(tmp_path):
    straight = tmp_path / "straight"
    history = train(_config(straight, 2))
    assert [row["epoch"] for row in history] == [1, 2]
    with open(straight / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2
    for column in ("val_mean_deg", "val_median_deg", "val_within_10_pct", "val_flip_pct", "train_loss"):
        assert column in rows[0]
    assert (straight / "metrics.png").stat().st_size > 1000

    resumed = tmp_path / "resumed"
    train(_config(resumed, 1))
    train(_config(resumed, 2))  # picks up last.pt at epoch 1
    a = torch.load(straight / "last.pt", weights_only=False)
    b = torch.load(resumed / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 4
    for key, value in a["model"].items():
        torch.testing.assert_close(value, b["model"][key], msg=key)

    weights = export_weights(straight / "last.pt", tmp_path / "w" / "wake.pt")
    assert weights.with_suffix(".json").exists()
    assert PreprocessConfig.from_json(weights.with_suffix(".json")).input_size == 32


def test_a_run_started_from_weights_fine_tunes_them(tmp_path):
    from models.network import create_model

    pre = PreprocessConfig(input_size=32)
    start = create_model(pre.architecture, len(pre.bands), pre.input_size)
    weights = tmp_path / "start.pt"
    torch.save(start.state_dict(), weights)
    config = _config(tmp_path / "tuned", 1)
    config.init_weights = weights
    config.lr = 1e-6  # two tiny steps: the run must still sit next to the weights it started from
    config.faint_fraction, config.faint_ranges = 0.5, replace(FAINT_RANGES, p_glint=0.7)
    config.ranges = replace(TRAIN_RANGES, p_cloud=0.6)
    train(config)
    tuned = torch.load(tmp_path / "tuned" / "ema_epoch001.pt", weights_only=True)
    first = next(k for k, v in tuned.items() if v.dtype.is_floating_point and v.numel() > 100)
    assert torch.allclose(tuned[first], start.state_dict()[first], atol=1e-4)
    fresh = create_model(pre.architecture, len(pre.bands), pre.input_size).state_dict()[first]
    assert not torch.allclose(fresh, start.state_dict()[first], atol=1e-4)  # a random start would differ
    # The exported record says what the run saw: the changed faint corner and the weights it started from.
    record = PreprocessConfig.from_json(export_weights(tmp_path / "tuned" / "last.pt", tmp_path / "t.pt").with_suffix(".json"))
    training = record.extra["training"]
    assert training["data"].startswith("synthetic wake chips (models.wake_chips.TRAIN_RANGES with p_cloud=0.6), ")
    assert training["data"].endswith("50% of each batch from FAINT_RANGES (small, slow vessels) with p_glint=0.7")
    assert training["started_from"]["sha256"] == file_sha256(weights)


def test_a_run_can_grow_the_stride_8_branch_onto_weights_without_it(tmp_path):
    from models.inference import load_heading_model
    from models.network import create_model

    start = create_model(input_size=32, output_stride=16)
    weights = tmp_path / "start.pt"
    torch.save(start.state_dict(), weights)
    config = _config(tmp_path / "wide", 1)
    config.init_weights, config.lr = weights, 1e-3
    config.preprocess = PreprocessConfig(input_size=32, output_stride=16, fine_channels=8)
    train(config)
    exported = export_weights(tmp_path / "wide" / "last.pt", tmp_path / "wide.pt")
    assert PreprocessConfig.from_json(exported.with_suffix(".json")).fine_channels == 8
    state = torch.load(exported, weights_only=True)
    assert state["fine_head.weight"].abs().max() > 0  # started at zero, trained since
    torch.testing.assert_close(state["backbone.conv_stem.weight"], start.state_dict()["backbone.conv_stem.weight"],
                               atol=0.05, rtol=0.0)  # the rest started from the given weights
    assert load_heading_model(exported, fast=False, threads=1).network.fine_channels == 8


def test_faint_share_of_a_batch_replaces_only_its_tail():
    from models.train import synthetic_batch

    pre = PreprocessConfig(input_size=32)
    plain = synthetic_batch(3, 0, 1, 8, TRAIN_RANGES, pre)
    mixed = synthetic_batch(3, 0, 1, 8, TRAIN_RANGES, pre, faint_count=4)
    np.testing.assert_array_equal(plain[0][:4], mixed[0][:4])
    assert not np.allclose(plain[0][4:], mixed[0][4:])
    np.testing.assert_array_equal(mixed[0], synthetic_batch(3, 0, 1, 8, TRAIN_RANGES, pre, faint_count=4)[0])
    with pytest.raises(ValueError, match="faint_count"):
        synthetic_batch(3, 0, 1, 8, TRAIN_RANGES, pre, faint_count=9)
    with pytest.raises(ValueError, match="faint_fraction"):
        TrainConfig(faint_fraction=1.0)


def test_zoomed_views_are_the_multi_scale_inputs_with_keypoints_mapped_alike():
    from models.preprocess import prepare_batch, zoom_crop_px
    from models.train import synthetic_batch, zoom_views
    from models.wake_chips import BAND_NAMES, draw_chips

    pre = PreprocessConfig(input_size=32)
    chips = draw_chips(5, 6, TRAIN_RANGES, 32)
    inputs, _ = prepare_batch(chips["data"], BAND_NAMES, pre)
    scale_index = np.array([-1, 0, 1, 0, -1, 1])
    zoomed, keypoints, visible = zoom_views(chips["data"], chips["keypoints"], chips["visible"], inputs, pre,
                                            scale_index, (1.25, 1.5))
    for i, j in enumerate(scale_index):
        if j < 0:  # not chosen: untouched
            np.testing.assert_array_equal(zoomed[i], inputs[i])
            np.testing.assert_array_equal(keypoints[i], chips["keypoints"][i])
            continue
        zoom = (1.25, 1.5)[j]
        expected, offset = prepare_batch(chips["data"][i : i + 1], BAND_NAMES, pre, zoom=zoom)
        np.testing.assert_array_equal(zoomed[i], expected[0])
        scale = 32 / zoom_crop_px(32, zoom)
        np.testing.assert_allclose(keypoints[i, 0], (chips["keypoints"][i, 0] - offset) * scale)
        assert np.all((keypoints[i][visible[i]] >= 0) & (keypoints[i][visible[i]] <= 32))
    # The caller's arrays are not written to.
    np.testing.assert_array_equal(inputs, prepare_batch(chips["data"], BAND_NAMES, pre)[0])
    # In a batch: deterministic, and a zoom share of 0 is the plain batch.
    plain = synthetic_batch(3, 0, 1, 8, TRAIN_RANGES, pre)
    assert all(np.array_equal(a, b, equal_nan=True)
               for a, b in zip(plain, synthetic_batch(3, 0, 1, 8, TRAIN_RANGES, pre, zoom_fraction=0.0)))
    one = synthetic_batch(3, 0, 1, 8, TRAIN_RANGES, pre, zoom_fraction=1.0)
    again = synthetic_batch(3, 0, 1, 8, TRAIN_RANGES, pre, zoom_fraction=1.0)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(one, again))
    assert not np.array_equal(one[0], plain[0])
    with pytest.raises(ValueError, match="zoom_fraction"):
        TrainConfig(zoom_fraction=1.5)
    with pytest.raises(ValueError, match="zoom_scales"):
        TrainConfig(zoom_fraction=0.5, zoom_scales=(0.8,))
    with pytest.raises(ValueError, match="no zoom at all"):  # checked at the run's own input size
        TrainConfig(zoom_fraction=0.5, zoom_scales=(1.01,), preprocess=pre)


def test_worker_processes_draw_the_same_batches_and_train_the_same_weights(tmp_path):
    config = replace(_config(tmp_path / "serial", 1), steps_per_epoch=7, faint_fraction=0.5, zoom_fraction=0.5,
                     zoom_scales=(1.25,))
    serial = list(epoch_batches(config, epoch=0, start=0))
    with batch_worker_pool(2) as pool:  # 7 batches, 4 ahead at most: every batch waits its turn
        ahead = list(epoch_batches(replace(config, workers=2), epoch=0, start=1, pool=pool))
    assert len(serial) == 7 and len(ahead) == 6  # resumed at batch 1: batches 1.. only
    for mine, theirs in zip(serial[1:], ahead, strict=True):
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_array_equal(a, b)
    # Whole runs: drawn in the loop, or by two workers and stopped after its first step (max_minutes)
    # then resumed mid-epoch, the same steps give the same weights.
    train(config)
    workers = replace(config, run_dir=tmp_path / "workers", workers=2, max_minutes=1e-6)
    train(workers)
    assert torch.load(tmp_path / "workers" / "last.pt", weights_only=False)["step"] == 1
    train(replace(workers, max_minutes=None))
    a = torch.load(tmp_path / "serial" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "workers" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 7
    for key, value in a["model"].items():
        torch.testing.assert_close(value, b["model"][key], rtol=0, atol=0, msg=key)


def _worker_threads(pool) -> tuple[int, int, set[int]]:
    """The pid of the (only) worker, its torch threads and its BLAS/OpenMP libraries' threads."""
    pid = pool.apply_async(os.getpid).get(timeout=60)
    info = pool.apply_async(threadpoolctl.threadpool_info).get(timeout=60)
    return pid, pool.apply_async(torch.get_num_threads).get(timeout=60), {library["num_threads"] for library in info}


def test_a_worker_started_again_after_a_crash_keeps_one_thread():
    with batch_worker_pool(1) as pool:
        pid, torch_threads, blas_threads = _worker_threads(pool)
        assert torch_threads == 1 and blas_threads == {1}
        # The worker kills itself inside a task: killed while idle, it would die holding the task queue's lock.
        pool.apply_async(os.kill, (pid, signal.SIGKILL))  # the pool starts another worker in its place
        again = _worker_threads(pool)
        assert again[0] != pid
        assert again[1] == 1 and again[2] == {1}, again


@pytest.mark.parametrize("workers", [-1, True, 1.5])
def test_a_bad_worker_count_is_refused_by_name(tmp_path, workers):
    with pytest.raises(ValueError, match="workers"):
        replace(_config(tmp_path, 1), workers=workers)


def test_an_empty_shipwakes_directory_is_refused_not_silently_skipped(tmp_path):
    root = tmp_path / "sw"
    (root / "imgs").mkdir(parents=True)
    (root / "annotations").mkdir()
    config = replace(_config(tmp_path / "run", 1), shipwakes_dir=root)
    with pytest.raises(ProductError, match="no annotated ShipWakes images"):
        train(config)


def test_workers_that_cannot_start_are_named_not_respawned_forever(tmp_path):
    """Spawned workers re-import ``__main__``: a script read from stdin has none to import."""
    script = ("from models.train import batch_worker_pool\n"
              "try:\n    batch_worker_pool(1, start_timeout_s=5)\n"
              "except RuntimeError as error:\n    print('REFUSED', error)\n")
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120,
                          cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert "REFUSED batch workers: none could run a task within 5 s" in done.stdout, done.stdout + done.stderr[-2000:]
    assert "__name__ == \"__main__\"" in done.stdout
