"""An experiment as data: which datasets, protocols, features, methods (each with its own
parameter grid), code lengths, seeds and labelled counts make up a grid of cells.

``hashbench run --config FILE.toml`` reads one from TOML (stdlib ``tomllib``); the flags of
``hashbench run`` (``--methods``, ``--bits``, ``--param ksh.n_anchors=300,1000`` ...) build the
same object, so both go through :meth:`Experiment.cells`; ``reproduce NAME --print-config``
writes the paper's grids in the same form (:func:`to_toml`). A file::

    datasets = ["digits"]             # or protocols = ["digits-dsh"]; "auto" as `run`
    features = ["pixels"]             # default as `run`: gist, or pixels for small images
    bits = [12, 24]
    seeds = [0, 1]
    n_labelled = [300, "all"]         # methods that learn from a labelled subset; default theirs
    backend = "dask"                  # where cells run (as --backend); optional
    scheduler = "tcp://host:8786"     # with backend = "dask" (as --scheduler); optional

    [[methods]]
    name = "lsh"

    [[methods]]
    name = "ksh"
    n_anchors = [100, 300]            # a parameter; a list is a grid axis
    n_labelled = [1000, 2000]         # this method's own labelled counts
    axes = {bits = [48]}              # its own bits, seeds or features

    [[methods]]
    name = "dsh-ensemble"
    seeds = [[0, 2]]                  # a list-valued parameter is a list inside the axis

In a method table, ``name`` and ``axes`` are reserved; every other key is one of the
method's parameters (``n_labelled`` is both a parameter and an axis). ``methods = ["lsh",
"itq"]`` is short for tables with names only. Unknown keys, methods and parameters, and
values of the wrong kind, are InputErrors naming the file and the key.
"""

import itertools
import json
import math
import re
from dataclasses import dataclass, field

from .errors import InputError
from .hashers import HASHERS, get_hasher
from .hashers.base import MAX_BITS
from .params import SEED, Instance, Interval, Options, check

AXES = ("bits", "seeds", "features", "n_labelled")  # grid axes a method table may set for itself (``axes``)
RUNS_ON = ("backend", "scheduler")  # where the cells run, not which cells: no part of a cell's key
TOP_KEYS = ("datasets", "protocols", "methods", *AXES, *RUNS_ON)
RESERVED = ("n_bits", "seed")  # hasher parameters the axes set
DEFAULT_BITS = (12, 24, 36, 48)

_BITS = Interval(int, 1, MAX_BITS)
_LABELLED = [Interval(int, 1, None), Options("all")]
_NAME = Instance(str, "a name")


@dataclass
class MethodGrid:
    """One method and its own grid: ``params`` maps each parameter to the list of values it
    takes (one cell per combination); ``axes`` optionally replaces the experiment's bits,
    seeds, features or n_labelled for this method."""

    name: str
    params: dict[str, list] = field(default_factory=dict)
    axes: dict[str, list] = field(default_factory=dict)

    def points(self) -> list[dict]:
        """Every combination of the parameter grid, as keyword dicts."""
        keys = list(self.params)
        return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(self.params[k] for k in keys))]


@dataclass
class Experiment:
    """A grid of cells as data (see the module docstring). ``protocols`` None: each
    dataset's default protocol; ``features`` None: as ``hashbench run``; ``n_labelled``
    None: each method's own default."""

    methods: list[MethodGrid]
    bits: list = field(default_factory=lambda: list(DEFAULT_BITS))
    seeds: list = field(default_factory=lambda: [0])
    datasets: list = field(default_factory=lambda: ["auto"])
    protocols: list | None = None
    features: list | None = None
    n_labelled: list | None = None
    backend: str | None = None  # None: the --backend flag's (default processes)
    scheduler: str | None = None

    def cells(self, data_dir=None, log=None) -> list:
        """The cells, protocol by protocol, then method grid by method grid, without repeats;
        every cell is checked before this returns (nothing has run)."""
        from .experiment import plan_cells
        from .protocols import get_protocol

        if not self.protocols:
            targets = [(d, None) for d in self.datasets]
        elif self.datasets == ["auto"]:
            targets = [("auto", p) for p in self.protocols]
        else:  # every (dataset, protocol) pair the protocol applies to; each protocol to one at least
            from .datasets import resolve_dataset

            names = {d: resolve_dataset(d, data_dir)[0] for d in self.datasets}
            targets = [(d, p) for d in self.datasets for p in self.protocols if get_protocol(p).applies_to(names[d])]
            for p in self.protocols:
                if not any(q == p for _, q in targets):
                    raise InputError(f"protocol {p} is for dataset {get_protocol(p).dataset}, "
                                     f"which is not among datasets {', '.join(self.datasets)}")
        cells = []
        for dataset, protocol in targets:
            for grid in self.methods:
                axes = {"bits": self.bits, "seeds": self.seeds, "features": self.features,
                        "n_labelled": self.n_labelled, **grid.axes}
                points = [(grid.name, point) for point in grid.points()]
                cells += plan_cells(points, axes["bits"], axes["seeds"], features=axes["features"],
                                    dataset=dataset, protocol=protocol, n_labelled=axes["n_labelled"],
                                    data_dir=data_dir, log=log if grid is self.methods[0] else None)
        return list(dict.fromkeys(cells))


# -- building one: from flags, from TOML ---------------------------------------------------


def _value(text: str):
    """One VALUE of ``--param``: JSON when it parses (``4``, ``true``, ``[8,8,4]``), else the word."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_param(text: str) -> tuple[str | None, str, list]:
    """``[METHOD.]KEY=VALUE`` -> (method or None, key, values). VALUE is one JSON value
    (``[0,2]`` is one list), or else a comma list whose items are each JSON or a word: a grid
    axis (``300,1000``)."""
    key, sep, raw = text.partition("=")
    method, _, name = key.rpartition(".")
    if not sep or not name.isidentifier() or (method and not re.fullmatch(r"[A-Za-z0-9_-]+", method)):
        raise InputError(f"--param: expected [METHOD.]KEY=VALUE, got {text!r}")
    try:
        values = [json.loads(raw)]
    except ValueError:
        items = raw.split(",")
        if "" in items and len(items) > 1:
            raise InputError(f"--param {key}: empty item in the list {raw!r}") from None
        values = [_value(t) for t in items]
    return method or None, name, values


def from_flags(methods, bits=DEFAULT_BITS, seeds=(0,), features=None, datasets=("auto",), protocols=None,
               n_labelled=None, params=()) -> Experiment:
    """The experiment of ``hashbench run``'s flags. ``params`` are ``--param`` texts: a
    ``METHOD.KEY`` goes to that method (which must be selected and take KEY), a bare ``KEY``
    to every selected method that takes it (at least one must)."""
    for m in methods:
        if m not in HASHERS:
            get_hasher(m)  # the InputError that lists the methods
    grids = {m: MethodGrid(m) for m in dict.fromkeys(methods)}
    for text in params:
        method, key, values = parse_param(text)
        if key in (*RESERVED, "bits", "n_labelled"):
            raise InputError(f"--param {key}: give it with its own option (--bits, --seed(s), --n-labelled)")
        if method is not None:
            if method not in grids:
                raise InputError(f"--param {method}.{key}: {method} is not among --methods ({', '.join(grids)})")
            targets = [method]
            if key not in HASHERS[method]._get_param_names():
                raise InputError(f"--param {method}.{key}: {method} has no parameter {key!r}; it takes "
                                 f"{', '.join(HASHERS[method]._get_param_names())}")
        else:
            targets = [m for m in grids if key in HASHERS[m]._get_param_names()]
            if not targets:
                raise InputError(f"--param {key}: none of the selected methods ({', '.join(grids)}) takes it; "
                                 "see `hashbench methods`")
        for m in targets:
            if key in grids[m].params:
                raise InputError(f"--param {key}: given twice for {m}")
            grids[m].params[key] = values
    return Experiment(methods=list(grids.values()), bits=list(bits), seeds=list(seeds), datasets=list(datasets),
                      protocols=None if protocols is None else list(protocols),
                      features=None if features is None else list(features),
                      n_labelled=None if n_labelled is None else list(n_labelled))


def _axis(value, where: str, constraints) -> list:
    """A TOML value as a list of checked items (a scalar is a list of one)."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise InputError(f"{where}: empty list")
    return [check(v, where, constraints) for v in values]


def from_dict(data: dict, source: str = "config") -> Experiment:
    """The experiment a parsed TOML document describes; InputError naming ``source`` and the key."""
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise InputError(f"{source}: unknown key {unknown[0]!r}; expected {', '.join(TOP_KEYS)}")
    if "methods" not in data:
        raise InputError(f"{source}: no methods; add [[methods]] tables with a name each")
    raw = data["methods"]
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{source}: methods must be a list of names or [[methods]] tables")
    grids = []
    for i, entry in enumerate(raw):
        where = f"{source}: methods[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InputError(f"{where}: expected a table with a name")
        name = entry["name"]
        if name not in HASHERS:
            try:
                get_hasher(name)
            except InputError as e:
                raise InputError(f"{where}: {e}") from None
        known = HASHERS[name]._get_param_names()
        grid = MethodGrid(name)
        for key, value in entry.items():
            if key == "name":
                continue
            if key == "axes":
                if not isinstance(value, dict):
                    raise InputError(f"{where}.axes: expected a table such as {{bits = [48]}}")
                for axis, values in value.items():
                    if axis not in AXES:
                        raise InputError(f"{where}.axes: unknown axis {axis!r}; expected {', '.join(AXES)}")
                    grid.axes[axis] = _top_axis(axis, values, f"{where}.axes.{axis}")
            elif key == "n_labelled" and key in known:
                grid.axes[key] = _top_axis(key, value, f"{where}.{key}")
            elif key in RESERVED:
                raise InputError(f"{where}.{key}: set it with {'bits' if key == 'n_bits' else 'seeds'}")
            elif key not in known:
                raise InputError(f"{where}: {name} has no parameter {key!r}; it takes {', '.join(known)}")
            else:
                values = value if isinstance(value, list) else [value]
                if not values:
                    raise InputError(f"{where}.{key}: empty list")
                grid.params[key] = values
        grids.append(grid)
    exp = Experiment(methods=grids)
    for key in ("datasets", "protocols", *AXES):
        if key in data:
            setattr(exp, key, _top_axis(key, data[key], f"{source}: {key}"))
    if "backend" in data:
        from .backends import BACKENDS

        exp.backend = check(data["backend"], f"{source}: backend", Options(*BACKENDS))
    if "scheduler" in data:
        exp.scheduler = check(data["scheduler"], f"{source}: scheduler", _NAME)
        if exp.backend != "dask":
            raise InputError(f"{source}: scheduler needs backend = \"dask\"")
    return exp


def _top_axis(key: str, value, where: str) -> list:
    constraints = {"bits": _BITS, "seeds": SEED, "n_labelled": _LABELLED}.get(key, _NAME)
    return _axis(value, where, constraints)


def load(path) -> Experiment:
    """Read a TOML experiment file; a missing, unreadable or malformed file is an InputError."""
    import tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise InputError(f"--config: no such file: {path}") from None
    except OSError as e:
        raise InputError(f"--config: cannot read {path} ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"--config {path}: not valid TOML ({e})") from None
    except UnicodeDecodeError as e:  # tomllib decodes the bytes itself: TOML is UTF-8
        raise InputError(f"--config {path}: not UTF-8 text (byte {e.start}); TOML files are UTF-8") from None
    return from_dict(data, f"--config {path}")


# -- writing one: the paper's grids as files -----------------------------------------------


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"TOML cannot hold {v!r}")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string (same escapes as JSON for what we write)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ValueError(f"TOML cannot hold {type(v).__name__} {v!r}")


def _toml_axis(values: list) -> str:
    """A one-value axis of a scalar is written as the scalar; anything else as a list."""
    if len(values) == 1 and not isinstance(values[0], (list, tuple)):
        return _toml_value(values[0])
    return _toml_value(list(values))


def to_toml(exp: Experiment, comment: str = "") -> str:
    """The experiment as a TOML file that :func:`load` reads back to the same cells (stdlib
    ``tomllib`` reads TOML but cannot write it; what we write is small enough to emit)."""
    lines = [f"# {line}" if line else "#" for line in comment.splitlines()]
    for key in ("datasets", "protocols", "features", "bits", "seeds", "n_labelled"):
        value = getattr(exp, key)
        if key in AXES and all(key in g.axes for g in exp.methods):
            continue  # every method sets its own
        if value is not None and not (key == "datasets" and value == ["auto"] and exp.protocols):
            lines.append(f"{key} = {_toml_value(list(value))}")
    for grid in exp.methods:
        lines += ["", "[[methods]]", f"name = {_toml_value(grid.name)}"]
        axes = {k: v for k, v in grid.axes.items() if k != "n_labelled"}
        if axes:
            lines.append("axes = {" + ", ".join(f"{k} = {_toml_value(list(v))}" for k, v in axes.items()) + "}")
        if "n_labelled" in grid.axes:
            lines.append(f"n_labelled = {_toml_value(list(grid.axes['n_labelled']))}")
        lines += [f"{k} = {_toml_axis(v)}" for k, v in grid.params.items()]
    return "\n".join(lines) + "\n"


def from_cells(cells) -> Experiment:
    """The smallest set of method grids (in first-seen order) whose product is exactly
    ``cells``: cells that differ only in bits share a grid, then grids that differ only in
    features. All cells must share their dataset, and their protocols must form one axis."""
    cells = list(dict.fromkeys(cells))
    protocols = list(dict.fromkeys(c.protocol for c in cells))
    if len({c.dataset for c in cells}) != 1:
        raise ValueError("from_cells: cells of one dataset only")
    groups: dict[tuple, dict] = {}
    for c in cells:
        key = (c.method, c.params, c.n_labelled, c.seed, c.features)
        groups.setdefault(key, {}).setdefault(c.bits, set()).add(c.protocol)
    merged: dict[tuple, list] = {}
    for (method, params, labelled, seed, features), bits in groups.items():
        if any(ps != set(protocols) for ps in bits.values()):
            raise ValueError(f"from_cells: {method} is not run on every protocol")
        merged.setdefault((method, params, labelled, seed, tuple(bits)), []).append(features)
    grids = []
    for (method, params, labelled, seed, bits), features in merged.items():
        axes = {"bits": list(bits), "seeds": [seed]}
        if features != ["images"]:
            axes["features"] = features
        if labelled:
            axes["n_labelled"] = ["all" if labelled == "all" else int(labelled)]
        grid = MethodGrid(method, {k: [v] for k, v in json.loads(params).items()}, axes)
        previous = grids[-1] if grids else None
        key = _one_apart(previous, grid) if previous is not None else None
        if key is not None:  # a grid axis after all
            where = previous.params if key in previous.params else previous.axes
            where[key] = where[key] + (grid.params if key in grid.params else grid.axes)[key]
        else:
            grids.append(grid)
    exp = Experiment(methods=grids, datasets=[cells[0].dataset], protocols=protocols)
    for axis in ("bits", "seeds", "features", "n_labelled"):  # an axis every grid shares moves to the top
        values = [g.axes.get(axis) for g in grids]
        if axis == "features":  # methods that take images have none and ignore it
            values = [v for v in values if v is not None]
        if values and values[0] is not None and all(v == values[0] for v in values):
            setattr(exp, axis, values[0])
            for g in grids:
                g.axes.pop(axis, None)
    return exp


def _one_apart(a: MethodGrid, b: MethodGrid) -> str | None:
    """The one parameter or axis in which two grids of a method differ, or None."""
    if a.name != b.name or set(a.params) != set(b.params) or set(a.axes) != set(b.axes):
        return None
    both = [(k, a.params[k], b.params[k]) for k in a.params] + [(k, a.axes[k], b.axes[k]) for k in a.axes]
    differ = [k for k, x, y in both if x != y]
    return differ[0] if len(differ) == 1 else None
