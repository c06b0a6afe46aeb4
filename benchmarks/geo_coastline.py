"""Coastline-distance benchmark: geo.coastline.CoastlineIndex on Natural Earth 10m and densified.

Part 1 (Natural Earth 10m, ~411k vertices): build time, queries/s on one core (CPU seconds),
max error against the brute force over every segment on a sample, and the error that a
nearest-vertex search (scipy cKDTree on unit vectors, the usual shortcut) makes on the same points.
Queries: half within ~100 km of the coast (where vessels are), half uniform on the globe.

Part 2 (the same coastline densified along its great circles to ``--densify`` vertices, built
from the file in chunks, in a fresh subprocess so its peak RSS is its own): build time, peak RSS
and queries/s.

    python benchmarks/geo_coastline.py                 # 100k queries, 20M-vertex densification
    python benchmarks/geo_coastline.py --quick         # 20k queries, 2M vertices
    python benchmarks/geo_coastline.py --densify 100000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from geo.coastline import CoastlineIndex, LineChunk, point_to_arc, read_line_chunks  # noqa: E402
from geo.earth import EARTH_RADIUS_KM  # noqa: E402
from geo.unit_vectors import angle_from_chord, from_unit_vectors, to_unit_vectors  # noqa: E402
from geo.validation import wrap_lon  # noqa: E402

NE10M = Path(__file__).resolve().parent.parent / "data" / "naturalearth" / "ne_10m_coastline.json.gz"


def queries(chunks: list[LineChunk], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lon = np.concatenate([c.lon for c in chunks])
    lat = np.concatenate([c.lat for c in chunks])
    near = n // 2
    pick = rng.integers(0, lon.size, near)
    qlon = np.concatenate([lon[pick] + rng.normal(0, 0.6, near), rng.uniform(-180, 180, n - near)])
    qlat = np.concatenate([lat[pick] + rng.normal(0, 0.4, near), np.degrees(np.arcsin(rng.uniform(-1, 1, n - near)))])
    order = rng.permutation(n)
    return wrap_lon(qlon[order]), np.clip(qlat[order], -90, 90)


def densified_chunks(path: Path, factor: int):
    """The file's lines with ``factor - 1`` points inserted on each segment's great circle."""
    for chunk in read_line_chunks(path, chunk_vertices=50_000):
        xyz = to_unit_vectors(chunk.lon, chunk.lat)
        seg_valid = ~chunk.line_start[1:]
        a, b = xyz[:-1], xyz[1:]
        t = (np.arange(factor) / factor)[None, :, None]
        theta = np.arccos(np.clip(np.einsum("ij,ij->i", a, b), -1, 1))[:, None, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            w_a = np.where(theta > 1e-12, np.sin((1 - t) * theta) / np.sin(theta), 1 - t)
            w_b = np.where(theta > 1e-12, np.sin(t * theta) / np.sin(theta), t)
        points = w_a * a[:, None, :] + w_b * b[:, None, :]  # (segments, factor, 3)
        keep = np.where(seg_valid[:, None], np.ones(factor, bool)[None, :], np.arange(factor)[None, :] == 0)
        out = np.concatenate([points[keep], xyz[-1:]])
        start = np.zeros((xyz.shape[0] - 1, factor), dtype=bool)
        start[:, 0] = chunk.line_start[:-1]
        line_start = np.concatenate([start[keep], chunk.line_start[-1:]])
        lon, lat = from_unit_vectors(out)
        yield LineChunk(lon, lat, line_start)


def densified_run(target: int, n_queries: int, seed: int) -> dict:
    base = sum(len(c) for c in read_line_chunks(NE10M))
    factor = max(1, int(np.ceil(target / base)))
    start = time.perf_counter()
    cpu = time.process_time()
    # 96 tiles keep the per-tile build temporaries small (the 6-tile default peaked at 9.4 GB here)
    index = CoastlineIndex.from_chunks(densified_chunks(NE10M, factor), tile_level=2, max_segment_km=5.0)
    build_wall, build_cpu = time.perf_counter() - start, time.process_time() - cpu
    qlon, qlat = queries(list(read_line_chunks(NE10M)), n_queries, seed)
    cpu = time.process_time()
    index.query(qlon, qlat)
    query_cpu = time.process_time() - cpu
    return {
        "vertices": index.n_vertices, "build_wall_s": build_wall, "build_cpu_s": build_cpu,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "queries": n_queries, "queries_per_s": n_queries / query_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--check", type=int, default=100, help="queries compared with the brute force")
    parser.add_argument("--densify", type=int, default=20_000_000, help="vertices of the densified coastline (0: skip)")
    parser.add_argument("--densify-queries", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="20k queries, 40 checked, 2M densified")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--densified-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.queries, args.check, args.densify, args.densify_queries = 20_000, 40, 2_000_000, 5_000
    if args.densified_only:
        print(json.dumps(densified_run(args.densify, args.densify_queries, args.seed)))
        return

    cpu = time.process_time()
    chunks = list(read_line_chunks(NE10M))
    index = CoastlineIndex.from_chunks(chunks)
    build = time.process_time() - cpu
    qlon, qlat = queries(chunks, args.queries, args.seed)
    cpu = time.process_time()
    result = index.query(qlon, qlat)
    rate = args.queries / (time.process_time() - cpu)

    # brute force over every segment (isolated vertices as points) on a sample
    xyz_parts, a_parts, b_parts = [], [], []
    for c in chunks:
        xyz = to_unit_vectors(c.lon, c.lat)
        xyz_parts.append(xyz)
        valid = ~c.line_start[1:]
        a_parts += [xyz[:-1][valid]]
        b_parts += [xyz[1:][valid]]
    a, b = np.concatenate(a_parts), np.concatenate(b_parts)
    zero = int((np.abs(a - b).sum(axis=1) == 0).sum())
    q = to_unit_vectors(qlon[: args.check], qlat[: args.check])
    exact = np.array([point_to_arc(q[i], a, b)[0].min() for i in range(q.shape[0])]) * EARTH_RADIUS_KM
    max_error_m = float(np.abs(result.distance_km[: args.check] - exact).max() * 1000.0)

    # the nearest-vertex shortcut
    vertices = cKDTree(np.concatenate(xyz_parts))
    cpu = time.process_time()
    chord, _ = vertices.query(to_unit_vectors(qlon, qlat), k=1, workers=1)
    vertex_rate = args.queries / (time.process_time() - cpu)
    vertex_error = angle_from_chord(chord) * EARTH_RADIUS_KM - result.distance_km
    near = result.distance_km < 100.0

    print(f"Natural Earth 10m coastline: {sum(len(c) for c in chunks):,} vertices, {a.shape[0]:,} segments "
          f"({zero:,} zero-length), {index.n_vertices:,} indexed vertices in {len(index.tiles)} tiles; "
          f"{args.queries:,} queries (half within ~100 km of the coast); one core, CPU seconds")
    print()
    print("| method | build s | queries/s | max error vs exact segment distance |")
    print("|---|---:|---:|---|")
    print(f"| geo.coastline.CoastlineIndex (exact arcs) | {build:.2f} | {rate:,.0f} | "
          f"{max_error_m:.2e} m (brute force over all segments, {args.check} queries) |")
    print(f"| nearest vertex only (cKDTree, unit vectors) | - | {vertex_rate:,.0f} | "
          f"max {vertex_error.max():.2f} km, median {np.median(vertex_error[near]):.3f} km, "
          f"p99 {np.percentile(vertex_error[near], 99):.2f} km within 100 km of the coast |")

    if args.densify:
        out = subprocess.run(
            [sys.executable, __file__, "--densified-only", "--densify", str(args.densify),
             "--densify-queries", str(args.densify_queries), "--seed", str(args.seed)],
            check=True, capture_output=True, text=True,
        )
        d = json.loads(out.stdout.strip().splitlines()[-1])
        print()
        print("| densified coastline | build wall s | build CPU s | peak RSS GB | queries/s |")
        print("|---|---:|---:|---:|---:|")
        print(f"| {d['vertices']:,} vertices (read + densify + tile + build) | {d['build_wall_s']:.1f} | "
              f"{d['build_cpu_s']:.1f} | {d['peak_rss_gb']:.2f} | {d['queries_per_s']:,.0f} |")


if __name__ == "__main__":
    main()
