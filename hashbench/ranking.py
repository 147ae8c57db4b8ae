"""Numba kernels of the Hamming ranker and the thin wrappers that check their arguments;
nothing else lives here.

All kernels read codes in the packed format of :mod:`hashbench.codes` (uint64 words,
padding bits 0), use the hardware popcount (LLVM ``ctpop``, compiled for the host CPU) and
run in parallel over blocks of queries, each block keeping one O(n_database) buffer: memory
stays bounded whatever the number of queries, and no (n_queries x n_database) matrix is
ever built except by :func:`hamming_distances`, which callers use on chunks.

Ranking is *stable*: items at equal Hamming distance keep database order, which reproduces
MATLAB's stable ``sort`` in the DSH authors' ``compute_map.m``. A stable order is a counting
sort on distance, so ranks come from per-distance counts, never from a comparison sort.

Labels reach the kernels as int64 class ids (n,) (relevant = equal) or as packed multi-hot
uint64 words (n, w) (relevant = any shared bit).

Codes of one word (up to 64 bits, the common case) take a branch of their own: a loop over
a run-time word count measured 1.6x slower there. Kernels are cached on disk by Numba.
"""

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from .errors import InputError

_BLOCK = 32  # queries per parallel task: one distance buffer serves a whole block
_LANES = 4  # interleaved histograms (see _histogram)
_FILL = 4096  # at least this many items fill an empty top k (with a histogram), the rest pass _below
TOPK_BLOCK = 1 << 16  # database codes per step of the top-k scan: measured 2.2x faster than 1M


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
def _distance(q, i, d, j, n_words):
    if n_words == 1:
        return _ctpop(q[i, 0] ^ d[j, 0])
    acc = 0
    for w in range(n_words):
        acc += _ctpop(q[i, w] ^ d[j, w])
    return acc


def _relevant(ql, i, dl, j):
    """1 when query i and database item j share a class (1-D ids) or a label (2-D words)."""


@overload(_relevant, inline="always")
def _relevant_impl(ql, i, dl, j):
    if ql.ndim == 1:
        return lambda ql, i, dl, j: 1 if ql[i] == dl[j] else 0

    def multi(ql, i, dl, j):
        for w in range(ql.shape[1]):
            if ql[i, w] & dl[j, w]:
                return 1
        return 0

    return multi


@njit(inline="always")
def _fill_codes(q, i, d, ql, dl, code):
    """code[j] = 2 * distance(i, j) + relevant(i, j), in a loop of its own: with one word and
    class ids it compiles to SIMD popcounts and compares (measured 3.7x faster than the same
    work fused with the histogram below)."""
    if q.shape[1] == 1 and ql.ndim == 1:
        a = q[i, 0]
        lab = ql[i]
        for j in range(d.shape[0]):
            code[j] = 2 * _ctpop(a ^ d[j, 0]) + (1 if dl[j] == lab else 0)
    else:
        for j in range(d.shape[0]):
            code[j] = 2 * _distance(q, i, d, j, q.shape[1]) + _relevant(ql, i, dl, j)


@njit(inline="always")
def _histogram(code, h):
    """Counts of each code value over ``_LANES`` interleaved histograms (summed by the
    caller): consecutive increments land in different rows, so they do not wait on each
    other's stores."""
    h[:] = 0
    n = code.shape[0]
    j = 0
    while j + 4 <= n:
        h[0, code[j]] += 1
        h[1, code[j + 1]] += 1
        h[2, code[j + 2]] += 1
        h[3, code[j + 3]] += 1
        j += 4
    while j < n:
        h[0, code[j]] += 1
        j += 1


@njit(parallel=True, cache=True)
def _hamming_distances(q, d, out):
    for i in prange(q.shape[0]):
        if q.shape[1] == 1:  # one word: a SIMD popcount loop
            a = q[i, 0]
            for j in range(d.shape[0]):
                out[i, j] = _ctpop(a ^ d[j, 0])
        else:
            for j in range(d.shape[0]):
                out[i, j] = _distance(q, i, d, j, q.shape[1])
    return out


@njit(parallel=True, cache=True)
def _rank_statistics(q, d, ql, dl, self_index, n_bits, stable, cut, level_targets, proto):
    nq, ndb = q.shape[0], d.shape[0]
    nb = n_bits + 1
    trash = 2 * nb  # the code of a query's own item: an irrelevant item at an unused distance
    n_levels = level_targets.shape[1]
    hist_all = np.zeros((nq, nb), dtype=np.int64)
    hist_rel = np.zeros((nq, nb), dtype=np.int64)
    ap = np.zeros(nq)
    ap_cut = np.zeros(nq)
    hits_cut = np.zeros(nq, dtype=np.int64)
    level_prec = np.zeros((nq, n_levels))
    for blk in prange((nq + _BLOCK - 1) // _BLOCK):
        code = np.empty(ndb, dtype=proto.dtype)  # 2 * distance + relevant
        h = np.zeros((_LANES, trash + 2), dtype=np.int32)
        seen = np.zeros(trash + 2, dtype=np.int64)  # items passed, per code value
        below_all = np.zeros(nb + 1, dtype=np.int64)
        below_rel = np.zeros(nb + 1, dtype=np.int64)
        prec_of = np.zeros(ndb + 1)  # precision at the t-th relevant item
        rank_of = np.empty(ndb + 1, dtype=np.int64)  # stable rank of each relevant item
        ord_of = np.empty(ndb + 1, dtype=np.int64)  # its ordinal among relevant items
        for i in range(blk * _BLOCK, min(nq, (blk + 1) * _BLOCK)):
            _fill_codes(q, i, d, ql, dl, code)
            if self_index[i] >= 0:
                code[self_index[i]] = trash
            _histogram(code, h)
            for b in range(nb):
                rel = h[0, 2 * b + 1] + h[1, 2 * b + 1] + h[2, 2 * b + 1] + h[3, 2 * b + 1]
                hist_all[i, b] = h[0, 2 * b] + h[1, 2 * b] + h[2, 2 * b] + h[3, 2 * b] + rel
                hist_rel[i, b] = rel
            if not stable:
                continue
            acc_all = 0
            acc_rel = 0
            for b in range(nb):
                below_all[b] = acc_all
                below_rel[b] = acc_rel
                acc_all += hist_all[i, b]
                acc_rel += hist_rel[i, b]
            # the stable pass, branch-free: every item bumps its code's counter; the rank
            # and relevant ordinal are written at slot n_rel, which advances only on a
            # relevant item (measured 2-3x faster than branching on relevance per item)
            seen[:] = 0
            n_rel = 0
            for j in range(ndb):
                v = code[j]
                s = seen[v] + 1
                seen[v] = s
                b = v >> 1
                rank_of[n_rel] = below_all[b] + seen[v ^ 1] + s
                ord_of[n_rel] = below_rel[b] + s
                n_rel += v & 1
            s_ap = 0.0
            s_cut = 0.0
            n_cut = 0
            for m in range(n_rel):
                p = ord_of[m] / rank_of[m]
                s_ap += p
                if rank_of[m] <= cut:
                    s_cut += p
                    n_cut += 1
                prec_of[ord_of[m]] = p  # relevant items come in index order, not rank order
            for lv in range(n_levels):
                if level_targets[i, lv] > 0:
                    level_prec[i, lv] = prec_of[level_targets[i, lv]]
            if acc_rel > 0:
                ap[i] = s_ap / acc_rel
            if n_cut > 0:
                ap_cut[i] = s_cut / n_cut
            hits_cut[i] = n_cut
    return hist_all, hist_rel, ap, ap_cut, hits_cut, level_prec

@njit(inline="always")
def _fill_distances(q, i, d, buf):
    """buf[j] = distance(i, j) over a database block, in a loop of its own (SIMD popcounts)."""
    if q.shape[1] == 1:
        a = q[i, 0]
        for j in range(d.shape[0]):
            buf[j] = _ctpop(a ^ d[j, 0])
    elif q.shape[1] == 2:  # 65-128 bits: a loop of its own, so it is vectorised too
        a, b = q[i, 0], q[i, 1]
        for j in range(d.shape[0]):
            buf[j] = _ctpop(a ^ d[j, 0]) + _ctpop(b ^ d[j, 1])
    else:
        for j in range(d.shape[0]):
            buf[j] = _distance(q, i, d, j, q.shape[1])


_ONES = np.uint64(0x0101010101010101)
_HIGHS = np.uint64(0x8080808080808080)


@njit(inline="always")
def _below(buf, bound, out):
    """Positions j with buf[j] < bound into out; returns their count. Byte buffers are tested
    64 items at a time, eight to a word (SWAR: a byte below b <= 128 shows as a borrow into
    its high bit, Anderson's "haszero/hasless"), looking closer only where one passes: most
    do not. Measured 0.3 ns an item with a compare loop, which the compiler did not vectorise."""
    n = buf.shape[0]
    m = 0
    j = 0
    if buf.itemsize == 1 and bound <= 128 and n >= 64:
        words = buf[: n - n % 8].view(np.uint64)
        sub = _ONES * np.uint64(bound)
        while j + 64 <= n:
            acc = np.uint64(0)
            for t in range(j >> 3, (j >> 3) + 8):
                w = words[t]
                acc |= (w - sub) & ~w & _HIGHS
            if acc:
                for t in range(j, j + 64):
                    if buf[t] < bound:
                        out[m] = t
                        m += 1
            j += 64
    for t in range(j, n):
        if buf[t] < bound:
            out[m] = t
            m += 1
    return m


@njit(parallel=True, cache=True)
def _topk_update(q, d, offset, k, self_index, idx, dist, count, proto):
    """Merge database block ``d`` (global positions offset..) into each query's running
    stable top k (idx, dist sorted by (distance, position); count = items held).

    Blocks come in database order, so an item of this block loses every tie to an item
    already held. Per query: the block's distances (SIMD), then, while the top k is not
    full, a histogram of a prefix (max(4k, 4096) items) that, joined with the held items'
    distances, gives the k-th distance t and how many items at distance t still fit; once
    full, the k-th held distance is a strict bound that the rest is tested against 64 at a
    time. The few items that pass are placed by a counting sort and merged.
    Memory: three O(block) buffers per task, never (queries x database)."""
    nq, nd = q.shape[0], d.shape[0]
    nb = q.shape[1] * 64 + 2
    for blk in prange((nq + _BLOCK - 1) // _BLOCK):
        buf = np.empty(nd, proto.dtype)
        h = np.zeros((_LANES, nb), dtype=np.int32)
        held = np.zeros(nb, dtype=np.int64)
        cand = np.empty(nd, dtype=np.int64)
        pos = np.zeros(nb + 1, dtype=np.int64)
        new_idx = np.empty(k, dtype=np.int64)
        new_dist = np.empty(k, dtype=np.int32)
        cidx = np.empty(nd, dtype=np.int64)
        cdist = np.empty(nd, dtype=np.int32)
        for i in range(blk * _BLOCK, min(nq, (blk + 1) * _BLOCK)):
            _fill_distances(q, i, d, buf)
            own = self_index[i] - offset
            if 0 <= own < nd:
                buf[own] = nb - 1  # beyond every distance: never taken
            lo = 0
            while lo < nd:
                c = count[i]
                n_c = 0
                if c == k:  # full: only items strictly nearer than the k-th held one enter
                    hi = nd
                    n_c = _below(buf[lo:hi], dist[i, k - 1], cand)
                    for m in range(n_c):
                        cand[m] += lo
                else:  # a prefix fills the top k (a histogram costs a cycle an item; _below less)
                    hi = min(nd, lo + ((max(4 * k, _FILL) + 63) & ~63))  # whole words for _below
                    _histogram(buf[lo:hi], h)
                    held[:] = 0
                    for m in range(c):
                        held[dist[i, m]] += 1
                    t = nb - 2  # the largest distance: take all that fit
                    total = 0
                    need_eq = k
                    for v in range(nb - 1):
                        here = h[0, v] + h[1, v] + h[2, v] + h[3, v]
                        if total + held[v] + here >= k:
                            t = v
                            need_eq = k - total - held[v]
                            break
                        total += held[v] + here
                    taken_eq = 0
                    for j in range(lo, hi):
                        v = buf[j]
                        if v < t:
                            cand[n_c] = j
                            n_c += 1
                        elif v == t and taken_eq < need_eq:
                            cand[n_c] = j
                            n_c += 1
                            taken_eq += 1
                lo = hi
                if n_c == 0:
                    continue
                # counting sort of the candidates by distance (stable: they are in block order)
                pos[:] = 0
                for m in range(n_c):
                    pos[buf[cand[m]] + 1] += 1
                for v in range(nb):
                    pos[v + 1] += pos[v]
                for m in range(n_c):
                    v = buf[cand[m]]
                    cidx[pos[v]] = cand[m] + offset
                    cdist[pos[v]] = v
                    pos[v] += 1
                # merge held (earlier positions: first on ties) with the candidates, keep k
                a = 0
                bq = 0
                n_out = min(k, c + n_c)
                for r in range(n_out):
                    if bq >= n_c or (a < c and dist[i, a] <= cdist[bq]):
                        new_idx[r] = idx[i, a]
                        new_dist[r] = dist[i, a]
                        a += 1
                    else:
                        new_idx[r] = cidx[bq]
                        new_dist[r] = cdist[bq]
                        bq += 1
                for r in range(n_out):
                    idx[i, r] = new_idx[r]
                    dist[i, r] = new_dist[r]
                count[i] = n_out


def _no_self(q, self_index):
    return np.full(q.shape[0], -1, dtype=np.int64) if self_index is None else np.asarray(self_index, np.int64)


def hamming_distances(q, d, out=None):
    """(nq, nd) uint16 Hamming distances, into ``out`` when given (reuse one buffer across
    chunks of queries: a fresh array costs a page fault per 4 KiB). Use on chunks only."""
    if out is None:
        out = np.empty((q.shape[0], d.shape[0]), dtype=np.uint16)
    return _hamming_distances(q, d, out)


def rank_statistics(q, d, ql, dl, self_index, n_bits, stable, cut, level_targets):
    """One pass (two with ``stable``) over the database per query.

    Returns
      hist_all, hist_rel: (nq, n_bits + 1) counts of all / relevant database items at each
        Hamming distance (the query's own item, ``self_index[i] >= 0``, left out);
      ap: (nq,) AP over the whole stable ranking (0 where there is no relevant item);
      ap_cut, hits_cut: (nq,) AP over the stable top ``cut`` (normalised by the relevant
        items found there) and the number of relevant items in that top ``cut``;
      level_prec: (nq, L) precision at the stable rank of the t-th relevant item,
        t = ``level_targets[i, l]`` (0: not asked, left at 0).
    ``ap``, ``ap_cut``, ``hits_cut`` and ``level_prec`` are filled only when ``stable``.
    """
    # codes 2 * distance + relevant (and the self sentinel) fit in a byte up to 126 bits:
    # half the memory traffic of uint16
    proto = np.empty(0, np.uint8 if 2 * (n_bits + 1) + 2 <= 256 else np.uint16)
    return _rank_statistics(q, d, ql, dl, self_index, n_bits, stable, cut, level_targets, proto)


class TopK:
    """Running stable top k of each query over a database that arrives in blocks, in order
    (a memory-mapped or streamed file: the database is never held whole)."""

    def __init__(self, q, k, n_bits=None, self_index=None):
        self.q = np.ascontiguousarray(q, dtype=np.uint64)
        self.k = int(k)
        self.self_index = _no_self(self.q, self_index)
        bits = self.q.shape[1] * 64 if n_bits is None else n_bits
        self._proto = np.empty(0, np.uint8 if bits < 255 else np.uint16)
        self.idx = np.full((self.q.shape[0], self.k), -1, dtype=np.int64)
        self.dist = np.full((self.q.shape[0], self.k), -1, dtype=np.int32)
        self.count = np.zeros(self.q.shape[0], dtype=np.int64)
        self.seen = 0

    def add(self, block, step=TOPK_BLOCK):
        """Merge the next block of database codes (positions continue from the last), in
        cache-sized steps (any step gives the same answer)."""
        block = np.ascontiguousarray(block, dtype=np.uint64)
        for s in range(0, block.shape[0], step):
            part = block[s:s + step]
            _topk_update(self.q, part, self.seen, self.k, self.self_index, self.idx, self.dist,
                         self.count, self._proto)
            self.seen += part.shape[0]
        return self


def stable_topk(q, d, k, self_index=None, block=TOPK_BLOCK):
    """(nq, k) database indices of each query's stable top k, and their distances. ``k``
    must be at least 1 and at most what every query can return: the database size, less
    one where the query's own item is left out (``self_index >= 0``)."""
    self_index = _no_self(q, self_index)
    available = d.shape[0] - (1 if (self_index >= 0).any() else 0)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= available:
        raise InputError(f"k must be an integer in [1, {available}] (what each query can return), got {k!r}")
    top = TopK(q, int(k), self_index=self_index).add(d, block)
    return top.idx, top.dist
