"""The Hasher contract and the registry of hashing methods by name.

A hasher is a scikit-learn transformer. Its author writes:

- ``__init__`` storing the hyper-parameters and nothing else (sklearn's rule, so ``clone``,
  ``get_params`` and grids work); ``n_bits`` and ``seed`` are always among them;
- ``_fit(X, y)`` learning state in attributes ending in ``_`` (``_fit(X, y, eval_set)`` when
  it declares ``monitors_held_out``);
- ``_project(X)``: real-valued ``(n, n_bits)`` outputs whose signs are the code bits;
- the class attributes below, declaring what the runner, tables and figures may rely on;
- ``_parameter_constraints``: each parameter's allowed values, as data (:mod:`hashbench.params`).

The base class does the rest, once for every method: ``fit`` checks the parameters against
the constraints (merged along the class hierarchy) and the inputs (scikit-learn's validation,
its errors re-raised as one-line :class:`InputError`), records ``n_features_in_``, and checks
``y`` for supervised methods; ``project`` (= ``transform``) checks the input against what was
fitted; ``encode`` packs ``codes.sign(project(X))`` (0 counts as +1), the one sign rule.
"""

from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..codes import pack, sign
from ..errors import InputError, NameClash
from ..labels import check_labels
from ..params import SEED, Interval, check_params

HASHERS: dict[str, type] = {}
ORIGINS: dict[str, str] = {}  # method name -> "built-in", or the plugin (package or module) it came from
MAX_BITS = 4096
INPUT_KINDS = ("features", "images")


def register(name: str, origin: str | None = None):
    """Class decorator: make a hasher available as ``get_hasher(name, ...)``. Its declarations
    are checked here, so a broken contract fails at import, not in the middle of a grid.
    ``origin`` (shown by ``hashbench methods``) defaults to ``built-in`` for hashbench's own
    classes and ``module NAME`` for others; :mod:`hashbench.plugins` passes the plugin's."""

    def decorate(cls):
        if name in HASHERS:
            raise NameClash(f"method {name!r} is already registered ({ORIGINS[name]})")
        check_declarations(cls)
        HASHERS[name] = cls
        ORIGINS[name] = origin or _origin(cls)
        cls.name = name
        return cls

    return decorate


def _origin(cls) -> str:
    return "built-in" if cls.__module__.startswith("hashbench.") else f"module {cls.__module__}"


def get_hasher(name: str, **params):
    """Build the hasher registered as ``name`` with the given hyper-parameters; an unknown
    name or parameter is an InputError."""
    try:
        cls = HASHERS[name]
    except KeyError:
        raise InputError(f"unknown method {name!r}; choose from {', '.join(sorted(HASHERS))}") from None
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise InputError(f"{name}: unknown parameter(s) {', '.join(unknown)}; it takes "
                         f"{', '.join(cls._get_param_names())}")
    return cls(**params)


def describe_method(name: str) -> dict:
    """What ``hashbench methods`` prints of a method: origin, declarations, parameters."""
    cls = HASHERS[name]
    return {
        "name": name, "label": cls.label or name, "origin": ORIGINS[name], "input": cls.input_kind,
        "declares": [a for a in ("supervised", "uses_labelled_subset", "trains_model_file", "monitors_held_out")
                     if getattr(cls, a)] + ([f"budget_param={cls.budget_param}"] if cls.budget_param else []),
        "params": cls().get_params(deep=False),
        "doc": " ".join((cls.__doc__ or "").split("\n\n")[0].split()).split(". ")[0].rstrip("."),
    }


def method_label(name: str) -> str:
    """The display label of a method (tables, figure legends); the name itself if unknown."""
    cls = HASHERS.get(name)
    return cls.label if cls is not None and cls.label else name


def check_declarations(cls) -> None:
    """Refuse a class whose declarations contradict its parameters (a TypeError: the
    author's mistake, not the user's)."""
    params = set(cls._get_param_names())
    problems = []
    if cls.input_kind not in INPUT_KINDS:
        problems.append(f"input_kind must be one of {INPUT_KINDS}, not {cls.input_kind!r}")
    for attr, param in (("uses_labelled_subset", "n_labelled"), ("trains_model_file", "checkpoint")):
        if getattr(cls, attr) and param not in params:
            problems.append(f"declares {attr} but has no {param!r} parameter")
    if cls.uses_labelled_subset and not cls.supervised:
        problems.append("declares uses_labelled_subset but not supervised")
    if cls.budget_param is not None and cls.budget_param not in params:
        problems.append(f"budget_param {cls.budget_param!r} is not one of its parameters")
    for attr in ("settings_params", "model_file_params"):
        unknown = [p for p in getattr(cls, attr) if p not in params]
        if unknown:
            problems.append(f"{attr} names {', '.join(map(repr, unknown))}, not among its parameters")
    if cls.device_param is not None and cls.device_param not in params:
        problems.append(f"device_param {cls.device_param!r} is not one of its parameters")
    missing = {"n_bits", "seed"} - params
    if missing:
        problems.append(f"has no {', '.join(sorted(missing))} parameter")
    if problems:
        raise TypeError(f"hasher {cls.__name__}: " + "; ".join(problems))


def parameter_constraints(cls) -> dict:
    """The constraints of every parameter of ``cls``, merged along its class hierarchy
    (a subclass's entry replaces its parent's)."""
    merged = {}
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass).get("_parameter_constraints", {}))
    if cls.uses_labelled_subset:
        merged.setdefault("n_labelled", [Interval(int, 1, None), None])
    return {k: v for k, v in merged.items() if k in cls._get_param_names()}


class InputTypeError(InputError, TypeError):
    """Input of the wrong type (sparse, objects): an InputError for the CLI, and still the
    TypeError scikit-learn's conventions (and its estimator checks) expect."""


def _sklearn_error(e: Exception, name: str) -> InputError:
    """scikit-learn's message on one line (its 1-D advice spans several, with the array between)."""
    line = " ".join(t for t in str(e).split("\n") if t.strip() and not t.startswith("array=")) or type(e).__name__
    return (InputTypeError if isinstance(e, TypeError) else InputError)(f"{name}: {line}")


def check_features(X, name: str = "X") -> np.ndarray:
    """A finite, non-empty 2-D float64 matrix, or an InputError naming what is wrong."""
    from sklearn.utils import check_array

    try:
        return check_array(X, dtype=np.float64, input_name=name)
    except (ValueError, TypeError) as e:
        raise _sklearn_error(e, name) from None


def check_images(images, name: str = "images") -> np.ndarray:
    """uint8 (n, H, W, C) square images, or an InputError naming what is wrong."""
    a = np.asarray(images)
    if a.ndim != 4 or a.shape[1] != a.shape[2] or a.shape[0] == 0:
        raise InputError(f"{name}: expected uint8 (n, H, W, C) square images, got shape {a.shape}")
    if a.dtype != np.uint8:
        raise InputError(f"{name}: expected uint8 pixels (0-255), got dtype {a.dtype}")
    return a


class Hasher(TransformerMixin, BaseEstimator):
    """Base class of every hashing method (see the module docstring for the contract).

    Declarations (class attributes; the runner, tables and figures read these, never
    parameter names):

    - ``input_kind``: ``"features"`` (a float matrix from an extractor) or ``"images"`` (uint8
      N x H x W x C; the method learns its own features);
    - ``supervised``: ``fit`` needs labels ``y`` (class ids or multi-hot);
    - ``uses_labelled_subset``: learns from ``n_labelled`` training images drawn with the seed
      (:func:`hashers.common.labelled_subset`); it has an ``n_labelled`` parameter (None:
      all), which the grid's ``n_labelled`` axis sets;
    - ``trains_model_file``: training is long and kept in a file, its ``checkpoint``
      parameter: the runner points it at a file named by the cell, which cells that share a
      training set share and a rerun resumes or loads;
    - ``monitors_held_out``: ``_fit`` takes ``eval_set=(X_query, y_query)``, held-out data to
      record a test loss on (never trained on);
    - ``budget_param``: the parameter that ``reproduce --budget`` / ``show --budget`` set (a
      training schedule), or None;
    - ``label``: the name in tables and figure legends (e.g. ``"CCA-ITQ"``);
    - ``settings_params``: parameters that cannot change a result (progress bars, thread
      counts): kept out of the cell's key and out of the hash naming its model file, so
      changing one neither adds a row nor retrains;
    - ``model_file_params``: parameters naming model files the method reads (a starting
      model, trained members): the cell's key holds their content (SHA-256), not their path;
    - ``device_param``: the parameter choosing CPU or GPU, or None: the key holds the kind of
      device a result depends on, and on a cluster such a cell asks for a ``GPU`` resource;
    - ``fast_params``: parameters that make it quick on :mod:`hashbench.testing`'s tiny data.
    """

    input_kind = "features"
    supervised = False
    uses_labelled_subset = False
    trains_model_file = False
    monitors_held_out = False
    budget_param = None
    label = ""
    settings_params: ClassVar[tuple] = ()
    model_file_params: ClassVar[tuple] = ()
    device_param: ClassVar[str | None] = None
    name = ""
    min_samples = 2  # a training set smaller than this is refused (one sample has no spread)
    # parameters that make the method quick on hashbench.testing's tiny data (the checker's only)
    fast_params: ClassVar[dict] = {}

    _parameter_constraints: ClassVar[dict] = {"n_bits": [Interval(int, 1, MAX_BITS)], "seed": [SEED]}

    n_bits: int
    seed: int

    # -- what the author writes -------------------------------------------------------------

    def _fit(self, X, y):
        raise NotImplementedError

    def _project(self, X) -> np.ndarray:
        raise NotImplementedError

    # -- what the base class does for everyone -------------------------------------------------

    def check_params(self) -> None:
        """Check every parameter against the declared constraints (InputError on the first bad one)."""
        check_params(self.get_params(deep=False), parameter_constraints(type(self)), self.name or type(self).__name__)

    def _check_input(self, X, reset: bool, name: str = "X"):
        if self.input_kind == "images":
            images = check_images(X, name)
            if reset:
                self.image_shape_ = images.shape[1:]
            elif images.shape[1:] != self.image_shape_:
                raise InputError(f"{name}: the model takes {self.image_shape_} images, got {images.shape[1:]}")
            return images
        try:
            return validate_data(self, X, reset=reset, dtype=np.float64,
                                 ensure_min_samples=self.min_samples if reset else 1)
        except (ValueError, TypeError) as e:
            raise _sklearn_error(e, name) from None

    def fit(self, X, y=None, eval_set=None):
        """Learn from training inputs ``X`` (and labels ``y`` when supervised); returns self.
        ``eval_set`` reaches methods that declare ``monitors_held_out`` (others ignore it)."""
        self.check_params()
        X = self._check_input(X, reset=True)
        if self.supervised:
            if y is None:
                raise InputError(f"y: {self.name or type(self).__name__} is supervised and needs labels "
                                 "(it requires y to be passed, but the target y is None)")
            y = check_labels(np.asarray(y), X.shape[0], "y")
        if self.monitors_held_out:
            if eval_set is not None:
                eval_set = (self._check_input(eval_set[0], reset=False, name="eval_set"),
                            check_labels(np.asarray(eval_set[1]), len(eval_set[0]), "eval_set"))
            self._fit(X, y, eval_set=eval_set)
        else:
            self._fit(X, y)
        return self

    def project(self, X) -> np.ndarray:
        """Real-valued ``(n, n_bits)`` outputs; their signs are the bits (0 counts as +1)."""
        check_is_fitted(self)
        return self._project(self._check_input(X, reset=False))

    def transform(self, X) -> np.ndarray:
        """``project``: a hasher in a scikit-learn pipeline outputs its real-valued projections."""
        return self.project(X)

    def encode(self, X) -> np.ndarray:
        """Packed uint64 codes of ``X`` (:mod:`hashbench.codes`): bit j set where projection j is >= 0."""
        return pack(sign(self.project(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self.supervised
        tags.transformer_tags.preserves_dtype = ["float64"]
        tags.input_tags.two_d_array = self.input_kind == "features"
        return tags


def check_n_bits(n_bits, low: int = 1, high: int = MAX_BITS) -> int:
    """An int bit length within [low, high], or an InputError (for callers outside a hasher)."""
    from ..params import check

    return check(n_bits, "n_bits", Interval(int, low, high))
