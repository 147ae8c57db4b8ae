"""The ranker against its yardsticks, every side timed in this one run, printed as ratios.

    PYTHONPATH=$PWD nice python tests/benchmarks/ranker_ratios.py [--only-topk] [--queries 10000] [--database 50000]

(PYTHONPATH: run as a script, Python would otherwise import an installed hashbench.)

Data: clustered 48-bit codes (ten classes, 20% bit noise), as in test_bench_metrics.py.
Yardsticks: the popcount floor (every pairwise distance, nothing stored); the strongest
plain numpy pipeline we could write (``np.bitwise_count`` on uint64 words, summed into
uint8 so that ``argsort(kind="stable")`` runs numpy's radix sort, on a sample of queries
and scaled); FAISS (``faiss.hammings`` distance matrix + the same radix argsort; and
``IndexBinaryFlat.search`` for top-k). The machine is shared: the load average is printed
with the ratios; minimum of ``--rounds`` for each side.
"""

import argparse
import os
import time

import numpy as np
from numba import njit, prange

from hashbench import ranking
from hashbench.codes import pack
from hashbench.metrics import rank_stats, tie_aware_ap
from hashbench.ranking import (
    _distance,  # the kernels' own popcount of a pair: the floor counts with it
)

BITS = 48


@njit(parallel=True)
def _popcount_sum(q, d):
    partial = np.zeros(q.shape[0], dtype=np.int64)
    for i in prange(q.shape[0]):
        acc = 0
        for j in range(d.shape[0]):
            acc += _distance(q, i, d, j, q.shape[1])
        partial[i] = acc
    return partial.sum()


def popcount_floor(q, d):
    """Sum of all pairwise Hamming distances, storing nothing: the machine's popcount limit
    that the ranker's kernels are judged against."""
    return _popcount_sum(q, d)


def clustered(nq, ndb, bits=BITS, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2, (10, bits))
    ql, dl = rng.integers(0, 10, nq), rng.integers(0, 10, ndb)
    qb = centres[ql] ^ (rng.random((nq, bits)) < 0.2)
    db = centres[dl] ^ (rng.random((ndb, bits)) < 0.2)
    return pack(qb), pack(db), ql, dl


def ap_from_order(order, rel_row):
    rel = rel_row[order]
    hits = np.cumsum(rel)
    return (hits[rel] / (np.flatnonzero(rel) + 1)).mean()


def numpy_radix_map(q, d, ql, dl):
    """Per query: uint8 distances (np.bitwise_count per word, summed in uint8), a stable
    argsort (radix on 8-bit keys), a cumsum."""
    aps = []
    for i in range(q.shape[0]):
        dist = np.bitwise_count(q[i] ^ d).astype(np.uint8)
        dist = dist[:, 0] if dist.shape[1] == 1 else dist.sum(axis=1, dtype=np.uint8)
        aps.append(ap_from_order(np.argsort(dist, kind="stable"), dl == ql[i]))
    return float(np.mean(aps))


def faiss_radix_map(q, d, ql, dl, chunk=256):
    """faiss.hammings distance matrix (chunks of queries), cast to uint8, the same radix argsort."""
    import faiss

    qb, db = as_faiss(q), as_faiss(d)
    aps = []
    out = np.empty((chunk, d.shape[0]), dtype=np.int32)
    for s in range(0, q.shape[0], chunk):
        n = min(chunk, q.shape[0] - s)
        faiss.hammings(faiss.swig_ptr(qb[s:s + n]), faiss.swig_ptr(db), n, d.shape[0], db.shape[1],
                       faiss.swig_ptr(out))
        order = np.argsort(out[:n].astype(np.uint8), axis=1, kind="stable")
        for i in range(n):
            aps.append(ap_from_order(order[i], dl == ql[s + i]))
    return float(np.mean(aps))


def tie_aware_map(q, d, ql, dl):
    s = rank_stats(q, d, ql, dl, BITS, stable=False)
    return float(tie_aware_ap(s.hist_all, s.hist_rel)[0].mean())


def as_faiss(codes):
    """Our uint64 words as FAISS's byte codes (little-endian bytes: the same bit order)."""
    return np.ascontiguousarray(codes).view(np.uint8)


def interleaved(sides, rounds):
    """Minimum seconds of each side over ``rounds``, the sides taking turns within each round
    so that a change in the machine's load falls on all of them alike; and each side's output."""
    times = {name: [] for name in sides}
    out = {}
    for _ in range(rounds):
        for name, fn in sides.items():
            t = time.perf_counter()
            out[name] = fn()
            times[name].append(time.perf_counter() - t)
    return {name: min(v) for name, v in times.items()}, out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--database", type=int, default=50_000)
    p.add_argument("--sample", type=int, default=500, help="queries the numpy/FAISS mAP pipelines run (scaled)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only-topk", action="store_true", help="time only top-k: ours against IndexBinaryFlat")
    a = p.parse_args(argv)
    if a.only_topk:
        return topk_only(a)
    q, d, ql, dl = clustered(a.queries, a.database)
    # compile outside the timings
    rank_stats(q[:2], d[:10], ql[:2], dl[:10], BITS)
    rank_stats(q[:2], d[:10], ql[:2], dl[:10], BITS, stable=False)
    popcount_floor(q[:2], d[:10])
    ranking.stable_topk(q[:2], d[:10], 5)
    scale = a.queries / a.sample
    s = slice(0, a.sample)
    sides = {
        "popcount floor (all distances, nothing stored)": lambda: popcount_floor(q, d),
        "hashbench stable mAP": lambda: float(rank_stats(q, d, ql, dl, BITS).ap.mean()),
        "hashbench tie-aware (expected) mAP": lambda: tie_aware_map(q, d, ql, dl),
        f"numpy radix stable mAP ({a.sample} queries, x{scale:g})": lambda: numpy_radix_map(q[s], d, ql[s], dl),
    }
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None:
        sides[f"FAISS hammings + radix argsort mAP ({a.sample} queries, x{scale:g})"] = \
            lambda: faiss_radix_map(q[s], d, ql[s], dl)
        index = faiss.IndexBinaryFlat(BITS)
        index.add(as_faiss(d)[:, :BITS // 8].copy())
        qf = as_faiss(q)[:, :BITS // 8].copy()
        for k in (100, 1000):
            sides[f"hashbench stable_topk k={k}"] = lambda k=k: ranking.stable_topk(q, d, k)
            sides[f"FAISS IndexBinaryFlat.search k={k}"] = lambda k=k: index.search(qf, k)
    load = os.getloadavg()[0]
    t, out = interleaved(sides, a.rounds)
    names = list(sides)
    ours_s = float(rank_stats(q[s], d, ql[s], dl, BITS).ap.mean())
    assert abs(out[names[3]] - ours_s) < 1e-12, (out[names[3]], ours_s)
    for name in names:
        if f"queries, x{scale:g})" in name:  # the sampled pipelines, scaled to every query
            t[name] *= scale
    print(f"{a.queries} queries x {a.database} codes, {BITS} bits, clustered; {os.cpu_count()} CPUs; "
          f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after; min of {a.rounds} interleaved rounds")
    for name in names:
        print(f"  {name:68s} {t[name]:8.3f} s")
    floor, stable, tie, np_map = (t[n] for n in names[:4])
    print("ratios:")
    print(f"  numpy radix / stable mAP          {np_map / stable:6.2f}x  (goal >= 8)")
    print(f"  tie-aware mAP / popcount floor    {tie / floor:6.2f}x  (goal <= 2)")
    print(f"  stable mAP / popcount floor       {stable / floor:6.2f}x")
    if faiss is not None:
        assert abs(out[names[4]] - ours_s) < 1e-12
        print(f"  FAISS pipeline / stable mAP       {t[names[4]] / stable:6.2f}x")
        for k in (100, 1000):
            _, dist = out[f"hashbench stable_topk k={k}"]
            fd, _ = out[f"FAISS IndexBinaryFlat.search k={k}"]
            assert np.array_equal(fd, dist), "top-k distances differ from FAISS"
            ratio = t[f"FAISS IndexBinaryFlat.search k={k}"] / t[f"hashbench stable_topk k={k}"]
            print(f"  IndexBinaryFlat / stable_topk k={k:<5d} {ratio:6.2f}x  (goal >= 2)")


def topk_only(a):
    """Top-k alone, ours and IndexBinaryFlat taking turns."""
    import faiss

    q, d, _, _ = clustered(a.queries, a.database)
    ranking.stable_topk(q[:2], d[:10], 5)
    index = faiss.IndexBinaryFlat(BITS)
    index.add(as_faiss(d)[:, :BITS // 8].copy())
    qf = as_faiss(q)[:, :BITS // 8].copy()
    sides = {}
    for k in (100, 1000):
        sides[f"ours {k}"] = lambda k=k: ranking.stable_topk(q, d, k)
        sides[f"flat {k}"] = lambda k=k: index.search(qf, k)
    load = os.getloadavg()[0]
    t, out = interleaved(sides, a.rounds)
    print(f"top-k only, {a.queries} x {a.database}, {BITS} bits; load average {load:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; min of {a.rounds} interleaved rounds")
    for k in (100, 1000):
        assert np.array_equal(out[f"flat {k}"][0], out[f"ours {k}"][1])
        print(f"  k={k}: stable_topk {t[f'ours {k}']:.3f} s, IndexBinaryFlat {t[f'flat {k}']:.3f} s: "
              f"{t[f'flat {k}'] / t[f'ours {k}']:.2f}x  (goal >= 2)")


if __name__ == "__main__":
    main()
