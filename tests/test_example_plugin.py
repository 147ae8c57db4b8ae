"""The example plugin package (examples/hashbench-pcarr), installed as a user would, offline
and without touching this environment (pip --target a temporary folder), then run by
hashbench with no change to hashbench: entry point, --jobs 2 workers, a config file,
`hashbench methods`, and the same numbers as fitting it by hand."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hashbench

ROOT = Path(hashbench.__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "hashbench-pcarr"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """hashbench-pcarr installed into a fresh folder (copied first: the build writes beside its sources)."""
    tmp = tmp_path_factory.mktemp("pcarr")
    shutil.copytree(EXAMPLE, tmp / "src", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                        "--quiet", "--target", str(tmp / "site"), str(tmp / "src")],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    return tmp / "site"


def cli(args, cwd, site):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "hashbench.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def test_installed_plugin_runs_under_jobs_2_and_from_a_config_file(site, tmp_path):
    store = str(tmp_path / "store")
    r = cli(["run", "--methods", "pca-rr,itq", "--bits", "8,16", "--dataset", "digits", "--jobs", "2",
             "--out", "run.csv", "--store", store], tmp_path, site)
    assert r.returncode == 0, r.stderr
    rows = pd.read_csv(tmp_path / "run.csv", keep_default_na=False)
    assert sorted(zip(rows["method"], rows["bits"], strict=True)) == [("itq", 8), ("itq", 16), ("pca-rr", 8),
                                                                      ("pca-rr", 16)]

    # the row holds what fitting PCA-RR by hand on the same split gives
    sys.path.insert(0, str(site))
    try:
        from hashbench_pcarr import PCARR
    finally:
        sys.path.remove(str(site))
    from hashbench.datasets import load_dataset
    from hashbench.metrics import evaluate
    from hashbench.protocols import get_protocol

    ds = load_dataset("digits")
    split = get_protocol("digits-dsh").split(ds, 0)
    stored = np.load(next(Path(store).rglob("pixels-*.npy")))  # the features the run used
    h = PCARR(n_bits=16, seed=0).fit(stored[split.train])
    q, d = h.encode(stored[split.query]), h.encode(stored[split.database])
    expected = evaluate(q, d, ds.labels[split.query], ds.labels[split.database], 16,
                        self_index=split.self_index())["map"]
    got = rows[(rows["method"] == "pca-rr") & (rows["bits"] == 16)]["map"].item()
    assert got == pytest.approx(expected, abs=1e-12)

    # the same method from a config file, with its own parameter grid
    (tmp_path / "grid.toml").write_text('datasets = ["digits"]\nbits = [8]\n\n[[methods]]\nname = "pca-rr"\n'
                                        'center = [true, false]\n')
    r = cli(["run", "--config", "grid.toml", "--out", "config.csv", "--store", store], tmp_path, site)
    assert r.returncode == 0, r.stderr
    rows = pd.read_csv(tmp_path / "config.csv", keep_default_na=False)
    assert rows["method"].tolist() == ["pca-rr", "pca-rr"] and rows["params"].tolist() == ["{}", '{"center":false}']

    listed = cli(["methods"], tmp_path, site)
    assert "pca-rr  (PCA-RR; package hashbench-pcarr)" in listed.stdout
    assert "parameters: center=True, n_bits=48, seed=0" in listed.stdout


def test_installed_plugin_passes_check_hasher(site, monkeypatch):
    from hashbench.testing import check_hasher

    monkeypatch.syspath_prepend(str(site))
    from hashbench_pcarr import PCARR

    check_hasher(PCARR(n_bits=8))
    check_hasher(PCARR(n_bits=8, center=False))
