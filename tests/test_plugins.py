"""Plugins: --plugin modules and entry points, loaded before any work, in every worker of
--jobs N; broken ones are one line and exit 2 with nothing written."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import hashbench

ROOT = Path(hashbench.__file__).resolve().parents[1]

GOOD = '''
import numpy as np
from hashbench.hashers import Hasher, register


@register("mean-sign")
class MeanSign(Hasher):
    """Signs of the first n_bits centred features (a toy method for the plugin tests)."""

    label = "MeanSign"

    def __init__(self, n_bits=8, seed=0):
        self.n_bits = n_bits
        self.seed = seed

    def _fit(self, X, y):
        self.mean_ = X.mean(axis=0)

    def _project(self, X):
        return (X - self.mean_)[:, : self.n_bits]
'''


EXTRACTOR = '''
import numpy as np
from hashbench.features import Extractor, register_extractor


@register_extractor("mean-pixel")
class MeanPixel(Extractor):
    """One feature per image: its mean grey level."""

    def _extract(self, images, bar):
        bar.update(len(images))
        return images.mean(axis=(1, 2, 3), dtype=np.float64)[:, None].astype(np.float32)
'''


def hashbench_cli(args, cwd, pythonpath=(), timeout=300):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, pythonpath), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "hashbench.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture()
def plugin_dir(tmp_path):
    d = tmp_path / "plugins"
    d.mkdir()
    (d / "meansign.py").write_text(GOOD)
    (d / "raising.py").write_text("raise RuntimeError('the plugin is broken')\n")
    (d / "clashing.py").write_text(GOOD.replace('"mean-sign"', '"lsh"'))
    (d / "meanpixel.py").write_text(EXTRACTOR)
    (d / "undeclared.py").write_text(GOOD.replace('label = "MeanSign"', "trains_model_file = True"))
    return d


def test_plugin_method_runs_with_jobs_2(tmp_path, plugin_dir):
    """Every worker imports the plugin: the issue's "unknown method" under --jobs 2."""
    work = tmp_path / "work"
    work.mkdir()
    r = hashbench_cli(["run", "--plugin", "meansign", "--methods", "mean-sign,lsh", "--bits", "4,8", "--dataset",
                       "digits", "--jobs", "2", "--out", "run.csv", "--store", str(tmp_path / "store")],
                      work, [plugin_dir])
    assert r.returncode == 0, r.stderr
    rows = pd.read_csv(work / "run.csv")
    assert sorted(zip(rows["method"], rows["bits"], strict=True)) == [("lsh", 4), ("lsh", 8), ("mean-sign", 4),
                                                                      ("mean-sign", 8)]
    assert rows["map"].between(0, 1).all()


@pytest.fixture()
def loaded(plugin_dir, monkeypatch):
    """In this process: plugin_dir importable; afterwards, what the plugins registered is gone."""
    from hashbench import plugins
    from hashbench.hashers import HASHERS

    monkeypatch.syspath_prepend(str(plugin_dir))
    before, modules = dict(HASHERS), list(plugins._modules)
    yield
    for name in set(HASHERS) - set(before):
        HASHERS.pop(name)
    plugins._modules[:] = modules
    from hashbench.features.base import EXTRACTORS

    EXTRACTORS.pop("mean-pixel", None)
    for m in ("meansign", "meanpixel", "raising", "clashing", "undeclared"):
        sys.modules.pop(m, None)


def test_methods_lists_plugins_with_origin_and_parameters(loaded, capsys):
    from hashbench.cli import main

    assert main(["methods", "--plugin", "meansign"]) == 0
    out = capsys.readouterr().out
    assert "mean-sign  (MeanSign; --plugin meansign)  Signs of the first n_bits centred features" in out
    assert "parameters: n_bits=8, seed=0" in out
    assert "lsh  (LSH; built-in)" in out
    with pytest.raises(SystemExit):
        main(["run", "--plugin", "meansign", "--help"])
    assert "mean-sign" in capsys.readouterr().out


@pytest.mark.parametrize("module, message", [
    ("nosuchplugin", "--plugin nosuchplugin: no module named 'nosuchplugin'"),
    ("raising", "--plugin raising: importing it failed (RuntimeError: the plugin is broken)"),
    ("clashing", "--plugin clashing: method 'lsh' is already registered (built-in); choose another name"),
    ("undeclared", "declares trains_model_file but has no 'checkpoint' parameter"),
])
def test_broken_plugins_are_one_line_and_exit_2(tmp_path, loaded, capsys, monkeypatch, module, message):
    from hashbench.cli import main

    monkeypatch.chdir(tmp_path)
    for command in (["run", "--methods", "lsh", "--dataset", "digits", "--out", "run.csv"], ["methods"]):
        assert main([*command, "--plugin", module]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plugins"]


def test_plugin_label_in_tables_and_figures(loaded):
    from hashbench.plots import label
    from hashbench.plugins import load_module

    load_module("meansign")
    assert label({"method": "mean-sign", "features": "pixels"}) == "MeanSign (pixels)"
    assert label({"method": "cca-itq", "features": "gist"}) == "CCA-ITQ (gist)"


def test_plugin_extractor_feeds_the_store(loaded, tmp_path, capsys):
    import numpy as np

    from hashbench.cli import main
    from hashbench.datasets import load_dataset

    assert main(["features", "extract", "mean-pixel", "--plugin", "meanpixel", "--dataset", "digits",
                 "--store", str(tmp_path / "store")]) == 0
    assert "1797 x 1 float32" in capsys.readouterr().out
    X = np.load(next((tmp_path / "store").rglob("mean-pixel-*.npy")))
    images = load_dataset("digits").images
    np.testing.assert_allclose(X[:, 0], images.reshape(len(images), -1).mean(1), rtol=1e-6)
