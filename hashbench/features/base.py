"""The Extractor interface and the registry of feature extractors by name.

An extractor turns images (uint8 ``(n, H, W, 3)`` RGB) into a float32 feature matrix
``(n, d)``. Like a hasher it is a scikit-learn style object: ``__init__`` only stores its
parameters, so ``get_params`` and ``clone`` work. ``key()`` names the extractor and every
parameter that changes its output; the feature store files matrices under it, so two
extractors with the same key must give the same features. A learned extractor (the CNN
features ``cnn-cls`` and ``cnn-ours``) puts its model's hash among ``key_params()``.
"""

import json
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import InputError, NameClash
from ..params import check_params
from ..progress import progress as bar_for

EXTRACTORS: dict[str, type] = {}
ORIGINS: dict[str, str] = {}  # extractor name -> "built-in", or the plugin it came from


def register_extractor(name: str, origin: str | None = None):
    """Class decorator: make an extractor available as ``get_extractor(name, ...)``."""

    def decorate(cls):
        if name in EXTRACTORS:
            raise NameClash(f"extractor {name!r} is already registered ({ORIGINS[name]})")
        EXTRACTORS[name] = cls
        builtin = cls.__module__.startswith("hashbench.")
        ORIGINS[name] = origin or ("built-in" if builtin else f"module {cls.__module__}")
        cls.name = name
        return cls

    return decorate


def get_extractor(name: str, **params) -> "Extractor":
    """Build the extractor registered as ``name``; unknown names and bad parameters are
    InputErrors, raised here rather than hours later in ``extract``."""
    try:
        cls = EXTRACTORS[name]
    except KeyError:
        raise InputError(f"unknown extractor {name!r}; choose from {', '.join(sorted(EXTRACTORS))}") from None
    known = cls._get_param_names()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InputError(f"extractor {name}: unknown parameter(s) {', '.join(unknown)}; "
                         f"it takes {', '.join(known) or 'none'}")
    ext = cls(**params)
    ext.check_params()
    return ext


def parse_param(text: str, arg: str = "--param") -> tuple[str, object]:
    """``KEY=VALUE`` -> (key, value): VALUE is read as JSON (``true``, ``4``, ``[8,8,4]``) and
    taken as a plain string when it is not JSON (``mode=lmgist``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.isidentifier():
        raise InputError(f"{arg}: expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def format_param(key: str, value) -> str:
    """The ``KEY=VALUE`` text that :func:`parse_param` reads back as ``(key, value)``."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return f"{key}={value}"
    return f"{key}={json.dumps(value, separators=(',', ':'))}"


def check_images(images, name: str = "images") -> np.ndarray:
    """A non-empty uint8 ``(n, H, W, 3)`` array, or an InputError naming what is wrong."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise InputError(f"{name}: expected uint8 (n, H, W, 3) RGB images, got "
                         f"{getattr(images, 'dtype', type(images).__name__)} {getattr(images, 'shape', '')}")
    if min(images.shape[:3]) == 0:
        raise InputError(f"{name}: empty image array of shape {images.shape}")
    return images


class Extractor(BaseEstimator):
    """Base class. Subclasses set ``version`` (bump it when their output changes, so stored
    matrices of the old code are recomputed) and implement ``_extract``."""

    name: str
    version: int = 1
    model_file_params: ClassVar[tuple] = ()  # parameters naming model files: keys hold their content
    _parameter_constraints: ClassVar[dict] = {}  # parameter -> allowed values (:mod:`hashbench.params`)

    def check_params(self) -> None:
        """Raise InputError on invalid parameters (``get_extractor`` and ``extract`` call it):
        the declared constraints; a subclass adds rules between parameters after ``super()``."""
        check_params(self.get_params(), self._parameter_constraints, self.name)

    def key_params(self) -> dict:
        """The JSON-serialisable parameters that determine the output (by default all of them)."""
        return self.get_params()

    def key(self) -> str:
        """``name/v<version>:<sorted JSON of key_params>``, e.g. ``pixels/v1:{}``."""
        params = json.dumps(self.key_params(), sort_keys=True, separators=(",", ":"))
        return f"{self.name}/v{self.version}:{params}"

    def extract(self, images, progress: bool | None = False) -> np.ndarray:
        """float32 ``(n, d)`` features of ``images``; ``progress`` shows progress over images
        (:mod:`hashbench.progress`; None: only when the extraction lasts over 5 s)."""
        images = check_images(images)
        self.check_params()
        with bar_for(len(images), self.name, unit="img", enabled=progress is not False, leave=False,
                     quiet_for=0.0 if progress else 5.0) as bar:
            X = self._extract(images, bar)
        assert X.dtype == np.float32 and X.ndim == 2 and X.shape[0] == len(images), (X.dtype, X.shape)
        return X

    def _extract(self, images: np.ndarray, bar) -> np.ndarray:
        """Features of checked images; call ``bar.update(k)`` after each batch of k images."""
        raise NotImplementedError
