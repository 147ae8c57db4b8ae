"""Stored codes: written by the runner for every cell, equal to freshly encoded codes,
rescored bitwise, shown without fitting, refused when truncated or foreign (one line, exit
code 2), and exported to FAISS with the same distances. On the bundled digits."""

import dataclasses
import json

import numpy as np
import pytest

from hashbench import experiment, figures, storedcodes
from hashbench.cli import main
from hashbench.codes import to_bytes, unpack
from hashbench.errors import InputError
from hashbench.experiment import make_cell, run_grid
from hashbench.features import FeatureStore, get_extractor
from hashbench.hashers import HASHERS, get_hasher
from hashbench.protocols import get_protocol
from hashbench.ranking import stable_topk
from hashbench.rescore import rescore, stored_cell
from hashbench.results import read_records

CELLS = [("lsh", 16), ("itq", 24), ("cca-itq", 48)]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A result file of three digits cells, with their stored codes beside it."""
    root = tmp_path_factory.mktemp("grid")
    store = str(root / "features")
    cells = [make_cell("digits", "digits-dsh", "pixels", m, b, 0) for m, b in CELLS]
    out = root / "results" / "run.csv"
    run_grid(cells, out, store=store)
    return out, cells, store


def test_every_cell_stores_codes_equal_to_freshly_encoded_ones(grid):
    out, cells, store = grid
    folder = storedcodes.codes_dir(out)
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"  # out of git wherever it is
    ds = experiment.cached_dataset("digits", None)
    split = get_protocol("digits-dsh").split(ds, 0)
    X = FeatureStore(store).get(ds, get_extractor("pixels"))
    for cell, (method, bits) in zip(cells, CELLS, strict=True):
        codes = storedcodes.load(storedcodes.codes_path(folder, cell.key()), cell.key())
        h = get_hasher(method, n_bits=bits, seed=0).fit(X[split.train], ds.labels[split.train])
        np.testing.assert_array_equal(codes.query_codes, h.encode(X[split.query]))
        np.testing.assert_array_equal(codes.db_codes, h.encode(X[split.database]))
        np.testing.assert_array_equal(codes.db_index, split.database)
        assert codes.n_bits == bits and unpack(codes.db_codes, bits).shape == (len(split.database), bits)


def no_fit(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("fit called")

    for cls in HASHERS.values():
        monkeypatch.setattr(cls, "fit", refuse)
    monkeypatch.setattr(figures, "fit_cell", refuse)


def test_rescore_equals_the_run_bitwise_and_restores_a_changed_value(grid, tmp_path, monkeypatch):
    out = grid[0]
    no_fit(monkeypatch)
    before = out.read_bytes()
    assert "every value unchanged" in rescore(out)
    assert out.read_bytes() == before
    copy = tmp_path / "copy" / "run.csv"
    copy.parent.mkdir()
    copy.write_bytes(before.replace(read_records(out)[1]["map"].encode(), b"0.5"))
    (copy.parent / "codes").symlink_to(storedcodes.codes_dir(out))
    assert "1 values in 1 rows changed" in rescore(copy)
    assert copy.read_bytes() == before  # recomputed, to the last bit


def test_rescore_without_codes_says_so(grid, tmp_path, capsys):
    out, _, _ = grid
    lone = tmp_path / "lone.csv"
    lone.write_bytes(out.read_bytes())
    assert main(["rescore", str(lone)]) == 2
    err = capsys.readouterr().err.strip()
    assert "3 of 3 rows" in err and "--force" in err and "\n" not in err
    assert main(["rescore", str(lone), "--skip-missing"]) == 0
    said = capsys.readouterr().out
    assert "rescored 0 of 3 rows from stored codes; every value unchanged; 3 rows without stored codes" in said
    assert "left as they are" in said


def test_rescore_of_a_file_that_is_not_a_result_file(tmp_path, capsys):
    """A comparison table beside the results (``*-vs-paper.csv``) is refused in one line that
    says what it is, with no advice about ``--out`` (rescore has none)."""
    other = tmp_path / "table4-vs-paper.csv"
    other.write_text("protocol,method,bits,map\ncifar10-dsh,lsh,12,0.1\n")
    assert main(["rescore", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a hashbench result file of this version (columns protocol, method, bits, map...)" in err
    assert "--out" not in err and "\n" not in err
    assert other.read_text() == "protocol,method,bits,map\ncifar10-dsh,lsh,12,0.1\n"


def test_show_on_stored_codes_fits_nothing(grid, tmp_path, monkeypatch):
    out, cells, store = grid
    fitted = figures.retrievals(cells, k=5, store=store)[2]
    no_fit(monkeypatch)
    with pytest.raises(AssertionError, match="fit called"):  # without stored codes it would fit
        figures.retrievals(cells, k=5, store=store)
    stored = figures.retrievals(cells, k=5, store=store, codes=storedcodes.codes_dir(out))[2]
    for a, b in zip(fitted, stored, strict=True):
        np.testing.assert_array_equal(a.top, b.top)
    paths = figures.show(cells, tmp_path / "show", n_failed=1, n_successful=1, k=5, store=store,
                         codes=storedcodes.codes_dir(out))
    assert len(paths) == 4 and all(p.stat().st_size > 0 for p in paths)


def test_evaluate_scores_a_stored_cell(grid, capsys):
    out = grid[0]
    assert main(["evaluate", "--stored", f"{out}:2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert repr(res["map"]) == read_records(out)[1]["map"]  # the row's own number


def corrupt(grid, tmp_path, how):
    out, cells, _ = grid
    src = storedcodes.codes_path(storedcodes.codes_dir(out), cells[0].key())
    bad = tmp_path / "codes" / src.name
    if how == "truncated":
        bad.parent.mkdir()
        bad.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    elif how == "another split":
        codes = storedcodes.load(src)
        other = get_protocol("digits-dsh").split(experiment.cached_dataset("digits", None), 1)
        storedcodes.save(bad.parent, dataclasses.replace(codes, split_sha256=storedcodes.split_sha256(other)))
    else:
        with np.load(src) as z:
            fields = dict(z)
        bad.parent.mkdir()
        with open(bad, "wb") as f:
            np.savez_compressed(f, **{**fields, "format": np.int64(storedcodes.FORMAT + 1)})
    return bad


@pytest.mark.parametrize("how, says", [("truncated", "truncated"), ("another split", "another split"),
                                       ("another format", "format 3")])
def test_bad_stored_codes_are_one_line_and_exit_2(grid, tmp_path, capsys, how, says):
    bad = corrupt(grid, tmp_path, how)
    with pytest.raises(InputError, match=says):
        stored_cell(bad)
    assert main(["evaluate", "--stored", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err and "Traceback" not in err


def test_a_format_1_file_is_read_with_its_model_unknown(grid, tmp_path):
    out, cells, _ = grid
    src = storedcodes.codes_path(storedcodes.codes_dir(out), cells[0].key())
    with np.load(src) as z:
        fields = {k: v for k, v in z.items() if k != "model_sha256"}
    old = tmp_path / src.name
    with open(old, "wb") as f:
        np.savez_compressed(f, **{**fields, "format": np.int64(1)})
    codes = storedcodes.load(old, cells[0].key())
    assert codes.model_sha256 is None and storedcodes.load(src).model_sha256 == ""  # lsh keeps no model file
    np.testing.assert_array_equal(codes.db_codes, storedcodes.load(src).db_codes)
    row = read_records(out)[0]
    storedcodes.check_model(codes, row)  # a method without a model file: nothing to tell apart
    with pytest.raises(InputError, match="a model it did not record"):
        storedcodes.check_model(codes, {**row, "model_sha256": "ab" * 32})


def test_a_stored_file_of_another_cell_is_refused(grid):
    out, cells, _ = grid
    path = storedcodes.codes_path(storedcodes.codes_dir(out), cells[0].key())
    with pytest.raises(InputError, match="another cell"):
        storedcodes.load(path, cells[1].key())


def test_faiss_search_equals_our_ranking_on_stored_codes(grid, tmp_path):
    faiss = pytest.importorskip("faiss")
    from hashbench.export import faiss_index

    out, cells, _ = grid
    for cell in cells:
        codes = storedcodes.load(storedcodes.codes_path(storedcodes.codes_dir(out), cell.key()))
        k = 20
        idx, dist = stable_topk(codes.query_codes, codes.db_codes, k)
        fd, fi = faiss_index(codes.db_codes, codes.n_bits).search(to_bytes(codes.query_codes, codes.n_bits), k)
        np.testing.assert_array_equal(fd, dist)  # the same distances, in order
        for q in range(len(idx)):
            below = dist[q] < dist[q, -1]  # sure members; the last distance's ties may differ
            assert set(idx[q][below]) == set(fi[q][below])
            assert set(fi[q]) <= set(np.flatnonzero(
                np.unpackbits(np.bitwise_xor(to_bytes(codes.db_codes, codes.n_bits),
                                             to_bytes(codes.query_codes[q:q + 1], codes.n_bits)), axis=1).sum(1)
                <= dist[q, -1]))
    path = tmp_path / "db.faissindex"
    assert main(["export", f"{out}:1", "--faiss", str(path)]) == 0
    index = faiss.read_index_binary(str(path))
    codes = storedcodes.load(storedcodes.codes_path(storedcodes.codes_dir(out), cells[0].key()))
    assert index.ntotal == len(codes.db_index) and index.d == 16
    np.testing.assert_array_equal(index.reconstruct_n(0, index.ntotal), to_bytes(codes.db_codes, 16))


def test_export_without_faiss_names_the_extra(grid, tmp_path, monkeypatch, capsys):
    import builtins

    real = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("no faiss")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    out, _, _ = grid
    assert main(["export", f"{out}:1", "--faiss", str(tmp_path / "x")]) == 2
    assert "pip install 'hashbench[faiss]'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
