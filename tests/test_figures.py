"""reproduce figure1-5 and figure7 end to end on digits (tiny DSH schedules), the data behind
them checked against direct computations, and their images' pixel sizes."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from hashbench.cli import main
from hashbench.codes import pack
from hashbench.experiment import make_cell, prepare
from hashbench.figures import best_ensembles, network_outputs
from hashbench.paper import DEFAULT_VARIANT, compare, paper_name
from hashbench.reproduce import N_LABELLED, reproduce

BUDGET = 2  # DSH iterations per model: the figures' plumbing, not their content


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One OpenMP thread for torch and Numba. Numba's parallel kernels set the OpenMP thread
    count that torch shares to Numba's own; on a loaded machine, tiny trainings then run
    10-40x slower on two spinning threads than on one."""
    import numba

    before = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(before[0])
    numba.set_num_threads(before[1])


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """One folder of results and models shared by the tests (the grids run once)."""
    return tmp_path_factory.mktemp("figures")


def run(name, out):
    return reproduce(name, dataset="digits", budget=BUDGET, out_dir=out, models=out / "models", log=lambda line: None)


def check_image(paths, stem, size):
    assert [p.name for p in paths] == [f"{stem}.png", f"{stem}.pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert Image.open(paths[0]).size == size
    assert paths[1].read_bytes().startswith(b"%PDF")


def test_figure1_histograms_the_outputs_whose_signs_are_the_codes(out):
    rows, table, paths = run("figure1", out)
    check_image(paths, "figure1-digits", (1920, 840))  # 2 x 4 panels of 3.2 x 2.8 in at 150 dpi
    assert len(rows) == 2 * 8 and table.empty  # table1's grid on both digits protocols
    for _, row in rows[rows["protocol"] == "digits-dsh"].iterrows():
        params = json.loads(row["params"])
        assert params["schedule"] == (f"paper:{BUDGET}" if params.get("relax") == "sigmoid" else BUDGET)
        cell = make_cell("digits", "digits-dsh", "images", "dsh", 12, 0, **params)
        ds, split, hasher, X = prepare(cell, models=out / "models")
        hasher.fit(X[split.train], ds.labels[split.train])  # loads the stored model
        values = network_outputs(hasher.checkpoint, X[split.query], params.get("relax"))
        if params.get("relax") == "sigmoid":
            assert ((values >= 0) & (values <= 1)).all()
            bits = values >= 0.5
        else:
            bits = values >= 0
        np.testing.assert_array_equal(pack(bits), hasher.encode(X[split.query]))


def test_figure2_and_figure3_reuse_stored_rows(out):
    run("figure1", out)  # the table1 grid is already there: nothing reruns
    rows, _, paths = run("figure2", out)
    check_image(paths, "figure2-digits", (1500, 675))  # 1 x 2 panels of 5 x 4.5 in
    names = set(rows.apply(paper_name, axis=1, plain=DEFAULT_VARIANT))
    assert names == {f"Regularizer-\u03b1-{a}" for a in ("0", "0.001", "0.01", "0.1")} | {
        f"Sigmoid-m-{m}" for m in (6, 3, 2, 1)}
    rows, _, paths = run("figure3", out)
    check_image(paths, "figure3-digits", (2250, 1350))  # 2 protocols x 3 code lengths
    assert set(rows.apply(paper_name, axis=1)) == {"from scratch", "finetuned"}


def test_figure5_compares_finetuned_with_the_best_ensembles(out):
    rows, _, paths = run("figure5", out)
    check_image(paths, "figure5-digits", (2250, 1350))
    ens = rows[rows["method"] == "dsh-ensemble"].drop_duplicates(["protocol", "bits", "params"])
    best = best_ensembles(ens)
    assert sorted(best["bits"]) == [24, 24, 36, 36, 48, 48]
    for _, b in best.iterrows():
        same = ens[(ens["protocol"] == b["protocol"]) & (ens["bits"] == b["bits"])]
        assert b["map"] == same["map"].max() and len(same) == {24: 6, 36: 4, 48: 1}[b["bits"]]


def test_table1_trains_the_sigmoid_models_with_the_releases_sgd_for_as_long():
    from hashbench.nets import get_schedule
    from hashbench.reproduce import EXPERIMENTS, Setup

    for budget, sgd in (("quick", "paper:8000"), ("paper", "paper"), (500, "paper:500")):
        cells = EXPERIMENTS["table1"](Setup("digits", ("digits-dsh",), budget), None)
        schedules = [json.loads(c.params).get("schedule", "quick") for c in cells]
        assert schedules == [budget] * 4 + [sgd] * 4
        assert get_schedule(sgd).optimizer == "sgd"
        assert get_schedule(sgd).iterations == get_schedule(budget).iterations


def test_table1_compares_the_default_model_with_the_papers_alpha_0_01_row():
    rows = pd.DataFrame([{"protocol": "cifar10-dsh", "method": "dsh", "features": "images", "bits": 12, "seed": 0,
                          "params": p, "map": 0.6, "precision_r2": 0.5} for p in ('{}', '{"alpha":0.001}')])
    table = compare("table1", rows, "cifar10")
    assert dict(zip(table["variant"], table["paper"], strict=True)) == {"regularizer-alpha-0.01": 0.5671,
                                                           "regularizer-alpha-0.001": 0.6195}


def digits_training(schedule, checkpoint=None, held_out=True, loss_fn=None):
    """A tiny DSH training on digits with held-out images; returns (net, losses, held-out)."""
    from hashbench import nets
    from hashbench.datasets import load_dataset

    ds = load_dataset("digits")
    net = nets.new_net(12, 8, 0)
    held = (ds.images[1500:], ds.labels[1500:])
    loss_fn = loss_fn or nets.DSHLoss(12, 10, margin=24.0)
    losses = nets.train(net, ds.images[:1500], loss_fn, ds.labels[:1500], nets.get_schedule(schedule), seed=0,
                        checkpoint=checkpoint, checkpoint_every=3, held_out=held if held_out else None,
                        progress=False)
    return net, losses, held


def test_test_losses_are_recorded_without_changing_training_and_survive_save_load(tmp_path):
    from hashbench import nets

    ck = tmp_path / "run.ckpt"
    net, losses, (images, labels) = digits_training(8, ck)
    plain, plain_losses, _ = digits_training(8, held_out=False)
    np.testing.assert_array_equal(losses, plain_losses)  # measuring changes nothing
    for a, b in zip(net.state_dict().values(), plain.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    history = nets.load_history(ck)
    np.testing.assert_array_equal(history["train"], losses)
    assert nets.held_out_every(8) == 1 and list(history["test_iterations"]) == list(range(1, 9))
    # the last test loss is the loss of the final network on the held-out images, by hand:
    # batches of 200 (200 + 97 images), weighted by size
    out = nets.apply(net, images, device="cpu")
    parts = [(nets.dsh_loss(torch.from_numpy(out[s:s + 200]), torch.tensor(labels[s:s + 200]), 24.0, 0.01).item(),
              len(out[s:s + 200])) for s in range(0, len(out), 200)]
    assert history["test"][-1] == pytest.approx(sum(v * n for v, n in parts) / len(out), rel=1e-5)
    assert history["test"][0] > history["test"][-1]  # the network learns


def test_an_interrupted_run_resumes_its_test_losses(tmp_path):
    from hashbench import nets

    whole = tmp_path / "whole.ckpt"
    digits_training(8, whole)
    calls = {"n": 0}

    def failing(out, t, progress):  # training steps only (the held-out loss runs without gradients)
        if torch.is_grad_enabled():
            calls["n"] += 1
            if calls["n"] == 5:
                raise KeyboardInterrupt
        return nets.dsh_loss(out, t, 24.0, 0.01)

    cut = tmp_path / "cut.ckpt"
    with pytest.raises(KeyboardInterrupt):
        digits_training(8, cut, loss_fn=failing)
    assert list(nets.load_history(cut)["test_iterations"]) == [1, 2, 3]  # saved at iteration 3
    digits_training(8, cut)  # resumes at iteration 3
    a, b = nets.load_history(whole), nets.load_history(cut)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-6)


def test_load_history_refuses_a_model_file(tmp_path):
    from hashbench import nets
    from hashbench.errors import InputError

    net, _, _ = digits_training(1, held_out=False)
    nets.save_state(net, tmp_path / "m.pt")
    with pytest.raises(InputError, match="no training history"):
        nets.load_history(tmp_path / "m.pt")
    with pytest.raises(InputError, match="no such checkpoint"):
        nets.load_history(tmp_path / "missing.ckpt")


def test_figure4_draws_the_stored_loss_curves(out):
    from hashbench import nets

    rows, _, paths = run("figure4", out)
    check_image(paths, "figure4-digits", (1650, 600))  # two panels of 5.5 x 4 in
    finetuned = [p for p in rows["params"] if "init_from" in p and '"schedule"' in p]
    assert finetuned  # the table2 grid (shared with figure3) ran first
    for ck in (out / "models" / "digits").glob("dsh-48b-*.ckpt"):
        h = nets.load_history(ck)  # recorded on the split's queries while training
        assert len(h["train"]) == BUDGET and list(h["test_iterations"]) == list(range(1, BUDGET + 1))
        assert np.isfinite(h["test"]).all()


def test_best_ensembles_by_hand():
    rows = pd.DataFrame({"method": ["dsh-ensemble"] * 4 + ["dsh"], "protocol": ["p"] * 5,
                         "bits": [24, 24, 24, 36, 24], "map": [0.5, 0.7, 0.7, 0.1, 0.9],
                         "params": ["a", "b", "c", "d", "e"]})
    assert list(best_ensembles(rows)["params"]) == ["b", "d"]  # the first of equals; plain DSH is no ensemble


def test_figure7_command_draws_the_failed_and_successful_cases(out, capsys, monkeypatch):
    monkeypatch.chdir(out)  # the command's model cache and feature store go here
    monkeypatch.setitem(N_LABELLED, "ksh", 300)  # KSH on 2,000 labelled digits alone takes 10 s
    argv = ["reproduce", "figure7", "--dataset", "digits", "--budget", str(BUDGET), "--out-dir", str(out)]
    assert main(argv) == 0
    printed = [line.split(" ", 1)[1] for line in capsys.readouterr().out.splitlines() if line.startswith("figure: ")]
    names = [f"figure7-digits-{k}-{i}" for k in ("failed", "successful") for i in (1, 2, 3)]
    assert [p.rsplit("/", 1)[1] for p in printed] == [f"{n}.{e}" for n in names for e in ("png", "pdf")]
    for n in names:  # five methods, ten 8x8 digits each, magnified x8
        assert Image.open(out / f"{n}.png").size == (1030, 524)
