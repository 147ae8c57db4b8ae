"""Every metric against a slow, obvious reference, hand-computed cases and Monte-Carlo."""

import itertools

import numpy as np
import pytest

from hashbench import ranking
from hashbench.codes import pack
from hashbench.errors import InputError
from hashbench.metrics import RECALL_LEVELS, evaluate, rank_stats, tie_aware_ap


# ---------------------------------------------------------------- slow references
def ref_dist(qb, db):
    return (qb[:, None, :] != db[None, :, :]).sum(axis=2)


def ref_relevance(ql, dl):
    if ql.ndim == 2:
        return (ql.astype(int) @ dl.astype(int).T) > 0
    return ql[:, None] == dl[None, :]


def ap_of(rel_sorted, cut=None):
    rel_sorted = np.asarray(rel_sorted, dtype=bool)
    if cut is not None:
        rel_sorted = rel_sorted[:cut]
    hits = np.cumsum(rel_sorted)
    ranks = np.arange(1, len(rel_sorted) + 1)
    if hits[-1] == 0 if len(hits) else True:
        return 0.0
    return float((hits / ranks)[rel_sorted].mean())


def ref_all(qb, db, ql, dl, radius, topk, self_index):
    """Per-query metrics, one query at a time, the plain way."""
    D = ref_dist(qb, db)
    REL = ref_relevance(ql, dl)
    out = {k: [] for k in ("ap", "opt", "pes", "p_r", "empty", "apk", "pk", "levels", "valid")}
    pooled_ret = np.zeros(qb.shape[1] + 1)
    pooled_rel = np.zeros(qb.shape[1] + 1)
    pooled_total = 0
    for i in range(len(qb)):
        keep = np.arange(len(db)) != self_index[i]
        d, rel = D[i][keep], REL[i][keep]
        order = np.argsort(d, kind="stable")
        out["valid"].append(rel.sum() > 0)
        out["ap"].append(ap_of(rel[order]))
        out["opt"].append(ap_of(rel[np.lexsort((~rel, d))]))
        out["pes"].append(ap_of(rel[np.lexsort((rel, d))]))
        inside = d <= radius
        out["p_r"].append(rel[inside].mean() if inside.any() else 0.0)
        out["empty"].append(not inside.any())
        if topk:
            out["apk"].append(ap_of(rel[order], topk))
            out["pk"].append(rel[order][:topk].sum() / min(topk, len(d)))
        R = rel.sum()
        hits = np.cumsum(rel[order])
        prec = hits / np.arange(1, len(d) + 1)
        lv = []
        for level in RECALL_LEVELS:
            t = max(int(np.ceil(level * R - 1e-9)), 1)
            lv.append(prec[np.searchsorted(hits, t)] if R else 0.0)
        out["levels"].append(lv)
        if R:
            for r in range(qb.shape[1] + 1):
                pooled_ret[r] += (d <= r).sum()
                pooled_rel[r] += rel[d <= r].sum()
            pooled_total += R
    out = {k: np.array(v) for k, v in out.items()}
    out["pooled"] = (pooled_ret, pooled_rel, pooled_total)
    return out


def random_case(rng, nq, ndb, k, multilabel, n_classes=4):
    # few distinct codes => many ties
    protos = rng.integers(0, 2, (6, k))
    qb = protos[rng.integers(0, 6, nq)] ^ (rng.random((nq, k)) < 0.05)
    db = protos[rng.integers(0, 6, ndb)] ^ (rng.random((ndb, k)) < 0.05)
    if multilabel:
        ql = rng.random((nq, 5)) < 0.25
        dl = rng.random((ndb, 5)) < 0.25
    else:
        ql = rng.integers(0, n_classes, nq)
        dl = rng.integers(0, n_classes, ndb)
    return qb.astype(np.uint8), db.astype(np.uint8), ql, dl


@pytest.mark.parametrize("k", [12, 24, 48, 64, 128])
@pytest.mark.parametrize("multilabel", [False, True])
@pytest.mark.parametrize("with_self", [False, True])
def test_metrics_match_reference(k, multilabel, with_self):
    rng = np.random.default_rng(k + 7 * multilabel + 3 * with_self)
    nq, ndb, topk, radius = 40, 300, 25, 2
    qb, db, ql, dl = random_case(rng, nq, ndb, k, multilabel)
    self_index = np.full(nq, -1)
    if with_self:  # queries are database items: their own entry is left out
        self_index = rng.choice(ndb, nq, replace=False)
        qb, ql = db[self_index], dl[self_index]
    ref = ref_all(qb, db, ql, dl, radius, topk, self_index)
    res = evaluate(pack(qb), pack(db), ql, dl, k, radius=radius, topk=topk, self_index=self_index)
    v = ref["valid"]
    assert res["n_no_relevant"] == (~v).sum()
    assert res["map"] == pytest.approx(ref["ap"][v].mean(), abs=1e-12)
    assert res["map_optimistic"] == pytest.approx(ref["opt"][v].mean(), abs=1e-10)
    assert res["map_pessimistic"] == pytest.approx(ref["pes"][v].mean(), abs=1e-10)
    assert res["map_optimistic"] >= res["map_expected"] >= res["map_pessimistic"]
    assert res["precision_r"][str(radius)] == pytest.approx(ref["p_r"][v].mean(), abs=1e-12)
    assert res["empty_r_fraction"] == pytest.approx(ref["empty"][v].mean())
    assert res["map_at_k"] == pytest.approx(ref["apk"][v].mean(), abs=1e-12)
    assert res["precision_at_k"] == pytest.approx(ref["pk"][v].mean(), abs=1e-12)
    levels = [p["precision"] for p in res["pr_recall_levels"]]
    np.testing.assert_allclose(levels, ref["levels"][v].mean(axis=0), atol=1e-12)
    ret, rel, total = ref["pooled"]
    got = res["pr_curve"]
    assert len(got) == k + 1
    np.testing.assert_allclose([p["precision"] for p in got], np.where(ret > 0, rel / np.maximum(ret, 1), 0))
    np.testing.assert_allclose([p["recall"] for p in got], rel / total)


def test_hand_computed_case():
    # database at distances 0, 1, 1, 2 from the query; relevant: items 0 and 2
    q = pack(np.array([[0, 0, 0, 0]]))
    d = pack(np.array([[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0]]))
    res = evaluate(q, d, [1], [1, 0, 1, 0], n_bits=4, radius=1, topk=2)
    assert res["map"] == pytest.approx((1 / 1 + 2 / 3) / 2)  # stable: 0, 1, 2, 3
    assert res["map_optimistic"] == pytest.approx((1 + 2 / 2) / 2)  # 0, 2, 1, 3
    assert res["map_pessimistic"] == pytest.approx((1 + 2 / 3) / 2)  # 0, 1, 2, 3
    assert res["map_expected"] == pytest.approx((1 + 0.5 * 2 / 2 + 0.5 * 2 / 3) / 2)
    assert res["precision_r"] == {"0": 1.0, "1": pytest.approx(2 / 3)}
    assert res["map_at_k"] == 1.0  # top 2 = items 0, 1: one relevant, at rank 1
    assert res["precision_at_k"] == 0.5


def test_expected_ap_equals_exhaustive_average_over_tie_orders():
    rng = np.random.default_rng(3)
    dist = np.array([0, 1, 1, 1, 2, 2, 3, 3, 3])
    rel = np.array([1, 0, 1, 1, 0, 1, 1, 0, 0], dtype=bool)
    hist_all = np.bincount(dist, minlength=4)[None]
    hist_rel = np.bincount(dist[rel], minlength=4)[None]
    groups = [np.flatnonzero(dist == b) for b in range(4)]
    aps = []
    for perms in itertools.product(*(itertools.permutations(g) for g in groups)):
        aps.append(ap_of(rel[np.concatenate(perms)]))
    expected, _, _ = tie_aware_ap(hist_all, hist_rel)
    assert expected[0] == pytest.approx(np.mean(aps), abs=1e-12)
    del rng


@pytest.mark.parametrize("multilabel", [False, True])
def test_expected_ap_matches_monte_carlo(multilabel):
    rng = np.random.default_rng(11)
    qb, db, ql, dl = random_case(rng, 5, 400, 12, multilabel)
    res = evaluate(pack(qb), pack(db), ql, dl, 12)
    D, REL = ref_dist(qb, db), ref_relevance(ql, dl)
    per_query = []
    for i in range(len(qb)):
        if not REL[i].any():
            continue
        samples = [ap_of(REL[i][np.lexsort((rng.random(len(db)), D[i]))]) for _ in range(3000)]
        per_query.append(np.mean(samples))
    # 3000 shuffles: the standard error of a mean of APs is well below 2e-3
    assert res["map_expected"] == pytest.approx(np.mean(per_query), abs=3e-3)


def test_query_without_relevant_items_is_left_out_everywhere():
    q = pack(np.array([[0, 0], [1, 1]]))
    d = pack(np.array([[0, 0], [0, 1]]))
    res = evaluate(q, d, [0, 5], [0, 1], n_bits=2, radius=0)
    assert res["n_no_relevant"] == 1
    assert res["map"] == 1.0 and res["precision_r"]["0"] == 1.0


def test_stable_topk_matches_argsort():
    rng = np.random.default_rng(5)
    qb, db, _, _ = random_case(rng, 30, 200, 24, False)
    q, d = pack(qb), pack(db)
    D = ref_dist(qb, db)
    np.testing.assert_array_equal(ranking.hamming_distances(q, d), D)
    self_index = np.full(30, -1)
    self_index[::3] = rng.integers(0, 200, 10)
    idx, dist = ranking.stable_topk(q, d, 15, self_index)
    for i in range(30):
        keep = np.flatnonzero(np.arange(200) != self_index[i])
        order = keep[np.argsort(D[i, keep], kind="stable")]
        np.testing.assert_array_equal(idx[i], order[:15])
        np.testing.assert_array_equal(dist[i], D[i, order[:15]])


def test_histograms_agree_with_reference():
    rng = np.random.default_rng(8)
    qb, db, ql, dl = random_case(rng, 20, 150, 100, False)
    stats = rank_stats(pack(qb), pack(db), ql, dl, 100)
    D = ref_dist(qb, db)
    for i in range(20):
        np.testing.assert_array_equal(stats.hist_all[i], np.bincount(D[i], minlength=101))


@pytest.mark.parametrize("kwargs, msg", [
    (dict(query_labels=[0, 1, 2]), "query labels: has 3 rows"),
    (dict(db_labels=np.zeros((4, 3))), "both be class ids or multi-hot"),
    (dict(n_bits=70), "do not hold 70 bits"),
    (dict(radius=9), "radius"),
    (dict(query_codes=np.zeros((0, 1), dtype=np.uint64), query_labels=np.zeros(0)), "no codes"),
    (dict(query_codes=np.zeros((2, 4))), "packed uint64"),
])
def test_bad_input_is_refused(kwargs, msg):
    args = dict(query_codes=pack(np.zeros((2, 4))), db_codes=pack(np.ones((4, 4))),
                query_labels=[0, 1], db_labels=[0, 1, 1, 0], n_bits=4)
    args.update(kwargs)
    with pytest.raises(InputError, match=msg):
        evaluate(**args)
