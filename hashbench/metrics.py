"""Retrieval metrics over the Hamming ranking: the one implementation that ``run``,
``evaluate`` and ``reproduce`` share.

Conventions (each stated once here and applied everywhere):

* **Relevance**: same class id, or (multi-hot labels) at least one shared label.
* **Ties**: ``map`` ranks items at equal Hamming distance in database order ("stable"), as
  MATLAB's stable ``sort`` in the DSH authors' ``compute_map.m`` does. ``map_expected`` is
  the exact expectation of AP when tied items come in uniformly random order (McSherry &
  Najork, ECIR 2008, eq. for AP with ties); ``map_optimistic`` / ``map_pessimistic`` put the
  relevant items first / last within each tie. All three come in closed form from the
  per-distance counts, via harmonic-number differences (digamma).
* **Queries with no relevant item in the database** have no defined AP or recall: they are
  left out of *every* average (mAP, precision within radius, PR, precision@N) and counted in
  ``n_no_relevant``.
* **Precision within Hamming radius r** (``precision_r``, keyed by r: the result CSVs'
  ``precision_r2`` is ``precision_r["2"]``): relevant / returned among items at distance <= r;
  a query that returns nothing scores 0 (the KSH and DSH convention); the fraction of such
  queries at the largest r asked is ``empty_r_fraction`` (the CSVs' ``empty_r2_fraction``).
* **PR over Hamming radius** 0..k: pooled over all queries (retrieved relevant pairs /
  retrieved pairs, and / relevant pairs), as ITQ's and KSH's ``recall_precision.m``.
* **PR at recall levels** 0, 0.05, ..., 1 (``pr_recall_levels``), two rules:
  ``pr_rule="clean"`` (the default): for each query and level rho, the precision at the
  stable rank of its ceil(rho R)-th relevant item (the first, for rho = 0), averaged over the
  queries that have a relevant item. ``pr_rule="released"``: what the DSH authors'
  ``compute_precision_recall.m`` computes, checked against its output under GNU Octave
  (``tests/test_authors_eval.py``): levels built as MATLAB builds ``0:0.05:1``; per level a
  search from one rank after the previous level's hit (the first rank for the first level)
  for the first rank whose relevant count reaches ``level * R`` in floating point, scoring
  that rank's precision; so level 0 is P@1, a product that lands just above an integer
  needs one more relevant item, two levels needing the same count land on consecutive
  ranks, and a query without relevant items is a row of zeros in the mean over all queries.
* **mAP@k** averages, over the stable top k, the precision at each relevant item, divided by
  the number of relevant items found in the top k (0 when none): the convention of the
  mAP@5000 figures for NUS-WIDE. **precision@N** is relevant items in the stable top N / N.
* **self_index**: per query, the database position of the query's own item (or -1); that
  item is left out of the query's result list.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma

from . import ranking
from .codes import n_words, pack
from .errors import InputError
from .labels import check_labels, is_multilabel

RECALL_LEVELS = np.round(np.arange(21) * 0.05, 2)
PR_RULES = ("clean", "released")


def matlab_colon(a: float, d: float, b: float) -> np.ndarray:
    """MATLAB's ``a:d:b``: n = floor((b - a) / d) + 1 elements (a few ulps of tolerance on
    the quotient, so ``0:0.1:0.3`` has 4),
    the first half built as a + k d, the second as b - (n - 1 - k) d, so that the range
    ends exactly on b; for ``0:0.05:1``, 0.6, 0.7 and 0.85 come out exact where a + k d
    would not."""
    q = (b - a) / d
    n = int(np.floor(q + 4 * np.finfo(float).eps * abs(q))) + 1
    k = np.arange(n)
    return np.where(k < n / 2, a + k * d, b - (n - 1 - k) * d)


RELEASED_LEVELS = matlab_colon(0.0, 0.05, 1.0)


@dataclass(frozen=True)
class RankStats:
    """Per-query outputs of the ranker that every metric is computed from."""

    hist_all: np.ndarray  # (nq, n_bits + 1) items at each distance
    hist_rel: np.ndarray  # (nq, n_bits + 1) relevant items at each distance
    ap: np.ndarray  # (nq,) stable AP (0 without relevant items)
    ap_cut: np.ndarray  # (nq,) stable AP@cut
    hits_cut: np.ndarray  # (nq,) relevant items in the stable top cut
    level_prec: np.ndarray  # (nq, len(RECALL_LEVELS)) precision at recall levels
    cut: int

    @property
    def n_relevant(self) -> np.ndarray:
        return self.hist_rel.sum(axis=1)

    @property
    def n_candidates(self) -> np.ndarray:
        return self.hist_all.sum(axis=1)


def _label_words(labels) -> tuple[np.ndarray, bool]:
    if is_multilabel(labels):
        return pack(labels), True
    return np.ascontiguousarray(labels, dtype=np.int64), False


def _check_codes(codes, n_bits: int, name: str) -> np.ndarray:
    c = np.asarray(codes)
    if c.dtype != np.uint64 or c.ndim != 2:
        raise InputError(f"{name}: expected packed uint64 codes (see hashbench.codes), got {c.dtype} {c.shape}")
    if c.shape[1] != n_words(n_bits):
        raise InputError(f"{name}: {c.shape[1]} words per code do not hold {n_bits} bits")
    if c.shape[0] == 0:
        raise InputError(f"{name}: no codes")
    return np.ascontiguousarray(c)


def rank_stats(query_codes, db_codes, query_labels, db_labels, n_bits: int,
               cut: int | None = None, self_index=None, stable: bool = True) -> RankStats:
    """Run the ranker once and keep every per-query count the metrics need."""
    q = _check_codes(query_codes, n_bits, "query codes")
    d = _check_codes(db_codes, n_bits, "database codes")
    ql = check_labels(query_labels, q.shape[0], "query labels")
    dl = check_labels(db_labels, d.shape[0], "database labels")
    qw, multi = _label_words(ql)
    dw, multi_d = _label_words(dl)
    if multi != multi_d or qw.shape[1:] != dw.shape[1:]:
        raise InputError("query and database labels must both be class ids or multi-hot with equal columns")
    if self_index is None:
        self_index = np.full(q.shape[0], -1, dtype=np.int64)
    self_index = np.asarray(self_index, dtype=np.int64)
    if self_index.shape != (q.shape[0],) or (self_index >= d.shape[0]).any():
        raise InputError("self_index must give one database position (or -1) per query")
    cut = d.shape[0] if cut is None else int(cut)
    # the number of relevant items each query has decides its recall-level targets, so the
    # ranker needs them before its stable pass: one cheap non-stable pass first
    if stable:
        n_rel = _n_relevant(qw, dw, multi, self_index)
        targets = np.maximum(np.ceil(RECALL_LEVELS[None, :] * n_rel[:, None] - 1e-9), 1).astype(np.int64)
        targets[n_rel == 0] = 0
    else:
        targets = np.zeros((q.shape[0], len(RECALL_LEVELS)), dtype=np.int64)
    out = ranking.rank_statistics(q, d, qw, dw, self_index, n_bits, stable, cut, targets)
    return RankStats(*out, cut=cut)


def _n_relevant(qw, dw, multi, self_index) -> np.ndarray:
    if not multi:  # class counts answer it without touching the codes
        classes, counts = np.unique(dw, return_counts=True)
        pos = np.minimum(np.searchsorted(classes, qw), len(classes) - 1)
        n = np.where(classes[pos] == qw, counts[pos], 0)
        own = self_index >= 0
        n[own] -= dw[self_index[own]] == qw[own]
        return n.astype(np.int64)
    n = np.zeros(qw.shape[0], dtype=np.int64)
    for s in range(0, qw.shape[0], 1024):
        rel = (qw[s:s + 1024, None, :] & dw[None, :, :]).any(axis=2)
        n[s:s + 1024] = rel.sum(axis=1)
    own = np.flatnonzero(self_index >= 0)
    n[own] -= (qw[own] & dw[self_index[own]]).any(axis=1)
    return n


def _harmonic_diff(lo, hi):
    """H(hi) - H(lo) for integer arrays, H(m) = sum_{i<=m} 1/i, accurate for large m."""
    return digamma(hi + 1.0) - digamma(lo + 1.0)


def tie_aware_ap(hist_all, hist_rel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(expected, optimistic, pessimistic) AP per query from per-distance counts.

    For a tie group of n items, r relevant, after N items of which Rb are relevant, the
    expected sum of precisions at its relevant items is (McSherry & Najork 2008)
    (r/n) sum_{i=1..n} (Rb + 1 + (i-1)(r-1)/(n-1)) / (N + i); the bounds put the r relevant
    items at positions 1..r (optimistic) or n-r+1..n (pessimistic) of the group.
    """
    n = hist_all.astype(np.float64)
    r = hist_rel.astype(np.float64)
    N = np.cumsum(n, axis=1) - n
    Rb = np.cumsum(r, axis=1) - r
    R = r.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        dH = _harmonic_diff(N, N + n)
        slope = np.where(n > 1, (r - 1) / np.maximum(n - 1, 1), 0.0)
        expected = (r / np.maximum(n, 1)) * ((Rb + 1) * dH + slope * (n - (N + 1) * dH))
        optimistic = r + (Rb - N) * _harmonic_diff(N, N + r)
        M = N + n - r
        pessimistic = r + (Rb - M) * _harmonic_diff(M, M + r)
        parts = [np.where(r > 0, x, 0.0).sum(axis=1) / R for x in (expected, optimistic, pessimistic)]
    return tuple(np.where(R > 0, p, 0.0) for p in parts)


def precision_within_radius(stats: RankStats, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-query precision within Hamming radius (0 when nothing is returned) and the mask
    of queries that returned nothing."""
    ret = stats.hist_all[:, : radius + 1].sum(axis=1)
    rel = stats.hist_rel[:, : radius + 1].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(ret > 0, rel / np.maximum(ret, 1), 0.0)
    return p, ret == 0


def pr_over_radius(stats: RankStats, valid) -> list[dict]:
    """Pooled precision and recall for every Hamming radius 0..n_bits."""
    ret = np.cumsum(stats.hist_all[valid], axis=1).sum(axis=0)
    rel = np.cumsum(stats.hist_rel[valid], axis=1).sum(axis=0)
    total = stats.hist_rel[valid].sum()
    out = []
    for radius in range(stats.hist_all.shape[1]):
        out.append({
            "radius": radius,
            "precision": float(rel[radius] / ret[radius]) if ret[radius] else 0.0,
            "recall": float(rel[radius] / total) if total else 0.0,
        })
    return out


def released_pr_levels(query_codes, db_codes, query_labels, db_labels, n_bits: int, levels=RELEASED_LEVELS,
                       self_index=None, block: int = 256) -> np.ndarray:
    """(nq, len(levels)) precision at each level under the released rule (see the module
    docstring), per query; the caller averages over all queries, as their ``PR_curve.m``."""
    from .labels import relevance_matrix

    q = _check_codes(query_codes, n_bits, "query codes")
    d = _check_codes(db_codes, n_bits, "database codes")
    ql = check_labels(query_labels, q.shape[0], "query labels")
    dl = check_labels(db_labels, d.shape[0], "database labels")
    own = np.full(q.shape[0], -1, np.int64) if self_index is None else np.asarray(self_index, np.int64)
    levels = np.asarray(levels, np.float64)
    out = np.zeros((q.shape[0], len(levels)))
    dist = np.empty((min(block, q.shape[0]), d.shape[0]), np.uint16)
    for s in range(0, q.shape[0], block):
        e = min(s + block, q.shape[0])
        dd = ranking.hamming_distances(q[s:e], d, dist[: e - s])
        rel = relevance_matrix(ql[s:e], dl)
        for i in range(e - s):
            order = np.argsort(dd[i], kind="stable")
            if own[s + i] >= 0:
                order = order[order != own[s + i]]
            hits = np.flatnonzero(rel[i][order]) + 1  # 1-based ranks of the relevant items
            r, n = len(hits), len(order)
            start = 1
            for lv, level in enumerate(levels):
                need = int(np.ceil(level * r))  # the first count >= level * R, in floating point
                j = max(start, hits[need - 1] if need > 0 else 0)
                if j > n:
                    break
                out[s + i, lv] = np.searchsorted(hits, j, side="right") / j
                start = j + 1
    return out


def _mean(x, valid):
    x = np.asarray(x)[valid]
    return float(x.mean()) if x.size else None


def warm_up(query_codes, db_codes, query_labels, db_labels, n_bits: int, radius: int = 2, topk: int | None = None,
            self_index=None) -> None:
    """Run :func:`evaluate` on the first two queries and four database items of these very
    arrays (same dtypes and layouts, so the same Numba specialisations), so that a timed
    call that follows pays no compilation or cache loading."""
    nd = min(4, np.asarray(db_codes).shape[0])
    nq = min(2, np.asarray(query_codes).shape[0])
    own = None if self_index is None else np.where(np.asarray(self_index)[:nq] < nd, np.asarray(self_index)[:nq], -1)
    evaluate(query_codes[:nq], db_codes[:nd], query_labels[:nq], db_labels[:nd], n_bits,
             radius=min(radius, n_bits), topk=topk, self_index=own)


def evaluate(query_codes, db_codes, query_labels, db_labels, n_bits: int, radius: int = 2,
             topk: int | None = None, self_index=None, pr_rule: str = "clean") -> dict:
    """Every number hashbench reports for one set of codes (see the module docstring);
    ``pr_rule`` picks the rule of ``pr_recall_levels``."""
    if pr_rule not in PR_RULES:
        raise InputError(f"pr_rule must be one of {', '.join(PR_RULES)}, got {pr_rule!r}")
    if radius < 0 or radius > n_bits:
        raise InputError(f"radius must be in [0, {n_bits}], got {radius}")
    if topk is not None and topk <= 0:
        raise InputError(f"topk must be positive, got {topk}")
    stats = rank_stats(query_codes, db_codes, query_labels, db_labels, n_bits, topk, self_index)
    valid = stats.n_relevant > 0
    expected, optimistic, pessimistic = tie_aware_ap(stats.hist_all, stats.hist_rel)
    res = {
        "map": _mean(stats.ap, valid),
        "map_ties": "database order (stable)",
        "map_expected": _mean(expected, valid),
        "map_optimistic": _mean(optimistic, valid),
        "map_pessimistic": _mean(pessimistic, valid),
    }
    prec = {}
    for r in range(radius + 1):
        p, empty = precision_within_radius(stats, r)
        prec[str(r)] = _mean(p, valid)
    res["precision_r"] = prec
    res["radius"] = radius
    res["empty_r_fraction"] = _mean(empty, valid)
    if topk is not None:
        res["topk"] = topk
        res["map_at_k"] = _mean(stats.ap_cut, valid)
        denom = np.minimum(topk, stats.n_candidates)
        res["precision_at_k"] = _mean(stats.hits_cut / denom, valid)
    res["pr_curve"] = pr_over_radius(stats, valid)
    if pr_rule == "released":
        prec = released_pr_levels(query_codes, db_codes, query_labels, db_labels, n_bits, self_index=self_index)
        res["pr_recall_levels"] = [{"recall": float(level), "precision": float(prec[:, i].mean())}
                                   for i, level in enumerate(RELEASED_LEVELS)]
    else:
        res["pr_recall_levels"] = [
            {"recall": float(level), "precision": _mean(stats.level_prec[:, i], valid)}
            for i, level in enumerate(RECALL_LEVELS)
        ]
    res["pr_rule"] = pr_rule
    res.update(
        n_queries=int(stats.hist_all.shape[0]),
        n_database=int(np.asarray(db_codes).shape[0]),
        n_bits=int(n_bits),
        n_no_relevant=int((~valid).sum()),
    )
    return res


def format_report(res: dict) -> str:
    """A readable table of the scalar results of :func:`evaluate`."""
    from tabulate import tabulate

    rows = [
        ("mAP (ties in database order)", res["map"]),
        ("mAP expected over tie orders", res["map_expected"]),
        ("mAP optimistic / pessimistic", f"{res['map_optimistic']:.4f} / {res['map_pessimistic']:.4f}"
         if res["map_optimistic"] is not None else None),
    ]
    for r, v in res["precision_r"].items():
        rows.append((f"precision within radius {r}", v))
    rows.append((f"queries returning nothing within radius {res['radius']}", res["empty_r_fraction"]))
    if "topk" in res:
        rows.append((f"mAP@{res['topk']}", res["map_at_k"]))
        rows.append((f"precision@{res['topk']}", res["precision_at_k"]))
    rows += [
        ("queries / database / bits", f"{res['n_queries']} / {res['n_database']} / {res['n_bits']}"),
        ("queries without any relevant item (left out)", res["n_no_relevant"]),
    ]
    return tabulate(rows, tablefmt="simple", floatfmt=".4f")
