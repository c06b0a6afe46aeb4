"""Wall time and peak memory of ingest + detection + chips on a full 10980 x 10980 synthetic tile.

Target (foundation issue): at most 60 s and 2.5 GB peak RSS on the project machine. Each run is
a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own. Peers in the same run:

* ``vesselwatch`` — :func:`pipeline.chips.detect_and_cut` (what the flow runs): the detector in
  2048 px blocks, each block's 128 px chips (every band) cut while its pixels are in memory;
* ``detect, then cut`` — :func:`pipeline.detect.detect_vessels`, then
  :func:`pipeline.chips.cut_chips` reading every chip from the files again;
* ``naive full-frame`` — the same detector on one block the size of the tile (what a
  straightforward implementation that reads whole bands does), for the memory comparison.

Usage::

    python benchmarks/scene_throughput.py [--product DIR] [--layout geotiff|cog|safe] [--size 10980]

Without ``--product`` a product is synthesised first (``vesselwatch synth``-equivalent, not timed;
a few minutes at full size) under ``var/benchmarks/``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def run_once(product: str, block_px: int, chip_px: int, fused: bool) -> dict:
    """Ingest + detect + chips in this process; returns timings and peak RSS.

    ``fused``: chips cut in-block by ``detect_and_cut`` (``chips_s`` is then None: it is part of
    ``detect_s``); else ``detect_vessels`` followed by ``cut_chips``.
    """
    from dataclasses import replace

    from pipeline.chips import cut_chips, detect_and_cut
    from pipeline.detect import DetectorConfig, detect_vessels
    from pipeline.ingest import open_scene

    config = replace(DetectorConfig(), block_px=block_px)
    started = time.perf_counter()
    with open_scene(product) as scene:
        opened = time.perf_counter()
        if fused:
            detections, chips = detect_and_cut(scene, size_px=chip_px, config=config)
            detected = None
        else:
            detections = detect_vessels(scene, config=config)
            detected = time.perf_counter()
            chips = cut_chips(scene, detections, size_px=chip_px)
        chipped = time.perf_counter()
        size = (scene.metadata.height, scene.metadata.width)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    recall, precision = truth_scores(Path(product), detections.row, detections.col)
    return {
        "recall": recall, "precision": precision,
        "pixels": size, "detections": len(detections), "chips": len(chips),
        "open_s": opened - started, "detect_s": (detected or chipped) - opened,
        "chips_s": None if detected is None else chipped - detected,
        "total_s": chipped - started, "peak_rss_gb": peak_kb / 1024**2,
    }


def truth_scores(product: Path, row, col) -> tuple[float | None, float | None]:
    """Recall (vessels >= 20 m not under cloud) and precision against a synthetic ``truth.geojson``.

    A vessel is found when a detection lies within max(30 m, length / 2) of its hull centre
    (pixel distance x 10 m); a detection is correct when it lies that close to any vessel.
    """
    import numpy as np

    folder = product if product.is_dir() and not product.suffix == ".SAFE" else product.parent
    truth_path = folder / "truth.geojson"
    if not truth_path.exists():
        return None, None
    vessels = [f["properties"] for f in json.loads(truth_path.read_text())["features"]]
    t_row = np.array([v["row"] for v in vessels])
    t_col = np.array([v["col"] for v in vessels])
    tolerance_px = np.maximum(30.0, np.array([v["length_m"] for v in vessels]) / 2) / 10.0
    scored = np.array([v["length_m"] >= 20 and not v["under_cloud"] for v in vessels])
    if len(row) == 0 or len(vessels) == 0:
        return 0.0, None
    distance = np.hypot(np.asarray(row)[:, None] - t_row[None, :], np.asarray(col)[:, None] - t_col[None, :])
    close = distance <= tolerance_px[None, :]
    return float(close[:, scored].any(axis=0).mean()), float(close.any(axis=1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--product", help="an existing product (folder, SAFE or STAC item)")
    parser.add_argument("--layout", default="geotiff", choices=["geotiff", "cog", "safe"])
    parser.add_argument("--level", default="L2A", choices=["L1C", "L2A"])
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-naive", action="store_true", help="do not run the full-frame peer")
    parser.add_argument("--skip-separate", action="store_true", help="do not run the detect-then-cut peer")
    parser.add_argument("--child", nargs=4, metavar=("PRODUCT", "BLOCK", "CHIP", "FUSED"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(run_once(args.child[0], int(args.child[1]), int(args.child[2]), args.child[3] == "1")))
        return

    product = args.product
    if product is None:
        from pipeline.synthetic import write_product

        out = PROJECT_DIR / "var" / "benchmarks" / f"throughput-{args.layout}-{args.level}-{args.size}-{args.seed}"
        if not (out / "truth.geojson").exists():
            info = write_product(out, seed=args.seed, size_px=args.size, layout=args.layout, level=args.level)
            product = str(info.product_path)
        else:
            product = str(next((p for p in out.iterdir() if p.suffix in (".SAFE",) or
                                (p.suffix == ".json" and p.name != "metadata.json")), out))

    peers = [("vesselwatch (2048 px blocks, chips cut in-block)", 2048, "1")]
    if not args.skip_separate:
        peers.append(("detect, then cut chips from the files (2048 px blocks)", 2048, "0"))
    if not args.skip_naive:
        peers.append(("naive full-frame", args.size, "0"))
    rows = []
    for name, block, fused in peers:
        result = subprocess.run([sys.executable, __file__, "--child", product, str(block), "128", fused],
                                capture_output=True, text=True, cwd=PROJECT_DIR)
        if result.returncode != 0:
            rows.append((name, None, result.stderr.strip().splitlines()[-1] if result.stderr else "failed"))
            continue
        rows.append((name, json.loads(result.stdout.strip().splitlines()[-1]), ""))

    print(f"product: {product}")
    print("| run | pixels | detections | recall | precision | open s | detect s | chips s | total s | peak RSS GB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r, error in rows:
        if r is None:
            print(f"| {name} | failed: {error} | | | | | | | | |")
            continue
        scores = " | ".join("n/a" if r[k] is None else f"{r[k]:.3f}" for k in ("recall", "precision"))
        chips_s = "in detect" if r["chips_s"] is None else f"{r['chips_s']:.1f}"
        print(f"| {name} | {r['pixels'][0]}x{r['pixels'][1]} | {r['detections']} | {scores} | {r['open_s']:.1f} | "
              f"{r['detect_s']:.1f} | {chips_s} | {r['total_s']:.1f} | {r['peak_rss_gb']:.2f} |")
    print("target: total <= 60 s, peak RSS <= 2.5 GB")


if __name__ == "__main__":
    main()
