"""Provenance of result rows: model files by content in keys, settings without effect outside
keys, the code's identity, explicit reruns (--force, --retrain), and the schema 1 -> 2
migration of result files. On the bundled digits, with tiny models made here."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hashbench import experiment, nets
from hashbench.cli import main
from hashbench.errors import InputError
from hashbench.experiment import make_cell, model_path, run_cell, run_grid
from hashbench.hashers import HASHERS, register
from hashbench.hashers.lsh import LSH
from hashbench.migration import migrate
from hashbench.protocols import get_protocol
from hashbench.provenance import code_identity, file_sha256
from hashbench.results import (
    METRIC_COLUMNS,
    SCHEMA_1_COLUMNS,
    read_records,
    read_results,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@register("test-checkpointed-lsh")
class CheckpointedLSH(LSH):
    """LSH that keeps its model in a file, as DSH does: ``fit`` loads a finished file at
    ``checkpoint`` instead of fitting (``fit_mode_ = "loaded"``) and writes it otherwise;
    ``progress`` and ``device`` are accepted and change nothing. Counts its trainings."""

    trains_model_file = True  # the runner gives it a model file named by the cell
    settings_params = ("progress",)  # declared: neither in the key nor in the model file's name
    device_param = "device"
    trainings = 0

    def __init__(self, n_bits: int = 16, seed: int = 0, checkpoint=None, progress: bool = True,
                 device: str = "auto"):
        super().__init__(n_bits=n_bits, seed=seed)
        self.checkpoint = checkpoint
        self.progress = progress
        self.device = device

    def fit(self, X, y=None):
        if self.checkpoint is not None and Path(self.checkpoint).is_file():
            with np.load(self.checkpoint) as z:
                self.projections_, self.mean_ = z["W"], z["b"]
            self.fit_mode_ = "loaded"
            return self
        super().fit(X, y)
        type(self).trainings += 1
        with open(self.checkpoint, "wb") as f:
            np.savez(f, W=self.projections_, b=self.mean_)
        self.fit_mode_ = "trained"
        return self


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return str(tmp_path_factory.mktemp("features"))


def save_model(path, seed):
    net = nets.new_net(12, 8, seed=seed)
    net.mean.fill_(40.0)
    nets.save_state(net, path)


def test_a_model_retrained_at_the_same_path_reruns_its_cells(store, tmp_path):
    model = tmp_path / "models" / "dsh12.pt"
    model.parent.mkdir()
    save_model(model, seed=0)
    cell = make_cell("digits", "digits-dsh", f"cnn-ours:model={model}", "lsh", 16, 0)
    key = dict(zip(experiment.KEY_COLUMNS, cell.key(), strict=True))
    assert key["features"] == f"cnn-ours:model=sha256:{file_sha256(model)}"  # content, not path
    out = tmp_path / "run.csv"
    first = run_grid([cell], out, store=store)
    assert json.loads(first["model_files"][0]) == {"features": {"model": str(model)}}  # the path, for reading

    log = []
    run_grid([cell], out, store=store, log=log.append)
    assert not any(line.startswith("done") for line in log)  # same content: done

    save_model(model, seed=1)  # retrained at the same path
    again = run_grid([cell], out, store=store, log=log.append)
    assert any(line.startswith("done") for line in log)
    assert again["features"][0] == f"cnn-ours:model=sha256:{file_sha256(model)}" != first["features"][0]
    assert again["map"][0] != first["map"][0]
    rows = read_results(out)
    assert len(rows) == 1 and rows["features"][0] == again["features"][0]  # the stale row is replaced


def test_a_changed_own_model_file_reruns_and_force_loads_retrain_trains(store, tmp_path):
    models, out = tmp_path / "models", tmp_path / "run.csv"
    cell = make_cell("digits", "digits-dsh", "pixels", "test-checkpointed-lsh", 16, 0)
    split = get_protocol("digits-dsh").split(experiment.cached_dataset("digits", None), 0)
    path = model_path(cell, split, models)
    CheckpointedLSH.trainings = 0
    first = run_grid([cell], out, store=store, models=models)
    assert CheckpointedLSH.trainings == 1 and first["fit"][0] == "trained" and first["train_s"][0] > 0
    assert first["model_sha256"][0] == file_sha256(path)
    assert json.loads(first["model_files"][0]) == {"checkpoint": str(path)}

    forced = run_grid([cell], out, store=store, models=models, force=True)  # evaluation again, model loaded
    # nothing trained; the row keeps the record of the training that made this very model
    assert CheckpointedLSH.trainings == 1 and forced["fit"][0] == "trained"
    assert forced["train_s"][0] == first["train_s"][0]
    assert forced["map"][0] == first["map"][0]

    with np.load(path) as z:  # the model file replaced by another one (its projections negated)
        W, b = z["W"], z["b"]
    with open(path, "wb") as f:
        np.savez(f, W=-W, b=b)
    stale = run_grid([cell], out, store=store, models=models)
    assert stale["model_sha256"][0] == file_sha256(path) != first["model_sha256"][0]
    assert CheckpointedLSH.trainings == 1 and stale["fit"][0] == "loaded" and np.isnan(stale["train_s"][0])

    retrained = run_grid([cell], out, store=store, models=models, retrain=True)
    assert CheckpointedLSH.trainings == 2 and retrained["fit"][0] == "trained"
    assert retrained["model_sha256"][0] == file_sha256(path) and retrained["map"][0] == first["map"][0]
    assert len(read_results(out)) == 1


def test_stored_codes_serve_only_rows_of_the_model_that_made_them(store, tmp_path, capsys):
    # two result files share codes/ (figure6 and table4 both hold DSH's 12-bit cell); a
    # retrained model's codes replace the first model's under the one key
    from hashbench import figures, storedcodes
    from hashbench.rescore import rescore

    models, old, new = tmp_path / "models", tmp_path / "results" / "old.csv", tmp_path / "results" / "new.csv"
    cell = make_cell("digits", "digits-dsh", "pixels", "test-checkpointed-lsh", 16, 0)
    first = run_grid([cell], old, store=store, models=models)
    stored = storedcodes.codes_path(storedcodes.codes_dir(old), cell.key())
    assert storedcodes.load(stored).model_sha256 == first["model_sha256"][0]
    assert "every value unchanged" in rescore(old)
    path = model_path(cell, get_protocol("digits-dsh").split(experiment.cached_dataset("digits", None), 0), models)
    with np.load(path) as z:  # another model at the same path (other random projections)
        W, b = z["W"], z["b"]
    with open(path, "wb") as f:
        np.savez(f, W=np.random.default_rng(1).standard_normal(W.shape), b=b)
    second = run_grid([cell], new, store=store, models=models)
    assert second["map"][0] != first["map"][0]
    with pytest.raises(InputError, match=f"made by model sha256:{second['model_sha256'][0][:12]}"):
        rescore(old)  # not the second model's numbers under the first model's row
    assert "every value unchanged" in rescore(new)
    assert "1 row without stored codes left as it is" in rescore(old, skip_missing=True)
    assert read_results(old)["map"][0] == first["map"][0]
    assert main(["evaluate", "--stored", f"{old}:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "the row's model is sha256:" + first["model_sha256"][0][:12] in err and "\n" not in err
    assert main(["evaluate", "--stored", f"{new}:1"]) == 0
    # show takes stored codes only when they are the model file's now
    fresh = figures.cell_codes(cell, store=store, models=models)[2]
    np.testing.assert_array_equal(figures.cell_codes(cell, store=store, models=models, codes=stored.parent)[2], fresh)
    with open(path, "wb") as f:
        np.savez(f, W=W, b=b)  # the first model back
    again = figures.cell_codes(cell, store=store, models=models, codes=stored.parent)[2]
    np.testing.assert_array_equal(again, figures.cell_codes(cell, store=store, models=models)[2])
    assert not np.array_equal(again, fresh)


def test_rows_from_before_stored_codes_take_no_later_runs_codes(store, tmp_path):
    from hashbench.rescore import rescore

    out = tmp_path / "run.csv"
    run_grid([make_cell("digits", "digits-dsh", "pixels", "lsh", 16, 0)], out, store=store)
    text = out.read_text().splitlines()
    fit = text[0].split(",").index("fit")
    assert text[1].split(",")[fit] == "trained"
    out.write_text("\n".join([text[0], text[1].replace(",trained,", ",,", 1)]) + "\n")  # as migrated from schema 1
    with pytest.raises(InputError, match="from before stored codes"):
        rescore(out)
    assert "1 row without stored codes left as it is" in rescore(out, skip_missing=True)


def test_a_migrated_row_naming_its_model_relatively_is_the_lineage_of_one_naming_it_absolutely(tmp_path,
                                                                                                 monkeypatch):
    # schema-1 rows named model files relative to the working folder, new rows absolutely
    from hashbench.results import KEY_COLUMNS, lineage

    monkeypatch.setenv("HASHBENCH_HOME", str(tmp_path))
    key = {c: "" for c in KEY_COLUMNS}
    old = {**key, "params": '{"init_from":"path:runs/m/a.ckpt"}',
           "model_files": json.dumps({"params": {"init_from": "runs/m/a.ckpt"}})}
    new = {**key, "params": '{"init_from":"sha256:ab12"}',
           "model_files": json.dumps({"params": {"init_from": str(tmp_path / "runs/m/a.ckpt")},
                                      "checkpoint": str(tmp_path / "runs/m/b.ckpt")})}
    other = {**new, "model_files": json.dumps({"params": {"init_from": str(tmp_path / "runs/m/c.ckpt")}})}
    assert lineage(old) == lineage(new) != lineage(other)


def test_progress_and_device_settings_neither_add_a_row_nor_retrain(store, tmp_path):
    models, out = tmp_path / "models", tmp_path / "run.csv"
    plain = make_cell("digits", "digits-dsh", "pixels", "test-checkpointed-lsh", 16, 0)
    quiet = make_cell("digits", "digits-dsh", "pixels", "test-checkpointed-lsh", 16, 0, progress=False,
                      device="cpu")
    assert quiet.key() == plain.key() and quiet == plain
    assert quiet.hasher().progress is False and quiet.hasher().device == "cpu"  # still given to the method
    split = get_protocol("digits-dsh").split(experiment.cached_dataset("digits", None), 0)
    assert model_path(quiet, split, models) == model_path(plain, split, models)
    CheckpointedLSH.trainings = 0
    run_grid([plain], out, store=store, models=models)
    run_grid([quiet], out, store=store, models=models)
    assert CheckpointedLSH.trainings == 1 and len(read_results(out)) == 1
    run_grid([quiet], out, store=store, models=models, force=True)
    assert CheckpointedLSH.trainings == 1 and len(read_results(out)) == 1
    dsh = make_cell("digits", "digits-dsh", "images", "dsh", 12, 0, schedule=10)
    assert make_cell("digits", "digits-dsh", "images", "dsh", 12, 0, schedule=10, progress=False).key() == dsh.key()


def git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_two_commits_give_two_code_identities(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.org")
    git(repo, "config", "user.name", "t")
    (repo / "code.py").write_text("x = 1\n")
    git(repo, "add", "code.py")
    git(repo, "commit", "-qm", "one")
    code_identity.cache_clear()
    a = code_identity(repo)
    assert len(a["commit"]) == 40 and a["dirty"] == "no"
    (repo / "code.py").write_text("x = 2\n")
    code_identity.cache_clear()
    assert code_identity(repo) == {**a, "dirty": "yes"}
    git(repo, "commit", "-qam", "two")
    code_identity.cache_clear()
    b = code_identity(repo)
    assert b["commit"] != a["commit"] and b["dirty"] == "no" and b["version"] == a["version"]
    code_identity.cache_clear()
    assert code_identity(tmp_path)["commit"] == ""  # not a checkout: no failure, nothing claimed
    code_identity.cache_clear()


def test_rows_record_the_code_identity(store, tmp_path, monkeypatch):
    identities = iter([{"version": "9.9", "commit": "0" * 40, "dirty": "no"},  # the driver's, taken first
                       {"version": "9.9", "commit": "a" * 40, "dirty": "no"},
                       {"version": "9.9", "commit": "b" * 40, "dirty": "yes"}])
    monkeypatch.setattr(experiment, "code_identity", lambda: next(identities))
    cells = [make_cell("digits", "digits-dsh", "pixels", "lsh", b, 0) for b in (8, 16)]
    rows = run_grid(cells, tmp_path / "run.csv", store=store)
    assert rows["commit"].tolist() == ["a" * 40, "b" * 40] and rows["dirty"].tolist() == ["no", "yes"]
    assert (rows["schema"] == 2).all()


def test_a_row_names_the_code_as_it_was_when_its_cell_started(store, tmp_path, monkeypatch):
    # a commit during a long training (the checkout edited beside a running job) must not be
    # what the row names: the code that ran was loaded before it
    checkout = {"commit": "a" * 40}
    monkeypatch.setattr(experiment, "code_identity", lambda: {"version": "9.9", **checkout, "dirty": "no"})
    fit = experiment.fit_cell

    def fit_then_commit(*args):
        fit(*args)
        checkout["commit"] = "b" * 40

    monkeypatch.setattr(experiment, "fit_cell", fit_then_commit)
    row = run_cell(make_cell("digits", "digits-dsh", "pixels", "lsh", 8, 0), store=store)
    assert row["commit"] == "a" * 40


SCHEMA_1 = ",".join(SCHEMA_1_COLUMNS) + "\n" + (
    'cifar10,cifar10-dsh,cnn-cls:model=runs/m/cls.pt,lsh,48,0,,{},0.1,0.2,0.3,0.05,,0.123456789012345678,0.0,'
    '10,100,0,50,1.5,0.25,0.125,0.1.0,"cpu; 2 cores",2026-01-01T00:00:00+00:00,"{""pr_curve"":[]}"\n'
    'cifar10,cifar10-dsh,images,dsh,24,0,,"{""init_from"":""runs/m/a.ckpt"",""progress"":false}",0.30000000000000004,'
    '0.2,0.3,0.05,,0.5,0.0,10,100,0,50,0.01,0.25,0.125,0.1.0,"cpu; 2 cores",2026-01-01T00:00:00+00:00,"{}"\n')


def test_schema_1_files_say_how_to_migrate_and_migrate_bit_identically(tmp_path, capsys):
    old = tmp_path / "old.csv"
    old.write_text(SCHEMA_1)
    with pytest.raises(InputError, match=f"hashbench results migrate {old}"):
        read_results(old)
    assert main(["run", "--methods", "lsh", "--protocol", "digits-dsh", "--features", "pixels", "--bits", "8",
                 "--out", str(old)]) == 2
    err = capsys.readouterr().err.strip()
    assert "results migrate" in err and "\n" not in err
    assert main(["results", "migrate", str(old)]) == 0
    new = read_records(old)
    before = [dict(zip(SCHEMA_1_COLUMNS, line.split(","), strict=True)) for line in SCHEMA_1.splitlines()[1:2]]
    assert all(new[0][c] == before[0][c] for c in METRIC_COLUMNS)  # the text of every metric kept
    assert new[1]["map"] == "0.30000000000000004"
    assert new[0]["features"] == "cnn-cls:model=path:runs/m/cls.pt"  # content unknown: only the path
    assert json.loads(new[1]["params"]) == {"init_from": "path:runs/m/a.ckpt"}  # progress: no effect, gone
    assert json.loads(new[1]["model_files"]) == {"params": {"init_from": "runs/m/a.ckpt"}}
    assert [r["commit"] for r in new] == ["", ""] and [r["fit"] for r in new] == ["", ""]
    assert "already schema 2" in migrate(old)


def test_undeclared_parameters_with_those_names_are_ordinary_parameters():
    """The runner reads declarations, not names: a plugin's own ``progress``, ``device`` or
    ``init_from`` that it does not declare is a parameter like any other (in the key)."""

    class Named(LSH):
        def __init__(self, n_bits: int = 16, seed: int = 0, progress: bool = True, device: str = "auto",
                     init_from=None):
            super().__init__(n_bits=n_bits, seed=seed)
            self.progress, self.device, self.init_from = progress, device, init_from

    register("test-undeclared-names")(Named)
    try:
        plain = make_cell("digits", "digits-dsh", "pixels", "test-undeclared-names", 16, 0)
        other = make_cell("digits", "digits-dsh", "pixels", "test-undeclared-names", 16, 0, progress=False,
                          device="cuda:1", init_from="not/a/file.pt")
        assert plain.key() != other.key() and other.settings == "{}"
        assert json.loads(other.params) == {"device": "cuda:1", "init_from": "not/a/file.pt", "progress": False}
        assert other.model_files() == {}
    finally:
        HASHERS.pop("test-undeclared-names")


def test_declarations_must_name_parameters():
    class Wrong(LSH):
        settings_params = ("verbose",)

    with pytest.raises(TypeError, match="settings_params names 'verbose'"):
        register("test-wrong-declaration")(Wrong)
    assert "test-wrong-declaration" not in HASHERS


def test_every_committed_row_names_its_code_and_model_content():
    """Issue 15's 'done when': the last rows from before provenance (schema 1, migrated,
    without code or model content) left when their models were trained again; none may
    come back. A row of a model file names that file's content, never its path."""
    from hashbench.results import COLUMNS

    checked = 0
    for path in sorted((Path(__file__).resolve().parents[1] / "results").glob("*.csv")):
        if path.read_text().split("\n", 1)[0] != ",".join(COLUMNS):
            continue  # a table of another shape (comparisons with the paper, speed)
        for rec in read_records(path):
            assert rec["commit"] and rec["version"], (path.name, rec)
            assert rec["dirty"] == "no" and rec["fit"] in ("trained", "resumed", "loaded"), (path.name, rec)
            assert "path:" not in rec["features"] + rec["params"], (path.name, rec)  # models by content
            files = json.loads(rec["model_files"])
            assert ("checkpoint" in files) == bool(rec["model_sha256"]), (path.name, rec)
            checked += 1
    assert checked > 100  # the committed tables, not an empty glob
