"""`hashbench features extract`: stores, reuses, and turns bad input into exit code 2 with
nothing written."""

import numpy as np
import pytest

from hashbench.cli import main
from hashbench.datasets import load_dataset


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_extract_stores_then_reuses(tmp_path, capsys):
    code, out, err = run(capsys, "features", "extract", "pixels", "--dataset", "digits", "--store", tmp_path)
    assert code == 0 and "computing (not stored)" in err and "1797 x 192 float32" in out
    path = out.split(":")[0]
    X = np.load(path)
    np.testing.assert_array_equal(X, load_dataset("digits").images.reshape(1797, -1))
    code, out, err = run(capsys, "features", "extract", "pixels", "--dataset", "digits", "--store", tmp_path)
    assert code == 0 and "reusing" in err and out.startswith(path)


def test_params_reach_the_extractor(tmp_path, capsys):
    code, out, _ = run(capsys, "features", "extract", "gist", "--dataset", "digits", "--store", tmp_path,
                       "--param", "orientations=[4,4]", "--param", "n_blocks=2", "--param", "mode=lmgist")
    assert code == 0 and "1797 x 32 float32" in out and '"mode":"lmgist"' in out


@pytest.mark.parametrize("argv,message", [
    (["gist", "--param", "mode=fast"], "gist: mode must be one of"),
    (["gist", "--param", "mode"], "--param"),
    (["gist", "--param", "mode=lear", "--param", "mode=lmgist"], "given twice"),
    (["gist", "--param", "size=3"], "unknown parameter"),
    (["sift"], "unknown extractor"),
])
def test_bad_input_exit_2_and_writes_nothing(tmp_path, capsys, argv, message):
    code, out, err = run(capsys, "features", "extract", *argv, "--dataset", "digits", "--store", tmp_path / "s")
    assert code == 2 and out == "" and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_unknown_dataset_exit_2(tmp_path, capsys):
    code, _, err = run(capsys, "features", "extract", "gist", "--dataset", "mnist", "--store", tmp_path)
    assert code == 2 and "mnist" in err
