"""List-file datasets (HashNet / DeepHash-pytorch format), split export / import, and the
CLI on a user's image tree: small synthetic trees of real PNG / JPEG files in tmp_path."""

import json

import numpy as np
import pytest
from PIL import Image

from hashbench.cli import main
from hashbench.datasets import describe_datasets, lists, load_dataset, resolve_dataset
from hashbench.datasets.nuswide import resize_bilinear
from hashbench.errors import InputError
from hashbench.protocols import get_protocol
from hashbench.splits import export_split, item_names


def colour(i: int) -> np.ndarray:
    """A 40x48 image whose pixels encode ``i`` (so every image differs)."""
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)


def make_tree(root, labels, parts, name=lambda i: f"img {i:03d}.png", crlf=False, classes=None):
    """Write one image per label row under root/pics/ and the three lists; ``parts`` maps
    train / query / database to row indices."""
    (root / "pics").mkdir(parents=True, exist_ok=True)
    for i in range(len(labels)):
        Image.fromarray(colour(i)).save(root / "pics" / name(i))
    end = "\r\n" if crlf else "\n"
    for part, fname in (("train", "train.txt"), ("query", "test.txt"), ("database", "database.txt")):
        lines = [f"pics/{name(i)} {' '.join(map(str, labels[i]))}" for i in parts[part]]
        (root / fname).write_bytes((end.join(lines) + end).encode())
    if classes:
        (root / "classes.txt").write_text("\n".join(classes) + "\n")
    return root


def one_hot(y, c):
    return np.eye(c, dtype=int)[y]


@pytest.fixture
def single(tmp_path):
    """40 images of 4 classes; HashNet-style: database disjoint from the queries, training a
    subset of the database; paths with spaces; CRLF line ends."""
    y = np.arange(40) % 4
    parts = {"query": range(8), "database": range(8, 40), "train": range(8, 24)}
    return make_tree(tmp_path / "single", one_hot(y, 4), parts, crlf=True), y


@pytest.fixture
def multi(tmp_path):
    rng = np.random.default_rng(1)
    y = (rng.random((30, 5)) < 0.4).astype(int)
    y[~y.any(1), 0] = 1
    parts = {"query": range(6), "database": range(6, 30), "train": range(0, 30, 2)}
    return make_tree(tmp_path / "multi", y, parts, name=lambda i: f"m{i}.png",
                     classes=[f"tag {k}" for k in range(5)]), y


def test_single_label_tree(single):
    folder, y = single
    ds = lists.read(folder, name="list:" + str(folder), store=folder.parent / "store")
    # database first, then queries, then training images not already named
    order = list(range(8, 40)) + list(range(8))
    assert ds.paths == tuple(f"pics/img {i:03d}.png" for i in order)
    np.testing.assert_array_equal(ds.labels, y[order])
    assert ds.labels.ndim == 1 and ds.class_names == ("0", "1", "2", "3")
    assert ds.images.shape == (40, 32, 32, 3) and "32x32" in ds.source
    for k in (0, 17, 39):  # decoded and resized as resize_bilinear does it
        np.testing.assert_array_equal(ds.images[k], resize_bilinear(colour(order[k]), 32))
    train, query, database = ds.lists
    np.testing.assert_array_equal(query, np.arange(32, 40))
    np.testing.assert_array_equal(database, np.arange(0, 32))
    np.testing.assert_array_equal(train, np.arange(0, 16))
    np.testing.assert_array_equal(ds.train_mask, np.isin(np.arange(40), train))
    s = get_protocol("lists").split(ds, 0)
    assert (len(s.train), len(s.query), len(s.database)) == (16, 8, 32)


def test_multi_label_tree_and_other_size(multi):
    folder, y = multi
    ds = lists.read(folder, name="mirflickr", size=16, store=folder.parent / "store")
    assert ds.labels.dtype == bool and ds.labels.shape == (30, 5) and ds.images.shape == (30, 16, 16, 3)
    assert ds.class_names == tuple(f"tag {k}" for k in range(5))
    order = list(range(6, 30)) + list(range(6))
    np.testing.assert_array_equal(ds.labels, y[order].astype(bool))


def test_decoding_is_cached_and_checked(single, monkeypatch):
    folder, _ = single
    store = folder.parent / "store"
    first = lists.read(folder, name="x", store=store)
    cached = list((store / "x").glob("images-32-*.npy"))
    assert len(cached) == 1 and json.loads(cached[0].with_suffix(".json").read_text())["n_images"] == 40
    monkeypatch.setattr(lists, "_decode", lambda *a: (_ for _ in ()).throw(AssertionError("decoded again")))
    np.testing.assert_array_equal(lists.read(folder, name="x", store=store).images, first.images)
    monkeypatch.undo()
    arr = np.load(cached[0])  # a tampered cache is not trusted: decoded again
    arr[0, 0, 0, 0] ^= 1
    np.save(cached[0], arr)
    np.testing.assert_array_equal(lists.read(folder, name="x", store=store).images, first.images)


@pytest.mark.slow
def test_parallel_decoding_equals_serial(tmp_path):
    y = np.arange(300) % 3
    folder = make_tree(tmp_path / "big", one_hot(y, 3), {"query": range(30), "database": range(30, 300),
                                                          "train": range(30, 130)})
    files = lists.read_list_files(folder)
    a = lists.decode_images(files, 8, n_jobs=1)
    b = lists.decode_images(files, 8, n_jobs=2)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("damage, message", [
    ("missing", r"test.txt line 3: image .*img 002.png not found"),
    ("undecodable", r"test.txt line 3: cannot decode image .*img 002.png"),
    ("width", r"database.txt line 2: label vector has 3 fields, expected 4"),
    ("too wide", r"database.txt line 2: label vector has 5 fields, expected 4"),
    ("twice", r"train.txt line 4: 'pics/img 008.png' is listed twice in train.txt"),
    ("not binary", r"database.txt line 1: label vector must hold 0 and 1 only"),
    ("other label", r"train.txt line 1: 'pics/img 008.png' has another label vector in .*database.txt line 1"),
])
def test_bad_trees_name_file_and_line(single, damage, message, capsys):
    folder, _ = single

    def edit(fname, lineno, fn):
        lines = (folder / fname).read_text().splitlines()
        lines[lineno - 1] = fn(lines[lineno - 1])
        (folder / fname).write_text("\n".join(lines) + "\n")

    if damage == "missing":
        (folder / "pics" / "img 002.png").unlink()
    elif damage == "undecodable":
        (folder / "pics" / "img 002.png").write_bytes(b"not an image")
    elif damage == "width":
        edit("database.txt", 2, lambda s: s[:-2])
    elif damage == "too wide":
        edit("database.txt", 2, lambda s: s + " 0")
    elif damage == "twice":
        edit("train.txt", 4, lambda s: "pics/img 008.png 1 0 0 0")
    elif damage == "not binary":
        edit("database.txt", 1, lambda s: s[:-1] + "2")
    elif damage == "other label":
        edit("train.txt", 1, lambda s: "pics/img 008.png 0 1 0 0")
    with pytest.raises(InputError, match=message):
        lists.read(folder, store=folder.parent / "store")
    # the CLI: one line on stderr, exit 2, nothing written
    out = folder.parent / "out.csv"
    rc = main(["run", "--methods", "lsh", "--bits", "8", "--features", "pixels", "--dataset", f"list:{folder}",
               "--out", str(out), "--store", str(folder.parent / "store")])
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("protocol: ")]
    assert rc == 2 and len(err) == 1 and err[0].startswith("hashbench run: error: data: ") and " line " in err[0]
    assert not out.exists()


def test_run_on_a_users_tree_for_each_kind_of_protocol(single, tmp_path, monkeypatch, capsys):
    """The lists' own split, a cut-off variant, and a portable protocol (unseen classes,
    which needs more than 100 images per class: a second tree of 4 x 110 images)."""
    import pandas as pd

    folder, _ = single
    y = np.arange(440) % 4
    big = make_tree(tmp_path / "big", one_hot(y, 4), {"query": range(40), "database": range(40, 440),
                                                       "train": range(40, 240)})
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "r.csv"
    for tree, protocol in ((folder, "lists"), (folder, "lists@5"), (big, "unseen-75")):
        rc = main(["run", "--methods", "lsh", "--bits", "8", "--features", "pixels", "--dataset",
                   f"list:{tree}", "--protocol", protocol, "--out", str(out)])
        assert rc == 0, capsys.readouterr().err
    df = pd.read_csv(out)
    assert list(df["protocol"]) == ["lists", "lists@5", "unseen-75"]
    assert list(df["dataset"]) == [f"list:{folder.resolve()}"] * 2 + [f"list:{big.resolve()}"]
    assert df["map_at_k"].notna().tolist() == [False, True, False]
    assert df["n_queries"].tolist() == [8, 8, 100] and df["n_database"].tolist() == [32, 32, 10]


def test_data_lookup_and_datasets_listing(single, tmp_path, monkeypatch):
    folder, _ = single
    data = tmp_path / "data"
    data.mkdir()
    folder.rename(data / "coco")
    monkeypatch.setenv("HASHBENCH_DATA", str(data))
    monkeypatch.chdir(tmp_path)
    rows = {r["dataset"]: r["data"] for r in describe_datasets()}
    assert rows["coco"].startswith(str(data / "coco")) and "train 16, queries 8, database 32" in rows["coco"]
    assert rows["imagenet100"] == "not found"
    ds = load_dataset("coco")
    assert ds.name == "coco" and len(ds) == 40
    assert resolve_dataset("list:coco")[0] == f"list:{(data / 'coco').resolve()}"  # looked up in the data folders
    with pytest.raises(InputError, match="dataset list:nowhere: not found"):
        resolve_dataset("list:nowhere")


def test_split_export_import_round_trip(single, tmp_path):
    folder, _ = single
    ds = lists.read(folder, name="list:" + str(folder), store=tmp_path / "store")
    s = get_protocol("lists").split(ds, 4)
    export_split(s, ds, tmp_path / "exported")
    text = (tmp_path / "exported" / "test.txt").read_text().splitlines()
    assert len(text) == len(s.query) and text[0] == f"{ds.paths[s.query[0]]} " + " ".join(
        "1" if k == ds.labels[s.query[0]] else "0" for k in range(4))
    back = get_protocol(f"lists:{tmp_path / 'exported'}").split(ds, 0)
    for part in ("train", "query", "database"):
        np.testing.assert_array_equal(getattr(back, part), getattr(s, part))


def test_cifar10_split_export_names_batch_records(tmp_path):
    """CIFAR-10 images are named by batch file and record: a synthetic 60,000-image CIFAR-10."""
    from hashbench.datasets import Dataset

    y = np.tile(np.arange(10), 6000)
    images = np.broadcast_to(np.zeros((1, 1, 1, 3), np.uint8), (60000, 1, 1, 3))
    ds = Dataset("cifar10", images, y, tuple("abcdefghij"), np.arange(60000) < 50000, "synthetic")
    names = item_names(ds)
    assert names[0] == "data_batch_1.bin#0" and names[23456] == "data_batch_3.bin#3456"
    assert names[59999] == "test_batch.bin#9999"
    for protocol in ("cifar10-1k", "cifar10-dsh"):
        s = get_protocol(protocol).split(ds, 7)
        out = tmp_path / protocol
        export_split(s, ds, out)
        back = get_protocol(f"lists:{out}")
        assert back.exclude_self == s.exclude_self
        b = back.split(ds, 0)
        for part in ("train", "query", "database"):
            np.testing.assert_array_equal(getattr(b, part), getattr(s, part))
        assert json.loads((out / "split.json").read_text())["protocol"] == protocol
    # a list naming a record that is not there, or a wrong label, names file and line
    folder = tmp_path / "hand"
    folder.mkdir()
    vec = {k: " ".join("1" if c == k else "0" for c in range(10)) for k in range(10)}
    (folder / "test.txt").write_text(f"data_batch_1.bin#0 {vec[0]}\n")
    (folder / "database.txt").write_text(f"data_batch_1.bin#2 {vec[2]}\n")
    (folder / "train.txt").write_text(f"data_batch_9.bin#1 {vec[1]}\n")
    with pytest.raises(InputError, match=r"train.txt line 1: 'data_batch_9.bin#1' is not an image of cifar10"):
        get_protocol(f"lists:{folder}").split(ds, 0)
    (folder / "train.txt").write_text(f"data_batch_1.bin#1 {vec[0]}\n")
    with pytest.raises(InputError,
                       match=r"train\.txt line 1: the label vector of 'data_batch_1\.bin#1' is not its label"):
        get_protocol(f"lists:{folder}").split(ds, 0)
    (folder / "train.txt").write_text(f"data_batch_1.bin#1 {vec[1]}\n")
    s = get_protocol(f"lists:{folder}").split(ds, 0)
    assert (s.train.tolist(), s.query.tolist(), s.database.tolist()) == ([1], [0], [2])


def test_split_cli(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["split", "export", "digits-standard", "--seed", "2", "--out", str(out)]) == 0
    assert "wrote database.txt, test.txt, train.txt" in capsys.readouterr().out
    assert (out / "test.txt").read_text().splitlines()[0].startswith("digits#")
    assert main(["split", "import", str(out)]) == 0
    said = capsys.readouterr().out
    assert "train 1,297, query 500, database 1,297" in said and f"--protocol lists:{out}" in said
    assert main(["split", "export", "unseen-75", "--out", str(out)]) == 2
    assert "applies to any dataset; name one" in capsys.readouterr().err
