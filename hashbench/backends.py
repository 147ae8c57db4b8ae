"""Where a grid's cells run: joblib processes on this machine, or a Dask cluster.

``open_backend(name, scheduler=None, ...)`` is the context manager ``run`` and ``reproduce``
open once per command; it yields the pool :func:`hashbench.experiment.run_grid` hands its
cells to: ``None`` for ``processes`` (run_grid's :class:`Processes`, ``--jobs`` at a time),
a :class:`Dask` for ``dask``, on the scheduler at ``scheduler`` or on a ``LocalCluster``
started here and closed on exit.

The driver owns the results: a pool only runs cells and yields what each returns, as it
finishes; ``run_grid`` (the driver) writes the rows, so no two machines ever write the
results file, and a killed driver resumes as on one machine.

On Dask we use ``distributed.Client.submit`` and ``as_completed`` rather than joblib's Dask
backend (``joblib.parallel_config(backend="dask")``, which wraps the same client): that
backend takes one set of submit options per ``Parallel`` call, so cells that train on a GPU
and cells that do not could not share one call, and the first failed task aborts the call
and drops the cells in flight. Scheduling stays Dask's own: a cell whose worker dies is
rerun on another worker by the scheduler (``distributed.scheduler.allowed-failures``
times), a cell that still fails is reported after the others have finished and been written.
"""

import contextlib
import importlib
import os
import tempfile
import uuid
from pathlib import Path

from .errors import InputError
from .io import atomic_write

BACKENDS = ("processes", "dask")
CONNECT_TIMEOUT_S = 10  # an unreachable scheduler, or one without workers, is an error after this long
# The environment of a LocalCluster's worker processes, over Dask's defaults: glibc's own
# trimming of freed memory (Dask's MALLOC_TRIM_THRESHOLD_=65536 made numpy-heavy cells, ITQ's
# rotation, twice as slow here).
LOCAL_WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
MISSING_EXTRA = "dask.distributed is needed for --backend dask: pip install 'hashbench[dask]'"


class CellsFailed(RuntimeError):
    """Cells that failed on a cluster for good, raised once every other cell of the wave has
    finished and its row has been written (a rerun retries them)."""


def _distributed():
    try:
        import distributed
    except ImportError:
        raise InputError(MISSING_EXTRA) from None
    return distributed


def import_plugins(plugins) -> None:
    """Import the named modules; a plugin registers its methods and extractors on import."""
    for name in plugins:
        importlib.import_module(name)


def _call(func, plugins, *args):
    """What a worker runs: the plugins first (a fresh worker has not imported them), then
    ``func(*args)``."""
    import_plugins(plugins)
    return func(*args)


def _dropped(task) -> None:
    task()


def trains_on_gpu(cell) -> bool:
    """Whether a cell trains on the GPU when there is one: its hasher declares a
    ``device_param`` (DSH, the DSH ensemble) not set to ``cpu``."""
    from .hashers import HASHERS

    param = HASHERS[cell.method].device_param
    return param is not None and str(cell.hasher().get_params()[param]) != "cpu"


class Processes:
    """Cells in joblib (loky) processes on this machine, ``jobs`` at a time; joblib splits
    the cores between them."""

    def __init__(self, jobs: int):
        self.jobs = jobs

    def run(self, func, cells, args=(), alongside=()):
        """``func(cell, *args)`` of every cell, in the order they finish; the zero-argument
        tasks ``alongside`` run in the same pool, their results dropped."""
        from joblib import Parallel, delayed

        pool = Parallel(n_jobs=self.jobs, return_as="generator_unordered")
        tasks = [delayed(func)(c, *args) for c in cells] + [delayed(_dropped)(t) for t in alongside]
        yield from (r for r in pool(tasks) if r is not None)


def _check_worker(folders, marker, token, datasets, data_dir, plugins, version) -> str | None:
    """Run on every worker before a sweep: what keeps this worker from running the grid's
    cells, or None. It must run the driver's hashbench version, import the plugins, see the
    marker the driver wrote in each shared folder, write there, and find each dataset."""
    from . import __version__
    from .datasets import DATASETS, find_dataset

    if __version__ != version:
        return f"runs hashbench {__version__}, the driver {version}"
    for name in plugins:
        try:
            importlib.import_module(name)
        except ImportError as e:  # any other error comes back from client.run as an exception
            return f"cannot import the plugin {name} ({type(e).__name__}: {e})"
    for folder in folders:
        path = Path(folder) / marker
        try:
            seen = path.read_text(encoding="utf-8")
        except OSError:
            seen = None
        if seen != token:
            return (f"does not see the shared folder {folder} (the driver's marker {path} is not there; "
                    f"worker's working folder {os.getcwd()})")
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as e:
            return f"cannot write in the shared folder {folder} ({e.strerror})"
    for name in datasets:
        if DATASETS[name].folders and find_dataset(name, data_dir) is None:
            return f"does not find dataset {name} (give every worker the data at the same path, or HASHBENCH_DATA)"
    return None


class Dask:
    """Cells on a Dask cluster through a ``distributed.Client``; see the module docstring."""

    def __init__(self, client, plugins=(), log=None):
        self.client = client
        self.plugins = tuple(plugins)
        self.log = log

    def has_gpus(self) -> bool:
        """Whether some worker offers a ``GPU`` resource (``dask worker ... --resources GPU=1``)."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        return any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers)

    def check_shared(self, folders, datasets=(), data_dir=None) -> None:
        """Before any cell runs: every worker sees each of ``folders`` (the driver writes a
        marker file there that each worker must read) and can write there, runs this
        hashbench, imports the plugins and finds the datasets. The first worker that does
        not is an InputError naming it."""
        from . import __version__

        token = uuid.uuid4().hex
        marker = f".hashbench-shared-{token}"
        written = []
        try:
            for folder in folders:
                try:
                    Path(folder).mkdir(parents=True, exist_ok=True)
                    with atomic_write(Path(folder) / marker, "w") as f:
                        f.write(token)
                except OSError as e:
                    raise InputError(f"shared folder {folder}: cannot write there ({e.strerror})") from None
                written.append(Path(folder) / marker)
            answers = self.client.run(_check_worker, [str(f) for f in folders], marker, token, sorted(set(datasets)),
                                      None if data_dir is None else str(data_dir), self.plugins, __version__,
                                      on_error="return")
        finally:
            for path in written:
                path.unlink(missing_ok=True)
        for address, problem in sorted(answers.items()):
            if isinstance(problem, BaseException):
                problem = f"the check failed ({type(problem).__name__}: {problem})"
            if problem:
                raise InputError(f"Dask worker {address} {problem}")

    def run(self, func, cells, args=(), alongside=()):
        """``func(cell, *args)`` of every cell, in the order they finish; the zero-argument
        tasks ``alongside`` (network trainings: table4's CNN-cls) run beside them, their
        results dropped. Cells that train a network, and the tasks alongside, ask for one
        ``GPU`` when some worker offers it. Raises :class:`CellsFailed` at the end when a
        cell failed, after yielding every other cell's result."""
        from distributed import as_completed

        gpu = {"GPU": 1} if self.has_gpus() else None
        submitted = {}
        for cell in cells:
            key = f"hashbench-{cell.method}-{cell.bits}b-s{cell.seed}-{uuid.uuid4().hex[:8]}"
            future = self.client.submit(_call, func, self.plugins, cell, *args, key=key, pure=False,
                                        resources=gpu if trains_on_gpu(cell) else None)
            submitted[future] = cell
        for task in alongside:
            future = self.client.submit(_call, task, self.plugins, key=f"hashbench-task-{uuid.uuid4().hex[:8]}",
                                        pure=False, resources=gpu)
            submitted[future] = None
        failed = []
        for future in as_completed(submitted, loop=self.client.loop):
            cell = submitted.pop(future)
            if future.status == "finished":
                result = future.result()
                if cell is not None:
                    yield result
                continue
            if future.status == "error":
                error = future.exception()
                why = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"
            else:
                why = f"the task was {future.status}"
            name = "a task alongside" if cell is None else "/".join(cell.key()[:6])
            failed.append(f"{name}: {why}")
            if self.log is not None:
                self.log(f"failed {failed[-1]}")
        if failed:
            raise CellsFailed(f"{len(failed)} of {len(cells) + len(alongside)} tasks failed on the cluster "
                              f"({'; '.join(failed)}); the finished cells are written, a rerun retries the others")


def _restore_environ(saved: dict) -> None:
    """Undo what a LocalCluster leaves in this process's environment: its nannies set
    ``distributed.nanny.pre-spawn-environ`` (``OMP_NUM_THREADS=1``, ...) and
    ``PYTHONHASHSEED`` here before starting each worker process, ``distributed.proctitle``
    sets ``__DASK_PARENT_PID``, and none is unset."""
    import dask

    for name in {*dask.config.get("distributed.nanny.pre-spawn-environ"), "PYTHONHASHSEED", "__DASK_PARENT_PID"}:
        if name in saved:
            os.environ[name] = saved[name]
        else:
            os.environ.pop(name, None)


@contextlib.contextmanager
def open_backend(name: str = "processes", scheduler: str | None = None, plugins=(), n_workers: int | None = None,
                 log=None):
    """The pool for :func:`run_grid`: None for ``processes``; for ``dask``, a :class:`Dask`
    on the scheduler at ``scheduler`` (``tcp://host:8786``), or, without one, on a
    ``LocalCluster`` of ``n_workers`` single-thread worker processes (default: one per
    usable core, like ``--jobs`` that many; Numba's threads split the cores between them)
    started here and closed on exit. ``plugins``:
    module names every worker imports before running a cell."""
    if name not in BACKENDS:
        raise InputError(f"--backend: choose from {', '.join(BACKENDS)}, not {name!r}")
    if name == "processes":
        if scheduler is not None:
            raise InputError("--scheduler needs --backend dask")
        yield None
        return
    distributed = _distributed()
    with contextlib.ExitStack() as stack:
        stack.callback(_restore_environ, dict(os.environ))
        if scheduler is None:
            import dask

            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
            n_workers = n_workers or cores
            # Numba's kernels split the cores between the workers, as joblib does for its processes
            numba = {"NUMBA_NUM_THREADS": str(max(1, cores // n_workers))}
            with dask.config.set(LOCAL_WORKER_ENVIRON):
                cluster = stack.enter_context(distributed.LocalCluster(
                    n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None, env=numba))
            client = stack.enter_context(distributed.Client(cluster, set_as_default=False))
        else:
            try:
                client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as e:
                raise InputError(f"--scheduler {scheduler}: no Dask scheduler reached ({e})") from None
            stack.enter_context(client)
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise InputError(f"--scheduler {scheduler}: no worker joined within {CONNECT_TIMEOUT_S} s") from None
        workers = client.scheduler_info(n_workers=-1)["workers"]
        if log is not None:
            log(f"dask: {len(workers)} workers, {sum(w['nthreads'] for w in workers.values())} threads, "
                f"scheduler {client.scheduler.address}")
        yield Dask(client, plugins, log)
