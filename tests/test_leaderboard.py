"""reproduce leaderboard: the grid (methods from the registry's declarations, cheap stages
first), its figure's data and its README table."""

import json

import numpy as np
import pandas as pd
import pytest

from hashbench.experiment import IMAGES
from hashbench.figures import family, leaderboard_summary
from hashbench.hashers import HASHERS, ORIGINS
from hashbench.paper import load_baselines
from hashbench.plots import leaderboard_figure
from hashbench.report import markdown_tables
from hashbench.reproduce import EXPERIMENTS, NAMES, SHALLOW, _setup, end_to_end_methods, reproduce
from hashbench.results import COLUMNS, write_row


def plan(tmp_path, **kw):
    """The leaderboard's cells on digits and the cell lists each stage ran, without running."""
    s = _setup("leaderboard", "digits", 5, None, 0, None, None, tmp_path / "models", dry=True)
    stages = []
    cells = EXPERIMENTS["leaderboard"](s, lambda cells, alongside=(): stages.append(list(cells)))
    return cells, stages


def test_grid_stages_cheap_cells_first_and_takes_deep_methods_from_the_registry(tmp_path, monkeypatch):
    class FakeDeep(HASHERS["dsh"]):  # a loss that lands later: declared, not named anywhere in reproduce
        pass

    monkeypatch.setitem(HASHERS, "zz-deep", FakeDeep)
    monkeypatch.setitem(ORIGINS, "zz-deep", "built-in")
    cells, stages = plan(tmp_path)
    assert "leaderboard" in NAMES
    shallow, sanity = stages[0], stages[1]
    assert {c.method for c in shallow} == set(SHALLOW) and {c.features for c in shallow} == {"pixels"}
    assert len(shallow) == 2 * len(SHALLOW) * 4 and {c.bits for c in shallow} == {12, 24, 32, 48}
    assert {c.method for c in sanity} == {"classifier"} and all(c.features.startswith("cnn-cls-logits:model=")
                                                                for c in sanity)
    deep = [c for c in cells if c.features == IMAGES]
    assert cells[: len(shallow) + len(sanity)] == shallow + sanity  # the long trainings come last
    assert cells[-len(deep):] == deep
    for m in ("dsh", "zz-deep"):
        mine = [(c.protocol, c.bits, c.seed) for c in deep if c.method == m]
        assert sorted(mine) == sorted((p, b, s) for p in ("digits-dsh", "digits-standard")
                                      for b, s in ((12, 0), (12, 1), (12, 2), (48, 0)))
        assert all(json.loads(c.params)["schedule"] == 5 for c in deep if c.method == m)
    assert "dsh-ensemble" not in {c.method for c in cells}  # images, but it trains no model file
    # the first trainings of every method before the extra seeds
    first = deep[: 2 * 2 * len(end_to_end_methods())]
    assert {c.method for c in first} == set(end_to_end_methods()) and {c.seed for c in first} == {0}
    assert end_to_end_methods()[0] == "dsh" and "zz-deep" in end_to_end_methods()


def fake_row(method, features, bits, seed, m, r2, train_s, protocol="cifar10-dsh", sha=""):
    row = {c: None for c in COLUMNS}
    row.update({"dataset": "cifar10", "protocol": protocol, "features": features, "method": method, "bits": bits,
                "seed": seed, "n_labelled": "", "params": "{}", "map": m, "map_expected": m, "precision_r2": r2,
                "train_s": train_s, "model_sha256": sha, "model_files": {}, "curves": {}, "schema": 2,
                "n_queries": 10, "n_database": 90, "n_no_relevant": 0, "n_train": 90})
    return row


ROWS = [
    fake_row("lsh", "gist", 12, 0, 0.12, 0.15, 1.0), fake_row("lsh", "gist", 48, 0, 0.16, 0.02, 2.0),
    fake_row("dsh", IMAGES, 12, 0, 0.60, 0.50, 100.0, sha="a"),
    fake_row("dsh", IMAGES, 12, 1, 0.64, 0.56, 120.0, sha="b"),
    fake_row("dsh", IMAGES, 12, 2, 0.68, 0.62, 110.0, sha="c"),
    fake_row("dsh", IMAGES, 48, 0, 0.70, 0.30, None, sha="d"),
    # the same 48-bit model, trained by the other protocol's row
    fake_row("dsh", IMAGES, 48, 0, 0.72, 0.33, 300.0, protocol="cifar10-standard", sha="d"),
]
RESUMED = [  # a training resumed from a partial checkpoint: its train_s is only the rest
    dict(fake_row("csq", IMAGES, 48, 0, 0.60, 0.40, 50.0, sha="e"), fit="resumed"),
    dict(fake_row("csq", IMAGES, 48, 0, 0.66, 0.45, None, protocol="cifar10-standard", sha="e"), fit="loaded"),
]


def test_summary_averages_seeds_and_borrows_the_training_time_of_a_shared_model():
    s = leaderboard_summary(pd.DataFrame(ROWS))
    dsh = s[(s["protocol"] == "cifar10-dsh") & (s["method"] == "dsh")].set_index("bits")
    assert dsh.loc[12, "n_seeds"] == 3 and dsh.loc[12, "map"] == pytest.approx(0.64)
    assert (dsh.loc[12, "map_min"], dsh.loc[12, "map_max"]) == (0.60, 0.68)
    assert dsh.loc[12, "train_s"] == pytest.approx(110.0)
    assert dsh.loc[48, "train_s"] == 300.0  # loaded here, trained by the cifar10-standard row
    assert list(s["family"][s["protocol"] == "cifar10-dsh"]) == ["shallow", "shallow", "end-to-end", "end-to-end"]
    assert family("classifier") == "sanity" and family("ksh") == "shallow" and family("nope") == "other"
    assert leaderboard_summary(pd.DataFrame(columns=list(COLUMNS))).empty
    resumed = leaderboard_summary(pd.DataFrame(ROWS + RESUMED))
    csq = resumed[resumed["method"] == "csq"]
    assert len(csq) == 2 and csq["train_s"].isna().all() and list(csq["map"]) == [0.60, 0.66]


def test_figure_plots_the_mean_over_seeds_with_their_spread():
    fig = leaderboard_figure(pd.DataFrame(ROWS))
    ax_map, ax_r2, ax_time = fig.axes[:3]  # the cifar10-dsh row of panels
    assert [line.get_label() for line in ax_map.lines] == ["LSH (gist)", "DSH"]
    np.testing.assert_allclose(ax_map.lines[0].get_ydata(), [0.12, 0.16])
    np.testing.assert_allclose(ax_map.lines[1].get_xdata(), [12, 48])
    np.testing.assert_allclose(ax_map.lines[1].get_ydata(), [0.64, 0.70])
    np.testing.assert_allclose(ax_r2.lines[1].get_ydata(), [(0.50 + 0.56 + 0.62) / 3, 0.30])
    (bar,) = ax_map.collections[0].get_segments()  # the 12-bit seeds' lowest to highest mAP
    np.testing.assert_allclose(bar, [[12, 0.60], [12, 0.68]])
    np.testing.assert_allclose(ax_time.lines[1].get_xdata(), [110.0, 300.0])
    np.testing.assert_allclose(ax_time.lines[1].get_ydata(), [0.64, 0.70])
    assert len(fig.axes) == 6  # a row of three panels per protocol


def test_figure_colours_a_line_by_its_loss_and_marks_its_features_in_one_legend_outside():
    rows = [fake_row("dsh", IMAGES, 12, 0, 0.6, 0.5, 100.0), fake_row("dsh-head", "gist", 12, 0, 0.3, 0.2, 1.0),
            fake_row("csq-head", "gist", 12, 0, 0.3, 0.2, 1.0), fake_row("lsh", "gist", 12, 0, 0.1, 0.1, 0.1),
            fake_row("classifier", "cnn-cls-logits", 12, 0, 0.5, 0.5, 0.0)]
    fig = leaderboard_figure(pd.DataFrame(rows))
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    assert lines["DSH"].get_color() == lines["DSH head (gist)"].get_color()  # one loss, one colour
    names = ("DSH", "CSQ head (gist)", "LSH (gist)", "Classifier codes (cnn-cls-logits)")
    assert len({lines[n].get_color() for n in names}) == 4
    assert (lines["DSH"].get_marker(), lines["DSH"].get_linestyle()) == ("o", "-")
    assert (lines["DSH head (gist)"].get_marker(), lines["DSH head (gist)"].get_linestyle()) == ("^", ":")
    assert all(ax.get_legend() is None for ax in fig.axes)  # no legend over the points
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [line.get_label() for line in fig.axes[0].lines]


def test_readme_table_from_the_rows_and_graceful_without_them(tmp_path):
    assert "missing or empty" in markdown_tables(tmp_path)["leaderboard"]
    (tmp_path / "leaderboard.csv").write_text("method,map\nlsh,0.1\n")  # a table of another shape
    assert "holds no result rows" in markdown_tables(tmp_path)["leaderboard"]
    (tmp_path / "leaderboard.csv").unlink()
    for row in ROWS:
        write_row(tmp_path / "leaderboard.csv", row)
    lines = markdown_tables(tmp_path)["leaderboard"].splitlines()
    assert "| shallow | LSH | Hand (GIST) | 0.120 / - | 0.160 / - | 1 |" in lines
    assert "| end-to-end | DSH | images | 0.640 ± 0.040 / - | 0.700 / 0.720 | 110 |" in lines


@pytest.mark.slow
def test_leaderboard_end_to_end_on_digits(tmp_path):
    rows, table, figures = reproduce("leaderboard", dataset="digits", budget=5, out_dir=tmp_path,
                                     models=tmp_path / "models", log=lambda line: None)
    assert table.empty and [p.name for p in figures] == ["leaderboard-digits.png", "leaderboard-digits.pdf"]
    stored = pd.read_csv(tmp_path / "leaderboard-digits.csv")
    first = stored["method"].iloc[: 2 * len(SHALLOW) * 4]
    assert set(first) == set(SHALLOW)  # written before the classifier and the trainings
    dsh = rows[rows["method"] == "dsh"]
    assert sorted(dsh.groupby("bits")["seed"].nunique().items()) == [(12, 3), (48, 1)]
    assert len(list((tmp_path / "models" / "digits").glob("dsh-*.ckpt"))) == 4  # one per (bits, seed): shared
    fig = leaderboard_figure(rows)
    names = [line.get_label() for line in fig.axes[0].lines]
    mine = rows[(rows["protocol"] == "digits-dsh") & (rows["method"] == "dsh")].groupby("bits")["map"].mean()
    np.testing.assert_allclose(fig.axes[0].lines[names.index("DSH")].get_ydata(), mine.values)


def test_site_shows_the_leaderboard_figure_on_its_page(tmp_path):
    from hashbench.plots import save
    from hashbench.report import build_site

    results = tmp_path / "results"
    for row in ROWS:
        write_row(results / "leaderboard.csv", row)
    save(leaderboard_figure(pd.DataFrame(ROWS)), results / "leaderboard")
    build_site(results, tmp_path / "site")
    page = (tmp_path / "site" / "leaderboard.html").read_text()
    assert 'src="figures/leaderboard.png"' in page and page.count("<tr>") == 1 + len(ROWS)
    assert (tmp_path / "site" / "figures" / "leaderboard.png").is_file()


def test_site_takes_a_leaderboard_of_another_dataset_as_a_result_file(tmp_path):
    from hashbench.report import build_site

    results = tmp_path / "results"
    for row in ROWS:
        write_row(results / "leaderboard-digits.csv", row)
    res = build_site(results, tmp_path / "site")
    assert res.files["leaderboard-digits"].comparison.empty  # the DSH paper has no leaderboard
    page = (tmp_path / "site" / "run-leaderboard-digits.html").read_text()
    assert "No row of this file has a published number" in page


def test_releases_table_puts_each_published_number_beside_our_cell_of_the_same_length(tmp_path):
    assert "missing or empty" in markdown_tables(tmp_path)["leaderboard-releases"]
    rows = [fake_row("dpsh", IMAGES, 12, s, m, 0.1, 50.0, sha=str(s)) for s, m in ((0, 0.30), (1, 0.34))]
    rows.append(fake_row("dpsh", IMAGES, 12, 0, 0.40, 0.1, None, protocol="cifar10-standard", sha="0"))
    for row in rows:
        write_row(tmp_path / "leaderboard.csv", row)
    lines = markdown_tables(tmp_path)["leaderboard-releases"].splitlines()
    base = load_baselines()
    published = base[(base["variant"] == "cifar10-1k") & (base["features"] == IMAGES)]
    assert len(lines) == 2 + len(published)  # one line per published number, ours or not
    dpsh12 = published[(published["method"] == "dpsh") & (published["bits"] == 12)].iloc[0]
    assert lines[2].startswith(f"| DPSH | 12 | {dpsh12['value']:.3f} | 0.320 / 0.400 | ")
    assert "VGG-F" in lines[2] and "`dpsh-release-readme`" in lines[2]
    assert any(line.startswith("| DPSH | 48 | 0.757 | - / - |") for line in lines)  # no 48-bit cell of ours
