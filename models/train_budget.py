"""Fit a training run to a wall-clock budget: measure the step rate, then size the epochs to it.

The learning rate follows a cosine over ``epochs * steps_per_epoch`` steps, so a run cut short by
``max_minutes`` stops at a high rate, before the schedule has annealed. When the budget is what is
fixed (a lent GPU's few minutes, a 2-core session's two hours) and the machine's speed is not known
in advance, measure it first: :func:`measure_step_rate` times a few steps of a throwaway network on
the run's own batches, drawn as the run draws them (worker processes included), and
:func:`epochs_for_budget` turns the rate into the most whole epochs that fit, validation included.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import torch

from models.network import create_model_for, keypoint_loss
from models.train import TrainConfig, batch_worker_pool, epoch_batches, training_device

__all__ = ["measure_step_rate", "epochs_for_budget"]


def measure_step_rate(config: TrainConfig, steps: int = 8, warmup: int = 2) -> float:
    """Training steps per second of ``config`` on this machine (CUDA when present).

    Runs ``warmup + steps`` steps (forward, backward, AdamW) of a fresh network of the run's shape on
    the run's first batches of epoch 0, drawn in the loop or by ``config.workers`` processes as the
    run would; only the last ``steps`` are timed. Nothing of the run (weights, checkpoint) is touched.
    """
    if steps < 1 or warmup < 0:
        raise ValueError(f"steps: expected >= 1 timed steps and >= 0 warm-up steps, got {steps} and {warmup}")
    if config.threads:
        torch.set_num_threads(config.threads)
    device = training_device()
    probe = replace(config, steps_per_epoch=warmup + steps)
    model = create_model_for(config.preprocess).to(device).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def run(pool) -> float:
        started = None
        for index, (x, kp, vis) in enumerate(epoch_batches(probe, epoch=0, pool=pool)):
            if index == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
            inputs = torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last)
            loss, _ = keypoint_loss(model(inputs), torch.from_numpy(kp).float().to(device), torch.from_numpy(vis).to(device),
                                    wakeless_kappa_weight=config.wakeless_kappa_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return steps / (time.perf_counter() - started)

    if config.workers:
        with batch_worker_pool(config.workers) as pool:
            return run(pool)
    return run(None)


def epochs_for_budget(config: TrainConfig, minutes: float, steps_per_second: float, *, margin: float = 0.9) -> int:
    """The most whole epochs of ``config.steps_per_epoch`` steps that fit ``margin * minutes``.

    Each epoch also pays its validation pass over ``config.val_count`` chips, counted as forward
    passes at three times the training step's per-chip rate (a step is a forward and a backward).

    Raises
    ------
    ValueError
        When the budget or the rate is not a positive number, or not even one epoch fits (the
        message says how long one takes).
    """
    if not (math.isfinite(minutes) and minutes > 0):
        raise ValueError(f"minutes: expected a positive budget, got {minutes!r}")
    if not (math.isfinite(steps_per_second) and steps_per_second > 0):
        raise ValueError(f"steps_per_second: expected a positive rate, got {steps_per_second!r}")
    validation_s = config.val_count / (3.0 * steps_per_second * config.batch_size)
    epoch_s = config.steps_per_epoch / steps_per_second + validation_s
    epochs = int(margin * minutes * 60.0 // epoch_s)
    if epochs < 1:
        raise ValueError(f"minutes: one epoch of {config.steps_per_epoch} steps takes about {epoch_s / 60:.1f} min "
                         f"here ({steps_per_second:.2f} steps/s), more than {margin:.0%} of {minutes:g} min; "
                         "give fewer steps per epoch or more minutes")
    return epochs
