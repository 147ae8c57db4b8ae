"""``hashbench bench-search``: how fast hash codes can be searched at millions of items,
measured the way ann-benchmarks measures vector search.

For each database size and code length: database codes on disk (a ``.npy`` read through a
memory map, written once in blocks; never held twice), queries, the exhaustive truth by
numpy for a sample of the queries, then each strategy of :mod:`hashbench.search`: build
time, memory of its index, queries per second for top-k and for radius-r retrieval,
recall against the truth, and lookup cost (candidates verified, table lookups).

Codes are ``random`` (uniform bits; queries are database items with each bit flipped with
probability 2 / bits), or those of a fitted method (``--codes itq``: the method is fitted
as a ``run`` cell would be; the database is the split's database codes replicated to the
size with each bit flipped with probability ``noise``, seeded; queries are the split's
query codes). Same arguments and seed give the same codes.

One CSV row per (codes, size, bits, strategy, task), written as each finishes (atomic;
an interrupted run resumes); a strategy projected to take longer than ``max_seconds`` on
the queries is recorded as skipped, with its projection, rather than run.
"""

import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import search
from .codes import n_words
from .errors import InputError
from .io import atomic_write

COLUMNS = ["codes", "n_database", "bits", "strategy", "task", "k_or_radius", "n_queries", "truth_queries",
           "build_s", "index_mb", "qps", "recall", "exact", "candidates", "lookups", "status",
           "peak_rss_mb", "load_avg"]
KEY = ["codes", "n_database", "bits", "strategy", "task"]
GEN_BLOCK = 1 << 20


def parse_size(text: str) -> int:
    """'1M', '10M', '500k', '20000' -> int; anything else is an InputError."""
    t = str(text).strip().lower().replace("_", "")
    mult = {"k": 10**3, "m": 10**6}.get(t[-1:], 1)
    num = t[:-1] if mult > 1 else t
    try:
        value = float(num) * mult
    except ValueError:
        raise InputError(f"--sizes: {text!r} is not a size (e.g. 1M, 10M, 50000)") from None
    if value != int(value) or value < 1:
        raise InputError(f"--sizes: {text!r} must be a positive whole number of codes")
    return int(value)


def check_settings(sizes, bits, strategies, k, radius, queries):
    for b in bits:
        if not 1 <= b <= 1024:
            raise InputError(f"--bits: {b} must be in [1, 1024]")
        if b % 8 and any(s.startswith("faiss") for s in strategies):
            raise InputError(f"--bits: {b} is not a multiple of 8, which FAISS's binary indexes need")
        if not 0 <= radius <= b:
            raise InputError(f"--radius: {radius} must be in [0, {b}] for {b} bits")
    if radius > search.HashTable.max_radius and "hash-table" in strategies:
        raise InputError(f"--radius: {radius} is too large for hash-table lookup (at most "
                         f"{search.HashTable.max_radius}: its probes grow as C(bits, r))")
    for s in strategies:
        if s not in search.STRATEGIES:
            raise InputError(f"--strategies: unknown {s!r}; choose from {', '.join(search.STRATEGIES)}")
    for n, nq in zip(sizes, queries, strict=True):
        if k < 1 or k > n:
            raise InputError(f"--topk: {k} must be in [1, {n}] (the database size)")
        if nq < 1:
            raise InputError(f"--queries: {nq} must be positive")


def _noisy(codes, n_bits, p, rng):
    """Flip each of the n_bits bits of every code with probability p (padding stays 0)."""
    flips = rng.random((codes.shape[0], n_bits)) < p
    padded = np.zeros((codes.shape[0], n_words(n_bits) * 64), dtype=bool)
    padded[:, :n_bits] = flips
    words = np.packbits(padded, axis=1, bitorder="little").view("<u8").astype(np.uint64)
    return codes ^ words


def _random_codes(n, n_bits, rng):
    words = rng.integers(0, 2**64, size=(n, n_words(n_bits)), dtype=np.uint64, endpoint=False)
    if n_bits % 64:
        words[:, -1] &= np.uint64((1 << (n_bits % 64)) - 1)
    return words


def fitted_codes(method: str, n_bits: int, seed: int, dataset: str = "auto", features: str = "pixels",
                 data_dir=None, store=None):
    """(query codes, database codes) of a fitted method on a dataset's split, as ``run`` fits it."""
    from .datasets import resolve_dataset
    from .experiment import fit_cell, make_cell, prepare
    from .protocols import default_protocol

    name, _ = resolve_dataset(dataset, data_dir)
    cell = make_cell(name, default_protocol(name), features, method, n_bits, seed)
    ds, split, hasher, X = prepare(cell, data_dir, store)
    fit_cell(ds, split, hasher, X)
    return hasher.encode(X[split.query]), hasher.encode(X[split.database])


def make_codes(path: Path, source: str, n: int, n_bits: int, n_queries: int, seed: int, noise: float,
               base=None):
    """Write the database codes to ``path`` (.npy, in blocks) unless already there; return
    (queries, database as a read-only memory map)."""
    rng = np.random.default_rng([seed, n_bits, n])
    w = n_words(n_bits)
    if source == "random":
        pick = np.random.default_rng([seed, n_bits, n, 1]).integers(0, n, n_queries)
    else:
        q_base, d_base = base
        rep = np.random.default_rng([seed, n_bits, n, 1])
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint64, shape=(n, w))
        for s in range(0, n, GEN_BLOCK):
            m = min(GEN_BLOCK, n - s)
            brng = np.random.default_rng([seed, n_bits, n, 2, s])
            if source == "random":
                out[s:s + m] = _random_codes(m, n_bits, brng)
            else:
                pos = np.arange(s, s + m)
                block = d_base[pos % d_base.shape[0]]
                first = pos < d_base.shape[0]  # the first copy of every code stays exact
                block[~first] = _noisy(block[~first], n_bits, noise, brng)
                out[s:s + m] = block
        out.flush()
        del out
        os.replace(tmp, path)
    db = np.load(path, mmap_mode="r")
    if db.shape != (n, w) or db.dtype != np.uint64:
        raise InputError(f"{path}: holds {db.dtype} {db.shape}, expected uint64 {(n, w)}; delete it")
    if source == "random":
        queries = _noisy(np.ascontiguousarray(db[np.sort(pick)]), n_bits, 2 / n_bits, rng)
    else:
        queries = np.ascontiguousarray(q_base[rep.permutation(q_base.shape[0])[:n_queries]]) \
            if n_queries <= q_base.shape[0] else q_base[rep.integers(0, q_base.shape[0], n_queries)]
    return np.ascontiguousarray(queries), db


def truth(q, db, k, radius):
    """Exhaustive numpy truth per query: the k-th smallest distance, the stable top k, and
    the items within ``radius``. Two passes over the database in blocks (a histogram of
    distances gives the k-th one; the second pass collects the items within it)."""
    nq, n_bits = q.shape[0], q.shape[1] * 64

    def dists(i, block):
        return np.bitwise_count(q[i] ^ block).sum(axis=1, dtype=np.int64)

    hist = np.zeros((nq, n_bits + 2), dtype=np.int64)
    for s in range(0, db.shape[0], GEN_BLOCK):
        block = np.ascontiguousarray(db[s:s + GEN_BLOCK])
        for i in range(nq):
            hist[i] += np.bincount(dists(i, block), minlength=n_bits + 2)
    kth = np.argmax(np.cumsum(hist, axis=1) >= k, axis=1)
    bound = np.maximum(kth, radius)
    found = [([], []) for _ in range(nq)]
    for s in range(0, db.shape[0], GEN_BLOCK):
        block = np.ascontiguousarray(db[s:s + GEN_BLOCK])
        for i in range(nq):
            d = dists(i, block)
            j = np.flatnonzero(d <= bound[i])
            found[i][0].append(j + s)
            found[i][1].append(d[j])
    topk, within = [], []
    for i in range(nq):
        j, d = np.concatenate(found[i][0]), np.concatenate(found[i][1])
        o = np.lexsort((j, d))
        topk.append(j[o][:k])
        within.append(np.sort(j[d <= radius]))
    return kth.astype(np.int64), np.array(topk), within


def _recall_knn(idx, dist_true_of, kth, k):
    """Fraction of returned items whose true distance is within the true k-th distance
    (ties at the k-th distance count: any of them is a correct k-th neighbour)."""
    ok = 0
    for i in range(len(kth)):
        got = idx[i][idx[i] >= 0]
        ok += int((dist_true_of(i, got) <= kth[i]).sum())
    return ok / (len(kth) * k)


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def bench_cell(strategy, q, db, k, radius, truth_data, max_seconds, log=print):
    """Rows (one per task) for one built-or-not strategy on one database."""
    kth, topk, within = truth_data
    nt = len(kth)
    rows = []
    build_s, s = _timed(lambda: strategy.build(db))
    index_mb = s.nbytes() / 2**20

    def dist_true_of(i, items):
        return np.bitwise_count(q[i] ^ np.asarray(db[np.sort(items)])).sum(axis=1)[np.argsort(np.argsort(items))]

    for task in s.tasks:
        row = {"strategy": s.name, "task": task, "k_or_radius": k if task == "knn" else radius,
               "n_queries": len(q), "truth_queries": nt, "build_s": build_s, "index_mb": index_mb}
        run = (lambda qq, task=task: s.knn(qq, k)) if task == "knn" else (lambda qq: s.radius(qq, radius))
        run(q[:2])  # compile and warm up outside the timing
        probe = min(len(q), 10)
        t_probe, _ = _timed(lambda run=run, probe=probe: run(q[:probe]))
        projected = t_probe / probe * len(q)
        if projected > max_seconds:
            row.update(status=f"skipped: {projected:.0f} s projected for {len(q)} queries (> {max_seconds:.0f} s)",
                       qps=len(q) / projected)
            rows.append(row)
            log(f"  {s.name} {task}: skipped ({projected:.0f} s projected)")
            continue
        seconds, out = _timed(lambda run=run: run(q))
        cost = s.cost or {}
        row.update(qps=len(q) / seconds, status="ok",
                   candidates=float(np.mean(cost["candidates"])) if "candidates" in cost else None,
                   lookups=float(np.mean(cost["lookups"])) if "lookups" in cost else None)
        if task == "knn":
            idx = out[0]
            row["recall"] = _recall_knn(idx[:nt], dist_true_of, kth, k)
            row["exact"] = bool(np.array_equal(idx[:nt], topk))
        else:
            hit = sum(np.intersect1d(out.row(i), within[i]).size for i in range(nt))
            total = sum(w.size for w in within)
            row["recall"] = hit / total if total else 1.0
            row["exact"] = all(np.array_equal(np.sort(out.row(i)), within[i]) for i in range(nt))
        rows.append(row)
        log(f"  {s.name} {task}: {row['qps']:.0f} q/s, recall {row['recall']:.4f}, "
            f"{'exact' if row['exact'] else 'not exact'}, build {build_s:.2f} s, {index_mb:.0f} MB")
    return rows


def read_rows(out: Path) -> pd.DataFrame:
    if not out.exists():
        return pd.DataFrame(columns=COLUMNS)
    df = pd.read_csv(out)
    missing = set(KEY) - set(df.columns)
    if missing:
        raise InputError(f"{out}: not a search-speed CSV (no {', '.join(sorted(missing))} column)")
    return df


def _write(out: Path, df: pd.DataFrame):
    with atomic_write(out, "w") as f:
        df.to_csv(f, index=False)


def bench_search(sizes, bits, strategies=None, codes="random", queries=None, k=100, radius=2, seed=0,
                 noise=0.05, out="results/search-speed.csv", workdir="runs/search", max_seconds=300.0,
                 truth_queries=100, dataset="auto", features="pixels", data_dir=None, store=None,
                 force=False, figure=True, log=print):
    """Run the grid; returns the CSV's rows. ``queries``: one count, or one per size
    (default 1,000 up to 1M codes, 200 above)."""
    strategies = list(strategies or search.STRATEGIES)
    sizes = [parse_size(s) for s in sizes]
    bits = [int(b) for b in bits]
    if queries is None:
        queries = [1000 if n <= 10**6 else 200 for n in sizes]
    queries = list(queries) * len(sizes) if len(queries) == 1 else list(queries)
    if truth_queries < 1 or max_seconds <= 0:
        raise InputError("--truth-queries must be positive and --max-seconds above 0")
    if len(queries) != len(sizes):
        raise InputError(f"--queries: give one count, or one per size ({len(sizes)})")
    check_settings(sizes, bits, strategies, k, radius, queries)
    if noise < 0 or noise > 0.5:
        raise InputError(f"--noise: {noise} must be in [0, 0.5]")
    if any(s.startswith("faiss") for s in strategies):
        search._faiss()  # the one-line error naming the extra, before any work
    out, workdir = Path(out), Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    done = read_rows(out)
    source = codes if codes == "random" else f"{codes}:{features}"
    if force:  # this grid's rows go; other rows of the file stay
        planned = {(source, str(n), str(b), s, t) for n in sizes for b in bits for s in strategies
                   for t in search.STRATEGIES[s].tasks}
        keep = [tuple(r) not in planned for r in done[KEY].astype(str).itertuples(index=False)]
        done = done[keep].reset_index(drop=True)
    have = {tuple(r) for r in done[KEY].astype(str).itertuples(index=False)}
    for b in bits:
        base = None if codes == "random" else fitted_codes(codes, b, seed, dataset, features, data_dir, store)
        for n, nq in zip(sizes, queries, strict=True):
            todo = [s for s in strategies for t in search.STRATEGIES[s].tasks
                    if (source, str(n), str(b), s, t) not in have]
            if not todo:
                continue
            log(f"{source} codes, {n:,} x {b} bits, {nq} queries")
            path = workdir / f"{source.replace(':', '-')}-{b}b-{n}-s{seed}.npy"
            q, db = make_codes(path, codes, n, b, nq, seed, noise, base)
            tr = truth(q[:truth_queries], db, k, radius)
            for name in dict.fromkeys(todo):
                strategy = search.get_strategy(name, b)
                for row in bench_cell(strategy, q, db, k, radius, tr, max_seconds, log):
                    row.update(codes=source, n_database=n, bits=b, peak_rss_mb=_peak_rss_mb(),
                               load_avg=os.getloadavg()[0])
                    done = pd.concat([done, pd.DataFrame([row])], ignore_index=True) if len(done) else \
                        pd.DataFrame([row])
                    _write(out, done.reindex(columns=COLUMNS))
                del strategy
            del db
    if figure and len(done):
        plot_search_speed(done, out.with_suffix(""))
    return done.reindex(columns=COLUMNS)


def plot_search_speed(df: pd.DataFrame, stem):
    """QPS against recall (top-k, radius) and against code length, one line per strategy;
    solid lines for the smallest database size, dashed for larger."""
    from matplotlib.figure import Figure

    from .plots import save

    df = df[df["status"] == "ok"].copy()
    fig = Figure(figsize=(11, 8.5))
    axes = fig.subplots(2, 2)
    sizes = sorted(df["n_database"].unique())
    styles = ["-", "--", ":", "-."]
    colors = {name: f"C{i}" for i, name in enumerate(search.STRATEGIES)}
    for col, task in enumerate(("knn", "radius")):
        part = df[df["task"] == task]
        for (name, n), g in part.groupby(["strategy", "n_database"]):
            g = g.sort_values("bits")
            ls = styles[sizes.index(n) % len(styles)]
            lab = f"{name}, {n / 1e6:g}M"
            axes[0, col].plot(g["recall"], g["qps"], ls, marker="o", color=colors.get(name), label=lab)
            for _, r in g.iterrows():
                axes[0, col].annotate(f"{r['bits']}", (r["recall"], r["qps"]), fontsize=7)
            axes[1, col].plot(g["bits"], g["qps"], ls, marker="o", color=colors.get(name), label=lab)
        what = f"top-{int(part['k_or_radius'].iloc[0])}" if task == "knn" and len(part) else \
            (f"radius {int(part['k_or_radius'].iloc[0])}" if len(part) else task)
        axes[0, col].set(xlabel="recall against exhaustive search", ylabel="queries per second", yscale="log",
                         title=f"{what}: speed vs recall (labels: bits)")
        axes[1, col].set(xlabel="bits", ylabel="queries per second", yscale="log",
                         title=f"{what}: speed vs code length")
        axes[1, col].set_xticks(sorted(df["bits"].unique()))
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(f"Search speed of hash codes ({', '.join(sorted(df['codes'].unique()))})")
    fig.tight_layout()
    return save(fig, stem)
