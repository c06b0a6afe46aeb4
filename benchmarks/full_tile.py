"""One full 10980 x 10980 synthetic L1C product end to end through the monitor: wall time, peak RSS.

End to end means one ``monitor-inbox`` pass over an inbox holding the product: discovery and the
content checksum, then ``process-scene`` (ingest, detect, chips, heading, enrich, alerts) and the
store write, and the registry update. Target (issue 6): at most 90 s and 3 GB on the project
machine.

Each configuration runs in a fresh subprocess against an already-started local Prefect server
(its start-up is not timed), with a fresh SQLite store:

* ``threads, 1 worker`` — the default thread runner, one scene at a time, every library limited
  to one CPU thread (``OMP_NUM_THREADS=1`` etc.);
* ``threads, 2 workers`` — the same with two CPU threads (BLAS, torch intra-op, GDAL);
* ``dask, 2 workers`` — ``--dask-address`` of a local Dask cluster of two single-thread worker
  processes (the scale-out path; with one product only one worker has work).

Peak RSS is sampled every 0.1 s over the subprocess and its children (the Dask workers), the
Prefect server excluded, and is also read exactly (``ru_maxrss``) for the subprocess itself.

Usage::

    python benchmarks/full_tile.py [--size 10980] [--layout safe|cog|geotiff] [--seed 5]
                                   [--configs threads-1,threads-2,dask-2]

The product is synthesised once (not timed) under ``var/benchmarks/``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
TARGET_S, TARGET_GB = 90.0, 3.0
CONFIGS = {
    "threads-1": ("threads, 1 worker", 1, None),
    "threads-2": ("threads, 2 workers", 2, None),
    "dask-2": ("dask, 2 workers", 1, 2),
}
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                     "GDAL_NUM_THREADS")


def run_child(inbox: str, database_url: str, threads: int, dask_workers: int | None) -> dict:
    """One pass in this process (the subprocess side); returns the pass's figures."""
    from prefect import flow

    from flows.monitor import DONE, monitor_inbox

    @flow
    def warm_up() -> None:
        """Start the API connection before timing."""

    warm_up()
    cluster = None
    if dask_workers:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=dask_workers, threads_per_worker=threads, processes=True,
                               dashboard_address=None, memory_limit=0)
    try:
        started = time.perf_counter()
        report = monitor_inbox(inbox, database_url=database_url, concurrency=threads,
                               dask_address=cluster.scheduler_address if cluster else None)
        wall_s = time.perf_counter() - started
    finally:
        if cluster is not None:
            cluster.close()
    (outcome,) = report.outcomes
    if outcome.status != DONE:
        raise SystemExit(f"the product was not processed: {outcome.status} {outcome.error}")
    return {
        "wall_s": wall_s, "discovery_s": report.seconds["discovery"], "steps_s": outcome.seconds,
        "detections": outcome.n_detections, "alerts": outcome.n_alerts,
        "self_peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


def _tree_rss_bytes(pid: int) -> int:
    """RSS of a process and its descendants, the Prefect server left out."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            command = " ".join(process.cmdline())
            if "prefect" in command and ("server" in command or "uvicorn" in command):
                continue
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


def run_config(name: str, inbox: Path, api_url: str, workdir: Path) -> dict:
    """Run one configuration in a subprocess, sampling its process tree's memory."""
    label, threads, dask_workers = CONFIGS[name]
    database_url = f"sqlite:///{workdir / f'{name}.sqlite'}"
    env = {**os.environ, "PREFECT_API_URL": api_url, **{v: str(threads) for v in _THREAD_VARIABLES}}
    command = [sys.executable, __file__, "--child", str(inbox), database_url, str(threads), str(dask_workers or 0)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               cwd=PROJECT_DIR)
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], _tree_rss_bytes(process.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = process.communicate()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{label}: the run failed (exit {process.returncode}): {stdout[-2000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(label=label, tree_peak_rss_gb=peak[0] / 1024**3)
    return result


def _product(size: int, layout: str, seed: int) -> Path:
    """The synthetic product, written once (not timed), in an inbox folder of its own."""
    from pipeline.synthetic import write_product

    inbox = PROJECT_DIR / "var" / "benchmarks" / f"full-tile-L1C-{layout}-{size}-{seed}" / "inbox"
    if inbox.exists() and any(inbox.iterdir()):
        return inbox
    staging = inbox.parent / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    started = time.perf_counter()
    info = write_product(staging, seed=seed, size_px=size, layout=layout, level="L1C")
    print(f"synthesised {size} px {layout} product in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    inbox.mkdir(parents=True, exist_ok=True)
    if layout == "safe":
        shutil.move(str(info.product_path), inbox / info.product_path.name)
        shutil.rmtree(staging)
    else:
        shutil.move(str(staging), inbox / f"{layout}-{seed}")
    return inbox


def _table(results: list[dict], size: int) -> str:
    steps: list[str] = []
    for result in results:
        steps += [s for s in result["steps_s"] if s not in steps]
    header = ["run", "pass wall (s)", "discovery (s)", *[f"{s} (s)" for s in steps], "detections", "alerts",
              "peak RSS tree (GB)", "peak RSS main (GB)", f"≤ {TARGET_S:.0f} s, ≤ {TARGET_GB:.0f} GB"]
    lines = [f"Full tile: {size} x {size} px synthetic L1C, one monitor pass (cpus: {os.cpu_count()})", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for r in results:
        ok = r["wall_s"] <= TARGET_S and r["tree_peak_rss_gb"] <= TARGET_GB
        cells = [r["label"], f"{r['wall_s']:.1f}", f"{r['discovery_s']:.1f}",
                 *[f"{r['steps_s'].get(s, float('nan')):.1f}" for s in steps], str(r["detections"]),
                 str(r["alerts"]), f"{r['tree_peak_rss_gb']:.2f}", f"{r['self_peak_rss_gb']:.2f}",
                 "yes" if ok else "no"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--layout", default="safe", choices=["safe", "cog", "geotiff"])
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        inbox, database_url, threads, dask_workers = args.child
        print(json.dumps(run_child(inbox, database_url, int(threads), int(dask_workers) or None)))
        return

    inbox = _product(args.size, args.layout, args.seed)
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="vesselwatch-bench-prefect-"))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=120)
    try:
        with tempfile.TemporaryDirectory(prefix="vesselwatch-bench-") as workdir:
            results = [run_config(name, inbox, server.api_url, Path(workdir))
                       for name in args.configs.split(",")]
    finally:
        server.stop()
    print(_table(results, args.size))


if __name__ == "__main__":
    main()
