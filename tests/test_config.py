"""Experiments as data: the flags and TOML files build one structure, per-method grids,
the n_labelled axis, and the paper's grids printed as files that read back to the same cells."""

import re
from pathlib import Path

import pytest

from hashbench import config
from hashbench.cli import main
from hashbench.errors import InputError
from hashbench.reproduce import print_config

SMALL = {"datasets": ["digits"], "bits": [8]}


def keys(cells):
    return [c.key() for c in cells]


def test_param_targets_one_method_and_lists_are_axes():
    exp = config.from_flags(["lsh", "ksh"], params=["ksh.n_anchors=50,100"], **SMALL)
    cells = exp.cells()
    assert [(c.method, c.params) for c in cells] == [
        ("lsh", "{}"), ("ksh", '{"n_anchors":50}'), ("ksh", '{"n_anchors":100}')]
    # a bare key goes to the selected methods that take it, and only to them
    cells = config.from_flags(["lsh", "itq", "cca-itq"], params=["n_iter=3"], **SMALL).cells()
    assert {c.method: c.params for c in cells} == {"lsh": "{}", "itq": '{"n_iter":3}', "cca-itq": '{"n_iter":3}'}
    # one JSON value stays one value (a list-valued parameter), a comma list is an axis
    assert config.parse_param("dsh-ensemble.seeds=[0,2]") == ("dsh-ensemble", "seeds", [[0, 2]])
    assert config.parse_param("schedule=quick,paper") == (None, "schedule", ["quick", "paper"])


@pytest.mark.parametrize("params, message", [
    (["n_anchors=100"], "none of the selected methods (lsh, itq) takes it"),
    (["ksh.n_anchors=100"], "ksh is not among --methods"),
    (["itq.n_anchors=100"], "itq has no parameter 'n_anchors'"),
    (["seed=3"], "give it with its own option"),
    (["n_iter=3", "itq.n_iter=4"], "given twice for itq"),
    (["itq.n_iter=-1"], "n_iter must be an integer >= 0"),
])
def test_bad_params(params, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config.from_flags(["lsh", "itq"], params=params, **SMALL).cells()


def test_n_labelled_is_a_grid_axis():
    cells = config.from_flags(["lsh", "ksh"], n_labelled=[300, 600, "all"], params=["ksh.n_anchors=50"],
                              **SMALL).cells()
    assert [(c.method, c.n_labelled) for c in cells] == [
        ("lsh", ""), ("ksh", "300"), ("ksh", "600"), ("ksh", "all")]


def test_flags_and_toml_give_the_same_cells(tmp_path):
    flags = config.from_flags(["lsh", "ksh"], bits=[8, 16], seeds=[0, 1], datasets=["digits"],
                              n_labelled=[300], params=["ksh.n_anchors=50,100"])
    path = tmp_path / "grid.toml"
    path.write_text('datasets = "digits"\nbits = [8, 16]\nseeds = [0, 1]\nn_labelled = 300\n\n'
                    '[[methods]]\nname = "lsh"\n\n[[methods]]\nname = "ksh"\nn_anchors = [50, 100]\n')
    assert keys(config.load(path).cells()) == keys(flags.cells())


def test_method_tables_set_their_own_axes(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('protocols = ["digits-dsh", "digits-standard"]\nbits = [8]\n\n'
                    '[[methods]]\nname = "lsh"\n\n'
                    '[[methods]]\nname = "ksh"\nn_anchors = 50\nn_labelled = [100, 200]\naxes = {bits = [16, 24]}\n')
    cells = config.load(path).cells()
    assert [(c.protocol, c.method, c.bits, c.n_labelled) for c in cells] == [
        (p, m, b, n) for p in ("digits-dsh", "digits-standard")
        for m, b, n in [("lsh", 8, "")] + [("ksh", b, n) for b in (16, 24) for n in ("100", "200")]]


@pytest.mark.parametrize("text, message", [
    ("bits = [8\n", "not valid TOML"),
    ('bitz = [8]\nmethods = ["lsh"]\n', "unknown key 'bitz'"),
    ('methods = ["lshh"]\n', "unknown method 'lshh'"),
    ('[[methods]]\nname = "lsh"\nn_anchors = 5\n', "lsh has no parameter 'n_anchors'"),
    ('bits = [[8]]\nmethods = ["lsh"]\n', r"bits must be an integer in \[1, 4096\], got \[8\]"),
    ('seeds = "0"\nmethods = ["lsh"]\n', "seeds must be an integer >= 0, got '0'"),
    ('[[methods]]\nname = "ksh"\nn_anchors = [[50]]\n', r"n_anchors must be an integer >= 1, got \[50\]"),
    ('[[methods]]\nname = "ksh"\naxes = {bitz = [8]}\n', "unknown axis 'bitz'"),
    ('datasets = ["digits"]\n', "no methods"),
])
def test_bad_config_files(tmp_path, capsys, text, message):
    """One line on stderr, exit 2, nothing written."""
    path = tmp_path / "bad.toml"
    path.write_text('datasets = ["digits"]\n' + text if "datasets" not in text else text)
    out = tmp_path / "out.csv"
    assert main(["run", "--config", str(path), "--out", str(out), "--store", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hashbench run: error: ")
    assert re.search(message, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_config_and_grid_flags_do_not_mix(tmp_path, capsys):
    path = tmp_path / "g.toml"
    path.write_text('methods = ["lsh"]\n')
    assert main(["run", "--config", str(path), "--bits", "8", "--out", str(tmp_path / "o.csv")]) == 2
    assert "drop --bits" in capsys.readouterr().err
    assert main(["run", "--out", str(tmp_path / "o.csv")]) == 2
    assert "give --methods" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["figure6", "table1", "table2", "table3", "table4"])
def test_reproduce_grids_round_trip_through_toml(tmp_path, name):
    """print -> parse -> the same cells reproduce plans (no model is trained to print them)."""
    from hashbench.reproduce import EXPERIMENTS, _setup

    s = _setup(name, "digits", 20, None, 0, None, None, tmp_path / "models", dry=True)
    planned = EXPERIMENTS[name](s, lambda cells, alongside=(): None)
    text = print_config(name, dataset="digits", budget=20, models=tmp_path / "models")
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    assert not (tmp_path / "models").exists()  # nothing trained
    for model in re.findall(r"model=([^\"]+)", text):  # table4's CNN features: files an earlier stage writes
        from hashbench import nets

        Path(model).parent.mkdir(parents=True, exist_ok=True)
        nets.save_state(nets.new_net(10, 32, seed=0), model)  # a real (untrained) network: the file is read
    assert sorted(keys(config.load(path).cells())) == sorted(keys(dict.fromkeys(planned)))


def test_print_config_from_the_cli(capsys):
    assert main(["reproduce", "table1", "--dataset", "digits", "--budget", "20", "--print-config"]) == 0
    text = capsys.readouterr().out
    assert 'margin = [6.0, 3.0, 2.0, 1.0]\nrelax = "sigmoid"\nschedule = "paper:20"' in text
    import tomllib
    assert tomllib.loads(text)["protocols"] == ["digits-dsh", "digits-standard"]


def test_toml_emitter_values():
    assert config._toml_value(["a\"b", 1, 2.5, True, [0, 2]]) == '["a\\"b", 1, 2.5, true, [0, 2]]'
    with pytest.raises(ValueError):
        config._toml_value(float("nan"))


def test_show_takes_the_n_labelled_axis_too():
    from hashbench.cli import _experiment, build_parser

    args = build_parser().parse_args(["show", "--methods", "lsh,ksh", "--n-labelled", "300,all", "--dataset", "digits"])
    cells = _experiment(args).cells()
    assert [(c.method, c.bits, c.n_labelled) for c in cells] == [("lsh", 48, ""), ("ksh", 48, "300"),
                                                                ("ksh", 48, "all")]
