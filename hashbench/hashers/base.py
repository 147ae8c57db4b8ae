"""The Hasher interface and the registry of hashing methods by name.

A hasher is a scikit-learn estimator: ``__init__`` only stores its hyper-parameters,
``fit(X, y=None)`` learns and returns ``self``, learned state ends in ``_`` and
``encode(X)`` returns codes in the packed format of :mod:`hashbench.codes`. This makes
``sklearn.base.clone`` and ``get_params`` work, so grids and seeds are handled the same
way for every method.
"""

import numpy as np
from sklearn.base import BaseEstimator

from ..codes import pack
from ..errors import InputError

HASHERS: dict[str, type] = {}


def register(name: str):
    """Class decorator: make a hasher available as ``get_hasher(name, ...)``."""

    def decorate(cls):
        if name in HASHERS:
            raise ValueError(f"hasher {name!r} is registered twice")
        HASHERS[name] = cls
        cls.name = name
        return cls

    return decorate


def get_hasher(name: str, **params):
    """Build the hasher registered as ``name`` with the given hyper-parameters."""
    try:
        cls = HASHERS[name]
    except KeyError:
        raise InputError(f"unknown method {name!r}; choose from {', '.join(sorted(HASHERS))}") from None
    return cls(**params)


class Hasher(BaseEstimator):
    """Base class. Subclasses implement ``fit`` and ``project`` (real-valued outputs whose
    signs are the code bits, 0 counting as +1).

    Class attributes:
      ``input_kind``: ``"features"`` (a float matrix) or ``"images"`` (uint8 N x H x W x C);
      ``supervised``: whether ``fit`` needs labels.
    """

    input_kind = "features"
    supervised = False
    n_bits: int

    def project(self, X) -> np.ndarray:
        raise NotImplementedError

    def encode(self, X) -> np.ndarray:
        """Packed uint64 codes of ``X``: bit j set where projection j is >= 0."""
        return pack(np.asarray(self.project(X)) >= 0)


def check_features(X, name: str = "X") -> np.ndarray:
    """A finite, non-empty 2-D float matrix, or an InputError naming what is wrong."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise InputError(f"{name}: expected a 2-D (n_samples, n_features) matrix, got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(f"{name}: empty matrix of shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise InputError(f"{name}: expected numeric features, got dtype {X.dtype}")
    X = X.astype(np.float64, copy=False)
    if not np.isfinite(X).all():
        raise InputError(f"{name}: features contain NaN or inf")
    return X


def check_n_bits(n_bits, low: int = 1, high: int = 4096) -> int:
    """An int bit length within [low, high], or an InputError."""
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or not low <= n_bits <= high:
        raise InputError(f"n_bits must be an integer in [{low}, {high}], got {n_bits!r}")
    return int(n_bits)
