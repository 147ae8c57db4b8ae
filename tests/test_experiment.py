"""Experiment cells and the resumable grid runner, on the bundled digits (real data, offline).

The resume tests kill a real process with SIGKILL, between two cells and inside one, then
check that the result file has no duplicate and no torn row and that the resumed run does
exactly the missing cells."""

import dataclasses
import json
import os
import signal
import subprocess
import sys

import pytest

from hashbench import experiment
from hashbench.datasets import load_dataset
from hashbench.errors import InputError
from hashbench.experiment import IMAGES, make_cell, plan_cells, run_cell, run_grid
from hashbench.features import FeatureStore, get_extractor
from hashbench.hashers import Hasher, get_hasher, register
from hashbench.hashers.lsh import LSH
from hashbench.metrics import evaluate
from hashbench.protocols import get_protocol
from hashbench.results import COLUMNS, read_results

METRICS = ["map", "map_expected", "map_optimistic", "map_pessimistic", "map_at_k", "precision_r2", "empty_r2_fraction",
           "n_queries", "n_database", "n_no_relevant", "n_train", "curves"]


@register("test-mean-image")
class MeanImageHasher(Hasher):
    """A method that takes images: bit j says whether grey level j (of the image flattened)
    is above the training mean. Stands in for DSH without training a network."""

    input_kind = "images"

    def __init__(self, n_bits: int = 16, seed: int = 0):
        self.n_bits = n_bits
        self.seed = seed

    def fit(self, X, y=None):
        self.mean_ = X.reshape(len(X), -1)[:, : self.n_bits].mean(axis=0)
        return self

    def project(self, X):
        return X.reshape(len(X), -1)[:, : self.n_bits] - self.mean_


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return str(tmp_path_factory.mktemp("features"))


def test_make_cell_canonical_form():
    c = make_cell("digits", "digits-dsh", "pixels", "lsh", 16, 0, n_labelled=500)
    assert (c.features, c.n_labelled, c.params) == ("pixels", "", "{}")  # lsh takes no labels
    assert make_cell("digits", "digits-dsh", "pixels", "cca-itq", 16, 0).n_labelled == "all"  # its default
    assert make_cell("digits", "digits-dsh", "pixels", "ksh", 16, 0).n_labelled == "2000"  # its default
    assert make_cell("digits", "digits-dsh", "pixels", "ksh", 16, 0, n_labelled=1000).n_labelled == "1000"
    assert make_cell("digits", "digits-dsh", "gist", "test-mean-image", 12, 0).features == IMAGES
    default = make_cell("digits", "digits-dsh", "pixels", "ksh", 16, 0)
    assert make_cell("digits", "digits-dsh", "pixels", "ksh", 16, 0, n_anchors=300) == default
    other = make_cell("digits", "digits-dsh", "pixels", "ksh", 16, 0, n_anchors=100)
    assert json.loads(other.params) == {"n_anchors": 100} and other.key() != default.key()
    assert other.hasher().get_params()["n_anchors"] == 100


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="nope"), "unknown method"),
    (dict(bits=0), "n_bits"),
    (dict(seed=-1), "seed"),
    (dict(method="cca-itq", n_labelled=0), "n_labelled"),
    (dict(colour=True), "colour"),
])
def test_make_cell_refuses_bad_input(kwargs, message):
    args = dict(dataset="digits", protocol="digits-dsh", features="pixels", method="lsh", bits=16, seed=0)
    args.update(kwargs)
    with pytest.raises(InputError, match=message):
        make_cell(**args)


def test_plan_cells_defaults_and_order():
    notes = []
    cells = plan_cells(["lsh", "test-mean-image"], [16, 8], [0, 1], dataset="digits", log=notes.append)
    assert {c.protocol for c in cells} == {"digits-dsh"}
    lsh = [c for c in cells if c.method == "lsh"]
    assert [(c.bits, c.seed) for c in lsh] == [(16, 0), (16, 1), (8, 0), (8, 1)]
    assert {c.features for c in lsh} == {"pixels"}  # 8x8 images: no GIST by default
    assert len(cells) == 8 and any("digits-dsh" in n for n in notes)
    many = plan_cells(["test-mean-image"], [12], [0], features=["pixels", "gist"], dataset="digits")
    assert len(many) == 1 and many[0].features == IMAGES  # methods taking images ignore features
    assert plan_cells(["lsh"], [8], [0], protocol="digits-standard")[0].dataset == "digits"
    with pytest.raises(InputError, match="is for dataset digits"):
        plan_cells(["lsh"], [8], [0], dataset="cifar10", protocol="digits-standard")
    with pytest.raises(InputError, match="unknown extractor"):
        plan_cells(["lsh"], [8], [0], features=["sift"], dataset="digits")


def test_run_cell_is_the_plain_pipeline(store):
    """The row equals fitting on the split's training part and scoring with the query's own
    image left out, done by hand here; and the split really matters."""
    cell = make_cell("digits", "digits-dsh", "pixels", "cca-itq", 16, 3, n_labelled=600)
    row = run_cell(cell, store=store)
    assert set(row) == set(COLUMNS) | {experiment.CODES}

    ds = load_dataset("digits")
    split = get_protocol("digits-dsh").split(ds, 3)
    X = FeatureStore(store).get(ds, get_extractor("pixels"))
    h = get_hasher("cca-itq", n_bits=16, seed=3, n_labelled=600).fit(X[split.train], ds.labels[split.train])
    q, d = h.encode(X[split.query]), h.encode(X[split.database])
    ref = evaluate(q, d, ds.labels[split.query], ds.labels[split.database], 16, self_index=split.self_index())
    assert row["map"] == ref["map"] and row["map_pessimistic"] == ref["map_pessimistic"]
    assert row["precision_r2"] == ref["precision_r"]["2"]
    assert (row["n_train"], row["n_queries"], row["n_database"]) == (1297, 500, 500)
    kept_self = evaluate(q, d, ds.labels[split.query], ds.labels[split.database], 16)
    assert kept_self["precision_r"]["2"] > row["precision_r2"]
    assert row["n_labelled"] == "600" and row["train_s"] > 0 and row["rank_s"] > 0
    assert row["fit"] == "trained" and row["model_sha256"] == "" and row["model_files"] == {}
    codes = row[experiment.CODES]  # what the grid's writer stores: the freshly encoded codes
    assert (codes.query_codes == q).all() and (codes.db_codes == d).all()
    assert (codes.query_index == split.query).all() and (codes.db_index == split.database).all()


def test_protocol_cutoff_fills_map_at_k(store, monkeypatch):
    from hashbench import protocols

    top = dataclasses.replace(protocols.PROTOCOLS["digits-dsh"], name="digits-dsh-top50", topk=50)
    monkeypatch.setitem(protocols.PROTOCOLS, top.name, top)
    row = run_cell(make_cell("digits", top.name, "pixels", "lsh", 16, 0), store=store)
    plain = run_cell(make_cell("digits", "digits-dsh", "pixels", "lsh", 16, 0), store=store)
    assert plain["map_at_k"] is None and row["map"] == plain["map"]

    ds = load_dataset("digits")
    split = top.split(ds, 0)
    X = FeatureStore(store).get(ds, get_extractor("pixels"))
    h = get_hasher("lsh", n_bits=16, seed=0).fit(X[split.train])
    ref = evaluate(h.encode(X[split.query]), h.encode(X[split.database]), ds.labels[split.query],
                   ds.labels[split.database], 16, topk=50, self_index=split.self_index())
    assert row["map_at_k"] == ref["map_at_k"] != row["map"]


def test_same_seed_same_numbers_other_seed_other_numbers(store, tmp_path):
    cells = [make_cell("digits", "digits-dsh", "pixels", "lsh", 16, s) for s in (0, 0, 1)]
    a = run_grid(cells[:1], tmp_path / "a.csv", store=store)
    b = run_grid(cells[1:2], tmp_path / "b.csv", store=store)
    assert a[METRICS].equals(b[METRICS])
    c = run_grid(cells[2:], tmp_path / "c.csv", store=store)
    assert c["map"][0] != a["map"][0]


def test_parallel_jobs_give_the_same_rows(store, tmp_path):
    cells = plan_cells(["lsh", "cca-itq"], [8, 16], [0], dataset="digits")
    serial = run_grid(cells, tmp_path / "serial.csv", store=store)
    parallel = run_grid(cells, tmp_path / "parallel.csv", jobs=2, store=store)
    assert serial[METRICS].equals(parallel[METRICS])
    assert serial["bits"].tolist() == [8, 16, 8, 16]  # rows come back in cell order


def test_done_cells_are_skipped_and_force_replaces(store, tmp_path):
    out = tmp_path / "run.csv"
    cells = plan_cells(["lsh"], [8, 16], [0], dataset="digits")
    first = run_grid(cells, out, store=store)
    log = []
    again = run_grid(cells + plan_cells(["lsh"], [24], [0], dataset="digits"), out, store=store, log=log.append)
    assert again["timestamp"][:2].tolist() == first["timestamp"].tolist()
    assert again["train_s"][:2].tolist() == first["train_s"].tolist()  # not rerun: same row
    assert sum(line.startswith("done") for line in log) == 1
    forced = run_grid(cells, out, force=True, store=store)
    assert forced["train_s"].tolist() != first["train_s"].tolist()  # rerun: fresh timings
    assert forced[METRICS].equals(first[METRICS])
    assert len(read_results(out)) == 3  # replaced, not appended


@register("test-logged-lsh")
class LoggedLSH(LSH):
    """LSH that notes each fit in $FITS_LOG and kills its process (SIGKILL, as ``kill -9``)
    when fitting ``$KILL_AT_BITS`` bits."""

    def fit(self, X, y=None):
        with open(os.environ["FITS_LOG"], "a") as f:
            f.write(f"{self.n_bits}\n")
        if str(self.n_bits) == os.environ.get("KILL_AT_BITS"):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(X, y)


def run_logged_grid(out, store, kill_between_cells=False):
    """Three cells of test-logged-lsh; optionally die right after the first row is written."""
    if kill_between_cells:
        write_row = experiment.write_row

        def write_then_die(*args, **kwargs):
            write_row(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)

        experiment.write_row = write_then_die
    cells = [make_cell("digits", "digits-dsh", "pixels", "test-logged-lsh", b, 0) for b in (8, 16, 24)]
    return run_grid(cells, out, store=store)


KILLED_RUN = "import sys; sys.path.insert(0, sys.argv[1]); import test_experiment as t; " \
             "t.run_logged_grid(sys.argv[2], sys.argv[3], sys.argv[4] == 'between')"


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and fork are POSIX")
@pytest.mark.parametrize("where", ["between", "inside"])
def test_resume_after_kill(where, store, tmp_path, monkeypatch):
    out, fits = tmp_path / "run.csv", tmp_path / "fits.txt"
    monkeypatch.setenv("FITS_LOG", str(fits))
    env = dict(os.environ, KILL_AT_BITS="16" if where == "inside" else "")
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, os.path.dirname(__file__), str(out), store, where],
                            env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert read_results(out)["bits"].tolist() == [8]  # strict read: no torn or duplicate row
    fitted = fits.read_text().split()
    assert fitted == (["8"] if where == "between" else ["8", "16"])
    rows = run_logged_grid(out, store)  # the resumed run, here
    assert fits.read_text().split()[len(fitted):] == ["16", "24"]  # only the missing cells
    assert rows["bits"].tolist() == [8, 16, 24] and len(read_results(out)) == 3


def test_image_method_learns_from_the_split_images(store, tmp_path):
    row = run_grid([make_cell("digits", "digits-dsh", "gist", "test-mean-image", 16, 0)], tmp_path / "r.csv",
                   store=store).iloc[0]
    ds = load_dataset("digits")
    split = get_protocol("digits-dsh").split(ds, 0)
    h = MeanImageHasher(16).fit(ds.images[split.train])
    ref = evaluate(h.encode(ds.images[split.query]), h.encode(ds.images[split.database]),
                   ds.labels[split.query], ds.labels[split.database], 16, self_index=split.self_index())
    assert (row["features"], row["map"], row["precision_r2"]) == ("images", ref["map"], ref["precision_r"]["2"])


def test_parallel_waves_never_train_one_model_twice(tmp_path):
    # DSH under digits-dsh and digits-standard shares one training set, hence one model file
    shared = [make_cell("digits", p, IMAGES, "dsh", 12, 0) for p in ("digits-dsh", "digits-standard")]
    other = make_cell("digits", "digits-dsh", IMAGES, "dsh", 12, 1)
    lsh = make_cell("digits", "digits-dsh", "pixels", "lsh", 12, 0)
    first, second = experiment.model_waves([*shared, lsh, other], models=tmp_path)
    assert first == [shared[0], lsh, other] and second == [shared[1]]
    own = experiment.own_model_file
    assert own(shared[0], models=tmp_path) == own(shared[1], models=tmp_path)


@pytest.mark.parametrize("jobs", [1, 2])
def test_tasks_alongside_the_cells_run_in_the_same_pool(store, tmp_path, jobs):
    import functools
    from pathlib import Path

    marker = tmp_path / "side-task-ran"
    cells = plan_cells(["lsh"], [8, 16], [0], dataset="digits")
    rows = run_grid(cells, tmp_path / "run.csv", jobs=jobs, store=store,
                    alongside=[functools.partial(Path.write_text, marker, "yes")])
    assert marker.read_text() == "yes"
    assert rows["bits"].tolist() == [8, 16]  # the task's result is not a row


def test_rank_s_times_the_metrics_not_the_lookup_cost(tmp_path, monkeypatch):
    """``rank_s`` is the metrics.evaluate call: the radius-2 lookup cost stored beside it (a
    multi-index hashing pass over every query) is computed outside it. The lookup moves a
    fake clock by 1,000 s, and ``rank_s`` does not see it."""
    import time as real_time
    import types

    from hashbench import experiment

    clock = [0.0]
    real_cost = experiment.radius_lookup_cost

    def lookup(*a, **k):
        clock[0] += 1000.0
        return real_cost(*a, **k)

    monkeypatch.setattr(experiment, "time",
                        types.SimpleNamespace(perf_counter=lambda: clock[0] + real_time.perf_counter()))
    monkeypatch.setattr(experiment, "radius_lookup_cost", lookup)
    row = experiment.run_cell(experiment.make_cell("digits", "digits-dsh", "pixels", "lsh", 8, 0), store=tmp_path)
    assert clock[0] >= 1000 and 0 < row["rank_s"] < 1000
    assert json.loads(json.dumps(row["curves"]))["lookup_r2"]["radius"] == 2
