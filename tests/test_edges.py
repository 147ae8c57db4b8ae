"""Every path in and out (issue 16): outputs checked before any work, data locations that
were asked for, ``evaluate --bits``, ``stable_topk``'s k, symlinks, stale temporary files,
the working folder, Numba's cache, warm kernels before timing, progress output and bits
beyond the data's rank. Each test drives the public entry point (mostly ``cli.main``) and
asserts exit code 2, one line on stderr naming the culprit, and nothing written."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hashbench import cli
from hashbench import io as hio
from hashbench.codes import pack
from hashbench.errors import InputError
from hashbench.results import read_results


@pytest.fixture(autouse=True)
def _no_data(tmp_path, monkeypatch):
    """No real data, no user cache: the bundled digits only, unless a test names a location."""
    monkeypatch.delenv("HASHBENCH_DATA", raising=False)
    monkeypatch.delenv("HASHBENCH_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def files(root: Path) -> list[str]:
    """Every file and folder under ``root`` (what a command left behind)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def one_line_error(capsys, rc, *words):
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def forbid(monkeypatch, module, name: str, what: str) -> None:
    """Make ``module.name`` fail the test if called: the work it does must not start first."""

    def never(*a, **k):
        raise AssertionError(f"{what} before the output was checked")

    monkeypatch.setattr(module, name, never)


def deny_writes_in(monkeypatch, folder: Path):
    """Make ``folder`` refuse new files, as a read-only mount would (root ignores chmod)."""
    real = hio.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kw):
        if dir is not None and Path(dir).resolve() == folder.resolve():
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(hio.tempfile, "mkstemp", mkstemp)


# --- outputs: checked before any work --------------------------------------------------------

def run_argv(tmp_path, *extra):
    return ["run", "--dataset", "digits", "--methods", "lsh", "--bits", "8", *extra]


@pytest.mark.parametrize("where", ["file", "under-file", "read-only"])
def test_run_store_that_cannot_be_written(tmp_path, capsys, monkeypatch, where):
    out = tmp_path / "out" / "run.csv"
    (tmp_path / "file.txt").write_text("x")
    store = {"file": tmp_path / "file.txt", "under-file": tmp_path / "file.txt" / "sub",
             "read-only": tmp_path / "ro"}[where]
    if where == "read-only":
        store.mkdir()
        deny_writes_in(monkeypatch, store)
    rc = cli.main(run_argv(tmp_path, "--out", str(out), "--store", str(store)))
    one_line_error(capsys, rc, "--store")
    assert (not out.exists() and not (tmp_path / "out").exists()) or files(tmp_path / "out") == []
    assert (tmp_path / "file.txt").read_text() == "x"


def test_run_from_an_unwritable_current_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    deny_writes_in(monkeypatch, tmp_path)
    rc = cli.main(run_argv(tmp_path))
    one_line_error(capsys, rc, "cannot write")
    assert files(tmp_path) == []


def test_run_models_folder_checked_before_any_cell(tmp_path, capsys, monkeypatch):
    from hashbench import experiment

    (tmp_path / "file.txt").write_text("x")
    monkeypatch.setattr(experiment, "MODELS_DIR", tmp_path / "file.txt" / "models")
    rc = cli.main(["run", "--dataset", "digits", "--methods", "dsh", "--bits", "8", "--param", "schedule=2",
                   "--out", str(tmp_path / "r.csv"), "--store", str(tmp_path / "s")])
    one_line_error(capsys, rc, "models folder")
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "s").exists()


def test_features_extract_store_unwritable(tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    rc = cli.main(["features", "extract", "pixels", "--dataset", "digits", "--store", str(tmp_path / "file.txt")])
    one_line_error(capsys, rc, "--store", "is a file, not a folder")


def test_show_out_checked_before_fitting(tmp_path, capsys, monkeypatch):
    from hashbench import figures

    forbid(monkeypatch, figures, "prepare", "fitted")
    (tmp_path / "file.txt").write_text("x")
    rc = cli.main(["show", "--dataset", "digits", "--methods", "lsh", "--bits", "8",
                   "--out", str(tmp_path / "file.txt" / "show")])
    one_line_error(capsys, rc, "--out")


@pytest.mark.parametrize("where", ["under-file", "folder-in-place", "ckpt-folder"])
def test_train_cnn_out_checked_before_training(tmp_path, capsys, monkeypatch, where):
    from hashbench import training

    forbid(monkeypatch, training, "load_dataset", "trained")
    (tmp_path / "file.txt").write_text("x")
    out = {"under-file": tmp_path / "file.txt" / "m.pt", "folder-in-place": tmp_path / "m.pt",
           "ckpt-folder": tmp_path / "n.pt"}[where]
    if where == "folder-in-place":
        out.mkdir()
    if where == "ckpt-folder":
        out.with_suffix(".ckpt").mkdir()
    before = files(tmp_path)
    rc = cli.main(["train-cnn", "dsh", "--protocol", "digits-dsh", "--budget", "2", "--quiet", "--out", str(out)])
    one_line_error(capsys, rc, "--out")
    assert files(tmp_path) == before


def test_reproduce_out_dir_checked(tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    rc = cli.main(["reproduce", "table1", "--dataset", "digits", "--budget", "2",
                   "--out-dir", str(tmp_path / "file.txt")])
    one_line_error(capsys, rc, "--out-dir")


def test_download_folder_checked_before_fetching(tmp_path, capsys, monkeypatch):
    from hashbench import datasets

    forbid(monkeypatch, datasets, "fetch", "fetched")
    (tmp_path / "file.txt").write_text("x")
    rc = cli.main(["download", "cifar10", "--quiet", "--data-dir", str(tmp_path / "file.txt" / "data")])
    one_line_error(capsys, rc, "--data-dir", "file.txt is a file")


def test_split_export_out_checked_before_loading(tmp_path, capsys, monkeypatch):
    from hashbench import splits

    forbid(monkeypatch, splits, "_dataset_for", "loaded")
    (tmp_path / "file.txt").write_text("x")
    rc = cli.main(["split", "export", "digits-dsh", "--out", str(tmp_path / "file.txt" / "lists")])
    one_line_error(capsys, rc, "--out", "file.txt is a file")


def test_check_writable_creates_nothing(tmp_path):
    target = tmp_path / "a" / "b" / "c.csv"
    assert hio.check_writable(target, "--out") == target
    assert files(tmp_path) == []
    with pytest.raises(InputError, match="is a folder, not a file"):
        hio.check_writable(tmp_path, "--out")


# --- inputs: corrupt files name the file -----------------------------------------------------

def test_results_csv_with_bytes_that_are_not_utf8(tmp_path, capsys):
    out = tmp_path / "run.csv"
    out.write_bytes(b"dataset,protocol\n\xff\xfe,x\n")
    rc = cli.main(run_argv(tmp_path, "--out", str(out), "--store", str(tmp_path / "s")))
    one_line_error(capsys, rc, str(out), "not UTF-8")
    assert out.read_bytes() == b"dataset,protocol\n\xff\xfe,x\n"


def _one_row(tmp_path) -> Path:
    out = tmp_path / "run.csv"
    assert cli.main(run_argv(tmp_path, "--out", str(out), "--store", str(tmp_path / "s"))) == 0
    return out


def test_results_csv_with_nul_bytes_in_a_field(tmp_path, capsys):
    out = _one_row(tmp_path)
    text = out.read_text()
    k = text.rindex('"pr_curve"')
    out.write_text(text[:k] + "\0" + text[k:])
    with pytest.raises(InputError, match="NUL byte"):
        read_results(out)
    capsys.readouterr()
    rc = cli.main(run_argv(tmp_path, "--out", str(out), "--store", str(tmp_path / "s")))
    one_line_error(capsys, rc, "NUL byte", str(out))


def test_results_csv_with_curves_that_are_not_json(tmp_path):
    out = _one_row(tmp_path)
    text = out.read_text()
    assert text.count('""pr_curve""') == 1
    out.write_text(text.replace('""pr_curve""', '""pr_curve', 1))  # the curves field's JSON torn
    with pytest.raises(InputError, match="curves is not a JSON object"):
        read_results(out)


def _digits_ckpt_argv(tmp_path):
    return ["train-cnn", "dsh", "--protocol", "digits-dsh", "--budget", "2", "--quiet",
            "--out", str(tmp_path / "m.pt")]


class Planted:
    """An object a weights-only load refuses to build (its pickle names this class)."""


def test_planted_checkpoint_that_is_not_weights(tmp_path, capsys):
    torch.save({"model": Planted()}, tmp_path / "m.ckpt")
    rc = cli.main(_digits_ckpt_argv(tmp_path))
    err = one_line_error(capsys, rc, str(tmp_path / "m.ckpt"), "objects other than tensors")
    assert "weights_only=False" not in err
    assert not (tmp_path / "m.pt").exists()


def test_truncated_checkpoint(tmp_path, capsys):
    ck = tmp_path / "m.ckpt"
    torch.save({"model": {"w": torch.zeros(1000)}, "iteration": 1}, ck)
    ck.write_bytes(ck.read_bytes()[:1000])
    rc = cli.main(_digits_ckpt_argv(tmp_path))
    one_line_error(capsys, rc, str(ck), "damaged")
    assert not (tmp_path / "m.pt").exists()


# --- data locations --------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["flag-missing", "flag-file", "flag-empty", "env-missing", "env-empty"])
def test_a_data_location_asked_for_never_falls_back_to_digits(tmp_path, capsys, monkeypatch, how):
    (tmp_path / "some-file").write_text("x")
    (tmp_path / "empty").mkdir()
    location = {"missing": tmp_path / "nonexistent", "file": tmp_path / "some-file", "empty": tmp_path / "empty"}[
        how.split("-")[1]]
    argv = ["run", "--methods", "lsh", "--bits", "8", "--out", str(tmp_path / "r.csv"), "--store", str(tmp_path / "s")]
    if how.startswith("flag"):
        argv += ["--data-dir", str(location)]
    else:
        monkeypatch.setenv("HASHBENCH_DATA", str(location))
    rc = cli.main(argv)
    one_line_error(capsys, rc, str(location))
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "s").exists()


def test_digits_fallback_only_without_a_location(tmp_path, capsys):
    assert cli.main([*run_argv(tmp_path, "--out", str(tmp_path / "r.csv"), "--store", str(tmp_path / "s"))[:1],
                     "--methods", "lsh", "--bits", "8", "--out", str(tmp_path / "r.csv"),
                     "--store", str(tmp_path / "s")]) == 0
    assert "using the bundled digits" in capsys.readouterr().err
    assert read_results(tmp_path / "r.csv")["dataset"].tolist() == ["digits"]


# --- evaluate --------------------------------------------------------------------------------

def _eval_files(tmp_path, codes_q, codes_d, suffix=".npy"):
    rng = np.random.default_rng(0)
    paths = {}
    for name, a in [("q", codes_q), ("d", codes_d), ("ql", rng.integers(0, 3, len(codes_q))),
                    ("dl", rng.integers(0, 3, len(codes_d)))]:
        p = tmp_path / f"{name}{suffix}"
        if suffix == ".npy":
            np.save(p, a)
        else:
            np.savetxt(p, a, fmt="%d", delimiter=",")
        paths[name] = str(p)
    return ["evaluate", "--query-codes", paths["q"], "--db-codes", paths["d"], "--query-labels", paths["ql"],
            "--db-labels", paths["dl"], "--json"]


def test_evaluate_bits_is_decided_by_the_data(tmp_path, capsys):
    rng = np.random.default_rng(1)
    q, d = rng.integers(0, 2, (5, 16)).astype(np.uint8), rng.integers(0, 2, (20, 16)).astype(np.uint8)
    argv = _eval_files(tmp_path, q, d)
    one_line_error(capsys, cli.main([*argv, "--bits", "128"]), "--bits 128", "16 columns of one bit each")
    assert cli.main(argv) == 0
    ref = json.loads(capsys.readouterr().out)
    assert ref["n_bits"] == 16
    assert cli.main([*argv, "--bits", "16"]) == 0 and json.loads(capsys.readouterr().out) == ref
    # the same codes packed 8 to a byte: values above 1 make them bytes; --bits is needed and checked
    np.save(tmp_path / "q.npy", np.packbits(q, axis=1))
    np.save(tmp_path / "d.npy", np.packbits(d, axis=1))
    assert np.load(tmp_path / "q.npy").max() > 1 and np.load(tmp_path / "d.npy").max() > 1
    one_line_error(capsys, cli.main(argv), "give --bits")
    one_line_error(capsys, cli.main([*argv, "--bits", "128"]), "not --bits 128")
    assert cli.main([*argv, "--bits", "16"]) == 0 and json.loads(capsys.readouterr().out) == ref


def test_evaluate_npz_and_text(tmp_path, capsys):
    rng = np.random.default_rng(2)
    q, d = rng.integers(0, 2, (5, 12)), rng.integers(0, 2, (30, 12))
    argv = _eval_files(tmp_path, q, d)
    assert cli.main(argv) == 0
    ref = json.loads(capsys.readouterr().out)
    np.savez(tmp_path / "q.npz", q)
    bad = list(argv)
    bad[bad.index("--query-codes") + 1] = str(tmp_path / "q.npz")
    one_line_error(capsys, cli.main(bad), "q.npz", ".npz archive")
    text = _eval_files(tmp_path, q, d, suffix=".csv")
    assert cli.main(text) == 0
    assert json.loads(capsys.readouterr().out) == ref  # the same numbers from text files


def test_evaluate_npy_with_bytes_appended(tmp_path, capsys):
    rng = np.random.default_rng(3)
    argv = _eval_files(tmp_path, rng.integers(0, 2, (5, 8)), rng.integers(0, 2, (9, 8)))
    with open(tmp_path / "dl.npy", "ab") as f:
        f.write(b"garbage")
    one_line_error(capsys, cli.main(argv), "dl.npy", "bytes after")


# --- stable_topk -----------------------------------------------------------------------------

def test_stable_topk_refuses_k_above_what_a_query_can_return():
    from hashbench.ranking import stable_topk

    rng = np.random.default_rng(4)
    q, d = pack(rng.integers(0, 2, (3, 10))), pack(rng.integers(0, 2, (7, 10)))
    idx, dist = stable_topk(q, d, 7)  # all of them, in the obvious stable order
    ref = np.array([[int(a ^ b).bit_count() for b in d[:, 0]] for a in q[:, 0]])
    np.testing.assert_array_equal(idx, np.argsort(ref, axis=1, kind="stable"))
    np.testing.assert_array_equal(dist, np.sort(ref, axis=1))
    for k in (8, 0, -1, 1.5):
        with pytest.raises(InputError, match=r"k must be an integer in \[1, 7\]"):
            stable_topk(q, d, k)
    with pytest.raises(InputError, match=r"\[1, 6\]"):  # own item left out: one fewer
        stable_topk(q, d, 7, self_index=np.array([0, 1, 2]))


# --- writes: symlinks, stale temporary files -------------------------------------------------

def test_writes_go_through_symlinks_to_their_target(tmp_path):
    target = tmp_path / "real" / "results.csv"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    with hio.atomic_write(link, "w") as f:
        f.write("new")
    assert link.is_symlink() and target.read_text() == "new"
    assert sorted(os.listdir(tmp_path / "real")) == ["results.csv"]
    assert sorted(os.listdir(tmp_path)) == ["link.csv", "real"]


def test_run_out_through_a_symlink(tmp_path):
    target = tmp_path / "store" / "all.csv"
    target.parent.mkdir()
    link = tmp_path / "run.csv"
    link.symlink_to(target)
    assert cli.main(run_argv(tmp_path, "--out", str(link), "--store", str(tmp_path / "s"))) == 0
    assert link.is_symlink() and len(read_results(target)) == 1


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    out = tmp_path / "run.csv"
    stale = tmp_path / f".run.csv.{dead}.abc123.tmp"
    live = tmp_path / f".run.csv.{os.getppid()}.def456.tmp"  # pytest's parent: alive
    other = tmp_path / f".other.csv.{dead}.abc123.tmp"  # another file's: not ours to judge here
    legacy_old = tmp_path / ".run.csv.k3j_x9a2.tmp"  # an older hashbench's name, no pid: judged by age
    legacy_new = tmp_path / ".run.csv.q8w7e6r5.tmp"
    for p in (stale, live, other, legacy_old, legacy_new):
        p.write_text("half a row")
    os.utime(legacy_old, (hio._STARTED - 60, hio._STARTED - 60))
    os.utime(legacy_new, (hio._STARTED + 60, hio._STARTED + 60))
    with hio.atomic_write(out, "w") as f:
        f.write("x")
    assert not stale.exists() and not legacy_old.exists()
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp"))
    assert left == sorted([live.name, other.name, legacy_new.name])


# --- where files go --------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["flag", "env"])
def test_workdir_holds_results_and_features(tmp_path, monkeypatch, how):
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    argv = ["run", "--dataset", "digits", "--methods", "lsh", "--bits", "8"]
    if how == "flag":
        argv += ["--workdir", str(home)]
    else:
        monkeypatch.setenv("HASHBENCH_HOME", str(home))
    assert cli.main(argv) == 0
    assert files(cwd) == []
    assert os.environ.get("HASHBENCH_HOME") == (None if how == "flag" else str(home))  # the flag: one command only
    assert len(read_results(home / "results" / "run.csv")) == 1
    assert any(p.endswith(".npy") for p in files(home / "features"))


def test_numba_cache_in_the_user_cache_folder_unless_set(tmp_path):
    code = "import hashbench, numba; print(numba.config.CACHE_DIR)"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    got = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert got.stdout.strip() == str(tmp_path / "xdg" / "hashbench" / "numba")
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    got = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert got.stdout.strip() == str(tmp_path / "mine")


# --- timing and progress ---------------------------------------------------------------------

def test_timed_rank_compiles_nothing(tmp_path, monkeypatch):
    """With a ranking kernel that has nothing compiled or loaded yet (a fresh dispatcher of
    the same function), the timed ``evaluate`` of a cell finds it ready: the warm-up before
    it compiled it (or loaded it from Numba's cache)."""
    import numba

    from hashbench import experiment, ranking

    fresh = numba.njit(parallel=True, cache=True)(ranking._rank_statistics.py_func)
    monkeypatch.setattr(ranking, "_rank_statistics", fresh)
    seen = []
    real = experiment.evaluate

    def timed(*a, **k):
        before = len(fresh.signatures)
        res = real(*a, **k)
        seen.append((before, len(fresh.signatures)))
        return res

    monkeypatch.setattr(experiment, "evaluate", timed)
    experiment.run_cell(experiment.make_cell("digits", "digits-dsh", "pixels", "lsh", 8, 0), store=tmp_path)
    assert seen == [(1, 1)]


def test_warm_up_is_in_no_timing_column(tmp_path, monkeypatch):
    """The warm-up is counted in neither ``encode_s`` nor ``rank_s`` (nor ``train_s``): it
    moves a fake clock by 1,000 s, and no column sees that."""
    import time as real_time
    import types

    from hashbench import experiment

    clock = [real_time.perf_counter()]

    def perf_counter():
        return clock[0] + real_time.perf_counter()

    def warm_up(*a, **k):
        clock[0] += 1000.0

    monkeypatch.setattr(experiment, "time", types.SimpleNamespace(perf_counter=perf_counter))
    monkeypatch.setattr(experiment, "warm_up", warm_up)
    row = experiment.run_cell(experiment.make_cell("digits", "digits-dsh", "pixels", "lsh", 8, 0), store=tmp_path)
    assert clock[0] > 1000 and max(row["train_s"], row["encode_s"], row["rank_s"]) < 1000


def test_progress_is_sparse_lines_when_redirected():
    from hashbench.progress import progress

    stream = io.StringIO()
    with progress(1000, "train", stream=stream, quiet_for=0.0) as bar:
        for _ in range(1000):
            bar.update(1)
            bar.set_postfix(loss="0.5")
    lines = stream.getvalue().splitlines()
    assert [line.split(":")[1].split("%")[0].strip() for line in lines] == [str(p) for p in range(10, 101, 10)]
    assert "\r" not in stream.getvalue() and all("loss 0.5" in line for line in lines)
    quiet = io.StringIO()
    with progress(1000, "short", stream=quiet) as bar:  # over before quiet_for (5 s): silent
        bar.update(1000)
    assert quiet.getvalue() == ""


def test_dsh_training_log_stays_small_when_redirected(capsys):
    from hashbench.hashers import get_hasher

    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        get_hasher("dsh", n_bits=8, schedule=20, batch_size=4).fit(images, np.arange(40) % 4)
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err
    assert "\r" not in err and len(err.splitlines()) == 10 and err.splitlines()[-1].startswith("train: 100%")


def test_ksh_shows_progress(capsys, monkeypatch):
    import functools

    from hashbench.hashers import get_hasher, ksh
    from hashbench.progress import progress

    monkeypatch.setattr(ksh, "progress", functools.partial(progress, quiet_for=0.0))
    rng = np.random.default_rng(6)
    get_hasher("ksh", n_bits=10, n_anchors=20, n_labelled=100).fit(rng.normal(size=(100, 5)), np.arange(100) % 3)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10 and lines[0].startswith("ksh bits: 10% (1/10 bit)")


# --- bits beyond the data's rank -------------------------------------------------------------

def test_itq_refuses_more_bits_than_the_data_has_directions():
    from hashbench.datasets import load_dataset
    from hashbench.features import get_extractor
    from hashbench.hashers import get_hasher

    X = get_extractor("pixels").extract(load_dataset("digits").images)  # 192 columns, rank 61
    rank = np.linalg.matrix_rank(X - X.mean(0))
    with pytest.raises(InputError, match=f"n_bits=128 exceeds the {rank} directions"):
        get_hasher("itq", n_bits=128).fit(X)
    assert get_hasher("itq", n_bits=int(rank), n_iter=2).fit(X).components_.shape == (192, rank)
    with pytest.raises(InputError, match=f"exceeds the {rank} directions"):
        get_hasher("itq", n_bits=int(rank) + 1, n_iter=2).fit(X)
