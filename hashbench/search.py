"""Search strategies over packed codes, one interface: ``build(codes)``, then
``knn(queries, k)`` -> (idx, dist) and ``radius(queries, r)`` -> :class:`RadiusResult`.

Ours are exact and return the stable order of the ranker (distance, then database
position): ``linear`` (the ranker's blockwise scan; streams a memory-mapped database
block by block, never holding it in memory), ``hash-table`` (exact-match table of whole
codes probed with every bit flip up to r; radius only), ``mih`` (multi-index hashing,
Norouzi, Punjani & Fleet, CVPR 2012 / TPAMI 2014). FAISS's ``IndexBinaryFlat``
(exact up to tie order), ``IndexBinaryHash`` and ``IndexBinaryMultiHash`` (approximate
for k-NN: a bucket prefix, ``nflip`` flips) are peers, measured by their recall.

Each strategy reports per query the candidates it examined and the table lookups it made
(``cost``), which is what radius-2 retrieval costs at a dataset's size.
"""

import math
from dataclasses import dataclass

import numpy as np

from . import lookup, ranking
from .codes import n_words, to_bytes
from .errors import InputError

BLOCK = 1 << 20  # database codes per streamed block of the linear scan
# query x database results one block of radius_lookup_cost's timed retrieval may hold: codes
# that collapse to a few values put most of the database within radius 2 of every query (a
# 12-bit CIFAR-10 model whose training collapsed needed 23 GB for 10,000 x 50,000 at once)
LOOKUP_RESULTS = 1 << 24


@dataclass
class RadiusResult:
    """Items within the radius, per query, in stable order (CSR)."""

    indptr: np.ndarray
    indices: np.ndarray
    distances: np.ndarray

    def row(self, i):
        return self.indices[self.indptr[i]:self.indptr[i + 1]]


def check_codes(codes, n_bits: int, name: str) -> np.ndarray:
    c = codes
    if not isinstance(c, np.ndarray) or c.dtype != np.uint64 or c.ndim != 2 or c.shape[1] != n_words(n_bits):
        raise InputError(f"{name}: expected packed uint64 codes of {n_bits} bits, got "
                         f"{getattr(c, 'dtype', type(c))} {getattr(c, 'shape', '')}")
    if c.shape[0] == 0:
        raise InputError(f"{name}: no codes")
    return c


def check_radius(radius: int, n_bits: int, limit: int | None = None) -> int:
    if not isinstance(radius, (int, np.integer)) or radius < 0 or radius > n_bits:
        raise InputError(f"radius must be an integer in [0, {n_bits}], got {radius}")
    if limit is not None and radius > limit:
        raise InputError(f"radius {radius} is too large for bit-flip lookup (at most {limit}: "
                         f"the probes grow as C(bits, r))")
    return int(radius)


def _dist_dtype(n_bits):
    return np.empty(0, np.uint8 if n_bits < 255 else np.uint16)


def _csr(out_idx, out_dist, count, n_db):
    """Per-query (idx, dist) rows -> CSR in stable order (distance, then position)."""
    indptr = np.zeros(len(count) + 1, dtype=np.int64)
    np.cumsum(count, out=indptr[1:])
    rows = np.repeat(np.arange(len(count)), count)
    cols = np.arange(indptr[-1]) - indptr[rows]
    idx, dist = out_idx[rows, cols], out_dist[rows, cols].astype(np.int64)
    order = np.lexsort((idx, dist, rows))
    return RadiusResult(indptr, idx[order], dist[order].astype(np.int32))


def _with_room(run, nq, cap=64):
    """Run a capacity-bounded kernel; repeat with room for the largest count when needed."""
    while True:
        out_idx = np.empty((nq, cap), dtype=np.int64)
        out_dist = np.empty((nq, cap), dtype=np.int64)
        count = np.zeros(nq, dtype=np.int64)
        extra = run(cap, out_idx, out_dist, count)
        if count.max(initial=0) <= cap:
            return out_idx, out_dist, count, extra
        cap = int(count.max())


class Strategy:
    """Base: ``exact`` says whether results equal the exhaustive stable ones."""

    name = ""
    exact = True
    tasks = ("knn", "radius")

    def __init__(self, n_bits: int):
        self.n_bits = int(n_bits)
        self.cost = None  # per query: {"candidates": ..., "lookups": ...} of the last search

    def build(self, codes):
        self.codes = check_codes(codes, self.n_bits, "database codes")
        return self

    def nbytes(self) -> int:
        """Bytes the index holds in memory beyond a memory-mapped database."""
        return 0


class Linear(Strategy):
    """The ranker's scan. A memory-mapped database is read from its file block by block into
    one reused buffer, so the process holds one block of it, never the whole (nor twice)."""

    name = "linear"

    def nbytes(self):
        c = self.codes
        return min(BLOCK, c.shape[0]) * c.shape[1] * 8 if isinstance(c, np.memmap) else c.nbytes

    def _blocks(self):
        c = self.codes
        if not isinstance(c, np.memmap):
            for s in range(0, c.shape[0], BLOCK):
                yield s, c[s:s + BLOCK]
            return
        buf = np.empty((min(BLOCK, c.shape[0]), c.shape[1]), dtype=np.uint64)
        with open(c.filename, "rb", buffering=0) as f:
            f.seek(c.offset)
            for s in range(0, c.shape[0], BLOCK):
                n = min(BLOCK, c.shape[0] - s)
                view = buf[:n]
                if f.readinto(memoryview(view).cast("B")) != view.nbytes:
                    raise InputError(f"{c.filename}: the code file ended early (truncated?)")
                yield s, view

    def knn(self, q, k):
        top = ranking.TopK(check_codes(q, self.n_bits, "query codes"), k, self.n_bits)
        for _, block in self._blocks():
            top.add(block)
        n = self.codes.shape[0]
        self.cost = {"candidates": np.full(len(q), n), "lookups": np.zeros(len(q), dtype=np.int64)}
        return top.idx, top.dist

    def radius(self, q, r):
        q = check_codes(q, self.n_bits, "query codes")
        r = check_radius(r, self.n_bits)
        proto = _dist_dtype(self.n_bits)

        def run(cap, out_idx, out_dist, count):
            for s, block in self._blocks():
                for t in range(0, block.shape[0], ranking.TOPK_BLOCK):  # cache-sized steps, all queries
                    lookup._linear_radius(q, block[t:t + ranking.TOPK_BLOCK], r, s + t, cap, out_idx, out_dist,
                                          count, proto)

        out_idx, out_dist, count, _ = _with_room(run, len(q))
        self.cost = {"candidates": np.full(len(q), self.codes.shape[0]), "lookups": np.zeros(len(q), dtype=np.int64)}
        return _csr(out_idx, out_dist, count, self.codes.shape[0])


def _table(keys: np.ndarray):
    """(slots, distinct keys (u, w), starts, order) for a (n, w) uint64 key array."""
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    order = np.lexsort(keys.T[::-1]) if keys.shape[1] > 1 else np.argsort(keys[:, 0], kind="stable")
    sk = keys[order]
    new = np.ones(len(sk), dtype=bool)
    new[1:] = (sk[1:] != sk[:-1]).any(axis=1)
    first = np.flatnonzero(new)
    ukeys = np.ascontiguousarray(sk[first])
    del sk
    starts = np.append(first, len(order)).astype(np.int64)
    n_slots = 1 << max(4, math.ceil(math.log2(2 * len(ukeys))))
    slots = lookup._build_slots(ukeys, n_slots)
    order = order.astype(np.int32 if len(order) < 2**31 else np.int64)
    return slots, ukeys, starts, order


class HashTable(Strategy):
    """Exact-match table of whole codes; radius r by probing all sum_{s<=r} C(bits, s)
    flipped keys. Exact; k-NN is left to MIH (its radius would have to grow unbounded)."""

    name = "hash-table"
    tasks = ("radius",)
    max_radius = 3

    def build(self, codes):
        super().build(codes)
        self.slots, self.ukeys, self.starts, self.order = _table(np.asarray(codes))
        self.n = codes.shape[0]
        return self

    def nbytes(self):
        return sum(a.nbytes for a in (self.slots, self.ukeys, self.starts, self.order))

    def radius(self, q, r):
        q = check_codes(q, self.n_bits, "query codes")
        r = check_radius(r, self.n_bits, self.max_radius)
        probes = np.zeros(len(q), dtype=np.int64)

        def run(cap, out_idx, out_dist, count):
            lookup._table_radius(q, self.n_bits, r, self.slots, self.ukeys, self.starts, self.order,
                                 cap, out_idx, out_dist, count, probes)

        out_idx, out_dist, count, _ = _with_room(run, len(q))
        self.cost = {"candidates": count.copy(), "lookups": probes}
        return _csr(out_idx, out_dist, count, self.n)


def mih_substrings(n_bits: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(first bit, length) of each of m substrings; the first n_bits % m are one bit longer
    (Norouzi et al.)."""
    lengths = np.full(m, n_bits // m, dtype=np.int64)
    lengths[: n_bits % m] += 1
    los = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return los, lengths


def mih_default_m(n_bits: int, n: int) -> int:
    """Norouzi et al.'s rule of thumb: substrings of about log2(n) bits (at most 64)."""
    return max(1, round(n_bits / max(math.log2(max(n, 2)), 1)), math.ceil(n_bits / 64))


class MultiIndexHashing(Strategy):
    """m substring tables; exact radius search and exact stable k-NN."""

    name = "mih"

    def __init__(self, n_bits: int, m: int | None = None):
        super().__init__(n_bits)
        if m is not None and not (1 <= m <= n_bits and math.ceil(n_bits / m) <= 64):
            raise InputError(f"mih: m must be in [{math.ceil(n_bits / 64)}, {n_bits}] for {n_bits} bits, got {m}")
        self.m = m

    def build(self, codes):
        super().build(codes)
        codes = np.ascontiguousarray(codes)
        self.codes = codes
        m = self.m or mih_default_m(self.n_bits, codes.shape[0])
        self.los, self.lengths = mih_substrings(self.n_bits, m)
        tables = [_table(lookup.substrings(codes, lo, ln)[:, None])
                  for lo, ln in zip(self.los, self.lengths, strict=True)]
        self.slots, self.ukeys, self.starts, self.order = (tuple(t[j] for t in tables) for j in range(4))
        return self

    def nbytes(self):
        own = sum(a.nbytes for part in (self.slots, self.ukeys, self.starts, self.order) for a in part)
        return own + self.codes.nbytes  # candidates are verified against the codes, held here

    def _radius_pass(self, q, r, cap, out_idx, out_dist, count):
        """One kernel pass: every query's count, its first ``cap`` results, and ``cost``."""
        cands = np.zeros(len(q), dtype=np.int64)
        probes = np.zeros(len(q), dtype=np.int64)
        lookup._mih_radius(q, self.codes, r, self.los, self.lengths, self.slots, self.ukeys,
                           self.starts, self.order, cap, out_idx, out_dist, count, cands, probes)
        self.cost = {"candidates": cands, "lookups": probes}

    def radius(self, q, r):
        q = check_codes(q, self.n_bits, "query codes")
        r = check_radius(r, self.n_bits)
        out_idx, out_dist, count, _ = _with_room(lambda *out: self._radius_pass(q, r, *out), len(q))
        return _csr(out_idx, out_dist, count, self.codes.shape[0])

    def radius_count(self, q, r):
        """Per query, how many items lie within r, and what finding them costs (``cost``),
        without collecting them: one pass that holds no results, so collapsed codes (the
        whole database within r of every query) cost a scan, not a sort of every pair."""
        q = check_codes(q, self.n_bits, "query codes")
        r = check_radius(r, self.n_bits)
        count = np.zeros(len(q), dtype=np.int64)
        none = np.empty((len(q), 0), dtype=np.int64)
        self._radius_pass(q, r, 0, none, none, count)
        return count

    def knn(self, q, k):
        q = check_codes(q, self.n_bits, "query codes")
        idx = np.full((len(q), k), -1, dtype=np.int64)
        dist = np.full((len(q), k), -1, dtype=np.int64)
        cands = np.zeros(len(q), dtype=np.int64)
        probes = np.zeros(len(q), dtype=np.int64)
        lookup._mih_knn(q, self.codes, k, self.los, self.lengths, self.slots, self.ukeys, self.starts,
                        self.order, idx, dist, cands, probes)
        self.cost = {"candidates": cands, "lookups": probes}
        return idx, dist.astype(np.int32)


def _faiss():
    try:
        import faiss
    except ImportError:
        raise InputError("faiss is needed for this: pip install 'hashbench[faiss]'") from None
    return faiss


def as_faiss(codes, n_bits):
    """Our codes in FAISS's binary layout (:func:`hashbench.codes.to_bytes`)."""
    if n_bits % 8:
        raise InputError(f"FAISS binary indexes need a multiple of 8 bits, got {n_bits}")
    return to_bytes(codes, n_bits)


class _Faiss(Strategy):
    exact = False

    def _make(self, faiss):
        raise NotImplementedError

    def build(self, codes):
        Strategy.build(self, codes)
        faiss = _faiss()
        self.index = self._make(faiss)
        if not self.index.is_trained:
            self.index.train(as_faiss(codes[:100_000], self.n_bits))
        for s in range(0, codes.shape[0], BLOCK):  # memory-mapped databases go in blocks
            self.index.add(as_faiss(codes[s:s + BLOCK], self.n_bits))
        del self.codes
        return self

    def nbytes(self):
        return int(_faiss().serialize_index_binary(self.index).nbytes)

    def knn(self, q, k):
        q = check_codes(q, self.n_bits, "query codes")
        dist, idx = self.index.search(as_faiss(q, self.n_bits), k)
        self.cost = None
        return idx.astype(np.int64), dist.astype(np.int32)

    def radius(self, q, r):
        q = check_codes(q, self.n_bits, "query codes")
        r = check_radius(r, self.n_bits)
        # FAISS's range search keeps distances < radius: r + 1 gives <= r
        lims, dist, idx = self.index.range_search(as_faiss(q, self.n_bits), r + 1)
        lims = lims.astype(np.int64)
        rows = np.repeat(np.arange(len(q)), np.diff(lims))
        order = np.lexsort((idx, dist, rows))
        self.cost = None
        return RadiusResult(lims, idx[order].astype(np.int64), dist[order].astype(np.int32))


class FaissFlat(_Faiss):
    """Exhaustive; FAISS orders ties its own way, so its k-NN is exact only up to ties."""

    name = "faiss-flat"

    def _make(self, faiss):
        return faiss.IndexBinaryFlat(self.n_bits)


class FaissHash(_Faiss):
    """One table on the first ``b`` bits, probed with up to ``nflip`` flips."""

    name = "faiss-hash"

    def __init__(self, n_bits, b: int = 16, nflip: int = 2):
        super().__init__(n_bits)
        self.b, self.nflip = min(b, n_bits), nflip

    def _make(self, faiss):
        index = faiss.IndexBinaryHash(self.n_bits, self.b)
        index.nflip = self.nflip
        return index


class FaissMultiHash(_Faiss):
    """``nhash`` tables on disjoint ``b``-bit substrings, up to ``nflip`` flips each."""

    name = "faiss-multihash"

    def __init__(self, n_bits, nhash: int | None = None, b: int = 16, nflip: int = 1):
        super().__init__(n_bits)
        self.b = min(b, n_bits)
        self.nhash = nhash or n_bits // self.b
        self.nflip = nflip

    def _make(self, faiss):
        index = faiss.IndexBinaryMultiHash(self.n_bits, self.nhash, self.b)
        index.nflip = self.nflip
        return index


STRATEGIES = {cls.name: cls for cls in (Linear, HashTable, MultiIndexHashing, FaissFlat, FaissHash, FaissMultiHash)}


def get_strategy(name: str, n_bits: int, **params) -> Strategy:
    if name not in STRATEGIES:
        raise InputError(f"unknown search strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    return STRATEGIES[name](n_bits, **params)


def exhaustive_knn(q, d, k):
    """The slow obvious reference: numpy distances and a stable argsort per query."""
    idx = np.empty((len(q), k), dtype=np.int64)
    dist = np.empty((len(q), k), dtype=np.int32)
    for i in range(len(q)):
        dd = np.bitwise_count(q[i] ^ d).sum(axis=1, dtype=np.int64)
        o = np.argsort(dd, kind="stable")[:k]
        idx[i], dist[i] = o, dd[o]
    return idx, dist


def exhaustive_radius(q, d, r):
    """Per query, the positions within r (ascending) and their distances, by numpy."""
    out = []
    for i in range(len(q)):
        dd = np.bitwise_count(q[i] ^ d).sum(axis=1, dtype=np.int64)
        j = np.flatnonzero(dd <= r)
        o = np.lexsort((j, dd[j]))
        out.append((j[o], dd[j][o]))
    return out


def radius_lookup_cost(query_codes, db_codes, n_bits: int, radius: int = 2, timed: bool = False) -> dict:
    """What radius-r retrieval of these codes costs with multi-index hashing (exact) at this
    database's size: the substring count m, mean distinct candidates verified and table
    lookups per query (deterministic: a result row's ``curves`` JSON holds them as
    ``lookup_r2``; counted without collecting results), and with ``timed`` queries per second
    of the full retrieval (one pass after a warm-up; this machine, whatever its load; a
    timing, so never stored among the scores). Timed queries go in blocks of at most
    :data:`LOOKUP_RESULTS` / database size, so collapsed codes cost time, not all the memory
    there is."""
    import time

    q = check_codes(np.ascontiguousarray(query_codes), n_bits, "query codes")
    d = check_codes(np.ascontiguousarray(db_codes), n_bits, "database codes")
    r = check_radius(radius, n_bits)
    mih = MultiIndexHashing(n_bits).build(d)
    mih.radius_count(q, r)
    out = {
        "radius": r,
        "m": len(mih.lengths),
        "candidates": float(mih.cost["candidates"].mean()),
        "lookups": float(mih.cost["lookups"].mean()),
    }
    if timed:
        mih.radius(q[:2], r)
        step = max(1, LOOKUP_RESULTS // max(1, d.shape[0]))  # queries a block: bounded memory
        seconds = 0.0
        for s in range(0, q.shape[0], step):
            t = time.perf_counter()
            mih.radius(q[s:s + step], r)  # the results are dropped: only the time is kept
            seconds += time.perf_counter() - t
        out["qps"] = float(len(q) / seconds) if seconds > 0 else None
    return out


LOOKUP_COLUMNS = ("lookup_candidates_r2", "lookup_qps_r2")


def lookup_columns(rows, results_csv):
    """Result rows with their radius-2 lookup cost as columns: candidates per query from the
    row's ``curves`` JSON, queries per second timed now on the cell's stored codes (empty
    where a row has neither)."""
    import json

    from . import storedcodes
    from .results import row_key

    folder = storedcodes.codes_dir(results_csv)
    cands, qps = [], []
    for _, row in rows.iterrows():
        c = row["curves"]
        c = json.loads(c) if isinstance(c, str) else (c or {})
        cands.append((c.get("lookup_r2") or {}).get("candidates"))
        path = storedcodes.codes_path(folder, row_key(row))
        if path.is_file():
            codes = storedcodes.load(path)
            qps.append(radius_lookup_cost(codes.query_codes, codes.db_codes, codes.n_bits, 2, timed=True)["qps"])
        else:
            qps.append(None)
    return rows.assign(lookup_candidates_r2=cands, lookup_qps_r2=qps)
