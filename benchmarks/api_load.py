"""Load test of ``GET /platforms/nearest`` on loopback: sustained throughput, p50/p99 latency, errors.

Starts the real service (``uvicorn api.app:create_app --factory``, N workers, uvloop + httptools)
on a synthetic register of 2,000 structures (about the active platforms in the US Gulf), then drives it for a fixed time from
a keep-alive HTTP/1.1 load generator written on raw asyncio protocols (so the client, which shares
the machine, costs as little CPU as possible). The named peer, run the same way in the same run, is
the "seed article" service: a plain FastAPI endpoint computing haversine to every platform per
request and answering through pydantic.

Usage::

    .venv/bin/python benchmarks/api_load.py --duration 60 --workers 2 --connections 32

Prints one table row per server. Measure on an otherwise idle machine; the numbers include the
load generator's own CPU use when client and server share the cores (``--server-cpus`` /
``--client-cpus`` pin them apart with ``taskset`` where there are cores to spare).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROJECT_DIR = Path(__file__).resolve().parent.parent


# -- the peer: the brute-force service of the seed article --------------------------------------------
def brute_force_app():  # pragma: no cover - run by uvicorn in the peer's processes
    """FastAPI app answering nearest platform by haversine to every platform (no index), pydantic out."""
    from fastapi import FastAPI, Query
    from pydantic import BaseModel

    from geo.haversine import distance_km
    from pipeline.reference import load_platforms

    platforms = load_platforms(os.environ["VESSELWATCH_PLATFORMS_PATH"])
    app = FastAPI()

    class Platform(BaseModel):
        platform_id: str
        distance_km: float

    class Answer(BaseModel):
        lon: float
        lat: float
        distance_km: float
        platforms: list[Platform]

    @app.get("/platforms/nearest", response_model=Answer)
    def nearest(lat: float = Query(ge=-90, le=90), lon: float = Query(ge=-180, le=180)) -> Answer:
        d = distance_km(lon, lat, platforms.lon, platforms.lat)
        rows = np.flatnonzero(d == d.min())
        return Answer(lon=lon, lat=lat, distance_km=float(d.min()),
                      platforms=[Platform(platform_id=str(platforms.platform_id[i]), distance_km=float(d[i]))
                                 for i in rows])

    return app


# -- register ----------------------------------------------------------------------------------------------
def write_register(path: Path, n: int, seed: int = 0) -> None:
    """A synthetic platform register of ``n`` structures (Gulf-of-Mexico-like spread, some shared sites)."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(-97.5, -81.0, n).round(6)
    lat = rng.uniform(24.0, 30.5, n).round(6)
    shared = rng.random(n) < 0.2  # a fifth of structures stand on an earlier structure's complex
    lon[1:][shared[1:]] = lon[:-1][shared[1:]]
    lat[1:][shared[1:]] = lat[:-1][shared[1:]]
    rows = [f"P{i:05d},platform {i},{x},{y}" for i, (x, y) in enumerate(zip(lon, lat))]
    path.write_text("platform_id,name,lon,lat\n" + "\n".join(rows) + "\n")


# -- load generator -----------------------------------------------------------------------------------
@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies_ms: np.ndarray


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending the next request as soon as the previous answer is complete."""

    def __init__(self, requests: list[bytes], offset: int, record_from: float, stop_at: float,
                 latencies: list[float], errors: list[int], done: asyncio.Future) -> None:
        self.requests, self.i = requests, offset
        self.record_from, self.stop_at = record_from, stop_at
        self.latencies, self.errors, self.done = latencies, errors, done
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        self.started = time.perf_counter()
        self.transport.write(self.requests[self.i % len(self.requests)])
        self.i += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None]) if at >= 0 else 0
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            status = int(self.buffer[9:12])
            self.buffer = self.buffer[end:]
            now = time.perf_counter()
            if now >= self.record_from:
                self.latencies.append((now - self.started) * 1000.0)
                if status != 200:
                    self.errors.append(status)
            if now >= self.stop_at:
                self.transport.close()
                return
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if time.perf_counter() < self.stop_at:
            self.errors.append(-1)
        if not self.done.done():
            self.done.set_result(None)


async def _drive(port: int, requests: list[bytes], connections: int, warmup_s: float, duration_s: float) -> Result:
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    record_from, stop_at = start + warmup_s, start + warmup_s + duration_s
    latencies: list[float] = []
    errors: list[int] = []
    finished = []
    for c in range(connections):
        done = loop.create_future()
        await loop.create_connection(
            lambda c=c, done=done: _Connection(requests, c * 7919, record_from, stop_at, latencies, errors, done),
            "127.0.0.1", port,
        )
        finished.append(done)
    await asyncio.wait_for(asyncio.gather(*finished), timeout=warmup_s + duration_s + 30)
    return Result(len(latencies), len(errors), duration_s, np.asarray(latencies))


def run_load(port: int, *, connections: int, warmup_s: float, duration_s: float, seed: int = 1) -> Result:
    """Drive ``GET /platforms/nearest`` at random points of the register's region."""
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(-98, -80, 4096), rng.uniform(23, 31, 4096)
    requests = [
        (f"GET /platforms/nearest?lat={y:.5f}&lon={x:.5f} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").encode()
        for x, y in zip(lon, lat)
    ]
    try:
        import uvloop

        return uvloop.run(_drive(port, requests, connections, warmup_s, duration_s))
    except ImportError:
        return asyncio.run(_drive(port, requests, connections, warmup_s, duration_s))


# -- servers -----------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(target: str, port: int, workers: int, env: dict[str, str], cpus: str | None,
                 app_dir: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "uvicorn", target, "--factory", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--no-access-log", "--log-level", "warning", "--app-dir", str(app_dir)]
    if _has("uvloop"):
        command += ["--loop", "uvloop"]
    if _has("httptools"):
        command += ["--http", "httptools"]
    if cpus and shutil.which("taskset"):
        command = ["taskset", "-c", cpus] + command
    return subprocess.Popen(command, env=env, cwd=PROJECT_DIR, start_new_session=True)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def wait_ready(port: int, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/platforms/nearest?lat=27&lon=-90", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server on port {port} did not answer within {timeout_s} s")


def stop(process: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="Measured seconds per server.")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--platforms", type=int, default=2000, help="Synthetic register size.")
    parser.add_argument("--server-cpus", default=None, help="taskset CPU list for the server, e.g. 0,1.")
    parser.add_argument("--client-cpus", default=None, help="taskset CPU list for the load generator.")
    parser.add_argument("--peer-duration", type=float, default=None, help="Measured seconds for the peer.")
    parser.add_argument("--skip-peer", action="store_true")
    args = parser.parse_args(argv)
    if args.client_cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.client_cpus.split(",")})

    folder = Path(tempfile.mkdtemp(prefix="vesselwatch-load-"))
    register = folder / "platforms.csv"
    write_register(register, args.platforms)
    env = dict(os.environ, VESSELWATCH_PLATFORMS_PATH=str(register),
               VESSELWATCH_DATABASE_URL=f"sqlite:///{folder / 'store.sqlite'}", VESSELWATCH_LOG_LEVEL="WARNING",
               PYTHONPATH=os.pathsep.join([str(PROJECT_DIR), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    servers = [("vesselwatch (PlatformIndex, orjson)", "api.app:create_app", PROJECT_DIR, args.duration)]
    if not args.skip_peer:
        servers.append(("peer: brute-force haversine, pydantic (seed article)", "api_load:brute_force_app",
                        PROJECT_DIR / "benchmarks", args.peer_duration or args.duration))
    print(f"GET /platforms/nearest, {args.platforms} platforms, {args.workers} workers, {args.connections} "
          f"keep-alive connections, {os.cpu_count()} CPUs visible, server cpus={args.server_cpus or 'shared'}")
    print(f"| server | seconds | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms |")
    print(f"|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, target, app_dir, duration in servers:
        port = _free_port()
        process = start_server(target, port, args.workers, env, args.server_cpus, app_dir)
        try:
            wait_ready(port)
            result = run_load(port, connections=args.connections, warmup_s=args.warmup, duration_s=duration)
        finally:
            stop(process)
        lat = result.latencies_ms
        p50, p90, p99 = np.percentile(lat, [50, 90, 99]) if lat.size else (np.nan,) * 3
        print(f"| {name} | {duration:.0f} | {result.requests} | {result.errors} | {result.requests / duration:,.0f} "
              f"| {p50:.2f} | {p90:.2f} | {p99:.2f} | {lat.max() if lat.size else float('nan'):.2f} |", flush=True)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
