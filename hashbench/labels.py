"""Labels: single-label class ids (n,) or multi-label multi-hot (n, c), and the relevance
rule shared by metrics and supervised methods: two items are relevant (similar) when they
have the same class, or, multi-label, share at least one label."""

import numpy as np

from .errors import InputError


def check_labels(y, n: int | None = None, name: str = "labels") -> np.ndarray:
    """Return int64 (n,) class ids or bool (n, c) multi-hot labels; InputError otherwise."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2):
        raise InputError(f"{name}: expected (n,) class ids or (n, c) multi-hot labels, got shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise InputError(f"{name}: has {y.shape[0]} rows, expected {n}")
    if y.shape[0] == 0:
        raise InputError(f"{name}: empty")
    if y.dtype == np.bool_:
        return y if y.ndim == 2 else y.astype(np.int64)
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise InputError(f"{name}: labels must be integers (or 0/1 multi-hot), found non-integer values")
    elif not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"{name}: labels must be integers, got dtype {y.dtype}")
    if y.ndim == 2:
        if not np.isin(y, (0, 1)).all():
            raise InputError(f"{name}: multi-hot labels must hold only 0 and 1")
        return y.astype(bool)
    return y.astype(np.int64)


def is_multilabel(y) -> bool:
    return np.ndim(y) == 2


def relevance_matrix(a, b) -> np.ndarray:
    """Bool (len(a), len(b)) matrix: a[i] and b[j] share a class / a label."""
    if is_multilabel(a) != is_multilabel(b):
        raise InputError("query and database labels must both be class ids or both multi-hot")
    if is_multilabel(a):
        if a.shape[1] != b.shape[1]:
            raise InputError(f"multi-hot labels have {a.shape[1]} and {b.shape[1]} columns")
        return (a.astype(np.float32) @ b.astype(np.float32).T) > 0
    return a[:, None] == b[None, :]
