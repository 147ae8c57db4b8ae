"""Seeded corruption of every input file type (issue 16): truncation, flipped bytes,
appended garbage, a wrong text encoding, an empty file and a folder in its place, each fed
to the command that reads it. Every case must end with exit code 2, one line on stderr
naming the file, no traceback, and nothing written.

Flipped bytes land where the format can tell (a format without a checksum cannot tell a
flipped pixel or class id from data): CIFAR-10 binary label bytes, the structure at the
head of a pickle or an .npy header, anywhere in a text file, the tensor data of a torch file
(its members carry CRC-32s). The feature store is a checked cache: a damaged entry is
recomputed and said so, never reused (asserted separately below)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_datasets import py2_pickle, write_bin
from test_lists import make_tree, one_hot
from test_nuswide import make_labels, write_layout

from hashbench import cli, nets
from hashbench.datasets import cifar10

KINDS = ("truncate", "flip", "append", "encoding", "empty", "folder")
SEED = 16


def corrupt(path: Path, kind: str, rng: np.random.Generator, flip_at) -> None:
    data = path.read_bytes()
    if kind == "truncate":
        path.write_bytes(data[: int(rng.integers(1, len(data)))])
    elif kind == "flip":
        b = bytearray(data)
        for p in flip_at(data, rng):
            b[p] ^= 0xFF
        path.write_bytes(bytes(b))
    elif kind == "append":
        path.write_bytes(data + rng.integers(0, 256, 64, dtype=np.uint8).tobytes())
    elif kind == "encoding":  # the bytes read as Latin-1 and saved as UTF-16, as an editor might
        path.write_bytes(data.decode("latin-1").encode("utf-16"))
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
        path.mkdir()


def anywhere(data, rng):
    return rng.integers(0, len(data), 3)


def head(n):
    return lambda data, rng: rng.integers(0, min(n, len(data)), 3)


def npy_header(data, rng):
    return rng.integers(10, 10 + int.from_bytes(data[8:10], "little"), 3)


def middle(data, rng):
    return rng.integers(len(data) // 3, 2 * len(data) // 3, 3)


def cifar_labels(data, rng):
    return rng.integers(0, cifar10.RECORDS_PER_BATCH, 3) * (1 + cifar10.PIXELS)


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.stat().st_size if p.is_file() else None for p in sorted(root.rglob("*"))}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("HASHBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(cifar10, "RECORDS_PER_BATCH", 20)
    monkeypatch.setenv("HASHBENCH_HOME", str(tmp_path / "home"))  # default outputs land in tmp_path too


def _cifar_bin(root):
    rng = np.random.default_rng(0)
    write_bin(root / "data" / "cifar-10-batches-bin", rng.integers(0, 10, 120).astype(np.uint8),
              rng.integers(0, 256, (120, 3072)).astype(np.uint8))
    return ["features", "extract", "pixels", "--dataset", "cifar10", "--data-dir", str(root / "data"),
            "--store", str(root / "store")]


def _cifar_py(root):
    rng = np.random.default_rng(0)
    folder = root / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for batch in cifar10.BATCHES:
        d = {b"batch_label": b"x", b"labels": [int(v) for v in rng.integers(0, 10, 20)],
             b"data": rng.integers(0, 256, (20, 3072)).astype(np.uint8), b"filenames": [b"a"] * 20}
        (folder / batch).write_bytes(py2_pickle(d))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    (folder / "batches.meta").write_bytes(py2_pickle({b"label_names": names, b"num_cases_per_batch": 20}))
    return ["features", "extract", "pixels", "--dataset", "cifar10", "--data-dir", str(root / "data"),
            "--store", str(root / "store")]


def _nuswide(root):
    write_layout(root / "data" / "nus-wide", make_labels(30), image_size=(8, 8))
    return ["features", "extract", "pixels", "--dataset", "nuswide", "--data-dir", str(root / "data"),
            "--store", str(root / "store")]


def _evaluate(root, suffix):
    rng = np.random.default_rng(1)
    files = {"q": rng.integers(0, 2, (6, 12)), "d": rng.integers(0, 2, (20, 12)),
             "ql": rng.integers(0, 4, 6), "dl": rng.integers(0, 4, 20)}
    for name, a in files.items():
        p = root / f"{name}{suffix}"
        np.save(p, a.astype(np.int8 if name in "qd" else np.int64)) if suffix == ".npy" else \
            np.savetxt(p, a, fmt="%d", delimiter=",")
    return ["evaluate", "--query-codes", str(root / f"q{suffix}"), "--db-codes", str(root / f"d{suffix}"),
            "--query-labels", str(root / f"ql{suffix}"), "--db-labels", str(root / f"dl{suffix}")]


def _results(root):
    """A real result file of one row to damage."""
    argv = ["run", "--dataset", "digits", "--methods", "lsh", "--bits", "8", "--out", str(root / "run.csv"),
            "--store", str(root / "store")]
    assert cli.main(argv) == 0
    shutil.rmtree(root / "store")
    return argv


def _checkpoint(root):
    """A finished training checkpoint beside ``--out`` (what a rerun resumes from)."""
    argv = ["train-cnn", "dsh", "--protocol", "digits-dsh", "--budget", "2", "--quiet", "--out", str(root / "m.pt")]
    assert cli.main(argv) == 0
    (root / "m.pt").unlink()
    (root / "m.json").unlink()
    return argv


def _list_files(root):
    y = np.arange(12) % 3
    make_tree(root / "data" / "tree", one_hot(y, 3), {"query": range(3), "database": range(3, 12),
                                                      "train": range(3, 9)})
    return ["features", "extract", "pixels", "--dataset", f"list:{root / 'data' / 'tree'}",
            "--store", str(root / "store")]


def _model(root):
    nets.save_state(nets.new_net(8, 8, 0, 3), root / "m.pt")
    return ["features", "extract", "cnn-ours", "--dataset", "digits", "--param", f"model={root / 'm.pt'}",
            "--store", str(root / "store")]


def _config(root):
    """A `run --config` grid whose last byte closes its last value: every truncation breaks it."""
    (root / "grid.toml").write_text('datasets = ["digits"]\nbits = [8]\nmethods = [\n  "lsh",\n]')
    return ["run", "--config", str(root / "grid.toml"), "--out", str(root / "run.csv"), "--store", str(root / "store")]


# (name, files to corrupt, where flips go, how to make the inputs and the command)
CASES = [
    ("cifar10-bin", "data/cifar-10-batches-bin/data_batch_2.bin", cifar_labels, _cifar_bin),
    ("cifar10-bin-meta", "data/cifar-10-batches-bin/batches.meta.txt", anywhere, _cifar_bin),
    ("cifar10-py", "data/cifar-10-batches-py/data_batch_1", head(40), _cifar_py),
    ("cifar10-py-meta", "data/cifar-10-batches-py/batches.meta", head(40), _cifar_py),
    ("nuswide-labels", "data/nus-wide/Groundtruth/AllLabels/Labels_sky.txt", anywhere, _nuswide),
    ("nuswide-concepts", "data/nus-wide/Concepts81.txt", anywhere, _nuswide),
    ("evaluate-npy-codes", "q.npy", npy_header, lambda r: _evaluate(r, ".npy")),
    ("evaluate-npy-labels", "dl.npy", npy_header, lambda r: _evaluate(r, ".npy")),
    ("evaluate-csv-codes", "d.csv", anywhere, lambda r: _evaluate(r, ".csv")),
    ("evaluate-csv-labels", "ql.csv", anywhere, lambda r: _evaluate(r, ".csv")),
    ("list-files", "data/tree/test.txt", anywhere, _list_files),
    ("results-csv", "run.csv", anywhere, _results),
    ("model-file", "m.pt", middle, _model),
    ("checkpoint", "m.ckpt", middle, _checkpoint),
    ("config-toml", "grid.toml", anywhere, _config),
]


@pytest.mark.parametrize("name, target, flip_at, make", CASES, ids=[c[0] for c in CASES])
def test_every_corruption_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, name, target, flip_at, make):
    argv = make(tmp_path)
    capsys.readouterr()
    clean = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    rng = np.random.default_rng([SEED, CASES.index(next(c for c in CASES if c[0] == name))])
    path = tmp_path / target
    for kind in KINDS:
        corrupt(path, kind, rng, flip_at)
        before = tree(tmp_path)
        rc = cli.main(argv)
        captured = capsys.readouterr()
        shown = f"{name}/{kind}: rc {rc}, stderr {captured.err!r}"
        assert rc == 2, shown
        assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, shown
        assert path.name in captured.err, shown
        assert tree(tmp_path) == before, shown  # nothing written, nothing removed
        if path.is_dir():
            path.rmdir()
        path.write_bytes(clean[path])


def test_damaged_feature_store_entries_are_recomputed_and_said_so(tmp_path, capsys):
    """The store is a checked cache: each corruption of its matrix or sidecar is reported in
    one line and the entry recomputed (the same features as before), never reused; a folder
    in the place of either file is an error."""
    argv = ["features", "extract", "pixels", "--dataset", "digits", "--store", str(tmp_path / "store")]
    assert cli.main(argv) == 0
    (matrix,) = (tmp_path / "store" / "digits").glob("*.npy")
    clean = {p: p.read_bytes() for p in (matrix, matrix.with_suffix(".json"))}
    rng = np.random.default_rng([SEED, 99])
    for path, flip_at in ((matrix, middle), (matrix.with_suffix(".json"), anywhere)):
        for kind in KINDS:
            capsys.readouterr()
            corrupt(path, kind, rng, flip_at)
            rc = cli.main(argv)
            err = capsys.readouterr().err
            if kind == "folder":
                assert rc == 2 and err.count("\n") == 1 and path.name in err, (kind, err)
                path.rmdir()
                path.write_bytes(clean[path])
                continue
            assert rc == 0 and "computing (" in err and "not stored" not in err, (path.name, kind, err)
            assert matrix.read_bytes() == clean[matrix], (path.name, kind)  # the same features, rewritten
            side = json.loads(matrix.with_suffix(".json").read_text())
            assert side["sha256"] == json.loads(clean[matrix.with_suffix(".json")])["sha256"], (path.name, kind)
