"""reproduce: grids, model reuse across protocols, the side-by-side with the paper, Figure 6."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hashbench.cli import main
from hashbench.paper import compare, variant
from hashbench.provenance import file_sha256
from hashbench.reproduce import reproduce
from hashbench.results import COLUMNS


def test_table2_end_to_end_on_digits_reuses_models_across_protocols(tmp_path):
    rows, table, figures = reproduce("table2", dataset="digits", budget=5, out_dir=tmp_path,
                                     models=tmp_path / "models", log=lambda line: None)
    assert len(rows) == 2 * (4 + 3)  # two protocols x (4 from scratch + 3 fine-tuned)
    assert list(pd.read_csv(tmp_path / "table2-digits.csv").columns) == list(COLUMNS)
    assert sorted(rows.apply(variant, axis=1).unique()) == ["", "finetuned"]
    # one training per setting, shared by the two protocols (same training images)
    assert len(list((tmp_path / "models" / "digits").glob("*.ckpt"))) == 7
    starts = {json.loads(p)["init_from"] for p in rows["params"] if "init_from" in p}
    paths = {json.loads(f)["params"]["init_from"] for f in rows["model_files"] if "init_from" in f}
    assert len(starts) == 1 and len(paths) == 1 and "dsh-12b-s0" in (path := paths.pop())
    assert starts.pop() == "sha256:" + file_sha256(path)  # keyed by the model's content, not its path
    assert table.empty and figures == []  # the paper has no digits numbers
    again, _, _ = reproduce("table2", dataset="digits", budget=5, out_dir=tmp_path,
                            models=tmp_path / "models", log=lambda line: None)
    pd.testing.assert_frame_equal(again, rows)  # resumed: every cell was already done


def fake_rows(cells):
    out = []
    for protocol, method, features, bits, params, m, p in cells:
        levels = [{"recall": r, "precision": 1 - r / 2} for r in np.round(np.arange(21) * 0.05, 2)]
        out.append({"dataset": "cifar10", "protocol": protocol, "features": features, "method": method,
                    "bits": bits, "seed": 0, "n_labelled": "", "params": json.dumps(params), "map": m,
                    "precision_r2": p, "curves": json.dumps({"pr_recall_levels": levels, "pr_curve": []})})
    return pd.DataFrame(out)


def test_compare_pairs_rows_with_the_published_numbers():
    rows = fake_rows([
        ("cifar10-dsh", "dsh", "images", 48, {}, 0.60, 0.4),
        ("cifar10-dsh", "ksh", "cnn-ours:model=x.ckpt", 48, {}, 0.64, 0.5),
        ("cifar10-dsh", "lsh", "gist", 48, {}, 0.15, 0.0),
    ])
    assert list(compare("table4", rows.set_axis([7, 3, 5]), "cifar10").index) == [7, 3, 5]  # the rows' labels
    table = compare("table4", rows, "cifar10").set_index(["method", "metric"])
    assert table.loc[("dsh", "map"), "paper"] == 0.6755
    assert table.loc[("dsh", "map"), "diff"] == pytest.approx(0.60 - 0.6755)
    assert table.loc[("ksh", "map"), "paper"] == 0.6498 and table.loc[("ksh", "map"), "features"] == "cnn-ours"
    assert table.loc[("lsh", "map"), "paper"] == 0.1492
    assert ("dsh", "precision_r2") not in table.index  # Table 4 reports mAP only


def test_compare_names_variants_as_the_paper_does():
    rows = fake_rows([
        ("cifar10-dsh", "dsh", "images", 12, {"alpha": 0.001}, 0.5, 0.61),
        ("cifar10-dsh", "dsh", "images", 12, {"relax": "sigmoid", "margin": 3.0}, 0.4, 0.42),
        ("cifar10-dsh", "dsh", "images", 24, {"init_from": "m.ckpt"}, 0.6, 0.67),
        ("cifar10-dsh", "dsh-ensemble", "images", 36, {"seeds": [0, 2, 3], "member_bits": 12}, 0.7, 0.63),
    ])
    assert list(rows.apply(variant, axis=1)) == ["regularizer-alpha-0.001", "sigmoid-m-3", "finetuned", "M1+M3+M4"]
    t1 = compare("table1", rows, "cifar10")
    assert dict(zip(t1["variant"], t1["paper"], strict=True)) == {"regularizer-alpha-0.001": 0.6195,
                                                                  "sigmoid-m-3": 0.4224}
    t3 = compare("table3", rows[rows["method"] == "dsh-ensemble"], "cifar10").set_index("metric")
    assert t3.loc["map", "paper"] == 0.7022 and t3.loc["precision_r2", "paper"] == 0.6292


def test_figure6_plots_each_rows_pr_curve_and_the_mean_precision_against_bits(tmp_path):
    """Every series drawn is the data of its rows: panel (a) a line per row at 48 bits (its
    PR curve at the recall levels), panel (b) a line per method (precision within radius 2,
    the mean over seeds, against code length), for each protocol in its own row of panels."""
    from hashbench.plots import figure6, files, label

    rng = np.random.default_rng(4)
    recall = np.round(np.arange(21) * 0.05, 2)
    cells = [(p, m, f, b, {}, 0.5, 0.0) for p in ("cifar10-dsh", "cifar10-standard")
             for m, f in (("lsh", "gist"), ("dsh", "images")) for b in (12, 24, 36, 48)]
    seeds = []
    for seed in (0, 1):  # two seeds of every cell: panel (b) averages them
        rows = fake_rows(cells).assign(seed=seed, precision_r2=rng.random(len(cells)))
        rows["curves"] = [json.dumps({"pr_curve": [], "pr_recall_levels": [
            {"recall": r, "precision": p} for r, p in zip(recall, rng.random(21), strict=True)]}) for _ in cells]
        seeds.append(rows)
    rows = pd.concat(seeds, ignore_index=True)
    fig = figure6(rows, tmp_path / "figure6")
    assert len(fig.axes) == 4  # (a), (b) per protocol, row by row
    for i, protocol in enumerate(("cifar10-dsh", "cifar10-standard")):
        ax_pr, ax_bits = fig.axes[2 * i], fig.axes[2 * i + 1]
        assert protocol in ax_pr.get_title() and protocol in ax_bits.get_title()
        part = rows[(rows["protocol"] == protocol) & (rows["bits"] == 48)]
        assert len(ax_pr.lines) == len(part) == 4
        for line, (_, row) in zip(ax_pr.lines, part.iterrows(), strict=True):
            levels = json.loads(row["curves"])["pr_recall_levels"]
            assert line.get_label() == label(row)
            np.testing.assert_array_equal(line.get_xdata(), [p["recall"] for p in levels])
            np.testing.assert_array_equal(line.get_ydata(), [p["precision"] for p in levels])
        assert [line.get_label() for line in ax_bits.lines] == ["LSH (gist)", "DSH"]
        for line, method in zip(ax_bits.lines, ("lsh", "dsh"), strict=True):
            own = rows[(rows["protocol"] == protocol) & (rows["method"] == method)]
            mean = [own[own["bits"] == b]["precision_r2"].mean() for b in (12, 24, 36, 48)]
            np.testing.assert_array_equal(line.get_xdata(), [12, 24, 36, 48])
            np.testing.assert_allclose(line.get_ydata(), mean, rtol=1e-15)
    paths = files(tmp_path / "figure6")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 1000 for p in paths)
    assert Image.open(paths[0]).size == (11 * 150, 9 * 150)  # two rows of two panels, at 150 dpi


def test_importing_and_plotting_leave_the_matplotlib_backend_alone(tmp_path):
    """plots draws on Figure objects of its own: a user's backend is not switched, pyplot not
    imported, by importing hashbench's drawing modules or drawing with them."""
    script = f"""
import matplotlib, sys
matplotlib.use("svg")
import hashbench, hashbench.plots, hashbench.figures, hashbench.reproduce, hashbench.searchbench
assert "matplotlib.pyplot" not in sys.modules, "imported pyplot"
import pandas as pd
hashbench.plots.loss_curves([("t", {{"train": [3.0, 2.0, 1.0], "test_iterations": [2], "test": [1.5]}})],
                            {str(tmp_path / "loss")!r})
assert "matplotlib.pyplot" not in sys.modules, "drawing imported pyplot"
print(matplotlib.get_backend())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "svg"
    assert (tmp_path / "loss.png").stat().st_size > 1000


@pytest.mark.parametrize("argv, msg", [
    (["table4", "--dataset", "nuswide"], "CIFAR-10 experiment"),
    (["table1", "--budget", "fast"], "--budget"),
    (["table1", "--dataset", "digits", "--protocol", "cifar10-dsh"], "for dataset cifar10"),
])
def test_bad_input_exits_2(argv, msg, capsys, tmp_path):
    assert main(["reproduce", *argv, "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_unknown_experiment_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "table9"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


@pytest.mark.slow
def test_retrain_trains_each_model_once_though_stages_name_it_twice(tmp_path):
    """table2 names its 12-bit cells in a stage and again in the grid: --retrain trains them
    once; --force trains nothing and loads every model (rows keep the record of the training
    that made it)."""
    opts = {"dataset": "digits", "budget": 5, "out_dir": tmp_path, "models": tmp_path / "models"}
    first, _, _ = reproduce("table2", log=lambda line: None, **opts)
    log = []
    forced, _, _ = reproduce("table2", force=True, log=log.append, **opts)
    assert forced[["fit", "train_s"]].equals(first[["fit", "train_s"]]) and "trained" in set(first["fit"])
    assert forced["map"].tolist() == first["map"].tolist()
    log.clear()
    retrained, _, _ = reproduce("table2", retrain=True, log=log.append, **opts)
    removed = [line for line in log if line.startswith("retrain: removed")]
    # every model file once, the 12-bit one too (the same seed retrains it bitwise, so the
    # fine-tuned models, named by its content, keep their files and are removed as well)
    assert len(removed) == len(set(removed)) == 7
    assert (retrained["fit"] == "trained").sum() == 7 and len(retrained) == 14
    assert len(pd.read_csv(tmp_path / "table2-digits.csv")) == 14  # rows of the old models replaced


def test_paper_budget_results_go_beside_the_quick_ones(tmp_path):
    from hashbench.reproduce import result_stem

    assert result_stem(tmp_path, "table2", "cifar10", "quick") == tmp_path / "table2"
    assert result_stem(tmp_path, "table2", "cifar10", 5) == tmp_path / "table2"
    assert result_stem(tmp_path, "table2", "cifar10", "paper") == tmp_path / "table2-paper-budget"
    assert result_stem(tmp_path, "table4", "nuswide", "paper") == tmp_path / "table4-nuswide-paper-budget"
