"""Training loop of the wake-keypoint model on synthetic chips (optionally mixed with ShipWakes).

Deterministic: batch ``b`` of epoch ``e`` is drawn from ``SeedSequence([seed, e, b])``, so a run
resumed from a checkpoint sees exactly the batches it would have seen. Checkpoints (model, EMA
model, optimiser, schedule position, metrics history) are written every few minutes and at each
epoch end to ``<run_dir>/last.pt``; per-epoch metrics go to ``metrics.csv`` and ``metrics.png``.
Uses CUDA when present, never requires it.
"""

from __future__ import annotations

import copy
import csv
import functools
import itertools
import logging
import math
import multiprocessing
import multiprocessing.pool
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import threadpoolctl
import torch
from tqdm import tqdm

from models.metrics import angular_error_deg, summarize_errors
from models.inference import decode_outputs
from models.network import adapt_state_dict, create_model_for, keypoint_loss
from models.preprocess import PreprocessConfig, prepare_batch, zoom_crop_px
from models.shipwakes import ShipWakesSample, crop_window, load_shipwakes
from models.wake_chips import (
    BAND_NAMES, FAINT_RANGES, TRAIN_RANGES, ChipRanges, clip_keypoints_to_chip, dihedral_transform, draw_chips,
)
from vesselwatch.errors import ProductError

__all__ = [
    "TrainConfig", "train", "evaluate_arrays", "export_weights", "predict_raw", "weights_record", "checkpoint_preprocess",
    "checkpoint_epochs",
    "CheckpointMismatch", "NETWORK_FIELDS", "epoch_batches", "shipwakes_samples", "with_shipwakes", "batch_worker_pool",
    "synthetic_count", "training_device", "train_step", "BATCH_TIMEOUT_S",
]

logger = logging.getLogger(__name__)

VALIDATION_SEED_OFFSET = 1_000_003

#: Zooms of the zoomed training views by default: those multi-scale inference is calibrated with in the docs.
ZOOM_SCALES = (1.25, 1.5)

#: Preprocessing fields that fix the network's shape: a run resumes only with the same values.
NETWORK_FIELDS = ("architecture", "bands", "input_size", "output_stride", "fine_channels", "head", "detail_channels")


class CheckpointMismatch(ValueError):
    """A run directory's checkpoint was saved with another network shape than the one asked for."""


def checkpoint_preprocess(checkpoint: Path) -> PreprocessConfig:
    """The preprocessing, network shape included, that a training checkpoint (``last.pt``) was saved with.

    The tensors are memory-mapped, not read: only the small config is looked at (``train`` reads the
    whole checkpoint once, when it resumes).
    """
    state = torch.load(checkpoint, map_location="cpu", weights_only=False, mmap=True)
    return PreprocessConfig.from_dict(state["config"]["preprocess"])


def checkpoint_epochs(checkpoint: Path) -> int:
    """The number of epochs a training checkpoint's run was set to (its cosine schedule's length), memory-mapped."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False, mmap=True)
    return int(state["config"]["epochs"])


@dataclass
class TrainConfig:
    """Settings of one training run (saved in every checkpoint)."""

    run_dir: Path = Path("var/heading/run")
    seed: int = 0
    epochs: int = 16
    steps_per_epoch: int = 250
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.02
    warmup_steps: int = 150
    ema_decay: float = 0.998
    val_count: int = 768
    checkpoint_minutes: float = 5.0
    max_minutes: float | None = None
    threads: int = 2
    shipwakes_dir: Path | None = None
    shipwakes_fraction: float = 0.25
    init_weights: Path | None = None  # start a new run from these weights (fine-tuning), not at random
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    ranges: ChipRanges = TRAIN_RANGES
    faint_fraction: float = 0.0  # share of each synthetic batch drawn from faint_ranges instead
    faint_ranges: ChipRanges = FAINT_RANGES
    zoom_fraction: float = 0.0  # share of each synthetic batch shown zoomed, as multi-scale inference shows it
    zoom_scales: tuple[float, ...] = ZOOM_SCALES
    wakeless_kappa_weight: float = 0.0  # keypoint_loss: pull of kappa toward 0 on chips without a wake
    workers: int = 0  # processes drawing synthetic batches ahead of the training step (0: drawn in the loop)

    def __post_init__(self) -> None:
        if not isinstance(self.workers, int) or isinstance(self.workers, bool) or self.workers < 0:
            raise ValueError(f"workers: expected a number of processes >= 0, got {self.workers!r}")
        if not 0.0 <= self.faint_fraction < 1.0:
            raise ValueError(f"faint_fraction: expected a share in [0, 1), got {self.faint_fraction}")
        if not 0.0 <= self.zoom_fraction <= 1.0:
            raise ValueError(f"zoom_fraction: expected a share in [0, 1], got {self.zoom_fraction}")
        self.zoom_scales = tuple(float(z) for z in self.zoom_scales)
        if self.zoom_fraction:
            if not self.zoom_scales:
                raise ValueError(f"zoom_scales: zoom_fraction {self.zoom_fraction:g} needs at least one zoom")
            self.preprocess.replace(zoom_scales=self.zoom_scales)  # range, duplicates, a crop at this input size
        if not 0.0 <= self.wakeless_kappa_weight < math.inf:
            raise ValueError(f"wakeless_kappa_weight: expected a finite weight >= 0, got {self.wakeless_kappa_weight}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["run_dir"] = str(self.run_dir)
        out["shipwakes_dir"] = str(self.shipwakes_dir) if self.shipwakes_dir else None
        out["init_weights"] = str(self.init_weights) if self.init_weights else None
        return out


def training_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _normalise_keypoints(keypoints_px: np.ndarray, size: int) -> np.ndarray:
    return keypoints_px / size * 2.0 - 1.0


def synthetic_batch(
    seed: int, epoch: int, index: int, count: int, ranges: ChipRanges, preprocess: PreprocessConfig,
    *, faint_count: int = 0, faint_ranges: ChipRanges = FAINT_RANGES,
    zoom_fraction: float = 0.0, zoom_scales: Sequence[float] = ZOOM_SCALES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One deterministic training batch: inputs ``(N, C, S, S)``, keypoints ``(N, 4, 2)`` normalised, visibility.

    ``faint_count`` of the ``count`` chips come from ``faint_ranges`` (the rest from ``ranges``).
    About ``zoom_fraction`` of them are shown zoomed (:func:`zoom_views`).
    """
    if not 0 <= faint_count <= count:
        raise ValueError(f"faint_count: expected 0..{count}, got {faint_count}")
    sequence = np.random.SeedSequence([seed, epoch, index])
    chip_seq, aug_seq = sequence.spawn(2)
    chips = draw_chips(chip_seq, count - faint_count, ranges, preprocess.input_size)
    if faint_count:
        faint = draw_chips(np.random.SeedSequence([seed, epoch, index, 3]), faint_count, faint_ranges, preprocess.input_size)
        chips = {key: np.concatenate([chips[key], faint[key]]) for key in chips}
    rng = np.random.default_rng(aug_seq)
    data, keypoints = chips["data"], chips["keypoints"]
    for i, k in enumerate(rng.integers(0, 8, size=count)):
        data[i], keypoints[i] = dihedral_transform(data[i], keypoints[i], int(k))
    inputs, _ = prepare_batch(data, BAND_NAMES, preprocess)
    visible = chips["visible"]
    if zoom_fraction:
        rng = np.random.default_rng([seed, epoch, index, 7])
        chosen = rng.random(count) < zoom_fraction
        inputs, keypoints, visible = zoom_views(data, keypoints, visible, inputs, preprocess,
                                                np.where(chosen, rng.integers(0, len(zoom_scales), size=count), -1),
                                                zoom_scales)
    return inputs, _normalise_keypoints(keypoints, preprocess.input_size), visible


def zoom_views(
    data: np.ndarray, keypoints: np.ndarray, visible: np.ndarray, inputs: np.ndarray, preprocess: PreprocessConfig,
    scale_index: np.ndarray, zoom_scales: Sequence[float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replace chips' network inputs by zoomed views, as multi-scale inference makes them.

    Chip ``i`` (``(N, bands, S, S)`` reflectance, ``S`` the input size) with ``scale_index[i] >= 0``
    is shown as its centre :func:`models.preprocess.zoom_crop_px` px resampled to ``S``
    (``zoom_scales[scale_index[i]]``); its pixel keypoints ``(N, 4, 2)`` are mapped likewise and
    clipped to the view like the generator's. A chip whose hull would fall within 2 px of the view's
    edge (or outside) stays as it is. Returns new inputs, pixel keypoints and visibility.
    """
    size = preprocess.input_size
    inputs, keypoints, visible = inputs.copy(), keypoints.astype(np.float64, copy=True), visible.copy()
    for j, zoom in enumerate(zoom_scales):
        chosen = np.flatnonzero(scale_index == j)
        if chosen.size == 0:
            continue
        zoomed, offset = prepare_batch(data[chosen], BAND_NAMES, preprocess, zoom=zoom)
        mapped = (keypoints[chosen] - np.array(offset, dtype=np.float64)) * (size / zoom_crop_px(size, zoom))
        inside = np.all((mapped[:, 0] >= 2) & (mapped[:, 0] <= size - 2), axis=-1)
        chosen, mapped = chosen[inside], clip_keypoints_to_chip(mapped[inside], size)
        inputs[chosen] = zoomed[inside]
        keypoints[chosen] = mapped
        visible[chosen] = np.all(np.isfinite(mapped), axis=-1) & visible[chosen]
    return inputs, keypoints, visible


def shipwakes_batch(samples: list[ShipWakesSample], count: int, rng: np.random.Generator, preprocess: PreprocessConfig):
    """Random crops around the annotated hull of ShipWakes images, with dihedral augmentation."""
    size = preprocess.input_size
    inputs, keypoints, visible = [], [], []
    for i in rng.integers(0, len(samples), size=count):
        sample = samples[int(i)]
        hull = sample.keypoints[0]
        jitter = rng.uniform(-3, 3, size=2)
        col0 = int(round(hull[0] + jitter[0] - size / 2))
        row0 = int(round(hull[1] + jitter[1] - size / 2))
        crop = crop_window(sample.data, col0, row0, size)
        kp = clip_keypoints_to_chip(sample.keypoints - np.array([col0, row0]), size)
        kp[~sample.visible] = np.nan
        crop, kp = dihedral_transform(crop, kp, int(rng.integers(0, 8)))
        x, _ = prepare_batch(crop[None], sample.band_names, preprocess)
        inputs.append(x[0])
        keypoints.append(_normalise_keypoints(kp, size))
        visible.append(np.all(np.isfinite(kp), axis=-1))
    return np.stack(inputs), np.stack(keypoints), np.stack(visible)


@torch.inference_mode()
def predict_raw(model: torch.nn.Module, inputs: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Run the network on preprocessed inputs; return numpy outputs."""
    model.eval()
    device = next(model.parameters()).device
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(inputs), batch_size):
        out = model(torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch_size])).to(device))
        for key, value in out.items():
            parts.setdefault(key, []).append(value.float().cpu().numpy())
    return {key: np.concatenate(value) for key, value in parts.items()}


def evaluate_arrays(
    model: torch.nn.Module, inputs: np.ndarray, truth_heading_deg: np.ndarray, has_wake: np.ndarray,
    uncertainty_scale: float = 1.0,
) -> dict[str, float]:
    """Heading metrics of ``model`` on preprocessed inputs with known grid headings."""
    decoded = decode_outputs(predict_raw(model, inputs))
    errors = angular_error_deg(decoded["heading"], truth_heading_deg)[has_wake]
    out = summarize_errors(errors, decoded["sigma"][has_wake] * uncertainty_scale)
    out["wake_detection_acc_pct"] = float(100.0 * np.mean((decoded["visibility"][:, 1] > 0.5) == has_wake))
    return out


def _validation_set(config: TrainConfig) -> dict[str, np.ndarray]:
    chips = draw_chips(config.seed + VALIDATION_SEED_OFFSET, config.val_count, config.ranges, config.preprocess.input_size)
    inputs, _ = prepare_batch(chips["data"], BAND_NAMES, config.preprocess)
    return {"inputs": inputs, "heading": chips["heading_grid_deg"], "has_wake": chips["visible"][:, 1]}


def _lr_at(step: int, total: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min((step - config.warmup_steps) / max(total - config.warmup_steps, 1), 1.0)
    return config.lr * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))


@torch.no_grad()
def _update_ema(ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    d = min(decay, (1.0 + step) / (10.0 + step))
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p.detach(), 1.0 - d)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


def _write_metrics(run_dir: Path, history: Sequence[dict]) -> None:
    if not history:
        return
    keys = list(history[0].keys())
    with open(run_dir / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [h["epoch"] for h in history]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        axes[0].plot(epochs, [h["train_loss"] for h in history], "o-")
        axes[0].set(title="train loss", xlabel="epoch", yscale="log")
        axes[1].plot(epochs, [h["val_median_deg"] for h in history], "o-", label="median")
        axes[1].plot(epochs, [h["val_mean_deg"] for h in history], "s-", label="mean")
        axes[1].set(title="val angular error (deg)", xlabel="epoch", yscale="log")
        axes[1].legend()
        axes[2].plot(epochs, [h["val_within_10_pct"] for h in history], "o-", label="% within 10°")
        axes[2].plot(epochs, [h["val_flip_pct"] for h in history], "s-", label="% flips")
        axes[2].set(title="val rates (%)", xlabel="epoch")
        axes[2].legend()
        fig.tight_layout()
        fig.savefig(run_dir / "metrics.png", dpi=80)
        plt.close(fig)
    except Exception:  # a plot must never kill a training run
        logger.exception("could not draw metrics.png")


def _save_checkpoint(path: Path, model, ema, optimizer, config: TrainConfig, epoch: int, batch: int, step: int,
                     history: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)  # made at the first checkpoint: a run that fails before leaves nothing
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
            "config": config.to_dict(), "epoch": epoch, "batch": batch, "step": step, "history": history,
        },
        tmp,
    )
    tmp.replace(path)


def synthetic_count(config: TrainConfig) -> int:
    """Synthetic chips per batch: the batch less its ShipWakes share when a ShipWakes directory is mixed in."""
    n_real = int(round(config.batch_size * config.shipwakes_fraction)) if config.shipwakes_dir else 0
    return config.batch_size - n_real


def shipwakes_samples(config: TrainConfig) -> list[ShipWakesSample] | None:
    """The ShipWakes images a run mixes into its batches; ``None`` without ``config.shipwakes_dir``.

    Raises
    ------
    ProductError
        When the directory is not a ShipWakes directory, an image cannot be decoded, or it holds no
        annotated image (a run would silently train on synthetic chips alone).
    InputError
        When an annotation is malformed.
    """
    if not config.shipwakes_dir:
        return None
    samples = load_shipwakes(Path(config.shipwakes_dir))
    if not samples:
        raise ProductError(config.shipwakes_dir, "no annotated ShipWakes images (imgs/*.png with annotations/*.json) to mix in")
    return samples


def with_shipwakes(
    batch: tuple[np.ndarray, np.ndarray, np.ndarray], samples: list[ShipWakesSample] | None, config: TrainConfig,
    epoch: int, index: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic batch ``index`` of ``epoch`` with the run's ShipWakes share appended (crops drawn in this
    process, as training draws them); the batch itself when no ShipWakes images are mixed in."""
    n_real = config.batch_size - synthetic_count(config) if samples else 0
    if not n_real:
        return batch
    # Stream 13: 7 picks the synthetic chips' zoomed views, and sharing it tied which
    # ShipWakes images and crops a batch gets to which of its chips are zoomed.
    rng = np.random.default_rng([config.seed, epoch, index, 13])
    (x, kp, vis), (xr, kpr, visr) = batch, shipwakes_batch(samples, n_real, rng, config.preprocess)
    return np.concatenate([x, xr]), np.concatenate([kp, kpr]), np.concatenate([vis, visr])


def _draw_batch(config: TrainConfig, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic batch ``index`` of ``epoch`` of a run (module level, so worker processes can run it)."""
    count = synthetic_count(config)
    return synthetic_batch(
        config.seed, epoch, index, count, config.ranges, config.preprocess,
        faint_count=int(round(count * config.faint_fraction)), faint_ranges=config.faint_ranges,
        zoom_fraction=config.zoom_fraction, zoom_scales=config.zoom_scales,
    )


#: Longest wait for one batch from a worker pool, seconds (a batch takes well under one; a worker
#: killed mid-task, out of memory say, loses its batch, and the wait would otherwise never end).
BATCH_TIMEOUT_S = 300.0


def epoch_batches(
    config: TrainConfig, epoch: int, start: int = 0, pool: multiprocessing.pool.Pool | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The synthetic batches ``start ..`` of ``epoch``, in order.

    Drawn one by one in this process, or, with a ``pool`` (:func:`batch_worker_pool`), by its
    workers up to ``2 * config.workers`` batches ahead of the consumer. The arrays are the same
    either way: a batch depends only on ``(seed, epoch, index)``.

    Raises
    ------
    RuntimeError
        When a worker has not delivered a batch within :data:`BATCH_TIMEOUT_S`.
    """
    draw = functools.partial(_draw_batch, config, epoch)
    indices = iter(range(start, config.steps_per_epoch))
    if pool is None:
        yield from map(draw, indices)
        return
    ahead = 2 * max(config.workers, 1)
    pending = deque((index, pool.apply_async(draw, (index,))) for index in itertools.islice(indices, ahead))
    while pending:
        index, result = pending.popleft()
        try:
            batch = result.get(timeout=BATCH_TIMEOUT_S)
        except multiprocessing.TimeoutError:
            raise RuntimeError(f"batch workers: batch {index} of epoch {epoch + 1} did not arrive within "
                               f"{BATCH_TIMEOUT_S:g} s (a worker killed, out of memory?)") from None
        pending.extend((i, pool.apply_async(draw, (i,))) for i in itertools.islice(indices, 1))
        yield batch


def _one_thread_per_worker() -> None:
    """Pool initializer: one BLAS/OpenMP thread in this worker, for the libraries loaded now and later."""
    os.environ.update(dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1"))
    torch.set_num_threads(1)
    # Called, not used as a context manager: the limit holds for the worker's life. It covers the BLAS
    # that numpy and scipy loaded when this module was imported (too early for the variables above).
    threadpoolctl.threadpool_limits(1)


def batch_worker_pool(workers: int, start_timeout_s: float = 120.0) -> multiprocessing.pool.Pool:
    """A pool of ``workers`` spawned processes for :func:`epoch_batches`, each with one BLAS/OpenMP thread.

    The batches are numpy work: many single-threaded workers beat a few that oversubscribe the cores.
    Use it as a context manager (leaving terminates the workers). Spawned workers re-import the main
    module from its file: a script needs its work under ``if __name__ == "__main__":``, and one read
    from stdin (no file to import) cannot use them (``python -c`` can: there is nothing to re-import).

    Raises
    ------
    RuntimeError
        When the workers cannot run a task within ``start_timeout_s`` (the pool is terminated).
    """
    # The initializer runs in every worker the pool starts, also one it starts again after a crash.
    pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_one_thread_per_worker)
    try:  # a worker that dies while starting is replaced forever: fail here instead
        pool.apply_async(os.getpid).get(timeout=start_timeout_s)
    except multiprocessing.TimeoutError:
        pool.terminate()
        raise RuntimeError(f"batch workers: none could run a task within {start_timeout_s:g} s; spawned workers "
                           "re-import the main module, so run a script file whose work sits under "
                           "'if __name__ == \"__main__\":' (see the worker processes' errors above)") from None
    return pool


def train(config: TrainConfig, *, resume: bool = True) -> list[dict]:
    """Train (or resume) a run in ``config.run_dir``; return the per-epoch metrics history."""
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = training_device()
    run_dir = Path(config.run_dir)
    pre = config.preprocess
    model = create_model_for(pre).to(device)
    model = model.to(memory_format=torch.channels_last)
    last = run_dir / "last.pt"
    resuming = resume and last.exists()
    if config.init_weights and not resuming:
        start = torch.load(config.init_weights, map_location=device, weights_only=True)
        model.load_state_dict(adapt_state_dict(start, model))
        logger.info("starting from the weights %s", config.init_weights)
    ema = copy.deepcopy(model).eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    epoch, batch, step, history = 0, 0, 0, []
    if resuming:
        state = torch.load(last, map_location=device, weights_only=False)
        saved = PreprocessConfig.from_dict(state["config"]["preprocess"])
        differ = [f"{key}={getattr(saved, key)!r} (asked: {getattr(pre, key)!r})" for key in NETWORK_FIELDS
                  if getattr(saved, key) != getattr(pre, key)]
        if differ:
            raise CheckpointMismatch(f"{last}: saved with {', '.join(differ)}; resume with the same network "
                                     "or start the run over (--no-resume)")
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, batch, step, history = state["epoch"], state["batch"], state["step"], state["history"]
        logger.info("resumed %s at epoch %d batch %d (step %d)", last, epoch, batch, step)
    samples = shipwakes_samples(config)
    if samples:
        logger.info("mixing %d ShipWakes images at fraction %.2f", len(samples), config.shipwakes_fraction)
    validation = _validation_set(config)
    state = dict(model=model, ema=ema, optimizer=optimizer, validation=validation, samples=samples, epoch=epoch,
                 batch=batch, step=step, history=history)
    if config.workers:
        with batch_worker_pool(config.workers) as pool:
            return _train_loop(config, **state, pool=pool)
    return _train_loop(config, **state, pool=None)


def train_step(
    model: torch.nn.Module, ema: torch.nn.Module, optimizer: torch.optim.Optimizer,
    batch: tuple[np.ndarray, np.ndarray, np.ndarray], config: TrainConfig, step: int,
) -> tuple[float, dict]:
    """One optimisation step on ``batch`` (inputs, normalised keypoints, visibility) on the model's device:
    forward, loss, backward, gradient clipping, AdamW, EMA update. Returns the loss and its parts."""
    device = next(model.parameters()).device
    x, kp, vis = batch
    inputs = torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last)
    loss, parts = keypoint_loss(model(inputs), torch.from_numpy(kp).float().to(device), torch.from_numpy(vis).to(device),
                                wakeless_kappa_weight=config.wakeless_kappa_weight)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    _update_ema(ema, model, step, config.ema_decay)
    return float(loss.detach()), parts


def _train_loop(
    config: TrainConfig, *, model: torch.nn.Module, ema: torch.nn.Module, optimizer: torch.optim.Optimizer,
    validation: dict[str, np.ndarray], samples: list[ShipWakesSample] | None, epoch: int, batch: int, step: int,
    history: list[dict], pool: multiprocessing.pool.Pool | None,
) -> list[dict]:
    """The epochs of :func:`train` from ``(epoch, batch, step)`` on; ``pool`` draws the synthetic batches when given."""
    run_dir = Path(config.run_dir)
    last = run_dir / "last.pt"
    total_steps = config.epochs * config.steps_per_epoch
    started = time.monotonic()
    last_checkpoint = started
    while epoch < config.epochs:
        model.train()
        losses = []
        progress = tqdm(
            range(batch, config.steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", initial=batch,
            total=config.steps_per_epoch, mininterval=20.0, leave=True,
        )
        for batch, synthetic in zip(progress, epoch_batches(config, epoch, batch, pool)):
            # Dropout draws from torch's global generator: seed it per batch so a resumed run matches.
            torch.manual_seed(int(np.random.SeedSequence([config.seed, epoch, batch, 11]).generate_state(1)[0]))
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, total_steps, config)
            loss, parts = train_step(model, ema, optimizer, with_shipwakes(synthetic, samples, config, epoch, batch),
                                     config, step)
            step += 1
            losses.append(loss)
            progress.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", angle=f"{parts['angle']:.4f}", refresh=False)
            now = time.monotonic()
            if now - last_checkpoint > config.checkpoint_minutes * 60:
                _save_checkpoint(last, model, ema, optimizer, config, epoch, batch + 1, step, history)
                last_checkpoint = now
            if config.max_minutes is not None and now - started > config.max_minutes * 60:
                _save_checkpoint(last, model, ema, optimizer, config, epoch, batch + 1, step, history)
                logger.info("time budget of %.1f min reached at epoch %d batch %d; resume to continue",
                            config.max_minutes, epoch, batch + 1)
                return history
        metrics = evaluate_arrays(ema, validation["inputs"], validation["heading"], validation["has_wake"])
        row = {"epoch": epoch + 1, "step": step, "train_loss": float(np.mean(losses)) if losses else float("nan"),
               "lr": _lr_at(step, total_steps, config), "elapsed_min": (time.monotonic() - started) / 60.0}
        row.update({f"val_{k}": v for k, v in metrics.items()})
        history.append(row)
        logger.info("epoch %d: %s", epoch + 1, {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
        epoch, batch = epoch + 1, 0
        _save_checkpoint(last, model, ema, optimizer, config, epoch, 0, step, history)
        torch.save(ema.state_dict(), run_dir / f"ema_epoch{epoch:03d}.pt")
        last_checkpoint = time.monotonic()
        _write_metrics(run_dir, history)
    return history


def weights_record(weights_path: Path) -> dict:
    """What a fine-tuning run started from: the file, its SHA-256 and that file's own training record."""
    from models.inference import config_path_for, file_sha256

    record: dict = {"weights": str(weights_path)}
    if weights_path.exists():
        record["sha256"] = file_sha256(weights_path)
    json_path = config_path_for(weights_path)
    if json_path.exists():
        record["training"] = PreprocessConfig.from_json(json_path).extra.get("training")
    return record


def _ranges_changes(saved: dict | None, reference: ChipRanges) -> str:
    """`` with noise_sigma=(0.002, 0.004)``: the fields of saved ranges that differ from ``reference`` ('' when none)."""
    if not saved:
        return ""
    changed = [f"{key}={tuple(value) if isinstance(value, list) else value}" for key, value in saved.items()
               if key in reference.__dataclass_fields__ and tuple(np.atleast_1d(value)) != tuple(np.atleast_1d(getattr(reference, key)))]
    return f" with {', '.join(changed)}" if changed else ""


def export_weights(checkpoint: Path, weights_path: Path, preprocess: PreprocessConfig | None = None) -> Path:
    """Write the EMA weights of a checkpoint as a plain state_dict plus its preprocessing JSON.

    The JSON lands next to the weights with the same stem (``wake_keypoints_b0.json``).
    """
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if preprocess is None:
        preprocess = PreprocessConfig.from_dict(state["config"]["preprocess"])
    history = state.get("history") or []
    cfg = state.get("config", {})
    training = {
        "data": "synthetic wake chips (models.wake_chips.TRAIN_RANGES" + _ranges_changes(cfg.get("ranges"), TRAIN_RANGES) + ")"
        + (f", {cfg['faint_fraction']:.0%} of each batch from FAINT_RANGES (small, slow vessels)"
           + _ranges_changes(cfg.get("faint_ranges"), FAINT_RANGES) if cfg.get("faint_fraction") else "")
        + (f", {cfg['zoom_fraction']:.0%} shown zoomed {'/'.join(f'{z:g}' for z in cfg.get('zoom_scales') or ())}x"
           if cfg.get("zoom_fraction") else "")
        + (f" + ShipWakes {cfg.get('shipwakes_dir')}" if cfg.get("shipwakes_dir") else ""),
        **{key: cfg.get(key) for key in ("seed", "epochs", "steps_per_epoch", "batch_size", "lr", "weight_decay", "ema_decay",
                                         "faint_fraction", "zoom_fraction", "zoom_scales", "wakeless_kappa_weight")},
        "steps_done": state.get("step"),
        "final_validation": {k: round(v, 4) if isinstance(v, float) else v for k, v in history[-1].items()} if history else None,
    }
    if cfg.get("init_weights"):
        training["started_from"] = weights_record(Path(cfg["init_weights"]))
    preprocess = preprocess.replace(extra={**preprocess.extra, "training": training})
    weights_path = Path(weights_path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    ema = state["ema"] if "ema" in state else state
    torch.save({k: v.clone() for k, v in ema.items()}, weights_path)
    preprocess.to_json(weights_path.with_suffix(".json"))
    return weights_path
