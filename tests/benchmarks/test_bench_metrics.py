"""Speed of the ranker and metrics: 10,000 queries x 50,000 database codes of 48 bits.

Groups put each kernel next to what it is judged against, timed in the same run: the
strongest plain numpy ranking we could write (``np.bitwise_count`` into uint8 distances, so
that ``argsort(kind="stable")`` is numpy's radix sort), a FAISS pipeline (``faiss.hammings``
distances + the same radix argsort; ``IndexBinaryFlat.search`` for top-k; skipped without
faiss), and the machine's popcount limit (summing every pairwise distance, storing
nothing). ``ranker_ratios.py`` next to this file prints the same comparisons as ratios.
"""

import numpy as np
import pytest
import ranker_ratios  # this folder's script: the yardsticks, shared

from hashbench import ranking
from hashbench.codes import pack
from hashbench.metrics import rank_stats, tie_aware_ap

pytestmark = pytest.mark.bench

NQ, NDB, BITS = 10_000, 50_000, 48


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    # codes clustered by class, as learned codes are: many ties, realistic distance spread
    centres = rng.integers(0, 2, (10, BITS))
    ql, dl = rng.integers(0, 10, NQ), rng.integers(0, 10, NDB)
    qb = centres[ql] ^ (rng.random((NQ, BITS)) < 0.2)
    db = centres[dl] ^ (rng.random((NDB, BITS)) < 0.2)
    q, d = pack(qb), pack(db)
    rank_stats(q[:2], d[:10], ql[:2], dl[:10], BITS)  # compile outside the timings
    ranker_ratios.popcount_floor(q[:2], d[:10])
    ranking.hamming_distances(q[:2], d[:10])
    return q, d, ql, dl


def numpy_stable_map(q, d, ql, dl):
    return ranker_ratios.numpy_radix_map(q, d, ql, dl)


def faiss_stable_map(q, d, ql, dl):
    return ranker_ratios.faiss_radix_map(q, d, ql, dl)


def stable_map(q, d, ql, dl):
    return float(rank_stats(q, d, ql, dl, BITS).ap.mean())


def tie_aware_map(q, d, ql, dl):
    s = rank_stats(q, d, ql, dl, BITS, stable=False)
    return float(tie_aware_ap(s.hist_all, s.hist_rel)[0].mean())


@pytest.mark.benchmark(group="mAP 10k x 50k")
def test_stable_map_full(benchmark, data):
    benchmark.pedantic(stable_map, args=data, rounds=3, iterations=1)


@pytest.mark.benchmark(group="mAP 10k x 50k")
def test_tie_aware_map_full(benchmark, data):
    benchmark.pedantic(tie_aware_map, args=data, rounds=3, iterations=1)


@pytest.mark.benchmark(group="vs numpy, 500 queries")
def test_numpy_stable_map_500(benchmark, data):
    q, d, ql, dl = data
    ref = benchmark.pedantic(numpy_stable_map, args=(q[:500], d, ql[:500], dl), rounds=2, iterations=1)
    assert ref == pytest.approx(stable_map(q[:500], d, ql[:500], dl), abs=1e-12)


@pytest.mark.benchmark(group="vs numpy, 500 queries")
def test_faiss_stable_map_500(benchmark, data):
    pytest.importorskip("faiss")
    q, d, ql, dl = data
    ref = benchmark.pedantic(faiss_stable_map, args=(q[:500], d, ql[:500], dl), rounds=2, iterations=1)
    assert ref == pytest.approx(stable_map(q[:500], d, ql[:500], dl), abs=1e-12)


@pytest.mark.benchmark(group="vs numpy, 500 queries")
def test_hashbench_stable_map_500(benchmark, data):
    q, d, ql, dl = data
    benchmark.pedantic(stable_map, args=(q[:500], d, ql[:500], dl), rounds=5, iterations=1)


@pytest.mark.benchmark(group="distances vs popcount limit, 1000 queries")
def test_popcount_limit(benchmark, data):
    q, d, _, _ = data
    total = benchmark.pedantic(ranker_ratios.popcount_floor, args=(q[:1000], d), rounds=5, iterations=1)
    assert total == ranking.hamming_distances(q[:1000], d).sum(dtype=np.int64)


@pytest.mark.benchmark(group="distances vs popcount limit, 1000 queries")
def test_hamming_distance_kernel(benchmark, data):
    q, d, _, _ = data
    out = np.empty((1000, NDB), dtype=np.uint16)  # one buffer reused, as callers chunk
    benchmark.pedantic(ranking.hamming_distances, args=(q[:1000], d, out), rounds=5, iterations=1)


@pytest.mark.parametrize("k", [100, 1000])
def test_stable_topk(benchmark, data, k):
    q, d, _, _ = data
    benchmark.group = f"top-{k}, 10k x 50k"
    benchmark.pedantic(ranking.stable_topk, args=(q, d, k), rounds=3, iterations=1)


@pytest.mark.parametrize("k", [100, 1000])
def test_faiss_index_binary_flat(benchmark, data, k):
    faiss = pytest.importorskip("faiss")
    q, d, _, _ = data
    benchmark.group = f"top-{k}, 10k x 50k"
    index = faiss.IndexBinaryFlat(BITS)
    index.add(ranker_ratios.as_faiss(d)[:, : BITS // 8].copy())
    qf = ranker_ratios.as_faiss(q)[:, : BITS // 8].copy()
    dist, _ = benchmark.pedantic(index.search, args=(qf, k), rounds=3, iterations=1)
    np.testing.assert_array_equal(dist, ranking.stable_topk(q, d, k)[1])
