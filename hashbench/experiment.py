"""One experiment cell -> one result row, and the grid runner that resumes.

A cell is (dataset, protocol, features, method, bits, seed, n_labelled, params). Running it
loads the dataset and its features (from the feature store; the images for methods that
take images), splits it with the protocol and the seed, fits the hasher on the training
part, encodes the query and database parts and scores them with ``metrics.evaluate``,
leaving each query's own item out of its result list when the protocol says so.

The seed is the split's seed and the hasher's seed (which also draws a supervised method's
``n_labelled`` subset), so one seed fixes the whole cell: same seed, same numbers.

A row's key names model files by content (:mod:`hashbench.provenance`); settings without
effect on results live in ``Cell.settings``, outside the key. The runner also stores each
cell's codes (:mod:`hashbench.storedcodes`), so metrics are recomputed without fitting.
"""

import functools
import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from . import storedcodes
from .backends import Processes
from .datasets import load_dataset, resolve_dataset
from .errors import InputError
from .features import EXTRACTORS, FeatureStore, format_param, get_extractor, parse_param
from .hashers import HASHERS, get_hasher
from .hashers.base import MAX_BITS
from .io import check_writable
from .metrics import evaluate, warm_up
from .params import SEED, Interval, Options, check
from .paths import in_workdir
from .protocols import default_protocol, get_protocol
from .provenance import (
    LOCATION,
    canonical_device,
    code_identity,
    content_params,
    dumps,
    file_sha256,
    split_settings,
)
from .results import (
    KEY_COLUMNS,
    SCHEMA,
    check_output,
    done_cells,
    read_results,
    row_key,
    write_row,
)
from .search import radius_lookup_cost

IMAGES = "images"  # the features value of methods that learn from the images themselves
RADIUS = 2
MODELS_DIR = Path("runs/models")  # trained models of cells (in the working folder), reused across runs
CODES = "codes"  # the entry of run_cell's row that carries the cell's codes to the writer


def extractor(spec: str):
    """The extractor a cell's ``features`` names: ``NAME`` or ``NAME:KEY=VALUE,KEY=VALUE``
    (e.g. ``cnn-ours:model=runs/models/cifar10/dsh-12b-s0-....ckpt``)."""
    name, _, rest = spec.partition(":")
    params = dict(parse_param(text, "features") for text in rest.split(",")) if rest else {}
    return get_extractor(name, **params)


def model_path(cell: "Cell", split, models=None) -> Path:
    """Where the trained model of a cell lives: named by the method, bits, seed and a hash of
    the training images' indices and every setting that can change a result (model files it
    starts from by content), so protocols that share a training set (``cifar10-dsh`` and
    ``cifar10-standard``) share one training, and nothing else does."""
    h = hashlib.sha256(np.ascontiguousarray(split.train, dtype=np.int64).tobytes())
    h.update(f"{cell.n_labelled}|{cell.key_fields()['params']}".encode())
    name = f"{cell.method}-{cell.bits}b-s{cell.seed}-{h.hexdigest()[:12]}.ckpt"
    return Path(models or in_workdir(MODELS_DIR)) / cell.dataset / name


@dataclass(frozen=True)
class Cell:
    """One point of a grid, in the canonical form its result row is keyed by (build it with
    :func:`make_cell`). ``features`` is ``"images"`` for methods that take images;
    ``n_labelled`` is ``"all"``, a count, or ``""`` for methods without that parameter;
    ``params`` is the sorted JSON of any other hasher parameters that can change a result
    (model files as paths: :meth:`key_fields` holds them by content); ``settings`` the JSON
    of those that cannot (the method's declared ``settings_params``, and the ``checkpoint``
    location of one that ``trains_model_file``), outside the key."""

    dataset: str
    protocol: str
    features: str
    method: str
    bits: int
    seed: int
    n_labelled: str
    params: str
    settings: str = field(default="{}", compare=False)

    def _content(self) -> tuple[str, str, dict]:
        """(features, params) with model files by content, and {"features"/"params": paths}."""
        name, _, rest = self.features.partition(":")
        extractor = EXTRACTORS.get(name)
        fcontent, ffiles = content_params(dict(parse_param(t, "features") for t in rest.split(",")) if rest else {},
                                          extractor.model_file_params if extractor is not None else ())
        pcontent, pfiles = content_params(json.loads(self.params), HASHERS[self.method].model_file_params)
        features = f"{name}:{','.join(format_param(k, v) for k, v in fcontent.items())}" if ffiles else self.features
        files = {k: v for k, v in (("features", ffiles), ("params", pfiles)) if v}
        return features, dumps(pcontent) if pfiles else self.params, files

    def key_fields(self) -> dict:
        """The row key columns, model files by content (``sha256:<hex>``)."""
        features, params, _ = self._content()
        return {**{c: getattr(self, c) for c in KEY_COLUMNS}, "features": features, "params": params}

    def model_files(self) -> dict:
        """The paths of the model files the cell reads: ``{"features": {...}, "params": {...}}``."""
        return self._content()[2]

    def key(self) -> tuple[str, ...]:
        return row_key(self.key_fields())

    def hasher(self):
        """A fresh, unfitted hasher for this cell."""
        params = {**json.loads(self.params), **json.loads(self.settings)}
        if self.n_labelled:
            params["n_labelled"] = None if self.n_labelled == "all" else int(self.n_labelled)
        try:
            return get_hasher(self.method, n_bits=self.bits, seed=self.seed, **params)
        except TypeError as e:  # an unknown parameter name
            raise InputError(f"{self.method}: {e}") from None


def make_cell(dataset: str, protocol: str, features: str, method: str, bits: int, seed: int,
              n_labelled: int | str | None = None, **params) -> Cell:
    """A validated cell in canonical form. ``n_labelled`` (a count, ``"all"``, or None for the
    method's own default) is recorded as the value the method will use, and dropped for
    methods that do not declare ``uses_labelled_subset``; ``features`` is dropped for methods
    that take images; ``params`` equal to the method's defaults are dropped, so one setting
    has one key; settings without effect on results go to ``Cell.settings``, and ``device``
    is kept only when it is not the CPU (:func:`provenance.canonical_device`)."""
    if method not in HASHERS:
        get_hasher(method)  # raises the InputError that lists the known methods
    cls = HASHERS[method]
    check(bits, "n_bits", Interval(int, 1, MAX_BITS))
    check(seed, "seed", SEED)
    defaults = cls().get_params(deep=False)
    if cls.uses_labelled_subset:
        if n_labelled is None:
            n_labelled = defaults["n_labelled"]
        if n_labelled is None or n_labelled == "all":
            labelled = "all"
        else:
            labelled = str(check(n_labelled, "n_labelled", [Interval(int, 1, None), Options("all")]))
    else:
        labelled = ""
    params, settings = split_settings(params, (*cls.settings_params, *((LOCATION,) if cls.trains_model_file else ())))
    device = cls.device_param
    if device is not None:
        if device in params:
            settings[device] = params[device]
        params[device] = canonical_device(params.get(device, defaults[device]))
        defaults = {**defaults, device: None}
    params = {k: v for k, v in params.items() if k not in defaults or defaults[k] != v}
    cell = Cell(
        dataset=dataset,
        protocol=protocol,
        features=IMAGES if cls.input_kind == IMAGES else features,
        method=method,
        bits=int(bits),
        seed=int(seed),
        n_labelled=labelled,
        params=dumps(params),
        settings=dumps(settings),
    )
    cell.hasher().check_params()  # refuse unknown or bad parameters now, not after other cells ran
    return cell


def plan_cells(methods, bits, seeds, features=None, dataset: str = "auto", protocol: str | None = None,
               n_labelled=None, data_dir=None, log=None) -> list[Cell]:
    """The cells of one dataset and protocol: every method x features x bits x seed x
    n_labelled, in that order, without repeats. ``methods`` holds names or ``(name, params)``
    pairs (one pair per point of a method's own parameter grid; :mod:`hashbench.config`
    expands the grids). ``n_labelled`` is None (each method's default), one value, or a list:
    a grid axis for methods that declare ``uses_labelled_subset`` (others get one cell).

    Defaults: ``dataset="auto"`` is the protocol's dataset when a protocol is given, else
    CIFAR-10 when found, else the bundled digits; the protocol is the dataset's default;
    ``features`` is ``["gist"]`` (the paper's hand-crafted features) for images of at least
    32 pixels a side and ``["pixels"]`` for smaller ones (8x8 digits), where GIST's 4x4 grid
    of Gabor responses has next to nothing to describe. ``log`` receives a line for each
    default it resolved."""
    methods = [(m, {}) if isinstance(m, str) else (m[0], dict(m[1])) for m in methods]
    labelled = n_labelled if isinstance(n_labelled, (list, tuple)) else [n_labelled]
    notices = []
    if protocol is not None:
        proto = get_protocol(protocol)
        if dataset == "auto" and proto.dataset is None:
            raise InputError(f"--protocol {protocol} applies to any dataset: name one with --dataset")
        dataset = proto.dataset if dataset == "auto" else resolve_dataset(dataset, data_dir)[0]
        if not proto.applies_to(dataset):
            raise InputError(f"--protocol {protocol} is for dataset {proto.dataset}, not {dataset}")
    else:
        dataset, notice = resolve_dataset(dataset, data_dir)
        protocol = default_protocol(dataset)
        notices += [notice] if notice else []
        notices.append(f"protocol: {protocol} (the default for {dataset}): {get_protocol(protocol).description}")
    for m, _ in methods:
        if m not in HASHERS:
            get_hasher(m)  # the InputError listing the methods, before any data is loaded
    if not features:
        h, w = cached_dataset(dataset, data_dir).images.shape[1:3]
        features = ["gist"] if min(h, w) >= 32 else ["pixels"]
        if any(HASHERS[m].input_kind != IMAGES for m, _ in methods):
            notices.append(f"features: {features[0]} (the default for {h}x{w} images)")
    for f in features:
        extractor(f)  # an unknown name fails before anything runs
    for m, params in methods:
        reserved = sorted({"n_bits", "bits", "seed", "n_labelled"} & set(params))
        if reserved:
            raise InputError(f"{m}: parameter {reserved[0]} is a grid axis; give it as bits, seeds or n_labelled")
    cells = [make_cell(dataset, protocol, f, m, b, s, nl, **params)
             for m, params in methods for f in features for b in bits for s in seeds for nl in labelled]
    if log:  # only now that every cell is valid: a user error comes alone
        for line in notices:
            log(line)
    return list(dict.fromkeys(cells))


def machine() -> str:
    """What the timings were measured on: CPU model, usable cores, OS and architecture."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}; {cores} cores; {platform.system()} {platform.machine()}"


def cached_dataset(name: str, data_dir=None):
    """The dataset ``name`` (:func:`hashbench.datasets.load_dataset`), loaded once per
    process for the last two (name, folder) pairs: the cells of a grid, the planning of a
    reproduction, its figures and rescoring all read the same arrays."""
    return _load_dataset(name, None if data_dir is None else str(data_dir))


@functools.lru_cache(maxsize=2)
def _load_dataset(name: str, data_dir: str | None):
    return load_dataset(name, data_dir)


def cell_split(cell: Cell, data_dir=None):
    """(dataset, split) of a cell: its protocol applied to its dataset with its seed."""
    ds = cached_dataset(cell.dataset, data_dir)
    return ds, get_protocol(cell.protocol).split(ds, cell.seed)


@functools.lru_cache(maxsize=2)
def _features(dataset: str, data_dir: str | None, features: str, store: str | None, content: str) -> np.ndarray:
    """``content``: the features' key form (model files by content), so a model file
    retrained at the same path is not answered from this cache."""
    return FeatureStore(store).get(cached_dataset(dataset, data_dir), extractor(features))


def prepare(cell: Cell, data_dir=None, store=None, models=None):
    """What fitting a cell needs: (dataset, split, unfitted hasher, inputs X of every image).
    A hasher that declares ``trains_model_file`` (DSH) gets :func:`model_path` under
    ``models`` as its ``checkpoint``, so its fit trains there once and loads the finished
    model ever after."""
    data_dir = None if data_dir is None else str(data_dir)
    store = str(FeatureStore(store).root)  # the default's folder, so the cache never mixes working folders
    ds, split = cell_split(cell, data_dir)
    hasher = cell.hasher()
    if hasher.trains_model_file and hasher.checkpoint is None:
        path = model_path(cell, split, models)
        path.parent.mkdir(parents=True, exist_ok=True)
        hasher.set_params(checkpoint=str(path))
    X = ds.images if hasher.input_kind == IMAGES else _features(cell.dataset, data_dir, cell.features, store,
                                                                    cell.key_fields()["features"])
    return ds, split, hasher, X


def fit_cell(ds, split, hasher, X):
    """Fit a prepared hasher on the split's training part. A hasher that declares
    ``monitors_held_out`` (DSH) also gets the split's queries, never trained on, to record its
    test loss while training (supplementary Figure 4)."""
    extra = {}
    if hasher.monitors_held_out:
        extra["eval_set"] = (X[split.query], ds.labels[split.query])
    return hasher.fit(X[split.train], ds.labels[split.train] if hasher.supervised else None, **extra)


def score(split, labels, query_codes, db_codes, n_bits: int, timing: dict | None = None) -> dict:
    """The metric columns of a row (and its ``curves``) from a split's codes: the one scoring
    of ``run_cell``, ``hashbench rescore`` and stored cells. ``labels``: the whole dataset's.
    ``timing``, when given, receives ``rank_s``: the ``metrics.evaluate`` call alone (the
    radius-2 lookup cost is computed after it, outside the timing)."""
    protocol = get_protocol(split.protocol)
    t0 = time.perf_counter()
    res = evaluate(query_codes, db_codes, labels[split.query], labels[split.database], n_bits,
                   radius=RADIUS, topk=protocol.topk, self_index=split.self_index())
    if timing is not None:
        timing["rank_s"] = time.perf_counter() - t0
    return {
        "map": res["map"],
        "map_expected": res["map_expected"],
        "map_optimistic": res["map_optimistic"],
        "map_pessimistic": res["map_pessimistic"],
        "map_at_k": res.get("map_at_k"),  # only protocols scored at a cut-off k (nuswide-21-top5000)
        "precision_r2": res["precision_r"][str(RADIUS)],
        "empty_r2_fraction": res["empty_r_fraction"],
        "n_queries": res["n_queries"],
        "n_database": res["n_database"],
        "n_no_relevant": res["n_no_relevant"],
        "n_train": len(split.train),
        "curves": {"pr_curve": res["pr_curve"], "pr_recall_levels": res["pr_recall_levels"],
                   # what radius-2 retrieval costs at this size (multi-index hashing; deterministic)
                   "lookup_r2": radius_lookup_cost(query_codes, db_codes, n_bits, RADIUS)},
    }


def run_cell(cell: Cell, data_dir=None, store=None, models=None) -> dict:
    """Run one cell and return its result row: a dict over ``results.COLUMNS``, plus the
    entry ``CODES`` (a :class:`storedcodes.CellCodes`) that the grid's writer stores.

    ``map`` is always over the whole ranking; ``map_at_k`` is filled for protocols scored at a
    cut-off (``Protocol.topk``). Timings: ``train_s`` is ``fit``, ``encode_s`` encoding the query and database parts,
    ``rank_s`` the whole ``metrics.evaluate`` call (ranking plus every metric), after the
    kernels were compiled (or loaded from Numba's cache) on a tiny input, so that the first
    cell of a process does not pay it. Loading data
    and features (cached per process) is not timed. A hasher that declares ``trains_model_file``
    (DSH) trains into :func:`model_path` under ``models`` and loads it when it is finished
    there: ``fit`` then says ``loaded`` and ``train_s`` is empty (it is only ever a training
    time; a ``--force`` re-run of the cell that trained that very model keeps its training
    record: :func:`results.write_row`); ``model_sha256`` is that file's content.

    The code's identity is taken before anything runs (and kept for the process): the code
    that ran is the code loaded then, and a commit made in the checkout during an hour's
    training must not be what its row names."""
    identity = code_identity()
    key = cell.key_fields()
    files = cell.model_files()
    ds, split, hasher, X = prepare(cell, data_dir, store, models)
    t0 = time.perf_counter()
    fit_cell(ds, split, hasher, X)
    t1 = time.perf_counter()
    query_codes = hasher.encode(X[split.query])
    db_codes = hasher.encode(X[split.database])
    t2 = time.perf_counter()
    warm_up(query_codes, db_codes, ds.labels[split.query], ds.labels[split.database], cell.bits, radius=RADIUS,
            topk=get_protocol(cell.protocol).topk, self_index=split.self_index())  # untimed
    timing = {}
    scores = score(split, ds.labels, query_codes, db_codes, cell.bits, timing)
    fit = getattr(hasher, "fit_mode_", "trained")
    own = hasher.checkpoint if hasher.trains_model_file else None
    if own is not None:
        files["checkpoint"] = str(own)
    model_sha = file_sha256(own) if own is not None and Path(own).is_file() else ""

    return {
        **key,
        **scores,
        "train_s": None if fit == "loaded" else t1 - t0,
        "encode_s": t2 - t1,
        "rank_s": timing["rank_s"],
        "fit": fit,
        **identity,
        "machine": machine(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_sha256": model_sha,
        "model_files": files,
        "schema": SCHEMA,
        CODES: storedcodes.cell_codes(row_key(key), cell.bits, query_codes, db_codes, split, ds.labels, model_sha),
    }


def own_model_file(cell: Cell, data_dir=None, models=None) -> Path | None:
    """The model file a cell trains (or loads), or None for a method that keeps none."""
    if not HASHERS[cell.method].trains_model_file:
        return None
    params = cell.hasher().get_params()
    if params["checkpoint"] is not None:
        return Path(params["checkpoint"])
    return model_path(cell, cell_split(cell, data_dir)[1], models)


def model_waves(cells, data_dir=None, models=None) -> tuple[list[Cell], list[Cell]]:
    """Split cells for parallel running: the first cell of each model file (and every cell
    of a method without one), then the cells that would train a model file again and must
    instead wait for it and load it."""
    first, second, trained = [], [], set()
    for c in cells:
        path = own_model_file(c, data_dir, models)
        (second if path is not None and path in trained else first).append(c)
        trained.add(path)
    return first, second


def check_outputs(cells, store=None, models=None) -> None:
    """Refuse, before any work, a feature store or model folder the cells would write in
    and cannot (the result file is ``results.check_output``'s)."""
    if any(c.features != IMAGES for c in cells):
        check_writable(FeatureStore(store).root, "--store", folder=True)
    if any(HASHERS[c.method].trains_model_file for c in cells):
        check_writable(Path(models) if models else in_workdir(MODELS_DIR), "models folder", folder=True)


def shared_folders(cells, store=None, models=None, alongside=()) -> list[Path]:
    """The folders the workers of a cluster read and write while running ``cells``: the
    feature store when a cell takes features, the models folder when a cell keeps a model
    file (or a task alongside trains one)."""
    folders = []
    if any(c.features != IMAGES for c in cells):
        folders.append(FeatureStore(store).root)
    if alongside or any(HASHERS[c.method].trains_model_file for c in cells):
        folders.append(Path(models or in_workdir(MODELS_DIR)))
    return folders


def _worker_cell(plugins, cell: Cell, data_dir, store, models) -> dict:
    """``run_cell`` in a worker process, after loading the parent's plugins there (a fresh
    process knows only the built-in methods)."""
    from .plugins import load_plugins

    load_plugins(plugins)
    return run_cell(cell, data_dir, store, models)


def stale_cells(cells, out, data_dir=None, models=None) -> set[tuple[str, ...]]:
    """Keys of cells done in ``out`` whose own model file is there but is not the one their
    row recorded (retrained or replaced since): they run again. A model file that is gone
    leaves its rows alone."""
    recorded = {row_key(r): r["model_sha256"] for _, r in read_results(out).iterrows() if r["model_sha256"]}
    stale = set()
    for c in cells:
        if c.key() in recorded:
            path = own_model_file(c, data_dir, models)
            if path is not None and path.is_file() and file_sha256(path) != recorded[c.key()]:
                stale.add(c.key())
    return stale


def run_grid(cells, out, force: bool = False, jobs: int = 1, data_dir=None, store=None, log=None, models=None,
             alongside=(), retrain: bool = False, backend=None):
    """Run the cells not yet in the result file ``out`` (all of them with ``force``), writing
    each row atomically as soon as its cell finishes, ``jobs`` cells at a time (joblib
    processes that split the cores), or on the Dask cluster of ``backend`` (from
    :func:`hashbench.backends.open_backend`; ``jobs`` is then the cluster's). Returns the rows
    of all the cells, in the given order, as read back from ``out``. ``log`` (optional)
    receives one line per finished or skipped cell.

    ``force`` reruns the evaluation (a trained model is loaded); ``retrain`` also removes the
    cells' own model files first, so they train again. A done cell whose model file changed
    since its row (:func:`stale_cells`) runs again. Each cell's codes are stored in
    ``storedcodes.codes_dir(out)``, before its row.

    Only this function (the driver) writes ``out`` and the codes: workers return rows. In
    parallel, cells that share a model file (DSH under two protocols with one training set)
    never train it twice at once: the first trains it, the others wait for a second wave and
    load it. On a cluster, every worker must first see the folders of :func:`shared_folders`.
    ``alongside``: other zero-argument tasks (picklable) run in the same pool beside the
    first wave (with ``jobs=1``, before it); their results are dropped. Workers (processes or
    a cluster's) load the plugins the cells' methods come from (:func:`plugins.worker_modules`)."""
    jobs = check(jobs, "jobs", Interval(int, 1, None))
    code_identity()  # now, while the code that runs is the checkout's (cached for the process)
    data_dir = None if data_dir is None else str(data_dir)
    store = None if store is None else str(store)
    check_output(out)
    cells = list(dict.fromkeys(cells))
    stale = set() if force or retrain else stale_cells(cells, out, data_dir, models)
    done = set() if force or retrain else done_cells(out) - stale
    todo = [c for c in cells if c.key() not in done]
    check_outputs(todo, store, models)
    if log is not None and len(todo) < len(cells):
        log(f"{len(cells) - len(todo)} of {len(cells)} cells already in {out}: skipped (--force reruns them)")
    if backend is not None and (todo or alongside):
        backend.check_shared(shared_folders(todo, store, models, alongside), {c.dataset for c in todo}, data_dir)
    if retrain:
        for path in dict.fromkeys(own_model_file(c, data_dir, models) for c in todo):
            if path is not None and path.is_file():
                path.unlink()
                if log is not None:
                    log(f"retrain: removed {path}")
    for dataset, features in dict.fromkeys((c.dataset, c.features) for c in todo if c.features != IMAGES):
        # fill the feature store once, here, rather than in several workers at once
        FeatureStore(store).get(cached_dataset(dataset, data_dir), extractor(features), report=log)
    if backend is None and (jobs == 1 or len(todo) + len(alongside) <= 1):
        for task in alongside:
            task()
        rows = (run_cell(c, data_dir, store, models) for c in todo)
    else:
        from .plugins import worker_modules

        pool = backend or Processes(jobs)
        cell_in_worker = functools.partial(_worker_cell, tuple(worker_modules(c.method for c in todo)))
        first, second = model_waves(todo, data_dir, models)

        def waves():
            yield from pool.run(cell_in_worker, first, (data_dir, store, models), alongside)
            if second:
                yield from pool.run(cell_in_worker, second, (data_dir, store, models))

        rows = waves()
    folder = storedcodes.codes_dir(out)
    for row in rows:
        codes = row.pop(CODES, None)
        if codes is not None:  # before the row: a row in the file always has its codes
            storedcodes.save(folder, codes)
        write_row(out, row, replace=force or retrain or row_key(row) in stale)
        if log is not None:
            score = "undefined" if row["map"] is None else f"{row['map']:.4f}"
            fit = "model loaded" if row["train_s"] is None else f"{row['fit']} in {row['train_s']:.1f} s"
            log(f"done {'/'.join(str(row[c]) for c in KEY_COLUMNS[:6])}: mAP {score} ({fit})")
    df = read_results(out)
    keys = [c.key() for c in cells]
    index = {row_key(r): i for i, r in df.iterrows()}
    return df.loc[[index[k] for k in keys]].reset_index(drop=True)
