"""Search strategies against the slow obvious reference (unpacked bits, a stable argsort per
query), on seeded random and clustered codes with many ties, up to 128 bits; the
bench-search runner, its CSV and its input checks; the radius-2 lookup cost."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from hashbench import ranking, search
from hashbench.cli import main
from hashbench.codes import pack
from hashbench.errors import InputError
from hashbench.searchbench import bench_search, make_codes, parse_size

EXACT = ["linear", "hash-table", "mih"]


def codes(kind, n, nq, bits, seed):
    rng = np.random.default_rng(seed)
    if kind == "random":
        db = rng.integers(0, 2, (n, bits))
        qb = rng.integers(0, 2, (nq, bits))
        qb[: nq // 2] = db[rng.integers(0, n, nq // 2)]  # queries with neighbours at distance 0
    else:  # clustered, as learned codes: few distinct distances, many ties, duplicates
        centres = rng.integers(0, 2, (4, bits))
        db = centres[rng.integers(0, 4, n)] ^ (rng.random((n, bits)) < 0.04)
        db[::5] = db[1]
        qb = centres[rng.integers(0, 4, nq)] ^ (rng.random((nq, bits)) < 0.04)
    return qb, db


def reference(qb, db, k, r):
    """Distances from unpacked bits; stable argsort per query."""
    D = (qb[:, None, :] != db[None, :, :]).sum(axis=2)
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    within = [np.flatnonzero(D[i] <= r) for i in range(len(qb))]
    within = [w[np.argsort(D[i, w], kind="stable")] for i, w in enumerate(within)]
    return order, np.take_along_axis(D, order, axis=1), within, D


@pytest.mark.parametrize("bits", [16, 48, 64, 100, 128])
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_exact_strategies_match_the_reference(kind, bits):
    qb, db = codes(kind, 1500, 24, bits, seed=bits)
    q, d = pack(qb), pack(db)
    k = 40
    ref_idx, ref_dist, _, D = reference(qb, db, k, 0)
    for name in EXACT:
        s = search.get_strategy(name, bits).build(d)
        if "knn" in s.tasks:
            idx, dist = s.knn(q, k)
            np.testing.assert_array_equal(idx, ref_idx, err_msg=f"{name} {kind} {bits}")
            np.testing.assert_array_equal(dist, ref_dist)
        for r in (0, 1, 2, 3):
            res = s.radius(q, r)
            for i in range(len(q)):
                want = np.flatnonzero(D[i] <= r)
                want = want[np.argsort(D[i, want], kind="stable")]
                np.testing.assert_array_equal(res.row(i), want, err_msg=f"{name} r={r} {kind} {bits}")
                np.testing.assert_array_equal(res.distances[res.indptr[i]:res.indptr[i + 1]], D[i, want])


@pytest.mark.parametrize("m", [2, 3, 5])
def test_mih_is_exact_for_any_substring_count(m):
    qb, db = codes("clustered", 800, 16, 70, seed=m)
    q, d = pack(qb), pack(db)
    ref_idx, _, _, D = reference(qb, db, 25, 0)
    s = search.MultiIndexHashing(70, m=m).build(d)
    np.testing.assert_array_equal(s.knn(q, 25)[0], ref_idx)
    res = s.radius(q, 4)
    for i in range(len(q)):
        assert set(res.row(i)) == set(np.flatnonzero(D[i] <= 4))
    # candidates verified: the items that match the query exactly in some substring (4 // m = 0
    # flips for m = 5), counted by brute force
    if m == 5:
        los, lens = search.mih_substrings(70, 5)
        share = np.zeros((len(qb), len(db)), dtype=bool)
        for lo, ln in zip(los, lens, strict=True):
            share |= (qb[:, None, lo:lo + ln] == db[None, :, lo:lo + ln]).all(axis=2)
        np.testing.assert_array_equal(s.cost["candidates"], share.sum(axis=1))


def test_substrings_and_default_m():
    los, lens = search.mih_substrings(10, 3)
    assert lens.tolist() == [4, 3, 3] and los.tolist() == [0, 4, 7]
    assert search.mih_default_m(64, 2**20) == 3 and search.mih_default_m(128, 10) >= 2
    with pytest.raises(InputError, match="m must be"):
        search.MultiIndexHashing(128, m=1)


def test_topk_streamed_in_blocks_equals_one_pass_and_skips_self():
    qb, db = codes("clustered", 3000, 20, 48, seed=3)
    q, d = pack(qb), pack(db)
    self_index = np.arange(20) * 7
    idx, dist = ranking.stable_topk(q, d, 50, self_index)
    for step in (1, 13, 1000):
        top = ranking.TopK(q, 50, self_index=self_index)
        for s in range(0, 3000, 700):
            top.add(d[s:s + 700], step=step)
        np.testing.assert_array_equal(top.idx, idx)
        np.testing.assert_array_equal(top.dist, dist)
    assert not (idx == self_index[:, None]).any()
    # a stream with fewer items than k: the rest is -1 (stable_topk refuses such a k outright)
    top = ranking.TopK(q[:2], 8).add(d[:5])
    assert (top.idx[:, 5:] == -1).all() and (top.dist[:, 5:] == -1).all() and (top.idx[:, :5] >= 0).all()
    with pytest.raises(InputError, match="k must be an integer in"):
        ranking.stable_topk(q[:2], d[:5], 8)


def test_linear_reads_a_memory_mapped_database_in_blocks(tmp_path, monkeypatch):
    qb, db = codes("random", 5000, 10, 128, seed=4)
    q, d = pack(qb), pack(db)
    np.save(tmp_path / "db.npy", d)
    mm = np.load(tmp_path / "db.npy", mmap_mode="r")
    monkeypatch.setattr(search, "BLOCK", 777)
    s = search.Linear(128).build(mm)
    ref_idx, _, _, D = reference(qb, db, 30, 0)
    np.testing.assert_array_equal(s.knn(q, 30)[0], ref_idx)
    res = s.radius(q, 60)
    for i in range(len(q)):
        assert sorted(res.row(i)) == list(np.flatnonzero(D[i] <= 60))


def test_faiss_peers_find_the_true_distances():
    pytest.importorskip("faiss")
    qb, db = codes("clustered", 2000, 16, 64, seed=5)
    q, d = pack(qb), pack(db)
    _, ref_dist, _, D = reference(qb, db, 20, 0)
    flat = search.get_strategy("faiss-flat", 64).build(d)
    idx, dist = flat.knn(q, 20)
    np.testing.assert_array_equal(dist, ref_dist)  # exact up to the order of ties
    np.testing.assert_array_equal(np.take_along_axis(D, idx, axis=1), ref_dist)
    for name in ("faiss-flat", "faiss-hash", "faiss-multihash"):
        res = search.get_strategy(name, 64).build(d).radius(q, 2)
        for i in range(len(q)):  # these find a subset of the truth, never a wrong item
            assert set(res.row(i)) <= set(np.flatnonzero(D[i] <= 2))


def test_bad_radius_bits_and_names():
    d = pack(np.zeros((5, 64), dtype=int))
    with pytest.raises(InputError, match="radius"):
        search.get_strategy("linear", 64).build(d).radius(d, 65)
    with pytest.raises(InputError, match="too large for bit-flip"):
        search.get_strategy("hash-table", 64).build(d).radius(d, 4)
    with pytest.raises(InputError, match="unknown search strategy"):
        search.get_strategy("kd-tree", 64)
    with pytest.raises(InputError, match="128 bits"):
        search.get_strategy("linear", 128).build(d)
    with pytest.raises(InputError, match="multiple of 8"):
        search.as_faiss(d, 60)


def test_parse_size():
    assert parse_size("1M") == 10**6 and parse_size("10m") == 10**7 and parse_size("500k") == 500_000
    assert parse_size("2500") == 2500
    for bad in ("0", "-1", "1.5", "ten", "1.2k3"):
        with pytest.raises(InputError):
            parse_size(bad)


@pytest.mark.parametrize("argv, what", [
    (["--sizes", "0"], "--sizes"),
    (["--sizes", "1M", "--bits", "12"], "multiple of 8"),
    (["--sizes", "1M", "--bits", "0"], "--bits"),
    (["--sizes", "1M", "--bits", "32", "--radius", "33"], "--radius"),
    (["--sizes", "1M", "--radius", "-1"], "--radius"),
    (["--sizes", "1M", "--radius", "4"], "hash-table"),
    (["--sizes", "1M", "--strategies", "kd-tree"], "kd-tree"),
    (["--sizes", "1000", "--topk", "1001"], "--topk"),
    (["--sizes", "1M,10M", "--queries", "1,2,3"], "--queries"),
    (["--sizes", "1M", "--noise", "0.9"], "--noise"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, what, capsys, tmp_path):
    out = tmp_path / "s.csv"
    assert main(["bench-search", *argv, "--out", str(out), "--workdir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and what in err
    assert (not out.exists() and not (tmp_path / "w").exists()) or not any((tmp_path / "w").iterdir())


def test_bench_search_rows_resume_and_figure(tmp_path):
    out = tmp_path / "search-speed.csv"
    kw = {"sizes": ["3000"], "bits": [64, 128], "strategies": ["linear", "hash-table", "mih"], "queries": [60],
          "k": 10, "radius": 2, "out": out, "workdir": tmp_path / "w", "truth_queries": 30, "log": lambda _: None}
    rows = bench_search(**kw)
    assert len(rows) == 2 * 5  # linear knn+radius, hash-table radius, mih knn+radius
    assert (rows["status"] == "ok").all() and rows["exact"].all() and (rows["recall"] == 1.0).all()
    assert (rows["qps"] > 0).all() and (rows["n_database"] == 3000).all()
    assert (tmp_path / "search-speed.png").stat().st_size > 10_000
    before = out.read_text()
    again = bench_search(**kw)  # resumes: every cell is there, nothing runs
    assert out.read_text() == before and len(again) == len(rows)
    # the same seed gives the same codes; the file on disk is what the truth reads
    q1, d1 = make_codes(tmp_path / "a.npy", "random", 500, 64, 7, 0, 0.05)
    q2, d2 = make_codes(tmp_path / "b.npy", "random", 500, 64, 7, 0, 0.05)
    np.testing.assert_array_equal(q1, q2)
    np.testing.assert_array_equal(np.asarray(d1), np.asarray(d2))


def test_fitted_codes_are_real_codes_replicated_with_noise(tmp_path):
    kw = {"sizes": ["4000"], "bits": [16], "strategies": ["linear", "mih"], "codes": "lsh", "dataset": "digits",
          "features": "pixels", "queries": [40], "k": 5, "truth_queries": 20, "figure": False,
          "log": lambda _: None}
    rows = bench_search(out=tmp_path / "a.csv", workdir=tmp_path / "a", **kw)
    assert (rows["codes"] == "lsh:pixels").all() and rows["exact"].all()
    again = bench_search(out=tmp_path / "b.csv", workdir=tmp_path / "b", **kw)
    files = sorted((tmp_path / "a").glob("*.npy")), sorted((tmp_path / "b").glob("*.npy"))
    assert files[0][0].read_bytes() == files[1][0].read_bytes()  # same seed, same codes
    db = np.load(files[0][0])
    n_base = len(np.unique(db[:1000], axis=0))
    assert len(np.unique(db, axis=0)) > n_base  # copies past the first carry bit noise
    assert len(again) == len(rows)


def test_skips_a_strategy_projected_too_slow(tmp_path):
    rows = bench_search(["2000"], [64], strategies=["linear"], queries=[50], k=5, out=tmp_path / "s.csv",
                        workdir=tmp_path / "w", truth_queries=5, max_seconds=1e-9, figure=False, log=lambda _: None)
    assert rows["status"].str.startswith("skipped").all()


def test_radius_lookup_cost_counts_candidates():
    qb, db = codes("clustered", 2000, 30, 32, seed=6)
    q, d = pack(qb), pack(db)
    cost = search.radius_lookup_cost(q, d, 32, 2)
    m = cost["m"]
    los, lens = search.mih_substrings(32, m)
    per = 2 // m
    near = np.zeros((len(qb), len(db)), dtype=bool)
    for lo, ln in zip(los, lens, strict=True):
        near |= (qb[:, None, lo:lo + ln] != db[None, :, lo:lo + ln]).sum(axis=2) <= per
    assert cost["candidates"] == pytest.approx(near.sum(axis=1).mean())
    assert cost["lookups"] >= m and "qps" not in cost
    assert cost == search.radius_lookup_cost(q, d, 32, 2)  # deterministic: a row stores it
    assert search.radius_lookup_cost(q, d, 32, 2, timed=True)["qps"] > 0
    json.dumps(cost)


def test_radius_lookup_cost_of_collapsed_codes_collects_no_results(monkeypatch):
    """Collapsed codes (one value for nearly every item) put the whole database within the
    radius of every query: the stored cost is counted in one pass that collects no results
    (``radius`` is never called), and only the timed retrieval runs, in blocks of at most
    LOOKUP_RESULTS results."""
    rng = np.random.default_rng(7)
    db = np.zeros((3000, 12), dtype=bool)
    db[rng.choice(3000, 40, replace=False)] = rng.random((40, 12)) < 0.5
    qb = np.zeros((101, 12), dtype=bool)
    qb[::10] = rng.random((11, 12)) < 0.5
    q, d = pack(qb), pack(db)
    calls = []
    real = search.MultiIndexHashing.radius
    monkeypatch.setattr(search.MultiIndexHashing, "radius", lambda self, q, r: calls.append(len(q)) or real(self, q, r))
    whole = search.radius_lookup_cost(q, d, 12, 2)
    near = ((qb[:, None, :] != db[None, :, :]).sum(axis=2) <= 2).sum(axis=1)
    assert whole["m"] == 1 and whole["candidates"] == pytest.approx(near.mean())  # m = 1: candidates = results
    assert calls == []
    monkeypatch.setattr(search, "LOOKUP_RESULTS", 3000 * 7)
    timed = search.radius_lookup_cost(q, d, 12, 2, timed=True)
    assert calls == [2] + [7] * 14 + [3] and timed.pop("qps") > 0 and timed == whole


def test_radius_count_equals_the_collected_results():
    """The count-only pass finds what ``radius`` collects, at the same cost."""
    qb, db = codes("clustered", 2000, 40, 32, seed=8)
    q, d = pack(qb), pack(db)
    mih = search.MultiIndexHashing(32, m=4).build(d)
    count = mih.radius_count(q, 3)
    cost = {k: v.copy() for k, v in mih.cost.items()}
    res = mih.radius(q, 3)
    assert np.array_equal(count, np.diff(res.indptr))
    assert np.array_equal(count, [len(j) for j, _ in search.exhaustive_radius(q, d, 3)])
    assert all(np.array_equal(cost[k], mih.cost[k]) for k in cost)


def test_run_rows_carry_the_lookup_cost(tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert main(["run", "--methods", "lsh", "--bits", "16", "--dataset", "digits", "--out", str(out),
                 "--lookup-cost"]) == 0
    printed = capsys.readouterr().out
    assert "lookup_candidates_r2" in printed and "lookup_qps_r2" in printed
    rows = pd.read_csv(out)
    cost = json.loads(rows["curves"][0])["lookup_r2"]
    assert cost["radius"] == 2 and cost["candidates"] > 0
    line = next(ln for ln in printed.splitlines() if ln.startswith("digits"))
    assert float(line.split()[-1]) > 0  # queries per second, timed on the stored codes


def test_lookup_cost_with_the_default_result_file(tmp_path, monkeypatch, capsys):
    """Without --out the rows go to results/run.csv in the working folder, and the lookup
    columns are timed on the codes stored beside it."""
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--methods", "lsh", "--bits", "16", "--dataset", "digits", "--lookup-cost"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("digits"))
    assert (tmp_path / "results" / "run.csv").is_file() and float(line.split()[-1]) > 0


@pytest.mark.slow
def test_10m_database_is_never_held_in_memory(tmp_path):
    """Linear top-k and radius search over 10M x 64-bit codes on disk (80 MB): the peak RSS of
    a fresh process (VmHWM, reset before the database is opened) grows by about one read
    block; loading the same file whole instead grows it by the database, so the check can fail."""
    assert _peak_growth(tmp_path, "r") < search.BLOCK * 8 / 2**20 + 20
    whole = _peak_growth(tmp_path, None)
    assert whole > 70, whole  # the measurement sees a database held in memory


def _peak_growth(tmp_path, mode):
    n, bits = 10_000_000, 64
    if not (tmp_path / "db.npy").exists():
        make_codes(tmp_path / "db.npy", "random", n, bits, 20, 0, 0.05)
    db_mb = n * 8 / 2**20
    script = textwrap.dedent(f"""
        import numpy as np
        from hashbench import search

        def kib(field):
            return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field))

        q = np.random.default_rng(1).integers(0, 2**63, (20, 1), dtype=np.uint64)
        small = search.Linear({bits}).build(q.copy())
        small.knn(q, 5), small.radius(q, 2)  # compiled outside the measurement
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak RSS (VmHWM) starts again from the current RSS
        before = kib("VmRSS:")
        s = search.Linear({bits}).build(np.load({str(tmp_path / 'db.npy')!r}, mmap_mode={mode!r}))
        idx, dist = s.knn(q, 100)
        s.radius(q, 2)
        assert (idx >= 0).all()
        print((kib("VmHWM:") - before) / 1024)
    """)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    grew = float(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                env=env, timeout=600).stdout.strip())
    assert grew < db_mb * 1.5, (grew, db_mb)  # never the database twice
    return grew
