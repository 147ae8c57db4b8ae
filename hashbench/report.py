"""``hashbench report``: the result files as a static site to browse, and the README's result
tables, both made from ``results/`` so neither can drift from it.

The site (``build_site``) is plain HTML and CSS with a little inline JavaScript (sortable
tables): no server, no CDN, it opens from the file system offline. One page per experiment
(ours beside the paper's numbers, the difference coloured, the figures, every row with its
provenance in a ``<details>``, its stored codes named where present), a page per method
(parameters, source paper, all its cells), and pages for the leaderboard and search-speed
tables when their CSVs exist. What is absent is named, never a crash; a corrupt result file
is an :class:`InputError` before anything is written. The site is built in a temporary
folder beside ``--out`` and swapped into place.

``markdown_tables`` gives the README's tables; the README holds each between
``<!-- report:NAME -->`` and ``<!-- /report:NAME -->`` and a test regenerates them.
``format_table`` is the plain-text table ``run`` and ``reproduce`` print.
"""

import csv
import functools
import html
import inspect
import io
import math
import numbers
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .figures import FIGURES
from .hashers.base import method_label
from .io import atomic_write, check_writable
from .paper import SOURCE_TABLES, compare, experiment_of, load_baselines, variant
from .reproduce import EXPERIMENTS
from .results import KEY_COLUMNS, METRIC_COLUMNS, read_results, row_key
from .storedcodes import codes_dir, codes_path

# the experiment pages, in the README's order: (title, the paper's tables they stand beside)
EXPERIMENT_PAGES = {
    "table4": ("Table 4: mAP at 48 bits on hand-crafted and CNN features",
               "supplementary Table 4; the main paper's DSH mAP"),
    "figure6": ("Figure 6: PR curves and precision within Hamming radius 2 against code length",
                "supplementary Table 2 (DSH from scratch); the main paper's DSH mAP"),
    "table1": ("Supplementary Table 1: the regulariser and the sigmoid relaxation", "supplementary Table 1"),
    "table2": ("Supplementary Table 2: fine-tuned vs from scratch", "supplementary Table 2"),
    "table3": ("Supplementary Table 3: ensembles of 12-bit models", "supplementary Table 3"),
}
# CSVs shown as tables (the leaderboard's rows, summarised), and of other shapes than result
# rows, shown as they are when present
TABLE_PAGES = {"leaderboard": "Leaderboard", "search-speed": "Search speed"}
assert set(EXPERIMENT_PAGES) == set(EXPERIMENTS) - set(TABLE_PAGES)
assert set(SOURCE_TABLES) == set(EXPERIMENTS)  # paper.experiment_of names a file's experiment by them
SITE_MARKER = ".hashbench-report"  # marks a folder this module wrote, so --out never replaces another
SCREENSHOT = "report-index.png"  # the README's picture of the site, not a result figure
IMAGE_SUFFIXES = (".png", ".svg")
FEATURE_LABELS = {"gist": "Hand (GIST)", "cnn-cls": "CNN-cls", "cnn-ours": "CNN-ours"}
ROW_COLUMNS = ("protocol", "features", "method", "bits", "seed", "n_labelled", "variant", "map",
               "map_expected", "precision_r2", "empty_r2_fraction", "train_s")
NEAR = 0.01  # |ours - paper| within this: as the paper; beyond FAR: far from it
FAR = 0.05
# the columns of result rows the terminal tables show
DISPLAY_COLUMNS = (
    "dataset", "protocol", "features", "method", "bits", "seed", "n_labelled", "map",
    "map_expected", "map_at_k", "precision_r2", "empty_r2_fraction", "train_s", "encode_s", "rank_s",
)


def format_table(df: pd.DataFrame, columns=DISPLAY_COLUMNS, floatfmt: str = ".4f") -> str:
    """A plain-text table (tabulate) of result rows or baselines; columns with no value in
    any row (``map_at_k`` outside cut-off protocols) are left out, missing values blank."""
    from tabulate import tabulate

    cols = [c for c in columns if c in df.columns and df[c].notna().any()]
    values = df[cols].astype(object).where(df[cols].notna(), None)
    return tabulate(values.values.tolist(), headers=cols, floatfmt=floatfmt, tablefmt="simple")


def _figure_page(figure: str) -> str:
    """The experiment page a figure of ``figures.FIGURES`` goes on: the last grid it draws
    from (figure7 draws from none: it retrieves with figure6's 48-bit settings)."""
    sources = FIGURES[figure][0]
    return sources[-1] if sources else "figure6"


@dataclass
class ResultFile:
    """One result CSV: its rows, the experiment it belongs to (by name) and the comparison
    with the paper (indexed by row) when it has one."""

    stem: str
    path: Path
    rows: pd.DataFrame
    experiment: str | None = None
    comparison: pd.DataFrame | None = None

    @functools.cached_property
    def records(self) -> list[dict]:
        """The comparison's lines as dicts, ``row`` the label of the row each came from."""
        if self.comparison is None:
            return []
        return self.comparison.rename_axis("row").reset_index().to_dict("records")

    @property
    def page(self) -> str:
        return f"{self.stem}.html" if self.stem in EXPERIMENT_PAGES else f"run-{self.stem}.html"


@dataclass
class Results:
    """Everything ``report`` shows from one results folder, and what it could not find."""

    folder: Path
    files: dict[str, ResultFile] = field(default_factory=dict)
    tables: dict[str, tuple[list[str], list[list[str]]] | None] = field(default_factory=dict)  # TABLE_PAGES
    others: dict[str, tuple[list[str], list[list[str]]]] = field(default_factory=dict)  # other CSVs by stem
    figures: dict[str, list[Path]] = field(default_factory=dict)  # page stem -> images
    missing: list[tuple[str, str]] = field(default_factory=list)  # (file name, what makes it)

    def shown(self, name: str) -> str:
        """A file of the folder as pages name it: ``results/table4.csv``, whatever the path."""
        return f"{self.folder.name}/{name}"

    def missing_lines(self, full: bool = True) -> list[str]:
        return [f"{self.folder / n if full else self.shown(n)} ({why})" for n, why in self.missing]


def _is_result_file(path: Path) -> bool:
    """Whether a CSV is one of result rows (its header names the cell's key columns; then
    it is read strictly as one), not a table of another shape (a script's, a check's)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            header = next(csv.reader([f.readline()]), [])
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    return not header or set(KEY_COLUMNS) <= set(header)


def _read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """A CSV of any columns, read strictly: every row as long as the header."""
    try:
        lines = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline=""), strict=True))
    except (csv.Error, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not readable as CSV ({e})") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    if not lines:
        return [], []
    header = lines[0]
    for lineno, fields in enumerate(lines[1:], start=2):
        if len(fields) != len(header):
            raise InputError(f"{path}:{lineno}: row with {len(fields)} fields, expected {len(header)}")
    return header, lines[1:]


def collect(folder) -> Results:
    """Read every result file of ``folder`` (strictly: a corrupt one is an InputError) and
    note each experiment, table and figure that is absent."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--results: {folder} is not a folder")
    res = Results(folder)
    for path in sorted(folder.glob("*.csv")):
        stem = path.stem
        if stem.endswith("-vs-paper"):  # derived from the rows: the comparison is made afresh
            continue
        if stem in TABLE_PAGES or not _is_result_file(path):  # a table of another shape
            res.others[stem] = _read_table(path)
            continue
        rows = read_results(path)
        rows = rows.drop(columns=[c for c in ("curves",) if c in rows.columns])  # the figures show them
        name = experiment_of(stem)
        comparison = None
        if name is not None and len(rows):
            try:
                comparison = pd.concat([compare(name, part, dataset) for dataset, part in rows.groupby("dataset")])
            except (ValueError, KeyError, TypeError) as e:  # e.g. params that are not JSON
                raise InputError(f"{path}: rows not comparable with the paper's ({type(e).__name__}: {e})") from None
        res.files[stem] = ResultFile(stem, path, rows, name, comparison)
    for name in EXPERIMENT_PAGES:
        if name not in res.files:
            res.missing.append((f"{name}.csv", f"run `hashbench reproduce {name}`"))
    for name, title in TABLE_PAGES.items():
        res.tables[name] = res.others.pop(name, None)
        if res.tables[name] is None:
            res.missing.append((f"{name}.csv", f"no {title.lower()} results yet"))
    images = sorted(p for p in folder.iterdir() if p.suffix in IMAGE_SUFFIXES and p.name != SCREENSHOT)
    placed = set()
    for figure in sorted(FIGURES):
        ours = [p for p in images if p.stem == figure or p.stem.startswith(figure + "-")]
        if ours:
            page = _figure_page(figure)
            page = page if page in res.files or page in TABLE_PAGES else "figures"  # its grid is absent
            res.figures.setdefault(page, []).extend(ours)
            placed.update(ours)
        elif _figure_page(figure) in res.files:
            res.missing.append((f"{figure}.png", f"run `hashbench reproduce {figure}`"))
    others = [p for p in images if p not in placed]
    if others:
        res.figures.setdefault("figures", []).extend(others)
    return res


# ---------------------------------------------------------------------------------------- text

def _number(x, digits: int = 4) -> str:
    return "" if _is_missing(x) else f"{x:.{digits}f}"


def _signed(x, digits: int = 4) -> str:
    return "" if x is None or pd.isna(x) else f"{x:+.{digits}f}"


def _short(features: str) -> str:
    """``cnn-ours:model=...`` -> ``cnn-ours`` (the model is in the row's provenance)."""
    return str(features).split(":")[0]


def _method_label(method: str) -> str:
    """The method's declared ``label`` (plugins included), its name when it is not registered."""
    return method_label(method)


def _feature_label(features: str) -> str:
    return FEATURE_LABELS.get(_short(features), _short(features))


def _row_variant(row) -> str:
    try:
        return variant(row)
    except (ValueError, KeyError, TypeError):  # params of a method reproduce does not know
        return ""


# ------------------------------------------------------------------------------------ markdown

README_TABLES = ("table4", "figure6", "table1", "table2", "table3", "search-knn", "search-radius", "literature",
                 "leaderboard", "leaderboard-releases")
_CODE = re.compile(r"`([^`]*)`")
# A block's markers may be indented (a table inside a list item): the body carries the indent.
_BLOCK = re.compile(r"^([ \t]*)<!-- report:([\w-]+) -->\n(.*?)^\1<!-- /report:\2 -->", re.DOTALL | re.MULTILINE)


def _md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _protocols(comparison: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(comparison["protocol"]))


def _by(f: ResultFile, protocol: str, metric: str, **match) -> dict | None:
    """The first number of ``f``'s comparison with these values (its ``row`` the row's label)."""
    want = {"protocol": protocol, "metric": metric, **match}
    return next((r for r in f.records if all(r[k] == v for k, v in want.items())), None)


def _values(record: dict | None) -> tuple:
    return (None, None, None) if record is None else (record["ours"], record["paper"], record["diff"])


def _paper_order(comparison: pd.DataFrame, keys: list[str], source_table: str) -> list[tuple]:
    """The distinct (keys) of a comparison in the order the paper's table lists them (by
    bits first when ``bits`` is a key; keys the table lacks last, in the rows' order)."""
    base = load_baselines(source_table)
    base = base.assign(variant=base["variant"].replace("scratch", ""))
    position = {}
    for i, k in enumerate(map(tuple, base[keys].itertuples(index=False))):
        position.setdefault(k, i)
    found = list(dict.fromkeys(map(tuple, comparison[keys].itertuples(index=False))))
    bits = keys.index("bits") if "bits" in keys else None
    return sorted(found, key=lambda k: (0 if bits is None else k[bits], position.get(k, len(position))))


def _md_table4(f: ResultFile) -> str:
    c = f.comparison[f.comparison["metric"] == "map"]
    protocols = _protocols(c)
    header = ["features", "method", "bits", "paper"]
    for p in protocols:
        header += [f"ours, `{p}`", "diff"]
    keys = _paper_order(c, ["features", "method", "bits"], "supp-table4")  # the 12-bit DSH first
    out = []
    for features, method, bits in keys:
        line = [_feature_label(features), _method_label(method), str(bits)]
        paper = None
        cells = []
        for p in protocols:
            ours, pap, diff = _values(_by(f, p, "map", features=features, method=method, bits=bits))
            paper = pap if paper is None else paper
            cells += [_number(ours), _signed(diff)]
        out.append([*line, _number(paper), *cells])
    return _md(header, out)


def _pair(values, digits: int = 3) -> str:
    return " / ".join(_number(v, digits) if v is not None else "" for v in values)


def _md_variants(f: ResultFile, metrics: list[tuple[str, bool]], first: str, source_table: str) -> str:
    """Tables 1 and 3: one line per paper variant; for each (metric, paper reports it): the
    paper's number, then ours under each protocol."""
    c = f.comparison
    protocols = _protocols(c)
    names = {"precision_r2": "precision r2", "map": "mAP"}
    shown = " / ".join(f"`{p}`" for p in protocols)
    header = [first]
    for metric, published in metrics:
        header += ([f"paper {names[metric]}"] if published else []) + [f"ours {names[metric]} ({shown})"]
    out = []
    for (v,) in _paper_order(c, ["variant"], source_table):
        line = [v]
        for metric, published in metrics:
            ours, paper = [], None
            for p in protocols:
                m = next((r for r in f.records if r["protocol"] == p and r["variant"] == v), None)
                ours.append(None if m is None else f.rows.at[m["row"], metric])
                if published:
                    _, pap, _ = _values(_by(f, p, metric, variant=v))
                    paper = pap if paper is None else paper
            line += ([_number(paper)] if published else []) + [_pair(ours)]
        out.append(line)
    return _md(header, out)


def _md_table1(f: ResultFile) -> str:
    return _md_variants(f, [("precision_r2", True), ("map", False)], "model", "supp-table1")


def _md_table3(f: ResultFile) -> str:
    return _md_variants(f, [("map", True), ("precision_r2", True)], "models", "supp-table3")


def _md_table2(f: ResultFile) -> str:
    c = f.comparison
    protocols = _protocols(c)
    shown = " / ".join(f"`{p}`" for p in protocols)
    header = ["bits", "paper, scratch", f"ours, scratch ({shown})", "paper, fine-tuned", f"ours, fine-tuned ({shown})"]
    out = []
    for bits in sorted(set(c["bits"])):
        line = [str(bits)]
        for v in ("", "finetuned"):
            got = [_values(_by(f, p, "precision_r2", bits=bits, variant=v)) for p in protocols]
            paper = next((g[1] for g in got if g[1] is not None), None)
            line += [_number(paper), _pair([g[0] for g in got]) if paper is not None else ""]
        out.append(line)
    return _md(header, out)


def _md_figure6(f: ResultFile) -> str:
    rows = f.rows
    protocols = list(dict.fromkeys(rows["protocol"]))
    bits = sorted(set(rows["bits"]))
    header = ["features", "method"] + [f"{b} bits" for b in bits]
    out = []
    value = {}
    for p, features, method, b, v in zip(rows["protocol"], rows["features"].map(_short), rows["method"],
                                         rows["bits"], rows["precision_r2"], strict=True):
        value.setdefault((p, features, method, b), v)
    for features, method in dict.fromkeys((k[1], k[2]) for k in value):
        line = [_feature_label(features), _method_label(method)]
        line += [_pair([value.get((p, features, method, b)) for p in protocols]) for b in bits]
        out.append(line)
    c = f.comparison[f.comparison["metric"] == "precision_r2"]
    for features, method in _paper_order(c, ["features", "method"], "supp-table2"):
        line = [_feature_label(features), f"{_method_label(method)}, paper (supp. Table 2, from scratch)"]
        for b in bits:
            m = next((r for r in f.records if r["metric"] == "precision_r2" and r["features"] == features
                      and r["method"] == method and r["bits"] == b), None)
            line.append(_number(None if m is None else m["paper"]))
        out.append(line)
    return _md(header, out)


_MARKDOWN = {"table4": _md_table4, "figure6": _md_figure6, "table1": _md_table1, "table2": _md_table2,
             "table3": _md_table3}

SEARCH_STRATEGIES = ("linear", "hash-table", "mih", "faiss-flat", "faiss-hash", "faiss-multihash")


def _search_cell(r) -> str:
    """Queries/s and recall (``*``: the exact stable result), or why it was not measured."""
    if r["status"] != "ok":
        return str(r["status"]).split(" for ")[0].replace("skipped: ", "skipped (") + ")"
    exact = "*" if str(r["exact"]).lower() == "true" else ""
    return f"{float(r['qps']):,.0f} ({float(r['recall']):.2f}{exact})"


def _md_search(table: pd.DataFrame, task: str) -> str:
    """One of the README's search-speed tables (``task`` knn or radius): a line per (database
    size, bits), a column per strategy measured for that task."""
    t = table[(table["task"] == task) & (table["codes"] == "random")]
    strategies = [s for s in SEARCH_STRATEGIES if s in set(t["strategy"])]
    out = []
    for (n, bits), part in t.groupby(["n_database", "bits"], sort=True):
        by = {r["strategy"]: r for r in part.to_dict("records")}
        size = f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n:,}"
        out.append([f"{size} x {bits}"] + [_search_cell(by[s]) if s in by else "" for s in strategies])
    return _md(["codes", *strategies], out)


LITERATURE = ("lsh", "itq", "cca-itq", "ksh")


def _md_literature(res) -> str:
    """README's literature check: our mAP under ``cifar10-1k`` (5,000 labelled images for the
    supervised methods) / the number the deep-hashing papers print (``baselines/``), by bits."""
    f = res.files.get("literature-cifar10-1k")
    if f is None:
        return "*`literature-cifar10-1k.csv` is missing: see the command above.*\n"
    base = load_baselines()
    base = base[(base["variant"] == "cifar10-1k") & (base["metric"] == "map")]
    rows = f.rows[f.rows["protocol"] == "cifar10-1k"]
    bits = sorted(set(rows["bits"]))
    out = []
    for method in LITERATURE:
        line = [_method_label(method)]
        for b in bits:
            ours = rows[(rows["method"] == method) & (rows["bits"] == b)]["map"]
            printed = base[(base["method"] == method) & (base["bits"] == b)]["value"]
            line.append(f"{_number(ours.iloc[0] if len(ours) else None, 3)} / "
                        f"{_number(printed.iloc[0] if len(printed) else None, 3)}")
        out.append(line)
    return _md(["method (mAP, ours / printed)", *[f"{b} bits" for b in bits]], out)


def _leaderboard_summary(res) -> "pd.DataFrame | str":
    """The leaderboard's rows summarised (:func:`hashbench.figures.leaderboard_summary`), read
    once for the README's two leaderboard tables; or the line saying why there are none."""
    from .figures import leaderboard_summary

    got = res.tables.get("leaderboard")
    if got is None or not got[1]:
        return "*`leaderboard.csv` is missing or empty: run `hashbench reproduce leaderboard`.*\n"
    if not set(KEY_COLUMNS) <= set(got[0]):
        return "*`leaderboard.csv` holds no result rows: run `hashbench reproduce leaderboard`.*\n"
    return leaderboard_summary(read_results(res.folder / "leaderboard.csv"))


def _md_leaderboard(summary: pd.DataFrame) -> str:
    """README's leaderboard: mAP by code length, a line per (family, method, features), the
    protocols side by side (``dsh / standard``); a mean over seeds carries its spread
    (``+-`` half the max - min); the last column the training time (s; mean over seeds) at the shortest length."""
    protocols = list(dict.fromkeys(summary["protocol"]))
    bits = sorted(set(summary["bits"]))
    value = {tuple(r[k] for k in ("family", "method", "features", "bits", "protocol")): r
             for r in summary.to_dict("records")}

    def shown(r, metric: str, digits: int) -> str:
        if r is None or _is_missing(r[metric]):
            return "-"
        spread = (r[f"{metric}_max"] - r[f"{metric}_min"]) / 2
        return _number(r[metric], digits) + (f" ± {spread:.{digits}f}" if r["n_seeds"] > 1 else "")

    out = []
    for fam, method, features in dict.fromkeys((k[0], k[1], k[2]) for k in value):
        line = [fam, _method_label(method), _feature_label(features)]
        for b in bits:
            got = [value.get((fam, method, features, b, p)) for p in protocols]
            line.append(" / ".join(shown(r, "map", 3) for r in got) if any(got) else "")
        timed = [value.get((fam, method, features, b, p)) for b in bits for p in protocols]
        timed = next((r for r in timed if r is not None and not _is_missing(r["train_s"])), None)
        line.append("" if timed is None else f"{timed['train_s']:.3g}")
        out.append(line)
    header = ["family", "method", "features"] + [f"{b} bits" for b in bits] + ["train s (shortest)"]
    note = f"mAP, {' / '.join(protocols)}; rows: `results/leaderboard.csv`\n\n"
    return note + _md(header, out)


def _md_leaderboard_releases(summary: pd.DataFrame) -> str:
    """README's side by side: the CIFAR-10 mAP a deep method's own release reports
    (``baselines/``: variant ``cifar10-1k``, features ``images``) next to ours for the same
    method and length, trained end to end from scratch on the DSH network (the leaderboard's
    mean over seeds, each protocol). What differs is the note's second part (backbone,
    pretraining, how the number was taken); the protocol differs for all of them."""
    base = load_baselines()
    base = base[(base["variant"] == "cifar10-1k") & (base["features"] == "images") & (base["metric"] == "map")]
    ours = summary[summary["features"] == "images"]
    protocols = list(dict.fromkeys(summary["protocol"]))
    out = []
    for _, b in base.iterrows():
        mine = [ours[(ours["method"] == b["method"]) & (ours["bits"] == b["bits"]) & (ours["protocol"] == p)]["map"]
                for p in protocols]
        out.append([_method_label(b["method"]), str(b["bits"]), _number(b["value"], 3),
                    " / ".join(_number(m.iloc[0], 3) if len(m) else "-" for m in mine),
                    b["note"].split("; ")[1], f"{b['source']} (`{b['source_table']}`)"])
    header = ["method", "bits", "release's mAP (cifar10-1k)", f"ours, end to end ({' / '.join(protocols)})",
              "their backbone", "source"]
    return _md(header, out)


def _search_tables(res) -> dict[str, str]:
    read = res.tables.get("search-speed")  # (header, rows) as read strictly by collect
    need = {"codes", "n_database", "bits", "strategy", "task", "qps", "recall", "exact", "status"}
    if read is None or not read[1]:
        return {name: "*`search-speed.csv` is missing: run `hashbench bench-search`.*\n"
                for name in ("search-knn", "search-radius")}
    if not need <= set(read[0]):
        raise InputError(f"{res.folder / 'search-speed.csv'}: no column {sorted(need - set(read[0]))[0]!r}")
    table = pd.DataFrame(read[1], columns=read[0])
    try:
        table = table.astype({"n_database": int, "bits": int})
    except ValueError as e:
        raise InputError(f"{res.folder / 'search-speed.csv'}: n_database and bits must be integers ({e})") from None
    return {"search-knn": _md_search(table, "knn"), "search-radius": _md_search(table, "radius")}


def markdown_tables(folder) -> dict[str, str]:
    """The README's result tables (Markdown, by experiment name) from the result files of
    ``folder`` (CIFAR-10: ``NAME.csv``); an absent file gives a line saying so."""
    res = collect(folder)
    out = {}
    for name in (n for n in README_TABLES if n in _MARKDOWN):
        f = res.files.get(name)
        if f is None or f.comparison is None or f.comparison.empty:
            what = "missing" if f is None else "without numbers the paper reports"
            out[name] = f"*`{name}.csv` is {what}: run `hashbench reproduce {name}`.*\n"
        else:
            out[name] = _MARKDOWN[name](f)
    out.update(_search_tables(res))
    out["literature"] = _md_literature(res)
    board = _leaderboard_summary(res)
    out["leaderboard"] = board if isinstance(board, str) else _md_leaderboard(board)
    out["leaderboard-releases"] = board if isinstance(board, str) else _md_leaderboard_releases(board)
    return out


def markdown_text(tables: dict[str, str]) -> str:
    """The tables between their README markers, one after another."""
    return "\n".join(f"<!-- report:{name} -->\n{text}<!-- /report:{name} -->\n" for name, text in tables.items())


def _dedent(body: str, indent: str) -> str:
    return "".join(line.removeprefix(indent) for line in body.splitlines(True))


def _indent(body: str, indent: str) -> str:
    return "".join(indent + line if line.strip() else line for line in body.splitlines(True))


def readme_blocks(text: str) -> dict[str, str]:
    """The generated tables a README holds, by name (without the markers' indent)."""
    return {m.group(2): _dedent(m.group(3), m.group(1)) for m in _BLOCK.finditer(text)}


def replace_blocks(text: str, tables: dict[str, str], where: str = "README") -> str:
    """``text`` with each marked table replaced by its regenerated one; every table must
    already have its markers (where it goes is the README author's choice)."""
    absent = [name for name in tables if name not in readme_blocks(text)]
    if absent:
        raise InputError(f"{where}: no <!-- report:{absent[0]} --> ... <!-- /report:{absent[0]} --> markers")
    return _BLOCK.sub(lambda m: f"{m.group(1)}<!-- report:{m.group(2)} -->\n"
                      f"{_indent(tables[m.group(2)], m.group(1)) if m.group(2) in tables else m.group(3)}"
                      f"{m.group(1)}<!-- /report:{m.group(2)} -->", text)


def update_readme(readme, folder) -> bool:
    """Rewrite the generated tables of ``readme`` from ``folder``; whether anything changed."""
    readme = Path(readme)
    if not readme.is_file():
        raise InputError(f"--readme: no such file: {readme}")
    text = readme.read_text(encoding="utf-8")
    new = replace_blocks(text, markdown_tables(folder), f"--readme {readme}")
    if new != text:
        with atomic_write(readme, "w") as f:
            f.write(new)
    return new != text


# ---------------------------------------------------------------------------------------- HTML

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#fafbfc}
nav{background:#1d2330;padding:.6em 1.2em}nav a{color:#dde3ee;margin-right:1.1em;text-decoration:none}
nav a:hover{color:#fff;text-decoration:underline}
main{padding:1em 1.6em 3em;max-width:1400px}
h1{font-size:1.5em;margin:.4em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #d6dbe3}
table{border-collapse:collapse;margin:.6em 0;background:#fff;font-size:.92em}
th,td{border:1px solid #d6dbe3;padding:.25em .55em;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer;background:#eef1f6;user-select:none;white-space:nowrap}
table.sortable th[data-order=asc]::after{content:" \\25B2"}table.sortable th[data-order=desc]::after{content:" \\25BC"}
.d-near{background:#e8f1e8}.d-above{background:#bfe5bf}.d-far-above{background:#8ccf8c}
.d-below{background:#f8d3d1}.d-far-below{background:#ee9f9b}
.legend span{padding:.1em .5em;margin-right:.4em;border:1px solid #d6dbe3}
span[class^=d-]{white-space:nowrap}
.missing{background:#fff4d6;border:1px solid #e9cf7a;padding:.5em .8em;margin:.6em 0}
details summary{cursor:pointer;color:#2756a8}details dl{margin:.3em 0;font-size:.88em}
details dt{font-weight:600}details dd{margin:0 0 .2em 1em;word-break:break-all;max-width:60em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #d6dbe3;background:#fff}
code{background:#eef1f6;padding:0 .25em}
"""

JS = """
(function(){
  var errors = [];
  window.addEventListener('error', function(e){ errors.push(String(e.message)); });
  function key(tr, i){
    var c = tr.cells[i], v = c.hasAttribute('data-sort') ? c.getAttribute('data-sort') : c.textContent.trim();
    return (v !== '' && !isNaN(Number(v))) ? Number(v) : v;
  }
  function sortBy(th){
    var table = th.closest('table'), body = table.tBodies[0], i = th.cellIndex;
    var asc = th.getAttribute('data-order') !== 'asc';
    table.querySelectorAll('th').forEach(function(h){ h.removeAttribute('data-order'); });
    th.setAttribute('data-order', asc ? 'asc' : 'desc');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function(a, b){
      var x = key(a, i), y = key(b, i);
      if (x === '' || y === '') return (x === '') - (y === '');  /* blanks last */
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    });
    rows.forEach(function(r){ body.appendChild(r); });
  }
  document.querySelectorAll('table.sortable th').forEach(function(th){
    th.addEventListener('click', function(){ sortBy(th); });
  });
  function sortCheck(){  /* #selftest: sort each table by its first numeric column, check the order */
    var ok = true;
    document.querySelectorAll('table.sortable').forEach(function(t){
      var th = t.querySelector('th[data-type=num]');
      if (!th) return;
      sortBy(th);
      var last = -Infinity;
      Array.prototype.forEach.call(t.tBodies[0].rows, function(r){
        var v = key(r, th.cellIndex);
        if (v === '') return;
        if (typeof v !== 'number' || v < last) ok = false; else last = v;
      });
    });
    return ok;
  }
  window.addEventListener('load', function(){
    var rows = {}, broken = [];
    document.querySelectorAll('table').forEach(function(t){
      if (t.id) rows[t.id] = t.tBodies.length ? t.tBodies[0].rows.length : 0;
    });
    Array.prototype.forEach.call(document.images, function(img){
      if (!img.complete || img.naturalWidth === 0) broken.push(img.getAttribute('src'));
    });
    var status = {tables: document.querySelectorAll('table').length, rows: rows,
                  images: document.images.length, broken_images: broken,
                  sorted: location.hash === '#selftest' ? sortCheck() : null, errors: errors};
    document.getElementById('report-status').textContent = JSON.stringify(status);
  });
})();
"""


def _e(x) -> str:
    return html.escape("" if x is None else str(x))


def _is_missing(x) -> bool:
    return x is None or (isinstance(x, numbers.Real) and not isinstance(x, numbers.Integral) and math.isnan(x))


def _td(value, digits: int = 4) -> str:
    """A cell: numbers right-aligned with their raw value to sort on, text escaped."""
    if _is_missing(value):
        return "<td></td>"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return f"<td>{_e(value)}</td>"
    shown = str(int(value)) if isinstance(value, numbers.Integral) else _number(float(value), digits)
    return f'<td class="num" data-sort="{float(value)!r}">{shown}</td>'


def _diff_class(diff) -> str:
    if _is_missing(diff):
        return ""
    if abs(diff) <= NEAR:
        return "d-near"
    return ("d-far-" if abs(diff) > FAR else "d-") + ("above" if diff > 0 else "below")


def _table(table_id: str, header: list[tuple[str, str]], body: list[str]) -> str:
    """A sortable table; ``header`` holds (name, "num" or "text")."""
    ths = "".join(f'<th data-type="{t}">{_e(h)}</th>' for h, t in header)
    return (f'<table class="sortable" id="{_e(table_id)}"><thead><tr>{ths}</tr></thead>'
            f"<tbody>\n{''.join(body)}</tbody></table>\n")


def _provenance(f: ResultFile, label, row) -> str:
    """Every column a row holds but its curves, a click away: the command when recorded,
    seed, settings, code identity, machine, time, model files."""
    line = int(label) + 2  # read_results keeps the file's order: line 1 is the header
    items = [("file", f"{f.path.name}, line {line}")]
    codes = codes_path(codes_dir(f.path), row_key(row))
    if codes.is_file():
        stored = f"{f.path.parent.name}/{f.path.name}:{int(label) + 1}"
        items.append(("stored codes", (f"{codes.parent.name}/{codes.name} (scored again without fitting by "
                                      f"`hashbench evaluate --stored {stored}`)")))
    cols = [c for c in f.rows.columns if c != "curves"]
    first = [c for c in ("command",) if c in cols]  # then what the row ran and on what, then its numbers
    cols = first + [c for c in cols if c not in first and c not in METRIC_COLUMNS] + [
        c for c in cols if c in METRIC_COLUMNS]
    items += [(c, "" if _is_missing(row[c]) else row[c]) for c in cols]
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items)
    return f"<td><details><summary>provenance</summary><dl>{dl}</dl></details></td>"


def _anchor(f: ResultFile, label) -> str:
    return f"{f.stem}-L{int(label) + 2}"


def _rows_table(f: ResultFile, table_id: str = "rows") -> str:
    cols = [c for c in ROW_COLUMNS if c in f.rows.columns or c == "variant"]
    header = [(c, "num" if c in f.rows.columns and f.rows[c].dtype.kind in "iuf" else "text") for c in cols]
    body = []
    for label, r in f.rows.iterrows():
        cells = []
        for c in cols:
            if c == "variant":
                cells.append(_td(_row_variant(r)))
            elif c == "features":
                cells.append(_td(_short(r[c])))
            elif c == "method":
                cells.append(f'<td><a href="method-{_e(r[c])}.html">{_e(r[c])}</a></td>')
            else:
                cells.append(_td(r[c]))
        body.append(f'<tr id="{_anchor(f, label)}">{"".join(cells)}{_provenance(f, label, r)}</tr>\n')
    return _table(table_id, [*header, ("provenance", "text")], body)


def _comparison_table(f: ResultFile, table_id: str = "vs-paper") -> str:
    c = f.comparison
    header = [("protocol", "text"), ("method", "text"), ("features", "text"), ("bits", "num"),
              ("variant", "text"), ("metric", "text"), ("ours", "num"), ("paper", "num"),
              ("diff", "num"), ("row", "text")]
    body = []
    for label, r in c.iterrows():
        diff = r["diff"]
        cls = _diff_class(diff)
        diff_td = ('<td class="num" data-sort=""></td>' if _is_missing(diff) else
                   f'<td class="num {cls}" data-sort="{float(diff)!r}">{_signed(diff)}</td>')
        body.append(
            f"<tr>{_td(r['protocol'])}<td><a href=\"method-{_e(r['method'])}.html\">{_e(r['method'])}</a></td>"
            f"{_td(r['features'])}{_td(r['bits'])}{_td(r['variant'])}{_td(r['metric'])}{_td(r['ours'])}"
            f"{_td(r['paper'])}{diff_td}"
            f"<td><a href=\"{f.page}#{_anchor(f, label)}\">line {int(label) + 2}</a></td></tr>\n")
    return _table(table_id, header, body)


LEGEND = ('<p class="legend">difference ours &minus; paper: <span class="d-far-above">above by more than '
          f'{FAR}</span><span class="d-above">above</span><span class="d-near">within &plusmn;{NEAR}</span>'
          f'<span class="d-below">below</span><span class="d-far-below">below by more than {FAR}</span></p>')


def _figures(images: list[Path]) -> str:
    return "".join(f'<figure><img src="figures/{_e(p.name)}" alt="{_e(p.stem)}">'
                   f"<figcaption>{_e(p.name)}</figcaption></figure>\n" for p in images)


def _summary(c: pd.DataFrame | None) -> str:
    """How many of the paper's numbers we are near, above and below (HTML)."""
    if c is None or c.empty:
        return "no number the paper reports"
    d = c["diff"].dropna()
    return (f'{len(c)} numbers, <span class="d-near">{int((d.abs() <= NEAR).sum())} within &plusmn;{NEAR}</span>, '
            f'<span class="d-above">{int((d > NEAR).sum())} above</span>, '
            f'<span class="d-below">{int((d < -NEAR).sum())} below</span>')


def _layout_table(md: str, table_id: str) -> str:
    """A generated README table (Markdown) as an HTML table: the paper's layout."""
    lines = [line for line in md.strip().split("\n") if line.startswith("|")]

    def cells(line: str, tag: str) -> str:
        texts = (_CODE.sub(r"<code>\1</code>", _e(c.strip())) for c in line.strip().strip("|").split("|"))
        return "".join(f"<{tag}>{t}</{tag}>" for t in texts)

    body = "".join(f"<tr>{cells(line, 'td')}</tr>\n" for line in lines[2:])
    return f'<table id="{table_id}"><thead><tr>{cells(lines[0], "th")}</tr></thead><tbody>\n{body}</tbody></table>\n'



def _nav(res: Results) -> str:
    links = [("index.html", "index")] + [(f"{n}.html", n) for n in EXPERIMENT_PAGES]
    links += [(f"{n}.html", n) for n in TABLE_PAGES] + [("methods.html", "methods")]
    return "".join(f'<a href="{h}">{_e(t)}</a>' for h, t in links)


def _page(res: Results, title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)} - hashbench</title><style>{CSS}</style></head>\n<body><nav>{_nav(res)}</nav>"
            f"<main><h1>{_e(title)}</h1>\n{body}</main>\n<pre id=\"report-status\" hidden></pre>"
            f"<script>{JS}</script></body></html>\n")


def _result_page(res: Results, f: ResultFile, title: str, paper: str | None) -> str:
    parts = [f"<p>Rows of <code>{_e(f.path.name)}</code>: {len(f.rows)}.</p>"]
    if f.experiment is not None:
        parts.append(f"<p>Made by <code>hashbench reproduce {_e(f.experiment)}</code>"
                     + (f"; compared with {_e(paper)}" if paper else "") + ".</p>")
        parts.append("<h2>Ours beside the paper</h2>")
        if f.comparison is None or f.comparison.empty:
            parts.append('<p class="missing">No row of this file has a published number.</p>')
        else:
            if f.stem in _MARKDOWN:
                parts += ["<p>In the paper's layout (as the README shows it):</p>",
                          _layout_table(_MARKDOWN[f.stem](f), "layout")]
            parts += [f"<p>Every number, one per line ({_summary(f.comparison)}):</p>", LEGEND, _comparison_table(f)]
    images = res.figures.get(f.stem, [])
    if images:
        parts += ["<h2>Figures</h2>", _figures(images)]
    parts += [("<h2>All rows</h2><p>Each row's provenance (every column of the row but its curves) "
              "opens under <em>provenance</em>.</p>"), _rows_table(f)]
    return _page(res, title, "\n".join(parts))


def _missing_page(res: Results, title: str, what: str) -> str:
    return _page(res, title, f'<p class="missing">Missing: {_e(what)}</p>')


def _generic_page(res: Results, name: str, title: str, got) -> str:
    """A CSV of any shape as one sortable table (``got``: header and rows, or None: absent)."""
    if got is None:
        return _missing_page(res, title, f"{res.shown(name + '.csv')} does not exist; there is nothing to show yet.")
    header, rows = got

    def number(v: str) -> bool:
        try:
            return math.isfinite(float(v))
        except ValueError:
            return False

    numeric = [bool(rows) and all(v == "" or number(v) for v in (r[i] for r in rows)) for i in range(len(header))]
    body = ["<tr>" + "".join(f'<td class="num" data-sort="{_e(v)}">{_e(v)}</td>' if numeric[i] else f"<td>{_e(v)}</td>"
                             for i, v in enumerate(r)) + "</tr>\n" for r in rows]
    table = _table(name, [(h, "num" if numeric[i] else "text") for i, h in enumerate(header)], body)
    images = res.figures.get(name, [])
    shown = f"<h2>Figures</h2>{_figures(images)}" if images else ""
    return _page(res, title, f"<p>Rows of <code>{_e(name)}.csv</code>: {len(rows)}.</p>{shown}{table}")


def _methods(res: Results) -> list[str]:
    from .hashers import HASHERS

    found = [m for f in res.files.values() for m in f.rows["method"]]
    return list(dict.fromkeys(list(HASHERS) + found))


def _rst(text: str) -> str:
    """Docstring text as HTML: escaped, ``literals`` as code."""
    return re.sub(r"``(.+?)``", r"<code>\1</code>", _e(text))


def _first_paragraph(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def _method_page(res: Results, method: str) -> str:
    from .hashers import HASHERS

    parts = []
    cls = HASHERS.get(method)
    if cls is None:
        parts.append(f'<p class="missing">{_e(method)} is not a registered hashbench method '
                     "(a plugin's, or one since removed): no parameters or source to show.</p>")
    else:
        source = _first_paragraph(inspect.getdoc(sys.modules[cls.__module__]))
        about = _first_paragraph(inspect.getdoc(cls))
        parts.append(f"<h2>Source</h2><p>{_rst(source)}</p><p><code>{_e(cls.__module__)}.{_e(cls.__name__)}</code>: "
                     f"{_rst(about)}</p>")
        params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
        body = [f"<tr>{_td(p.name)}<td><code>{_e(repr(p.default) if p.default is not p.empty else '(required)')}"
                "</code></td></tr>\n" for p in params]
        parts += ["<h2>Parameters and defaults</h2>",
                  _table("parameters", [("parameter", "text"), ("default", "text")], body)]
    header = [("file", "text"), ("protocol", "text"), ("features", "text"), ("bits", "num"), ("seed", "num"),
              ("n_labelled", "text"), ("variant", "text"), ("params", "text"), ("map", "num"),
              ("precision_r2", "num"), ("row", "text")]
    body = []
    for f in res.files.values():
        for label, r in f.rows[f.rows["method"] == method].iterrows():
            body.append(
                f'<tr><td><a href="{f.page}">{_e(f.path.name)}</a></td>{_td(r["protocol"])}{_td(_short(r["features"]))}'
                f'{_td(r["bits"])}{_td(r["seed"])}{_td(r["n_labelled"])}{_td(_row_variant(r))}{_td(r["params"])}'
                f'{_td(r.get("map"))}{_td(r.get("precision_r2"))}'
                f'<td><a href="{f.page}#{_anchor(f, label)}">line {int(label) + 2}</a></td>'
                f"{_provenance(f, label, r)}</tr>\n")
    parts += [f"<h2>All its cells</h2><p>{len(body)} rows in {_e(res.folder.name)}/.</p>",
              _table("cells", [*header, ("provenance", "text")], body)]
    return _page(res, f"Method {method}", "\n".join(parts))


def _index(res: Results) -> str:
    from . import __version__

    parts = [(f"<p>The result files of <code>{_e(res.folder.name)}/</code> (hashbench {_e(__version__)}): our numbers "
             "beside the DSH paper's (Liu et al., CVPR 2016, and its supplementary), every row's provenance "
             "a click away. Click a column header to sort.</p>")]
    if res.missing:
        items = "".join(f"<li>{_e(m)}</li>" for m in res.missing_lines(full=False))
        parts.append(f'<div class="missing"><strong>Missing</strong><ul id="missing">{items}</ul></div>')
    body = []
    for name, (title, paper) in EXPERIMENT_PAGES.items():
        f = res.files.get(name)
        status = "missing" if f is None else _summary(f.comparison)
        body.append(f'<tr><td><a href="{name}.html">{_e(title)}</a></td><td>{_e(paper)}</td>'
                    f"{_td(None if f is None else len(f.rows))}{_td(len(res.figures.get(name, [])))}"
                    f"<td>{status}</td></tr>\n")
    for name, title in TABLE_PAGES.items():
        got = res.tables[name]
        body.append(f'<tr><td><a href="{name}.html">{_e(title)}</a></td><td></td>'
                    f"{_td(None if got is None else len(got[1]))}<td></td>"
                    f"<td>{'missing' if got is None else ''}</td></tr>\n")
    parts += ["<h2>Experiments</h2>",
              _table("experiments", [("experiment", "text"), ("the paper's", "text"), ("rows", "num"),
                                     ("figures", "num"), ("ours against the paper", "text")], body)]
    others = [f for f in res.files.values() if f.stem not in EXPERIMENT_PAGES]
    if others:
        body = [f'<tr><td><a href="{f.page}">{_e(f.path.name)}</a></td>{_td(len(f.rows))}'
                f"<td>{_summary(f.comparison) if f.experiment else ''}</td></tr>\n" for f in others]
        parts += ["<h2>Other result files</h2>",
                  _table("other-files", [("file", "text"), ("rows", "num"), ("ours against the paper", "text")], body)]
    if res.others:
        body = [f'<tr><td><a href="table-{_e(n)}.html">{_e(n)}.csv</a></td>{_td(len(rows))}</tr>\n'
                for n, (_, rows) in res.others.items()]
        parts += ["<h2>Other tables</h2><p>CSVs of other shapes than result rows, shown as they are.</p>",
                  _table("other-tables", [("file", "text"), ("rows", "num")], body)]
    if "figures" in res.figures:
        parts.append('<h2>Other figures</h2><p><a href="figures.html">figures not drawn by an experiment</a></p>')
    parts.append('<h2>Methods</h2><p>' + ", ".join(
        f'<a href="method-{_e(m)}.html">{_e(m)}</a>' for m in _methods(res)) + "</p>")
    return _page(res, "hashbench results", "\n".join(parts))


def _method_list(res: Results) -> str:
    items = "".join(f'<li><a href="method-{_e(m)}.html">{_e(m)}</a></li>' for m in _methods(res))
    return _page(res, "Methods", f"<ul>{items}</ul>")


def _write_pages(res: Results, site: Path) -> None:
    pages = {"index.html": _index(res), "methods.html": _method_list(res)}
    for name, (title, paper) in EXPERIMENT_PAGES.items():
        f = res.files.get(name)
        pages[f"{name}.html"] = (_result_page(res, f, title, paper) if f is not None else
                                 _missing_page(res, title, f"{res.shown(name + '.csv')} does not exist: "
                                               f"run `hashbench reproduce {name}`."))
    for f in res.files.values():
        if f.stem not in EXPERIMENT_PAGES:
            pages[f.page] = _result_page(res, f, f"Result file {f.path.name}",
                                         EXPERIMENT_PAGES.get(f.experiment, ("", None))[1])
    for name, title in TABLE_PAGES.items():
        pages[f"{name}.html"] = _generic_page(res, name, title, res.tables[name])
    for name, got in res.others.items():
        pages[f"table-{name}.html"] = _generic_page(res, name, f"Table {name}.csv", got)
    for m in _methods(res):
        pages[f"method-{m}.html"] = _method_page(res, m)
    if "figures" in res.figures:
        pages["figures.html"] = _page(res, "Other figures", _figures(res.figures["figures"]))
    for name, text in pages.items():
        (site / name).write_text(text, encoding="utf-8")
    (site / "figures").mkdir()
    for images in res.figures.values():
        for p in images:
            shutil.copyfile(p, site / "figures" / p.name)
    (site / SITE_MARKER).write_text("written by hashbench report; replaced whole by the next report\n")


def _check_out(out: Path, folder: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: {out} is a file, not a folder")
    if out.resolve() == folder.resolve() or out.resolve() in folder.resolve().parents:
        raise InputError(f"--out: {out} would replace the results folder {folder}")
    if out.is_dir() and any(out.iterdir()) and not (out / SITE_MARKER).is_file():
        raise InputError(f"--out: {out} is a folder hashbench report did not write; choose a new or empty one")
    check_writable(out.parent, "--out", folder=True)  # the site is built beside it, then swapped in
    out.parent.mkdir(parents=True, exist_ok=True)


def build_site(folder, out) -> Results:
    """Write the site for the result files of ``folder`` to the folder ``out``: built whole
    in a temporary folder beside it, then swapped in (a previous site is replaced)."""
    folder, out = Path(folder), Path(out)
    res = collect(folder)  # every input read and checked before anything is written
    _check_out(out, folder)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        _write_pages(res, tmp)
        os.chmod(tmp, 0o777 & ~_umask())
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
            os.replace(out, old / "site")
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return res


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
