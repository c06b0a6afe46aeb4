"""Nearest-platform benchmark: geo.nearest.PlatformIndex vs the usual answers, one run, same data.

Data: 10,000 platforms clustered like offshore fields (300 fields of varying size, 2 % of the
platforms duplicated at identical coordinates, as real registers have), and query points of which
half lie within ~50 km of a field and half anywhere on the globe.

Peers: the seed article's per-vessel vectorised function (haversine to every platform, then
``np.where(d == d.min())``), ``sklearn.neighbors.BallTree(metric="haversine")`` and
``scipy.spatial.cKDTree`` on unit vectors. Everything runs on one core (``workers=1``, BLAS/OpenMP pinned to one thread) and is timed in
CPU seconds of the process (``time.process_time``), so other jobs on a shared machine do not
distort the figures.
"Identical" compares each method's nearest set (all tied platforms) and distance with the brute
force on a check sample; BallTree and cKDTree return one platform, so they fail wherever a tie
exists.

    python benchmarks/geo_nearest.py            # 1,000,000 queries
    python benchmarks/geo_nearest.py --quick    # 100,000 queries, smaller peer samples
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from geo.earth import EARTH_RADIUS_KM  # noqa: E402
from geo.haversine import distance_km  # noqa: E402
from geo.nearest import PlatformIndex  # noqa: E402
from geo.unit_vectors import angle_from_chord, to_unit_vectors  # noqa: E402
from geo.validation import wrap_lon  # noqa: E402


def make_data(n_platforms: int, n_queries: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n_fields = 300
    field_lon = rng.uniform(-180, 180, n_fields)
    field_lat = np.degrees(np.arcsin(rng.uniform(-0.85, 0.85, n_fields)))
    weight = rng.pareto(1.5, n_fields) + 0.2  # a few giant fields, many small ones
    field = rng.choice(n_fields, n_platforms, p=weight / weight.sum())
    spread = rng.uniform(0.02, 0.3, n_fields)[field]
    plon = wrap_lon(field_lon[field] + rng.normal(0, 1, n_platforms) * spread)
    plat = np.clip(field_lat[field] + rng.normal(0, 1, n_platforms) * spread * 0.7, -90, 90)
    dup = rng.choice(n_platforms, n_platforms // 50, replace=False)
    plon[dup[: dup.size // 2]], plat[dup[: dup.size // 2]] = plon[dup[dup.size // 2 :]], plat[dup[dup.size // 2 :]]
    near = n_queries // 2
    pick = rng.integers(0, n_platforms, near)
    qlon = np.concatenate([plon[pick] + rng.normal(0, 0.3, near), rng.uniform(-180, 180, n_queries - near)])
    qlat = np.concatenate([plat[pick] + rng.normal(0, 0.2, near),
                           np.degrees(np.arcsin(rng.uniform(-1, 1, n_queries - near)))])
    order = rng.permutation(n_queries)
    return plon, plat, wrap_lon(qlon[order]), np.clip(qlat[order], -90, 90)


def brute_force(qlon, qlat, plon, plat):
    """The seed article's per-vessel function."""
    dist, ties = [], []
    for lon, lat in zip(qlon, qlat):
        d = distance_km(lon, lat, plon, plat)
        dist.append(d.min())
        ties.append(np.where(d == d.min())[0])
    return np.array(dist), ties


def timed(fn):
    """CPU seconds of this process (single-threaded work; immune to other jobs sharing the cores)."""
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platforms", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000_000)
    parser.add_argument("--brute-queries", type=int, default=5_000, help="queries timed for the brute force")
    parser.add_argument("--balltree-queries", type=int, default=100_000, help="queries timed for BallTree")
    parser.add_argument("--check", type=int, default=5_000, help="queries compared with the brute force")
    parser.add_argument("--quick", action="store_true", help="100k queries, 1k brute force, 20k BallTree")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.queries, args.brute_queries, args.balltree_queries, args.check = 100_000, 1_000, 20_000, 1_000

    plon, plat, qlon, qlat = make_data(args.platforms, args.queries, args.seed)
    check = slice(0, min(args.check, args.queries))
    ref_dist, ref_ties = brute_force(qlon[check], qlat[check], plon, plat)
    rows = []

    def identical(dist, sets):
        same = [np.array_equal(a, b) for a, b in zip(sets, ref_ties)]
        exact = np.array_equal(dist, ref_dist)
        share = float(np.mean(same)) if same else 0.0
        return ("yes" if exact and share == 1.0 else "no") + f" ({share:.2%} sets)"

    # ours
    index, build = timed(lambda: PlatformIndex(plon, plat))
    result, secs = timed(lambda: index.query(qlon, qlat))
    sets = [result.tied_index(i) for i in range(check.stop)]
    rows.append(("geo.nearest.PlatformIndex", build, args.queries, args.queries / secs,
                 identical(result.distance_km[check], sets)))

    # the seed article's brute force
    nb = min(args.brute_queries, args.queries)
    _, secs = timed(lambda: brute_force(qlon[:nb], qlat[:nb], plon, plat))
    rows.append(("per-vessel brute force (seed article)", 0.0, nb, nb / secs, "yes (definition)"))

    # sklearn BallTree haversine
    from sklearn.neighbors import BallTree

    radians = np.radians(np.column_stack([plat, plon]))
    tree, build = timed(lambda: BallTree(radians, metric="haversine"))
    nq = min(args.balltree_queries, args.queries)
    _, secs = timed(lambda: tree.query(np.radians(np.column_stack([qlat[:nq], qlon[:nq]])), k=1))
    d, i = tree.query(np.radians(np.column_stack([qlat[check], qlon[check]])), k=1)
    rows.append(("sklearn BallTree(haversine)", build, nq, nq / secs,
                 identical(d[:, 0] * EARTH_RADIUS_KM, [x for x in i])))

    # scipy cKDTree on unit vectors
    tree, build = timed(lambda: cKDTree(to_unit_vectors(plon, plat)))
    (chord, i), secs = timed(lambda: tree.query(to_unit_vectors(qlon, qlat), k=1, workers=1))
    rows.append(("scipy cKDTree (unit vectors)", build, args.queries, args.queries / secs,
                 identical(angle_from_chord(chord[check]) * EARTH_RADIUS_KM, [np.array([x]) for x in i[check]])))

    ties = int((result.tie_count > 1).sum())
    print(f"{args.platforms:,} platforms ({np.unique(np.column_stack([plon, plat]), axis=0).shape[0]:,} distinct "
          f"coordinates), {args.queries:,} queries ({ties:,} with tied nearest platforms); one core, CPU seconds")
    print()
    print("| method | build s | queries timed | queries/s | identical to brute force (incl. ties) | CPU-s/day for 100M |")
    print("|---|---:|---:|---:|---|---:|")
    for name, build, n, rate, same in rows:
        print(f"| {name} | {build:.3f} | {n:,} | {rate:,.0f} | {same} | {1e8 / rate:,.0f} |")


if __name__ == "__main__":
    main()
