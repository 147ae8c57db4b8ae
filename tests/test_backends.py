"""Grids on a Dask cluster (``--backend dask``): a LocalCluster of two single-thread worker
processes, started once for the module, on the bundled digits.

The test hashers below stand in for slow or dangerous methods: they note each fit in a file
given as a parameter (the workers are other processes), kill their own worker with SIGKILL
(``kill -9``), or keep a model file like DSH. Every worker imports this module as a plugin,
which registers them there."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import hashbench
from hashbench import backends, storedcodes
from hashbench.backends import CellsFailed, open_backend
from hashbench.cli import main
from hashbench.errors import InputError
from hashbench.experiment import IMAGES, make_cell, plan_cells, run_grid
from hashbench.hashers import Hasher, register
from hashbench.hashers.lsh import LSH
from hashbench.results import KEY_COLUMNS, read_results

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")

METRICS = ["map", "map_expected", "map_optimistic", "map_pessimistic", "map_at_k", "precision_r2", "empty_r2_fraction",
           "n_queries", "n_database", "n_no_relevant", "n_train", "curves"]


def _note(path, text) -> None:
    with open(path, "a") as f:
        f.write(text + "\n")


@register("test-fragile-lsh")
class FragileLSH(LSH):
    """LSH that notes ``<bits> <pid>`` in the file ``log`` at each fit and, while the file
    ``deaths`` holds a count above 0, counts it down and kills its own process mid-fit."""

    def __init__(self, n_bits: int = 48, seed: int = 0, log: str = "", deaths: str = ""):
        super().__init__(n_bits, seed)
        self.log = log
        self.deaths = deaths

    def fit(self, X, y=None):
        _note(self.log, f"{self.n_bits} {os.getpid()}")
        if self.deaths:
            left = int(Path(self.deaths).read_text())
            if left > 0:
                Path(self.deaths).write_text(str(left - 1))
                os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(X, y)


@register("test-raising-lsh")
class RaisingLSH(LSH):
    """LSH whose fit raises at 16 bits, as a method with a bug would."""

    def fit(self, X, y=None):
        if self.n_bits == 16:
            raise ArithmeticError("no 16-bit codes here\nsecond line")
        return super().fit(X, y)


@register("test-device-lsh")
class DeviceLSH(LSH):
    """LSH with a declared ``device`` parameter, as the methods that train networks; notes the
    address of the Dask worker that fits it."""

    device_param = "device"

    def __init__(self, n_bits: int = 48, seed: int = 0, log: str = "", device: str = "auto"):
        super().__init__(n_bits, seed)
        self.log = log
        self.device = device

    def fit(self, X, y=None):
        _note(self.log, distributed.get_worker().address)
        return super().fit(X, y)


@register("test-saved-mean")
class SavedMean(Hasher):
    """A method that keeps a model file like DSH (``checkpoint``): bit j says whether grey
    level j is above the training mean. Training (1 s) writes the mean there and notes
    ``train`` in ``log``; a finished file is loaded and noted ``load``."""

    input_kind = "images"
    trains_model_file = True  # the runner gives it a model file named by the cell

    def __init__(self, n_bits: int = 16, seed: int = 0, log: str = "", checkpoint=None):
        self.n_bits = n_bits
        self.seed = seed
        self.log = log
        self.checkpoint = checkpoint

    def fit(self, X, y=None):
        path = Path(self.checkpoint)
        if path.exists():
            self.mean_ = np.load(path)
            _note(self.log, "load")
            return self
        time.sleep(1.0)  # long enough for a second worker to start the same training, were it allowed to
        self.mean_ = X.reshape(len(X), -1)[:, : self.n_bits].mean(axis=0)
        with open(path.with_suffix(".tmp"), "wb") as f:
            np.save(f, self.mean_)
        os.replace(path.with_suffix(".tmp"), path)
        _note(self.log, "train")
        return self

    def project(self, X):
        return X.reshape(len(X), -1)[:, : self.n_bits] - self.mean_


@pytest.fixture(scope="module")
def cluster():
    """Two single-thread worker processes; a task whose worker dies is rerun once, and fails
    at the second death (allowed-failures 1, default 3)."""
    import dask

    environ = dict(os.environ)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
            open_backend("dask", n_workers=2, plugins=[__name__]) as backend:
        assert os.environ.get("OMP_NUM_THREADS") == "1"  # Dask's nannies set it here to start workers
        yield backend
    assert {**os.environ, "PYTEST_CURRENT_TEST": ""} == {**environ, "PYTEST_CURRENT_TEST": ""}  # put back


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return str(tmp_path_factory.mktemp("features"))


def test_cluster_rows_equal_one_process_cell_for_cell(cluster, store, tmp_path):
    log = tmp_path / "fits.txt"
    cells = plan_cells(["lsh", "itq", "cca-itq"], [8, 16], [0], dataset="digits")
    cells += [make_cell("digits", "digits-dsh", "pixels", "test-fragile-lsh", 12, 0, log=str(log))]
    serial = run_grid(cells, tmp_path / "serial" / "run.csv", store=store)
    on_cluster = run_grid(cells, tmp_path / "dask" / "run.csv", store=store, backend=cluster)
    assert on_cluster[list(KEY_COLUMNS) + METRICS].equals(serial[list(KEY_COLUMNS) + METRICS])
    for cell in cells:  # the driver stored each cell's codes as its row came back
        here, there = (storedcodes.load(storedcodes.codes_path(tmp_path / side / "codes", cell.key()), cell.key())
                       for side in ("serial", "dask"))
        assert np.array_equal(here.query_codes, there.query_codes) and np.array_equal(here.db_codes, there.db_codes)
    pids = [int(line.split()[1]) for line in log.read_text().splitlines()]
    assert pids[0] == os.getpid()  # the serial run fitted here, the cluster's run in a worker
    assert pids[1] in cluster.client.run(os.getpid).values()


def test_cells_sharing_a_model_never_train_it_twice_across_workers(cluster, tmp_path):
    # both protocols of digits have one training set, hence one model file
    log = tmp_path / "model-log.txt"
    shared = [make_cell("digits", p, IMAGES, "test-saved-mean", 16, 0, log=str(log))
              for p in ("digits-dsh", "digits-standard")]
    other = make_cell("digits", "digits-dsh", IMAGES, "test-saved-mean", 16, 1, log=str(log))
    rows = run_grid([*shared, other], tmp_path / "dask.csv", models=tmp_path / "models", backend=cluster)
    assert sorted(log.read_text().split()) == ["load", "train", "train"]
    serial = run_grid([*shared, other], tmp_path / "serial.csv", models=tmp_path / "serial-models")
    assert rows[METRICS].equals(serial[METRICS])


def _fragile_cells(log, deaths: dict):
    """test-fragile-lsh at 8, 16, 24 bits; ``deaths`` maps bits to a deaths file."""
    return [make_cell("digits", "digits-dsh", "pixels", "test-fragile-lsh", b, 0, log=str(log),
                      **({"deaths": str(deaths[b])} if b in deaths else {})) for b in (8, 16, 24)]


def _fits(log) -> list[str]:
    return [line.split()[0] for line in log.read_text().splitlines()]


def test_a_worker_killed_mid_cell_gets_the_cell_rerun(cluster, store, tmp_path):
    log, once = tmp_path / "fits.txt", tmp_path / "once"
    once.write_text("1")  # the 16-bit cell kills its worker once; the scheduler reruns it on a worker
    out = tmp_path / "run.csv"
    rows = run_grid(_fragile_cells(log, {16: once}), out, store=store, backend=cluster)
    assert _fits(log).count("16") == 2  # killed mid-fit, and fitted again
    assert rows["bits"].tolist() == [8, 16, 24] and len(read_results(out)) == 3  # strict read: no torn row
    plain = run_grid(plan_cells(["lsh"], [8, 16, 24], [0], dataset="digits"), tmp_path / "plain.csv", store=store)
    assert rows[METRICS].equals(plain[METRICS])


@pytest.mark.slow  # worker deaths, each a fresh worker process to start (~10 s on 2 busy cores)
def test_a_cell_that_keeps_killing_workers_is_reported_at_the_end(cluster, store, tmp_path):
    log, always = tmp_path / "fits.txt", tmp_path / "always"
    always.write_text("2")  # dies on both tries (allowed-failures 1): failed, reported at the end
    cells, out = _fragile_cells(log, {16: always}), tmp_path / "run.csv"
    with pytest.raises(CellsFailed, match=r"of 3 tasks failed .*digits-dsh/pixels/test-fragile-lsh/16/0: KilledWorker"):
        run_grid(cells, out, store=store, backend=cluster)
    # a cell waiting on a dying worker is blamed too (Dask assigns more than one task to a
    # worker), so 8 or 24 may have failed as well; what finished is there, read strictly
    finished = read_results(out)["bits"].tolist()
    assert 16 not in finished and _fits(log).count("16") == 2
    assert set(finished) <= {8, 24} and all(str(b) in _fits(log) for b in finished)

    lines = []
    rows = run_grid(cells, out, store=store, backend=cluster, log=lines.append)  # the deaths are spent
    assert sorted(line.split()[1].split("/")[4] for line in lines if line.startswith("done")) == \
        sorted(str(b) for b in {8, 16, 24} - set(finished))  # exactly the missing cells
    assert rows["bits"].tolist() == [8, 16, 24] and len(read_results(out)) == 3
    plain = run_grid(plan_cells(["lsh"], [8, 16, 24], [0], dataset="digits"), tmp_path / "plain.csv", store=store)
    assert rows[METRICS].equals(plain[METRICS])


def test_a_cell_that_raises_is_reported_at_the_end_and_the_others_are_written(cluster, store, tmp_path):
    cells = [make_cell("digits", "digits-dsh", "pixels", "test-raising-lsh", b, 0) for b in (8, 16, 24)]
    out, lines = tmp_path / "run.csv", []
    with pytest.raises(CellsFailed, match=r"^1 of 3 tasks failed on the cluster \(digits/digits-dsh/pixels/"
                       r"test-raising-lsh/16/0: ArithmeticError: no 16-bit codes here\); the finished cells"):
        run_grid(cells, out, store=store, backend=backends.Dask(cluster.client, cluster.plugins, log=lines.append))
    assert sorted(read_results(out)["bits"]) == [8, 24]
    assert [line for line in lines if line.startswith("failed")] == [
        "failed digits/digits-dsh/pixels/test-raising-lsh/16/0: ArithmeticError: no 16-bit codes here"]


KILLED_DRIVER = """
import os, signal, sys
from hashbench import experiment
from hashbench.backends import open_backend

write_row = experiment.write_row

def write_then_die(*args, **kwargs):
    write_row(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

experiment.write_row = write_then_die
cells = [experiment.make_cell("digits", "digits-dsh", "pixels", "lsh", b, 0) for b in (8, 16, 24)]
with open_backend("dask", scheduler=sys.argv[1]) as backend:
    experiment.run_grid(cells, sys.argv[2], store=sys.argv[3], backend=backend)
"""


def test_a_killed_driver_resumes_exactly(cluster, store, tmp_path):
    out = tmp_path / "run.csv"
    env = dict(os.environ, PYTHONPATH=str(Path(hashbench.__file__).parents[1]))
    killed = subprocess.run([sys.executable, "-c", KILLED_DRIVER, cluster.client.scheduler.address, str(out), store],
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(read_results(out)) == 1  # the driver died right after writing its first row
    lines = []
    cells = plan_cells(["lsh"], [8, 16, 24], [0], dataset="digits")
    rows = run_grid(cells, out, store=store, backend=cluster, log=lines.append)
    assert sum(line.startswith("done") for line in lines) == 2  # exactly the missing cells
    serial = run_grid(cells, tmp_path / "serial.csv", store=store)
    assert rows[METRICS].equals(serial[METRICS])


def test_a_worker_that_cannot_see_the_shared_folder_stops_the_sweep(cluster, store, tmp_path, monkeypatch):
    # a worker started in another folder sees another ./models: the driver's marker is not there
    client = cluster.client
    homes = client.run(os.getcwd)
    worker = sorted(homes)[1]
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "model-log.txt"
    cells = [make_cell("digits", "digits-dsh", IMAGES, "test-saved-mean", 16, s, log=str(log)) for s in (0, 1)]
    client.run(os.chdir, str(tmp_path))
    client.run(os.chdir, str(tmp_path / "elsewhere"), workers=[worker])
    try:
        with pytest.raises(InputError, match=f"^Dask worker {worker} does not see the shared folder models "):
            run_grid(cells, "run.csv", models="models", backend=cluster)
    finally:
        for address, home in homes.items():
            client.run(os.chdir, home, workers=[address])
    assert not log.exists() and not Path("run.csv").exists()  # nothing trained, nothing written
    assert list(Path("models").iterdir()) == []  # the marker is gone


def test_cells_that_train_networks_go_to_the_gpu_worker(cluster, store, tmp_path):
    """A third worker offers a GPU resource, as ``dask worker ADDRESS --resources GPU=1``
    (the label is all Dask knows of a GPU; this one runs in the test process); only it may
    run the cells with a ``device``."""
    client = cluster.client

    async def start():
        return await distributed.Worker(client.scheduler.address, nthreads=1, resources={"GPU": 1},
                                        name="gpu-worker")

    gpu = client.sync(start)
    try:
        client.wait_for_workers(3, timeout=60)
        log = tmp_path / "where.txt"
        cells = [make_cell("digits", "digits-dsh", "pixels", "test-device-lsh", b, 0, log=str(log)) for b in (8, 16)]
        cells += plan_cells(["lsh"], [8, 16], [0], dataset="digits")
        rows = run_grid(cells, tmp_path / "run.csv", store=store, backend=cluster)
        assert log.read_text().split() == [gpu.address, gpu.address]
        assert rows["map"][:2].tolist() == rows["map"][2:].tolist()  # the same LSH, wherever it ran
        cpu = make_cell("digits", "digits-dsh", "pixels", "test-device-lsh", 8, 0, log=str(log), device="cpu")
        assert not backends.trains_on_gpu(cpu) and backends.trains_on_gpu(cells[0])
    finally:
        client.sync(gpu.close)


def _run_cli(args, capsys) -> tuple[int, list[str]]:
    code = main(args)
    return code, capsys.readouterr().err.strip().splitlines()


def test_missing_extra_is_one_line_naming_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now fails
    code, err = _run_cli(["run", "--methods", "lsh", "--bits", "8", "--dataset", "digits", "--backend", "dask",
                          "--out", str(tmp_path / "run.csv")], capsys)
    assert code == 2 and err[-1] == f"hashbench run: error: {backends.MISSING_EXTRA}"
    assert "pip install 'hashbench[dask]'" in err[-1]
    assert not (tmp_path / "run.csv").exists()


@pytest.mark.parametrize("command", [["run", "--methods", "lsh", "--bits", "8", "--dataset", "digits"],
                                     ["reproduce", "figure6", "--dataset", "digits", "--budget", "5"]])
def test_unreachable_scheduler_is_one_line_and_exit_2_within_seconds(command, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(backends, "CONNECT_TIMEOUT_S", 2)
    monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    code, err = _run_cli([*command, "--backend", "dask", "--scheduler", "tcp://127.0.0.1:9"], capsys)
    assert time.perf_counter() - t0 < 15
    assert code == 2 and "Traceback" not in "\n".join(err)  # run prints its default notices first
    assert err[-1].startswith(f"hashbench {command[0]}: error: --scheduler tcp://127.0.0.1:9: "
                              "no Dask scheduler reached")
    assert list(tmp_path.iterdir()) == []


def test_scheduler_without_dask_backend_is_refused(capsys, tmp_path):
    code, err = _run_cli(["run", "--methods", "lsh", "--bits", "8", "--dataset", "digits", "--scheduler",
                          "tcp://127.0.0.1:9", "--out", str(tmp_path / "run.csv")], capsys)
    assert code == 2 and err[-1] == "hashbench run: error: --scheduler needs --backend dask"


def test_config_file_names_the_backend_and_scheduler(monkeypatch, capsys, tmp_path):
    """`backend` and `scheduler` in a --config file route the cells as the flags would."""
    monkeypatch.setattr(backends, "CONNECT_TIMEOUT_S", 2)
    monkeypatch.chdir(tmp_path)
    grid = tmp_path / "grid.toml"
    grid.write_text('datasets = ["digits"]\nbits = [8]\nmethods = ["lsh"]\n'
                    'backend = "dask"\nscheduler = "tcp://127.0.0.1:9"\n')
    code, err = _run_cli(["run", "--config", str(grid)], capsys)
    assert code == 2
    assert err[-1].startswith("hashbench run: error: --scheduler tcp://127.0.0.1:9: no Dask scheduler reached")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml"]  # nothing written


@pytest.mark.parametrize("extra, message", [
    ('backend = "ray"\n', "backend"),
    ('scheduler = "tcp://127.0.0.1:9"\n', 'scheduler needs backend = "dask"'),
    ('backend = ["dask"]\n', "backend"),
])
def test_config_file_backend_errors(extra, message, capsys, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('datasets = ["digits"]\nbits = [8]\nmethods = ["lsh"]\n' + extra)
    code, err = _run_cli(["run", "--config", str(grid), "--out", str(tmp_path / "run.csv")], capsys)
    assert code == 2 and len(err) == 1 and message in err[0] and str(grid) in err[0]
    assert not (tmp_path / "run.csv").exists()
