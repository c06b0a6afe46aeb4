"""How fast training batches are drawn, in the loop or by worker processes, against one training step.

``train-heading --workers N`` draws the synthetic batches in ``N`` spawned processes ahead of the
training step (the same arrays as drawing them in the loop). It pays only where the generator,
not the network, is the bottleneck: on a GPU, or with cores the step does not use. This prints, in
the same run and on the same batches (the stop-26 recipe: 50% faint chips, 50% zoomed views):

* ``in the loop`` — one process draws batch after batch;
* ``N workers`` — :func:`models.train.epoch_batches` with a pool of ``N`` (pool start-up excluded);
* ``training step`` — one :func:`models.train.train_step` (forward, backward, clipping, AdamW, EMA) of
  the shipped network's shape on one such batch at
  ``--threads`` (what each drawn batch feeds), so the two rates can be compared.

Usage::

    python benchmarks/train_batches.py [--batches 24] [--batch-size 64] [--workers 1 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from dataclasses import replace

import numpy as np
import torch

from models.network import create_model_for
from models.preprocess import PreprocessConfig
from models.train import TrainConfig, batch_worker_pool, epoch_batches, train_step


def _rate(config: TrainConfig, pool=None) -> tuple[float, tuple]:
    """Batches per second of drawing ``config.steps_per_epoch`` batches of epoch 0, and the last batch."""
    started = time.perf_counter()
    for batch in epoch_batches(config, epoch=0, pool=pool):
        pass
    return config.steps_per_epoch / (time.perf_counter() - started), batch


def _step_rate(config: TrainConfig, repeats: int = 5) -> float:
    """Training steps per second (:func:`models.train.train_step`) on one drawn batch, after one warm-up step."""
    model = create_model_for(config.preprocess).to(memory_format=torch.channels_last).train()
    ema = copy.deepcopy(model).eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = next(epoch_batches(config, epoch=0))
    train_step(model, ema, optimizer, batch, config, 0)
    started = time.perf_counter()
    for step in range(1, repeats + 1):
        train_step(model, ema, optimizer, batch, config, step)
    return repeats / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=24, help="batches drawn per row")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of the training step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    preprocess = PreprocessConfig.from_json("models/weights/wake_keypoints_b0.json")
    config = TrainConfig(steps_per_epoch=args.batches, batch_size=args.batch_size, faint_fraction=0.5,
                         zoom_fraction=0.5, wakeless_kappa_weight=0.5, preprocess=preprocess)
    rate, reference = _rate(config)
    rows, same = [("in the loop", rate)], []
    for workers in args.workers:
        with batch_worker_pool(workers) as pool:
            pool.map(abs, range(4 * workers))  # warm-up tasks: timing starts with the workers running
            rate, batch = _rate(replace(config, workers=workers), pool)
        rows.append((f"{workers} worker{'s' if workers > 1 else ''}", rate))
        same.append(all(np.array_equal(a, b, equal_nan=True) for a, b in zip(reference, batch)))
    rows.append((f"training step, {args.threads} threads", _step_rate(config)))
    print(f"{os.cpu_count()} cores, batch {args.batch_size} chips of {preprocess.input_size} px, {args.batches} batches per row")
    print("| source | batches/s | chips/s |")
    print("|---|---:|---:|")
    for name, rate in rows:
        print(f"| {name} | {rate:.2f} | {rate * args.batch_size:.0f} |")
    print(f"(the workers' last batch equals the loop's, bit for bit: {all(same)})")


if __name__ == "__main__":
    main()
