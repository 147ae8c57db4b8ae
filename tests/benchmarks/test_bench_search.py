"""Search at 1M codes of 64 bits, 1,000 queries (random codes; queries are database items
with about 2 bits flipped): top-100 and radius-2 retrieval by each strategy, in one group
per task, FAISS's peers next to ours. ``hashbench bench-search`` measures the full grid
(1M and 10M, 32/64/128 bits, build time, memory, recall) into results/search-speed.csv."""

import numpy as np
import pytest

from hashbench import search
from hashbench.searchbench import make_codes

pytestmark = pytest.mark.bench

N, BITS, NQ = 1_000_000, 64, 1000


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    q, db = make_codes(tmp_path_factory.mktemp("codes") / "db.npy", "random", N, BITS, NQ, 0, 0.05)
    return q, np.ascontiguousarray(db)


def _strategy(name, d):
    if name.startswith("faiss"):
        pytest.importorskip("faiss")
    return search.get_strategy(name, BITS).build(d)


@pytest.mark.parametrize("name", ["linear", "mih", "faiss-flat", "faiss-hash", "faiss-multihash"])
def test_top100(benchmark, data, name):
    q, d = data
    s = _strategy(name, d)
    s.knn(q[:2], 100)  # compiled and warm
    benchmark.group = "search 1M x 64 bits, top-100, 1000 queries"
    benchmark.pedantic(s.knn, args=(q, 100), rounds=1, iterations=1)


@pytest.mark.parametrize("name", ["linear", "hash-table", "mih", "faiss-flat", "faiss-hash", "faiss-multihash"])
def test_radius2(benchmark, data, name):
    q, d = data
    s = _strategy(name, d)
    s.radius(q[:2], 2)
    benchmark.group = "search 1M x 64 bits, radius 2, 1000 queries"
    benchmark.pedantic(s.radius, args=(q, 2), rounds=1, iterations=1)
