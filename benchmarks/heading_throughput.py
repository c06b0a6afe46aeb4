"""Throughput of the heading model on this CPU: chips/s batched and p50 single-chip latency.

Peers in the same run, same chips (128 px, 4 bands, like the pipeline cuts), same thread count:

* ``eager fp32`` — PyTorch, ``torch.inference_mode``, channels_last;
* ``onnxruntime fp32`` — the default fast path (used when it matches eager within tolerance);
* ``onnxruntime int8`` — static QDQ quantisation (only measured; it is not the default unless its
  accuracy holds, which this script also reports as the heading difference to fp32);
* ``onnxruntime fp32, one scale`` — the fast path without the weights' ``zoom_scales`` (when they
  have any): what the extra zoomed passes of the less confident chips cost (its "Δ° vs eager" is
  then the difference the zooms make, not a backend error);
* ``onnxruntime fp32 + TTA σ>x°`` — what the pipeline runs by default: the fast path with the
  weights' zooms, plus the 8 dihedral symmetries for the chips whose sigma exceeds the weights'
  ``tta_above_sigma_deg``.

The backend rows run without test-time augmentation (``tta=False``) and with the weights' zooms,
so they compare backends alone.

Times include preprocessing (band selection, centre crop, robust normalisation) and decoding.

Usage::

    python benchmarks/heading_throughput.py [--threads 2] [--batch 256] [--chips 1024]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--chips", type=int, default=1024)
    parser.add_argument("--single", type=int, default=100, help="Single-chip calls for the latency percentile.")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--no-int8", action="store_true")
    args = parser.parse_args()

    import torch

    from models.export import _session, export_onnx, quantize_int8
    from models.inference import load_heading_model, predict_keypoints
    from models.metrics import angular_error_deg
    from models.wake_chips import BAND_NAMES, draw_chips

    torch.set_num_threads(args.threads)
    chips = draw_chips(4242, args.chips, size=128)["data"]
    model = load_heading_model(args.weights, fast=False, threads=args.threads)
    variants = {"eager fp32": None}
    workdir = Path(tempfile.mkdtemp(prefix="heading-bench-"))
    fp32_path = export_onnx(model, workdir / "fp32.onnx")
    variants["onnxruntime fp32"] = _session(fp32_path, args.threads)
    if not args.no_int8:
        try:
            variants["onnxruntime int8"] = _session(quantize_int8(model, fp32_path, workdir / "int8.onnx"), args.threads)
        except Exception as exc:  # quantisation tooling varies by version; report, don't die
            print(f"int8 skipped: {exc}")

    reference = None
    zooms = "/".join(f"{z:g}" for z in model.config.zoom_scales) or "none"
    print(f"{len(chips)} chips of 128 px, batch {args.batch}, {args.threads} threads, input crop {model.config.input_size} px, "
          f"zooms {zooms} below wake probability {model.config.zoom_below_probability:g}")
    header = (f"{'backend':<34} {'chips/s':>9} {'p50 ms (1 chip)':>16} {'p90 ms':>8} "
              f"{'median Δ° vs eager':>19} {'max Δ°':>8} {'Δ>10° %':>8}")
    print(header)
    print("-" * len(header))
    configured = model.config
    runs = [(name, session, False, configured) for name, session in variants.items()]
    if configured.zoom_scales:
        runs.append(("onnxruntime fp32, one scale", variants["onnxruntime fp32"], False, configured.replace(zoom_scales=())))
    if configured.tta_above_sigma_deg is not None:
        runs.append((f"onnxruntime fp32 + TTA σ>{configured.tta_above_sigma_deg:g}°", variants["onnxruntime fp32"], None,
                     configured))
    for name, session, tta, config in runs:
        model.session, model.config = session, config
        predict_keypoints(model, chips[: args.batch], BAND_NAMES, batch_size=args.batch, tta=tta)  # warm up
        started = time.perf_counter()
        pred = predict_keypoints(model, chips, BAND_NAMES, batch_size=args.batch, tta=tta)
        rate = len(chips) / (time.perf_counter() - started)
        latencies = []
        for i in range(args.single):
            t0 = time.perf_counter()
            predict_keypoints(model, chips[i : i + 1], BAND_NAMES, tta=tta)
            latencies.append((time.perf_counter() - t0) * 1000)
        if reference is None:
            reference = pred.heading_grid_deg
        both = np.isfinite(reference) & np.isfinite(pred.heading_grid_deg)
        delta = angular_error_deg(reference[both], pred.heading_grid_deg[both]) if both.any() else np.array([np.nan])
        print(f"{name:<34} {rate:>9.1f} {np.percentile(latencies, 50):>16.2f} {np.percentile(latencies, 90):>8.2f} "
              f"{np.median(delta):>19.3f} {np.max(delta):>8.3f} {100 * np.mean(delta > 10):>8.2f}")
    model.session, model.config = None, configured


if __name__ == "__main__":
    main()
