"""Numba kernels of hash-table lookup over packed codes: exact-match tables, bit-flip
probing within a Hamming radius, and multi-index hashing; nothing else lives here.

A table maps a key (a whole code, or one substring of it as one uint64) to the database
items holding it: ``order`` lists item positions sorted by key (ties by position),
``starts`` delimits each distinct key's run, and ``slots`` is an open-addressing array
(linear probing, splitmix64 hash, load <= 1/2) from a key's hash to its distinct-key id.

Probing a query within radius r enumerates every key at exactly s flipped bits, s = 0..r,
(sum of C(L, s) lookups), so the cost grows with the key length L and r, not with the
database. Multi-index hashing (Norouzi, Punjani & Fleet, "Fast Search in Hamming Space
with Multi-Index Hashing", CVPR 2012; TPAMI 2014) cuts a code into m substrings with one
table each: by the pigeonhole principle an item within distance r of the query matches
it within floor(r/m) bits in at least one substring, so probing every table to that
radius and verifying the candidates' full distances is exact.

Results come in stable order (distance, then database position), as the ranker's.
"""

import numpy as np
from numba import njit, prange

from .ranking import _BLOCK, _below, _distance, _fill_distances

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_EMPTY = -1


@njit(inline="always")
def _mix(x):
    """splitmix64's finaliser: every key bit moves every hash bit."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@njit(inline="always")
def _hash(key):
    h = np.uint64(0)
    for t in range(key.shape[0]):
        h = _mix(h ^ key[t])
    return h


@njit(cache=True)
def _build_slots(ukeys, n_slots):
    slots = np.full(n_slots, _EMPTY, dtype=np.int32)
    mask = np.uint64(n_slots - 1)
    for u in range(ukeys.shape[0]):
        h = _hash(ukeys[u]) & mask
        while slots[h] != _EMPTY:
            h = (h + np.uint64(1)) & mask
        slots[h] = u
    return slots


@njit(inline="always")
def _find(slots, ukeys, key):
    """Distinct-key id of ``key`` (1-D uint64 words), or -1."""
    mask = np.uint64(slots.shape[0] - 1)
    h = _hash(key) & mask
    while True:
        u = slots[h]
        if u == _EMPTY:
            return -1
        same = True
        for t in range(key.shape[0]):
            if ukeys[u, t] != key[t]:
                same = False
                break
        if same:
            return u
        h = (h + np.uint64(1)) & mask


@njit(inline="always")
def _substring(codes, i, lo, length):
    """Bits lo..lo+length-1 (length <= 64) of code i as one uint64."""
    w, off = lo >> 6, lo & 63
    v = codes[i, w] >> np.uint64(off)
    if off + length > 64:
        v |= codes[i, w + 1] << np.uint64(64 - off)
    if length < 64:
        v &= (np.uint64(1) << np.uint64(length)) - np.uint64(1)
    return v


@njit(cache=True)
def substrings(codes, lo, length):
    """(n,) uint64 values of bits lo..lo+length-1 of every code."""
    out = np.empty(codes.shape[0], dtype=np.uint64)
    for i in range(codes.shape[0]):
        out[i] = _substring(codes, i, lo, length)
    return out


@njit(inline="always")
def _next_combination(c, s, n):
    """Advance c[0..s-1] (increasing positions < n) to the next combination; False at the end."""
    j = s - 1
    while j >= 0 and c[j] == n - s + j:
        j -= 1
    if j < 0:
        return False
    c[j] += 1
    for t in range(j + 1, s):
        c[t] = c[t - 1] + 1
    return True


@njit(inline="always")
def _flip(key, p):
    key[p >> 6] ^= np.uint64(1) << np.uint64(p & 63)


@njit
def _append(buf, n, value):
    if n == buf.shape[0]:
        bigger = np.empty(2 * n + 16, dtype=buf.dtype)
        bigger[:n] = buf[:n]
        buf = bigger
    buf[n] = value
    return buf


@njit(parallel=True, cache=True)
def _table_radius(q, n_bits, radius, slots, ukeys, starts, order, cap, out_idx, out_dist, count, probes):
    """Probe the whole-code table at every key within ``radius`` of each query. Writes up
    to ``cap`` results per query (stable order) and the true count; the caller repeats
    the queries whose count exceeds cap."""
    nq, w = q.shape
    for i in prange(nq):
        key = np.empty(w, dtype=np.uint64)
        c = np.empty(max(radius, 1), dtype=np.int64)
        found = np.empty(16, dtype=np.int64)
        n = 0
        n_probes = 0
        for s in range(radius + 1):
            for t in range(s):
                c[t] = t
            more = True
            while more:
                for t in range(w):
                    key[t] = q[i, t]
                for t in range(s):
                    _flip(key, c[t])
                n_probes += 1
                u = _find(slots, ukeys, key)
                if u >= 0:
                    for p in range(starts[u], starts[u + 1]):
                        found = _append(found, n, s * order.shape[0] + order[p])
                        n += 1
                more = s > 0 and _next_combination(c, s, n_bits)
        found = np.sort(found[:n])  # (distance, position): items at distance s come with s flips
        for p in range(min(n, cap)):
            out_dist[i, p] = found[p] // order.shape[0]
            out_idx[i, p] = found[p] % order.shape[0]
        count[i] = n
        probes[i] = n_probes


@njit
def _probe_substring(sub, length, s, slots, ukeys, starts, order, found, n, c, key):
    """Append every item whose substring lies at exactly s bits from ``sub``; returns
    (found, n, lookups)."""
    for t in range(s):
        c[t] = t
    lookups = 0
    more = True
    while more:
        key[0] = sub
        for t in range(s):
            key[0] ^= np.uint64(1) << np.uint64(c[t])
        lookups += 1
        u = _find(slots, ukeys, key)
        if u >= 0:
            for p in range(starts[u], starts[u + 1]):
                found = _append(found, n, order[p])
                n += 1
        more = s > 0 and _next_combination(c, s, length)
    return found, n, lookups


@njit(cache=True)
def _unique_sorted(found, n):
    a = np.sort(found[:n])
    m = 0
    for p in range(n):
        if p == 0 or a[p] != a[p - 1]:
            a[m] = a[p]
            m += 1
    return a[:m]


@njit(parallel=True, cache=True)
def _mih_radius(q, d, radius, los, lengths, slots, ukeys, starts, order, cap,
                out_idx, out_dist, count, cands, probes):
    """Multi-index hashing within ``radius``: probe each substring table within
    floor(radius / m) bits, verify every distinct candidate's full distance. ``count`` gets
    every query's full count whatever ``cap``; the first ``cap`` results are written."""
    nq, w = q.shape
    m = los.shape[0]
    per = radius // m
    n_db = d.shape[0]
    for i in prange(nq):
        key = np.empty(1, dtype=np.uint64)
        c = np.empty(max(per, 1), dtype=np.int64)
        found = np.empty(16, dtype=np.int64)
        n = 0
        n_probes = 0
        for t in range(m):
            sub = _substring(q, i, los[t], lengths[t])
            for s in range(per + 1):
                found, n, lk = _probe_substring(sub, lengths[t], s, slots[t], ukeys[t], starts[t],
                                                order[t], found, n, c, key)
                n_probes += lk
        uniq = _unique_sorted(found, n)
        keep = np.empty(uniq.shape[0], dtype=np.int64)
        n_keep = 0
        for p in range(uniq.shape[0]):
            j = uniq[p]
            dist = _distance(q, i, d, j, w)
            if dist <= radius:
                keep[n_keep] = dist * n_db + j
                n_keep += 1
        if cap > 0:  # cap 0: count and cost only (no order needed)
            keep[:n_keep].sort()
        for p in range(min(n_keep, cap)):
            out_dist[i, p] = keep[p] // n_db
            out_idx[i, p] = keep[p] % n_db
        count[i] = n_keep
        cands[i] = uniq.shape[0]
        probes[i] = n_probes


@njit(parallel=True, cache=True)
def _mih_knn(q, d, k, los, lengths, slots, ukeys, starts, order, out_idx, out_dist, cands, probes):
    """Multi-index hashing k-nearest neighbours (Norouzi et al., Sec. 4: growing search
    radius): after probing every substring within s bits, every item within distance
    m (s + 1) - 1 has been found (pigeonhole); stop once k of them are, and rank the
    candidates within that bound in stable order: the exact stable top k."""
    nq, w = q.shape
    m = los.shape[0]
    n_db = d.shape[0]
    max_len = 0
    for t in range(m):
        max_len = max(max_len, lengths[t])
    for i in prange(nq):
        key = np.empty(1, dtype=np.uint64)
        c = np.empty(max_len, dtype=np.int64)
        found = np.empty(16, dtype=np.int64)
        n = 0
        n_probes = 0
        uniq = found[:0]
        for s in range(max_len + 1):
            for t in range(m):
                if s <= lengths[t]:
                    sub = _substring(q, i, los[t], lengths[t])
                    found, n, lk = _probe_substring(sub, lengths[t], s, slots[t], ukeys[t], starts[t],
                                                    order[t], found, n, c, key)
                    n_probes += lk
            uniq = _unique_sorted(found, n)
            bound = m * (s + 1) - 1
            within = 0
            for p in range(uniq.shape[0]):
                if _distance(q, i, d, uniq[p], w) <= bound:
                    within += 1
            if within >= k or uniq.shape[0] == n_db:
                break
        ranked = np.empty(uniq.shape[0], dtype=np.int64)
        for p in range(uniq.shape[0]):
            ranked[p] = _distance(q, i, d, uniq[p], w) * n_db + uniq[p]
        ranked = np.sort(ranked)
        for p in range(min(k, ranked.shape[0])):
            out_dist[i, p] = ranked[p] // n_db
            out_idx[i, p] = ranked[p] % n_db
        cands[i] = uniq.shape[0]
        probes[i] = n_probes


@njit(parallel=True, cache=True)
def _linear_radius(q, d, radius, offset, cap, out_idx, out_dist, count, proto):
    """Every item of database block ``d`` within ``radius``, appended (in position order)
    after the ``count[i]`` results already held; counts past ``cap`` are kept so the caller
    can repeat with more room. Distances of a step of the block (SIMD), then the few that
    pass (tested 64 at a time)."""
    nq = q.shape[0]
    nd = d.shape[0]
    step = 1 << 14
    for blk in prange((nq + _BLOCK - 1) // _BLOCK):
        buf = np.empty(min(step, nd), proto.dtype)
        hits = np.empty(min(step, nd), dtype=np.int64)
        for i in range(blk * _BLOCK, min(nq, (blk + 1) * _BLOCK)):
            n = count[i]
            for s in range(0, nd, step):
                part = d[s:s + step]
                view = buf[:part.shape[0]]
                _fill_distances(q, i, part, view)
                m = _below(view, radius + 1, hits)
                for t in range(m):
                    if n < cap:
                        out_idx[i, n] = hits[t] + s + offset
                        out_dist[i, n] = view[hits[t]]
                    n += 1
            count[i] = n
