"""Fit a training run to a wall-clock budget: measure the step rate, then size the epochs to it.

The learning rate follows a cosine over ``epochs * steps_per_epoch`` steps, so a run cut short by
``max_minutes`` stops at a high rate, before the schedule has annealed. When the budget is what is
fixed (a lent GPU's few minutes, a 2-core session's two hours) and the machine's speed is not known
in advance, measure it first: :func:`measure_step_rate` times training steps of a throwaway network
on the run's own batches, drawn as the run draws them (worker processes included), once the
workers' read-ahead is used up; :func:`epochs_for_budget` turns the rate into the most whole
epochs that fit, validation and the per-epoch checkpoint included.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import replace

import torch

from models.network import create_model_for
from models.train import (
    TrainConfig, batch_worker_pool, epoch_batches, shipwakes_samples, train_step, training_device, with_shipwakes,
)

__all__ = ["measure_step_rate", "epochs_for_budget"]


def measure_step_rate(config: TrainConfig, steps: int | None = None, warmup: int | None = None) -> float:
    """Training steps per second of ``config`` on this machine (CUDA when present).

    Runs ``warmup + steps`` full steps (:func:`models.train.train_step`: forward, backward, clipping,
    AdamW, EMA) of a fresh network of the run's shape on the run's first batches, drawn as the run
    draws them: synthetic chips in the loop or by ``config.workers`` processes, and the ShipWakes
    share, if any, cropped in this process. Only the last ``steps`` are timed; by default the
    warm-up outlasts the workers' read-ahead (``2 + 2 * workers`` steps) and ``steps`` is
    ``max(8, 2 * workers)``, so the rate is the slower of the generator and the network. Nothing of
    the run is touched.

    Raises
    ------
    ValueError
        When ``steps`` or ``warmup`` is out of range.
    ProductError, InputError
        When ``config.shipwakes_dir`` cannot be read (see :func:`models.train.shipwakes_samples`).
    RuntimeError
        When the worker processes cannot start or lose a batch (see :func:`models.train.batch_worker_pool`).
    """
    warmup = 2 + 2 * config.workers if warmup is None else warmup
    steps = max(8, 2 * config.workers) if steps is None else steps
    if steps < 1 or warmup < 0:
        raise ValueError(f"measure_step_rate: expected steps >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    if config.threads:
        torch.set_num_threads(config.threads)
    device = training_device()
    probe = replace(config, steps_per_epoch=warmup + steps)
    samples = shipwakes_samples(config)
    model = create_model_for(config.preprocess).to(device).to(memory_format=torch.channels_last).train()
    ema = copy.deepcopy(model).eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def run(pool) -> float:
        started = time.perf_counter()
        for index, synthetic in enumerate(epoch_batches(probe, epoch=0, pool=pool)):
            if index == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
            batch = with_shipwakes(synthetic, samples, probe, 0, index)  # timed: the run crops them in this loop
            train_step(model, ema, optimizer, batch, config, index)  # returns the loss as a float: synchronised
        return steps / (time.perf_counter() - started)

    if config.workers:
        with batch_worker_pool(config.workers) as pool:
            return run(pool)
    return run(None)


def epochs_for_budget(
    config: TrainConfig, minutes: float, steps_per_second: float, *, margin: float = 0.9, epoch_overhead_s: float = 3.0,
) -> int:
    """The most whole epochs of ``config.steps_per_epoch`` steps that fit ``margin * minutes``.

    Each epoch also pays its validation pass over ``config.val_count`` chips, counted as forward
    passes at three times the training step's per-chip rate (a step is a forward and a backward),
    and ``epoch_overhead_s`` seconds for its checkpoint, EMA copy and metrics plot.

    Raises
    ------
    ValueError
        When the budget, the rate or the margin is out of range, or not even one epoch fits (the
        message says how long one takes).
    """
    if not (math.isfinite(minutes) and minutes > 0):
        raise ValueError(f"minutes: expected a positive budget, got {minutes!r}")
    if not (math.isfinite(steps_per_second) and steps_per_second > 0):
        raise ValueError(f"steps_per_second: expected a positive rate, got {steps_per_second!r}")
    if not 0 < margin <= 1:
        raise ValueError(f"margin: expected a share in (0, 1], got {margin!r}")
    validation_s = config.val_count / (3.0 * steps_per_second * config.batch_size)
    epoch_s = config.steps_per_epoch / steps_per_second + validation_s + epoch_overhead_s
    epochs = int(margin * minutes * 60.0 // epoch_s)
    if epochs < 1:
        raise ValueError(f"minutes: one epoch of {config.steps_per_epoch} steps takes about {epoch_s / 60:.1f} min "
                         f"here ({steps_per_second:.2f} steps/s), more than {margin:.0%} of {minutes:g} min; "
                         "give fewer steps per epoch or more minutes")
    return epochs
