"""hashbench show (Figures 7-18): the retrieval grid's pixels checked against a brute-force
ranking and the labels, the failed / successful rule, the command end to end on digits."""

import numpy as np
import pytest
from PIL import Image

from hashbench.cli import main
from hashbench.codes import unpack
from hashbench.errors import InputError
from hashbench.experiment import make_cell, prepare
from hashbench.figures import label_text, select_cases, show
from hashbench.plots import RED, GridLayout, tile_scale

PROTOCOL = "digits-dsh"


@pytest.fixture(scope="module")
def cells():
    return [make_cell("digits", PROTOCOL, "pixels", "lsh", 16, 0),
            make_cell("digits", PROTOCOL, "pixels", "cca-itq", 16, 0, 300),
            make_cell("digits", PROTOCOL, "images", "dsh", 16, 0, schedule=2)]


def brute_force_top(cell, models, k):
    """Each query's top k by plain numpy: Hamming distances of unpacked bits, a stable sort
    (ties by database position), the query's own item left out. Returns dataset indices."""
    ds, split, hasher, X = prepare(cell, models=models)
    hasher.fit(X[split.train], ds.labels[split.train] if hasher.supervised else None)
    q = unpack(hasher.encode(X[split.query]), cell.bits).astype(int)
    d = unpack(hasher.encode(X[split.database]), cell.bits).astype(int)
    dist = (q[:, None, :] != d[None, :, :]).sum(2)
    self_index = split.self_index()
    top = []
    for i in range(len(q)):
        order = [j for j in np.argsort(dist[i], kind="stable") if j != self_index[i]]
        top.append(split.database[order[:k]])
    return ds, split, np.array(top)


def ring(png, box, width):
    """The pixels of the frame ring around a tile box."""
    x0, y0, x1, y1 = box
    outer = png[y0 - width:y1 + width, x0 - width:x1 + width].copy()
    mask = np.ones(outer.shape[:2], bool)
    mask[width:-width, width:-width] = False
    return outer[mask]


def test_red_frames_land_exactly_on_the_true_matches(cells, tmp_path):
    models, k = tmp_path / "models", 10
    _ds0, split0, _, _ = prepare(cells[0])
    queries = [int(split0.query[i]) for i in (0, 77, 311)]
    paths = show(cells, tmp_path / "grid", queries=queries, k=k, models=models)
    assert [p.name for p in paths] == [f"grid-query-{q}.{e}" for q in queries for e in ("png", "pdf")]
    assert all(p.stat().st_size > 1000 for p in paths)
    truth = [brute_force_top(c, models, k) for c in cells]
    ds, split = truth[0][:2]
    scale = tile_scale(ds.images.shape[1])
    lay = GridLayout(len(cells), k, ds.images.shape[1] * scale)
    n_red_tiles = 0
    for q in queries:
        png = np.asarray(Image.open(tmp_path / f"grid-query-{q}.png").convert("RGB"))
        assert png.shape[:2] == lay.size[::-1]
        pdf = (tmp_path / f"grid-query-{q}.pdf").read_bytes()  # the same pixels, not a lossy JPEG
        assert f"/Subtype /Image /Width {lay.size[0]} /Height {lay.size[1]}".encode() in pdf
        assert b"/DCTDecode" not in pdf
        p = int(np.searchsorted(split.query, q))
        x0, y0, x1, y1 = lay.query_box()
        assert np.array_equal(png[y0:y1, x0:x1], ds.images[q].repeat(scale, 0).repeat(scale, 1))
        for r, (_, _, top) in enumerate(truth):
            for j, idx in enumerate(top[p]):
                x0, y0, x1, y1 = lay.tile_box(r, j)
                # the right image in the right place ...
                assert np.array_equal(png[y0:y1, x0:x1], ds.images[idx].repeat(scale, 0).repeat(scale, 1))
                # ... framed in red exactly when its label is the query's
                frame = ring(png, (x0, y0, x1, y1), lay.frame)
                match = ds.labels[idx] == ds.labels[q]
                assert (frame == RED).all() if match else (frame == 255).all()
                n_red_tiles += match
        red = (png == RED).all(axis=2).sum()
        ring_area = (lay.tile + 2 * lay.frame) ** 2 - lay.tile ** 2
        assert red == ring_area * sum(ds.labels[i] == ds.labels[q] for _, _, t in truth for i in t[p])
    assert 0 < n_red_tiles < len(queries) * len(cells) * k  # both kinds of tile were checked


def test_cases_are_the_lowest_and_highest_precision_with_seeded_ties():
    p = np.array([0.5, 0.0, 1.0, 0.0, 1.0, 0.3, 1.0])
    cases = select_cases(p, 2, 3, seed=0)
    assert [k for k, _ in cases] == ["failed"] * 2 + ["successful"] * 3
    assert {i for _, i in cases[:2]} == {1, 3} and {i for _, i in cases[2:]} == {2, 4, 6}
    assert select_cases(p, 2, 3, seed=0) == cases
    orders = {tuple(i for _, i in select_cases(p, 2, 3, seed=s)) for s in range(20)}
    assert len(orders) > 1  # ties are broken by the seed, not by position
    assert [i for _, i in select_cases(p, 3, 0, seed=1)][2] == 5  # then the next lowest
    with pytest.raises(InputError, match="cases asked"):
        select_cases(p, 4, 4, seed=0)
    with pytest.raises(InputError, match="at least one"):
        select_cases(p, 0, 0, seed=0)


def test_label_text_names_single_and_multi_labels():
    from types import SimpleNamespace

    single = SimpleNamespace(labels=np.array([2, 0]), class_names=("cat", "dog", "ship"))
    multi = SimpleNamespace(labels=np.array([[True, False, True], [False, False, False]]),
                            class_names=("sky", "clouds", "water"))
    assert label_text(single, 0) == "label: ship"
    assert label_text(multi, 0) == "labels: sky, water" and label_text(multi, 1) == "labels: none"


def red_tiles(png_path, row, n_rows, k=10, side=8):
    lay = GridLayout(n_rows, k, side * tile_scale(side))
    png = np.asarray(Image.open(png_path).convert("RGB"))
    return sum(bool((ring(png, lay.tile_box(row, j), lay.frame) == RED).all()) for j in range(k))


def test_show_command_end_to_end_on_digits(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the DSH model goes to runs/models/ here
    argv = ["show", "--dataset", "digits", "--methods", "lsh,dsh", "--bits", "16", "--budget", "2",
            "--out", "out/show"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.split()
    names = [f"show-{k}-{i}" for k in ("failed", "successful") for i in (1, 2, 3)]
    assert sorted((tmp_path / "out").iterdir()) == sorted(tmp_path / "out" / f"{n}.{e}" for n in names
                                                          for e in ("png", "pdf"))
    assert printed.count("figure:") == 12
    # the cases are ranked by the last method (DSH): every failed case has at most as many
    # true matches in its DSH row as any successful case
    dsh = {n: red_tiles(tmp_path / "out" / f"{n}.png", 1, 2) for n in names}
    assert max(dsh[n] for n in names[:3]) <= min(dsh[n] for n in names[3:])
    assert [dsh[n] for n in names[:3]] == sorted(dsh[n] for n in names[:3])
    assert len(list((tmp_path / "runs" / "models" / "digits").glob("dsh-16b-*.ckpt"))) == 1


@pytest.mark.parametrize("extra, msg", [
    (["--queries", "5,abc"], "--queries"),
    (["--queries", "TRAIN"], "not a query"),
    (["--topk", "0"], "topk: must be between"),
    (["--budget", "fast"], "--budget"),
    (["--failed", "400", "--successful", "400"], "cases asked"),
])
def test_bad_input_exits_2_without_output(extra, msg, tmp_path, capsys):
    train_image = str(prepare(make_cell("digits", PROTOCOL, "pixels", "lsh", 8, 0))[1].train[0])
    extra = [train_image if e == "TRAIN" else e for e in extra]
    argv = ["show", "--protocol", PROTOCOL, "--features", "pixels", "--methods", "lsh", "--bits", "8",
            "--out", str(tmp_path / "s"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
