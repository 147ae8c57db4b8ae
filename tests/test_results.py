"""The CSV result store: schema, exact round trip, strict reading, atomic and locked writes."""

import os
import signal
import subprocess
import sys
import textwrap
from multiprocessing import get_context

import pytest

from hashbench.errors import InputError
from hashbench.report import format_table
from hashbench.results import (
    COLUMNS,
    KEY_COLUMNS,
    done_cells,
    read_results,
    row_key,
    write_row,
)


def make_row(**overrides) -> dict:
    row = {
        "dataset": "digits", "protocol": "digits-standard", "features": "pixels", "method": "lsh",
        "bits": 16, "seed": 0, "n_labelled": "", "params": "{}",
        "map": 0.1 + 1e-17 * 3, "map_expected": 1 / 3, "map_optimistic": 0.4, "map_pessimistic": 0.05,
        "map_at_k": None,
        "precision_r2": 0.123456789012345678, "empty_r2_fraction": 0.0, "n_queries": 100,
        "n_database": 1000, "n_no_relevant": 0, "n_train": 700, "train_s": 0.01, "encode_s": 0.002,
        "rank_s": 0.003, "fit": "trained", "version": "0.1.0", "commit": "", "dirty": "",
        "machine": "cpu, with a comma; 2 cores", "timestamp": "2025-01-01T00:00:00+00:00",
        "model_sha256": "", "model_files": {}, "schema": 2,
        "curves": {"pr_curve": [{"radius": 0, "precision": 0.5, "recall": 0.1}]},
    }
    row.update(overrides)
    return row


def test_schema_and_exact_round_trip(tmp_path):
    out = tmp_path / "run.csv"
    assert write_row(out, make_row())
    assert out.read_text().splitlines()[0] == ",".join(COLUMNS)
    df = read_results(out)
    assert list(df.columns) == list(COLUMNS) and len(df) == 1
    r = df.iloc[0]
    assert r["map_expected"] == 1 / 3 and r["precision_r2"] == 0.123456789012345678  # shortest repr is exact
    assert r["bits"] == 16 and df["bits"].dtype == "int64" and df["map"].dtype == "float64"
    assert r["machine"] == "cpu, with a comma; 2 cores" and r["n_labelled"] == "" and r["map_at_k"] != r["map_at_k"]
    assert '"pr_curve"' in r["curves"]
    assert done_cells(out) == {("digits", "digits-standard", "pixels", "lsh", "16", "0", "", "{}")}


def test_undefined_metric_is_empty_and_reads_as_nan(tmp_path):
    out = tmp_path / "run.csv"
    write_row(out, make_row(map=None))
    assert read_results(out)["map"].isna().all()


def test_missing_file_reads_as_empty(tmp_path):
    df = read_results(tmp_path / "none.csv")
    assert len(df) == 0 and list(df.columns) == list(COLUMNS)
    assert done_cells(tmp_path / "none.csv") == set()


def test_existing_cell_is_kept_unless_replace(tmp_path):
    out = tmp_path / "run.csv"
    write_row(out, make_row(map=0.1))
    write_row(out, make_row(bits=32, map=0.2))
    assert not write_row(out, make_row(map=0.9))
    assert read_results(out)["map"].tolist() == [0.1, 0.2]
    assert write_row(out, make_row(map=0.9), replace=True)
    df = read_results(out)
    assert df["map"].tolist() == [0.9, 0.2] and df["bits"].tolist() == [16, 32]  # replaced in place


def test_re_evaluating_a_cell_keeps_the_training_record_of_its_model(tmp_path):
    out = tmp_path / "run.csv"
    write_row(out, make_row(map=0.5, train_s=120.0, fit="trained", model_sha256="a" * 64))
    assert write_row(out, make_row(map=0.5, train_s=None, fit="loaded", model_sha256="a" * 64, timestamp="later"),
                     replace=True)
    r = read_results(out).iloc[0]
    assert (r["fit"], r["train_s"], r["timestamp"]) == ("trained", 120.0, "later")
    # another model (retrained at the same path): the load is what this row did
    write_row(out, make_row(map=0.6, train_s=None, fit="loaded", model_sha256="b" * 64), replace=True)
    r = read_results(out).iloc[0]
    assert r["fit"] == "loaded" and r["train_s"] != r["train_s"] and r["map"] == 0.6
    write_row(out, make_row(map=0.6, train_s=None, fit="loaded", model_sha256="b" * 64), replace=True)
    assert read_results(out).iloc[0]["fit"] == "loaded"  # nothing to keep from a loaded row


def test_keys_cover_every_setting(tmp_path):
    out = tmp_path / "run.csv"
    base = make_row()
    variants = [dict(dataset="cifar10"), dict(protocol="p2"), dict(features="gist"), dict(method="itq"),
                dict(bits=32), dict(seed=1), dict(n_labelled="1000"), dict(params='{"n_anchors":300}')]
    assert len(variants) == len(KEY_COLUMNS)
    for v in [{}, *variants]:
        assert write_row(out, {**base, **v})
    assert len(read_results(out)) == 1 + len(KEY_COLUMNS)


def test_torn_row_is_an_error_not_skipped(tmp_path):
    out = tmp_path / "run.csv"
    write_row(out, make_row())
    write_row(out, make_row(seed=1))
    text = out.read_text()
    out.write_text(text[: len(text) - 40])  # as a non-atomic appender killed mid-line leaves it
    with pytest.raises(InputError, match=r"run.csv:3: torn row"):
        read_results(out)


def test_duplicate_cell_is_an_error(tmp_path):
    out = tmp_path / "run.csv"
    write_row(out, make_row())
    lines = out.read_text().splitlines()
    out.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(InputError, match=r"run.csv:3: duplicate of the cell in line 2"):
        done_cells(out)


def test_bad_number_and_foreign_header_are_errors(tmp_path):
    out = tmp_path / "run.csv"
    write_row(out, make_row())
    out.write_text(out.read_text().replace(",100,1000,", ",100,lots,"))
    with pytest.raises(InputError, match="column n_database holds 'lots'"):
        read_results(out)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a hashbench result file"):
        write_row(other, make_row())
    assert other.read_text() == "a,b\n1,2\n"


KILL_MID_WRITE = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_results import make_row
    from hashbench.results import write_row

    real_fdopen = os.fdopen

    class Torn:
        # a file whose first write stops halfway and the process dies, as under kill -9
        def __init__(self, f): self.f = f
        def __enter__(self): return self
        def __exit__(self, *exc): self.f.close()
        def write(self, data):
            self.f.write(data[: len(data) // 2]); self.f.flush(); os.fsync(self.f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

    os.fdopen = lambda fd, mode: Torn(real_fdopen(fd, mode))
    write_row({out!r}, make_row(seed=2))
""")


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and fork are POSIX")
def test_kill_mid_write_leaves_the_previous_file(tmp_path):
    out = tmp_path / "run.csv"
    write_row(out, make_row(seed=0))
    write_row(out, make_row(seed=1))
    before = out.read_bytes()
    script = KILL_MID_WRITE.format(tests=os.path.dirname(__file__), out=str(out))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "run.csv"]
    assert len(leftovers) == 1 and leftovers[0].endswith(".tmp")  # the half-written temp file
    assert out.read_bytes() == before
    assert read_results(out)["seed"].tolist() == [0, 1]
    assert write_row(out, make_row(seed=2))
    assert read_results(out)["seed"].tolist() == [0, 1, 2]


def _write_many(out, start):
    for seed in range(start, start + 15):
        write_row(out, make_row(seed=seed))


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and fork are POSIX")
def test_concurrent_writers_lose_no_row(tmp_path):
    out = tmp_path / "run.csv"
    ctx = get_context("fork")
    procs = [ctx.Process(target=_write_many, args=(out, start)) for start in (0, 100)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sorted(read_results(out)["seed"]) == list(range(15)) + list(range(100, 115))


def test_format_table_shows_the_run(tmp_path):
    out = tmp_path / "run.csv"
    write_row(out, make_row(map=0.14923))
    write_row(out, make_row(seed=1, map=None))
    table = format_table(read_results(out))
    header, _, line, undefined = table.splitlines()
    assert header.split()[:4] == ["dataset", "protocol", "features", "method"]
    assert "curves" not in header and "map_at_k" not in header  # no value in any row
    assert "0.1492" in line and "lsh" in line
    assert "nan" not in undefined and len(undefined.split()) == len(line.split()) - 1  # map blank


def test_row_key_matches_between_values_and_text():
    assert row_key(make_row()) == row_key({k: str(v) for k, v in make_row().items()})
