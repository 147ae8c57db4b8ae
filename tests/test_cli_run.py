"""``hashbench run`` end to end on the bundled digits: table, CSV, resume, --force, errors."""

import pytest

from hashbench.cli import main
from hashbench.results import read_results


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No CIFAR-10 anywhere, so ``--dataset auto`` falls back to the bundled digits."""
    monkeypatch.delenv("HASHBENCH_DATA", raising=False)  # a location named but empty would be an error
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def _run(tmp_path, *extra):
    return main(["run", "--out", str(tmp_path / "out" / "run.csv"), "--store", str(tmp_path / "store"), *extra])


def test_run_prints_and_stores_the_grid_and_resumes(offline, capsys):
    assert _run(offline, "--methods", "lsh,cca-itq", "--bits", "8,16", "--seeds", "0,1") == 0
    out, err = capsys.readouterr()
    assert "using the bundled digits" in err and "digits-dsh" in err
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["dataset", "protocol", "features", "method", "bits"]
    assert len(lines) == 2 + 8
    df = read_results(offline / "out" / "run.csv")
    assert len(df) == 8 and set(df["method"]) == {"lsh", "cca-itq"} and set(df["seed"]) == {0, 1}
    assert set(df["features"]) == {"pixels"} and set(df["protocol"]) == {"digits-dsh"}
    assert df["map"].between(0, 1).all() and (df.loc[df.method == "cca-itq", "n_labelled"] == "all").all()

    assert _run(offline, "--methods", "lsh,cca-itq", "--bits", "8,16", "--seeds", "0,1") == 0
    again, err = capsys.readouterr()
    assert "8 of 8 cells already in" in err and "done " not in err
    assert again == out  # the same rows, read back from the file

    assert _run(offline, "--methods", "lsh", "--bits", "8", "--seed", "1", "--force") == 0
    _, err = capsys.readouterr()
    assert err.count("done ") == 1
    forced = read_results(offline / "out" / "run.csv")
    assert len(forced) == 8
    changed = forced["timestamp"] != df["timestamp"]
    assert changed.sum() <= 1 and (forced["map"] == df["map"]).all()


def test_run_options_reach_the_cells(offline, capsys):
    assert _run(offline, "--methods", "cca-itq", "--bits", "8", "--n-labelled", "300",
                "--protocol", "digits-standard", "--features", "pixels", "--jobs", "1") == 0
    row = read_results(offline / "out" / "run.csv").iloc[0]
    assert (row["n_labelled"], row["protocol"], row["n_database"]) == ("300", "digits-standard", 1297)


@pytest.mark.parametrize("args, message", [
    (["--methods", "lsh,nope"], "unknown method 'nope'"),
    (["--methods", "lsh", "--bits", "8,x"], "--bits: expected a comma-separated list"),
    (["--methods", "lsh", "--bits", "0"], "n_bits"),
    (["--methods", "lsh", "--seed", "1", "--seeds", "1,2"], "--seed or --seeds"),
    (["--methods", "lsh", "--protocol", "cifar10-dsh", "--dataset", "digits"], "is for dataset cifar10"),
    (["--methods", "lsh", "--features", "sift"], "unknown extractor"),
    (["--methods", "cca-itq", "--n-labelled", "many"], "--n-labelled"),
    (["--methods", "lsh", "--jobs", "0"], "--jobs must be at least 1"),
])
def test_bad_input_exits_2_with_one_line_and_no_file(offline, capsys, args, message):
    assert _run(offline, "--dataset", "digits", *args) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (offline / "out").exists()


def test_unusable_out_is_refused_before_any_cell(offline, capsys):
    (offline / "folder.csv").mkdir()
    args = ["run", "--dataset", "digits", "--methods", "lsh", "--bits", "8", "--store", str(offline / "store")]
    assert main([*args, "--out", str(offline / "folder.csv")]) == 2
    assert "is a folder" in capsys.readouterr().err
    (offline / "foreign.csv").write_text("a,b\n1,2\n")
    assert main([*args, "--out", str(offline / "foreign.csv")]) == 2
    err = capsys.readouterr().err
    assert "not a hashbench result file of this version (columns a, b...); choose another --out" in err
    assert not (offline / "store").exists()  # refused before features were computed


def test_param_reaches_the_hasher_and_the_row_key(tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert main(["run", "--dataset", "digits", "--methods", "lsh", "--bits", "8", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["run", "--dataset", "digits", "--methods", "itq", "--bits", "8", "--param", "n_iter=3",
                 "--out", str(out)]) == 0
    rows = read_results(out)
    assert list(rows["params"]) == ["{}", '{"n_iter":3}']


@pytest.mark.parametrize("param, msg", [("seed=3", "--param seed"), ("bogus=1", "bogus"), ("novalue", "KEY=VALUE")])
def test_bad_param_exits_2(tmp_path, capsys, param, msg):
    out = tmp_path / "r.csv"
    assert main(["run", "--dataset", "digits", "--methods", "itq", "--bits", "8", "--param", param,
                 "--out", str(out)]) == 2
    assert msg in capsys.readouterr().err and not out.exists()
