"""Numba kernels of the Hamming ranker; nothing else lives here.

All kernels read codes in the packed format of :mod:`hashbench.codes` (uint64 words,
padding bits 0), use the hardware popcount (LLVM ``ctpop``, compiled for the host CPU) and
run in parallel over blocks of queries, each block keeping one O(n_database) buffer: memory
stays bounded whatever the number of queries, and no (n_queries x n_database) matrix is
ever built except by :func:`hamming_distances`, which callers use on chunks.

Ranking is *stable*: items at equal Hamming distance keep database order, which reproduces
MATLAB's stable ``sort`` in the DSH authors' ``compute_map.m``. A stable order is a counting
sort on distance, so ranks come from per-distance counts, never from a comparison sort.

Labels reach the kernels as uint64 words (``label_words``): one word holding the class id
(``multilabel=False``: relevant = equal) or packed multi-hot bits (``multilabel=True``:
relevant = any shared bit).
"""

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

_BLOCK = 32  # queries per parallel task: one distance buffer serves a whole block


@intrinsic
def _ctpop(typingctx, x):
    """LLVM's ctpop on a uint64: one POPCNT instruction on x86-64. Typed as int64 so that
    sums stay integers (numba would promote int64 + uint64 to float64)."""
    sig = types.int64(types.uint64)

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, args)

    return sig, codegen


@njit(inline="always")
def _distance(q, qi, d, j):
    acc = 0
    for w in range(q.shape[1]):
        acc += _ctpop(q[qi, w] ^ d[j, w])
    return acc


@njit(inline="always")
def _relevant(ql, qi, dl, j, multilabel):
    if multilabel:
        for w in range(ql.shape[1]):
            if ql[qi, w] & dl[j, w]:
                return 1
        return 0
    return 1 if ql[qi, 0] == dl[j, 0] else 0


@njit(parallel=True, cache=True)
def hamming_distances(q, d):
    """(nq, ndb) int32 Hamming distances. Use on chunks of queries only."""
    out = np.empty((q.shape[0], d.shape[0]), dtype=np.int32)
    for i in prange(q.shape[0]):
        for j in range(d.shape[0]):
            out[i, j] = _distance(q, i, d, j)
    return out


@njit(parallel=True, cache=True)
def popcount_sum(q, d):
    """Sum of all pairwise Hamming distances, storing nothing: the machine's popcount
    limit that the benchmarks compare the real kernels against."""
    nq = q.shape[0]
    partial = np.zeros(nq, dtype=np.int64)
    for i in prange(nq):
        acc = 0
        for j in range(d.shape[0]):
            acc += _distance(q, i, d, j)
        partial[i] = acc
    return partial.sum()


@njit(parallel=True, cache=True)
def rank_statistics(q, d, ql, dl, multilabel, self_index, n_bits, stable, cut, level_targets):
    """One pass (two with ``stable``) over the database per query.

    Returns
      hist_all, hist_rel: (nq, n_bits + 1) int64 counts of all / relevant database items at
        each Hamming distance (the query's own item, ``self_index[i] >= 0``, left out);
      ap: (nq,) AP over the whole stable ranking (0 where there is no relevant item);
      ap_cut, hits_cut: (nq,) AP over the stable top ``cut`` (normalised by the relevant items
        found there) and the number of relevant items in that top ``cut``;
      level_prec: (nq, L) precision at the first stable rank where the t-th relevant item
        appears, t = ``level_targets[i, l]`` (0 means "not asked": left at 0).
    ``ap``, ``ap_cut``, ``hits_cut`` and ``level_prec`` are filled only when ``stable``.
    """
    nq, ndb = q.shape[0], d.shape[0]
    nb = n_bits + 1
    n_levels = level_targets.shape[1]
    hist_all = np.zeros((nq, nb), dtype=np.int64)
    hist_rel = np.zeros((nq, nb), dtype=np.int64)
    ap = np.zeros(nq)
    ap_cut = np.zeros(nq)
    hits_cut = np.zeros(nq, dtype=np.int64)
    level_prec = np.zeros((nq, n_levels))
    n_blocks = (nq + _BLOCK - 1) // _BLOCK
    for blk in prange(n_blocks):
        code = np.empty(ndb, dtype=np.uint16)  # 2 * distance + relevant
        h = np.zeros(2 * nb, dtype=np.int64)
        seen = np.zeros(2 * nb, dtype=np.int64)
        below_all = np.zeros(nb, dtype=np.int64)
        below_rel = np.zeros(nb, dtype=np.int64)
        for i in range(blk * _BLOCK, min(nq, (blk + 1) * _BLOCK)):
            h[:] = 0
            skip = self_index[i]
            for j in range(ndb):
                v = 2 * _distance(q, i, d, j) + _relevant(ql, i, dl, j, multilabel)
                code[j] = v
                h[v] += 1
            if skip >= 0:
                h[code[skip]] -= 1
            for b in range(nb):
                hist_all[i, b] = h[2 * b] + h[2 * b + 1]
                hist_rel[i, b] = h[2 * b + 1]
            if not stable:
                continue
            acc_all = 0
            acc_rel = 0
            for b in range(nb):
                below_all[b] = acc_all
                below_rel[b] = acc_rel
                acc_all += hist_all[i, b]
                acc_rel += hist_rel[i, b]
            seen[:] = 0
            s_ap = 0.0
            s_cut = 0.0
            n_cut = 0
            lv = 0
            for j in range(ndb):
                if j == skip:
                    continue
                v = code[j]
                seen[v] += 1
                if v & 1:
                    b = v >> 1
                    rank = below_all[b] + seen[2 * b] + seen[2 * b + 1]
                    t = below_rel[b] + seen[v]
                    p = t / rank
                    s_ap += p
                    if rank <= cut:
                        s_cut += p
                        n_cut += 1
                    for l in range(n_levels):
                        if level_targets[i, l] == t:
                            level_prec[i, l] = p
            if acc_rel > 0:
                ap[i] = s_ap / acc_rel
            if n_cut > 0:
                ap_cut[i] = s_cut / n_cut
            hits_cut[i] = n_cut
    return hist_all, hist_rel, ap, ap_cut, hits_cut, level_prec


@njit(parallel=True, cache=True)
def stable_topk(q, d, k, self_index):
    """(nq, k) database indices of the stable top k and their distances (k <= ndb - 1
    when a query's own item is left out)."""
    nq, ndb = q.shape[0], d.shape[0]
    nb = q.shape[1] * 64 + 1
    idx = np.empty((nq, k), dtype=np.int64)
    dist = np.empty((nq, k), dtype=np.int32)
    n_blocks = (nq + _BLOCK - 1) // _BLOCK
    for blk in prange(n_blocks):
        buf = np.empty(ndb, dtype=np.int32)
        hist = np.zeros(nb + 1, dtype=np.int64)
        for i in range(blk * _BLOCK, min(nq, (blk + 1) * _BLOCK)):
            hist[:] = 0
            for j in range(ndb):
                v = _distance(q, i, d, j)
                buf[j] = v
                if j != self_index[i]:
                    hist[v + 1] += 1
            for b in range(nb):  # hist[b] becomes the first rank of distance b
                hist[b + 1] += hist[b]
            for j in range(ndb):
                if j == self_index[i]:
                    continue
                r = hist[buf[j]]
                if r < k:
                    idx[i, r] = j
                    dist[i, r] = buf[j]
                hist[buf[j]] += 1
    return idx, dist


@njit(cache=True)
def radius_search(q, d, radius, self_index):
    """All database items within ``radius`` of each query, stable order, as CSR arrays
    (indptr (nq + 1,), indices, distances)."""
    nq, ndb = q.shape[0], d.shape[0]
    counts = np.zeros(nq + 1, dtype=np.int64)
    for i in range(nq):
        for j in range(ndb):
            if j != self_index[i] and _distance(q, i, d, j) <= radius:
                counts[i + 1] += 1
    indptr = np.cumsum(counts)
    indices = np.empty(indptr[-1], dtype=np.int64)
    dists = np.empty(indptr[-1], dtype=np.int32)
    for i in range(nq):
        hist = np.zeros(radius + 2, dtype=np.int64)
        for j in range(ndb):
            if j != self_index[i]:
                v = _distance(q, i, d, j)
                if v <= radius:
                    hist[v + 1] += 1
        for b in range(radius + 1):
            hist[b + 1] += hist[b]
        for j in range(ndb):
            if j != self_index[i]:
                v = _distance(q, i, d, j)
                if v <= radius:
                    pos = indptr[i] + hist[v]
                    indices[pos] = j
                    dists[pos] = v
                    hist[v] += 1
    return indptr, indices, dists
