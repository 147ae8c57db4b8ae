"""The transcribed baselines equal the paper's text: the supplementary is parsed here, on
its own, and every number of baselines/*.csv is checked against it, as text."""

import os
import re
from pathlib import Path

import pandas as pd
import pytest

from hashbench.errors import InputError
from hashbench.paper import BASELINE_COLUMNS, BASELINES_DIR, load_baselines

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def paper_dir() -> Path:
    """../shared/paper (beside $HASHBENCH_DATA, or beside the repository), or skip."""
    candidates = [REPO.parent / "shared" / "paper"]
    if os.environ.get("HASHBENCH_DATA"):
        candidates.insert(0, Path(os.environ["HASHBENCH_DATA"]).parent / "paper")
    for d in candidates:
        if (d / "dsh-supplementary.txt").is_file():
            return d
    pytest.skip("the paper's supplementary text (../shared/paper) is not here")


def _block(text: str, start: str, end: str) -> list[list[str]]:
    """Tab-split non-empty lines after the line starting with ``start`` up to ``end``."""
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(start))
    rows = []
    for line in lines[i + 1:]:
        if line.startswith(end):
            return rows
        if line.strip():
            rows.append(line.split("\t"))
    raise AssertionError(f"no end {end!r} after {start!r}")


def _published(text: str) -> dict[tuple, str]:
    """(source_table, dataset, method, features, bits, variant, metric) -> value text."""
    out = {}
    datasets = ("cifar10", "nuswide")
    for name, *vals in _block(text, "Models\tCIFAR-10\tNUS-WIDE", "Table 1."):
        variant = name.replace("α", "alpha").replace(" ", "").lower()  # noqa: RUF001  (the supplementary writes the Greek letter)
        for ds, v in zip(datasets, vals, strict=True):
            out[("supp-table1", ds, "dsh", "images", 12, variant, "precision_r2")] = v
    group = None
    for name, bits, *vals in _block(text, "\tCode Length\tCIFAR-10\tNUS-WIDE", "Table 2."):
        group = {"Trained From Scratch": "scratch", "Finetuned": "finetuned", "": group}[name]
        for ds, v in zip(datasets, vals, strict=True):
            out[("supp-table2", ds, "dsh", "images", int(bits), group, "precision_r2")] = v
    for name, *vals in _block(text, "\tCIFAR-10\tNUS-WIDE\tCIFAR-10\tNUS-WIDE", "Table 3."):
        variant = name.replace(" ", "")
        bits = 12 * len(variant.split("+"))
        cols = [("map", "cifar10"), ("map", "nuswide"), ("precision_r2", "cifar10"), ("precision_r2", "nuswide")]
        for (metric, ds), v in zip(cols, vals, strict=True):
            out[("supp-table3", ds, "dsh", "images", bits, variant, metric)] = v
    header = _block(text, "Model(s)\tmAP", "Table 3.")[0]  # sanity: Table 3's second header line
    assert header == ["", "CIFAR-10", "NUS-WIDE", "CIFAR-10", "NUS-WIDE"]
    methods = ("lsh", "cca-itq", "ksh", "dsh")
    for name, *vals in _block(text, "\tLSH\tCCA-ITQ\tKSH\tDSH", "Table 4."):
        features = {"Hand": "gist", "CNN-cls (b)": "cnn-cls", "CNN-ours (a)": "cnn-ours"}[name]
        for method, v in zip(methods, vals, strict=True):
            if v != "-":
                feats = "images" if method == "dsh" else features
                out[("supp-table4", "cifar10", method, feats, 48, "", "map")] = v
    return out


def _rows(df: pd.DataFrame) -> dict[tuple, str]:
    keys = ("source_table", "dataset", "method", "features", "bits", "variant", "metric")
    return {tuple(int(r[k]) if k == "bits" else r[k] for k in keys): r["value"] for _, r in df.iterrows()}


def _csv_text() -> pd.DataFrame:
    return pd.concat(
        [pd.read_csv(f, dtype=str, keep_default_na=False) for f in sorted(BASELINES_DIR.glob("*.csv"))],
        ignore_index=True,
    )


def test_every_supplementary_number_is_transcribed_exactly(paper_dir):
    published = _published((paper_dir / "dsh-supplementary.txt").read_text(encoding="utf-8"))
    assert len(published) == 16 + 14 + 60 + 10
    ours = _rows(_csv_text()[lambda d: d.source_table.str.startswith("supp-")])
    # The one derived row: the finetuned series starts from the 12-bit model trained from scratch.
    for ds in ("cifar10", "nuswide"):
        derived = ours.pop(("supp-table2", ds, "dsh", "images", 12, "finetuned", "precision_r2"))
        assert derived == published[("supp-table2", ds, "dsh", "images", 12, "scratch", "precision_r2")]
    assert ours == published


def test_main_paper_numbers_match_reference_facts(paper_dir):
    facts = (paper_dir / "reference-facts.md").read_text(encoding="utf-8")
    line = re.search(r"Published DSH numbers \(mAP\):(.*?)\.\s", facts, re.S).group(1)  # one sentence
    found = re.findall(r"(CIFAR-10|NUS-WIDE)?\s*(\d+)\s+bits\s+(0\.\d{4})", line)
    published, ds = {}, None
    for name, bits, value in found:
        ds = {"CIFAR-10": "cifar10", "NUS-WIDE": "nuswide"}.get(name, ds)
        published[("main-paper", ds, "dsh", "images", int(bits), "", "map")] = value
    assert len(published) == 4
    assert _rows(_csv_text()[lambda d: d.source_table == "main-paper"]) == published


def test_loader_types_and_hand_checked_values():
    df = load_baselines()
    assert tuple(df.columns) == BASELINE_COLUMNS
    assert df["bits"].dtype == "int64" and df["value"].dtype == "float64"
    assert not df.duplicated(["source_table", "dataset", "method", "features", "bits", "variant", "metric"]).any()
    assert set(df["metric"]) == {"map", "precision_r2"}
    t4 = load_baselines("supp-table4").set_index(["method", "features"])["value"]
    assert len(t4) == 10
    assert t4[("lsh", "gist")] == 0.1492 and t4[("ksh", "cnn-ours")] == 0.6498 and t4[("dsh", "images")] == 0.6755
    t2 = load_baselines("supp-table2")
    dsh_r2 = t2[(t2.dataset == "cifar10") & (t2.variant == "finetuned")].set_index("bits")["value"]
    assert dsh_r2.to_dict() == {24: 0.6731, 36: 0.6377, 48: 0.5791, 12: 0.5671}
    ens = load_baselines("supp-table3")
    assert ens[ens.variant == "M1+M2+M3+M4"]["bits"].unique().tolist() == [48]


def test_unknown_source_table_is_an_input_error():
    with pytest.raises(InputError, match="source table"):
        load_baselines("table9")


def test_wheel_ships_the_baselines(tmp_path):
    """A wheel (not only a source checkout) carries every baselines/*.csv, byte for byte,
    where load_baselines looks for them."""
    import subprocess
    import sys
    import zipfile

    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path),
         str(REPO)],
        capture_output=True, text=True)
    assert build.returncode == 0, build.stderr  # setuptools comes with the test extra
    (wheel,) = tmp_path.glob("hashbench-*.whl")
    with zipfile.ZipFile(wheel) as z:
        shipped = {Path(n).name: z.read(n) for n in z.namelist() if n.startswith("hashbench/baselines/")}
    expected = {f.name: f.read_bytes() for f in (REPO / "baselines").glob("*.csv")}
    assert expected and shipped == expected
    assert BASELINES_DIR.resolve() == (REPO / "baselines").resolve()
