"""The paper's published numbers and our rows beside them.

``load_baselines`` reads ``baselines/*.csv`` (the numbers of the DSH paper and its
supplementary, and those the later literature prints, one file per source table);
``variant`` and ``paper_name`` give a result row the name the paper's tables and figure
legends give it; ``compare`` lines up the rows of a reproduction (:mod:`hashbench.reproduce`)
with every number the paper reports for them.
"""

import json
from pathlib import Path

import pandas as pd

from .errors import InputError

BASELINES_DIR = Path(__file__).parent / "baselines"  # a link to the top-level baselines/, shipped in wheels
BASELINE_COLUMNS = (
    "source", "source_table", "dataset", "method", "features", "bits", "variant", "metric",
    "value", "note",
)
DEFAULT_VARIANT = "regularizer-alpha-0.01"  # Table 1's name for DSH at its defaults (the released alpha)
# a reproduction -> the paper's tables that report its cells
SOURCE_TABLES = {"table4": ("supp-table4", "main-paper"), "figure6": ("supp-table2", "main-paper"),
                 "table1": ("supp-table1",), "table2": ("supp-table2",), "table3": ("supp-table3",),
                 "leaderboard": ()}  # the DSH paper has no leaderboard


def load_baselines(source_table: str | None = None) -> pd.DataFrame:
    """The paper's published numbers from ``baselines/*.csv`` (one file per source table).

    Columns: source ("supplementary" or "main paper"), source_table (``supp-table1`` ..
    ``supp-table4``, ``main-paper``), dataset, method, features ("images" for DSH), bits,
    variant (the table's row name, e.g. ``finetuned`` or ``M1+M2``; empty when the table has
    one model per cell), metric (``map`` or ``precision_r2``), value, note."""
    files = sorted(BASELINES_DIR.glob("*.csv"))
    if not files:
        raise InputError(f"no baseline CSVs in {BASELINES_DIR}: this hashbench installation is incomplete")
    frames = []
    for f in files:
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
        if tuple(df.columns) != BASELINE_COLUMNS:
            raise InputError(f"{f}: columns {list(df.columns)}, expected {list(BASELINE_COLUMNS)}")
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df["bits"] = df["bits"].astype("int64")
    df["value"] = df["value"].astype("float64")
    if source_table is not None:
        if source_table not in set(df["source_table"]):
            raise InputError(
                f"unknown source table {source_table!r}; choose from {', '.join(sorted(set(df['source_table'])))}"
            )
        df = df[df["source_table"] == source_table].reset_index(drop=True)
    return df


def variant(row) -> str:
    """The name the paper gives a row: its table's ``variant`` column."""
    params = json.loads(row["params"])
    if row["method"] == "dsh-ensemble":
        return "+".join(f"M{s - row['seed'] + 1}" for s in params["seeds"])
    if "init_from" in params:
        return "finetuned"
    if params.get("relax") == "sigmoid":
        return f"sigmoid-m-{params['margin']:g}"
    if "alpha" in params:
        return f"regularizer-alpha-{params['alpha']:g}"
    return ""


def compare(name: str, rows: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Our rows next to the published numbers: one line per (protocol, method, features,
    bits, variant, metric) that the paper reports, with ours, the paper's and the difference,
    indexed by the label of the row it came from (so a report can link each number to its row).
    A DSH model trained from scratch matches the paper's "scratch" rows and its plain ones."""
    base = pd.concat([load_baselines(t) for t in SOURCE_TABLES[name]] or [load_baselines().iloc[:0]],
                     ignore_index=True)
    base = base[base["dataset"] == dataset]
    out, index = [], []
    for label, r in rows.iterrows():
        v = variant(r)
        if name == "table3" and r["method"] == "dsh":
            v = f"M{r['seed'] - rows['seed'].min() + 1}"
        if name == "table1" and v == "":
            v = DEFAULT_VARIANT
        names = {v, "scratch"} if v == "" and r["method"] == "dsh" else {v}
        match = base[(base["method"] == r["method"].replace("dsh-ensemble", "dsh"))
                     & (base["features"] == r["features"].split(":")[0]) & (base["bits"] == r["bits"])
                     & base["variant"].isin(names)]
        for metric, paper in match.groupby("metric", sort=False)["value"].first().items():
            ours = r[metric]
            index.append(label)
            out.append({
                "protocol": r["protocol"], "method": r["method"], "features": r["features"].split(":")[0],
                "bits": r["bits"], "variant": v, "metric": metric, "ours": ours, "paper": paper,
                "diff": None if ours is None or pd.isna(ours) else ours - paper,
            })
    return pd.DataFrame(out, index=pd.Index(index, dtype=rows.index.dtype), columns=[
        "protocol", "method", "features", "bits", "variant", "metric", "ours", "paper", "diff"])


def paper_name(row, plain: str = "from scratch") -> str:
    """A row's name in the supplementary's figure legends; ``plain`` names a DSH model with
    every setting at its default."""
    v = variant(row) or (plain if row["method"] == "dsh" else "")
    if v.startswith("regularizer-alpha-"):
        return "Regularizer-\u03b1-" + v.removeprefix("regularizer-alpha-")
    if v.startswith("sigmoid-m-"):
        return "Sigmoid-m-" + v.removeprefix("sigmoid-m-")
    if row["method"] == "dsh-ensemble":
        return "ensemble " + v.replace("+", " + ")
    return v


def experiment_of(stem: str) -> str | None:
    """The experiment a result file's stem belongs to: ``table4`` for table4.csv,
    table4-digits.csv and table4-from-scratch.csv; None for another file."""
    return next((n for n in SOURCE_TABLES if stem == n or stem.startswith(n + "-")), None)


def comparison_csv(results_csv) -> str:
    """The text of ``NAME-vs-paper.csv`` for the result file ``NAME.csv`` (``table4.csv``,
    ``table4-from-scratch.csv``, ...): :func:`compare` of its rows, in the file's order, as
    ``reproduce`` writes it after a run. InputError for a file of no experiment of the paper
    or of more than one dataset."""
    from .results import read_results

    path = Path(results_csv)
    name = experiment_of(path.stem)
    if name is None or not path.is_file():
        raise InputError(f"{path}: not the result file of one of the paper's experiments ({', '.join(SOURCE_TABLES)})")
    rows = read_results(path)
    datasets = rows["dataset"].unique()
    if len(datasets) != 1:
        raise InputError(f"{path}: rows of {len(datasets)} datasets; a comparison is of one")
    return compare(name, rows, str(datasets[0])).to_csv(index=False)
