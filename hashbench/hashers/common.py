"""Checks shared by the classic hashers, and the labelled subset supervised ones learn from.

The paper's baselines learn from a few thousand labelled training images (KSH's authors use
l = 2,000), so supervised hashers take ``n_labelled`` and draw that many training images with
their seed; the rest of the training set stays unlabelled.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from ..errors import InputError
from ..labels import check_labels
from .base import check_features


def one_blas_thread():
    """Context in which BLAS/LAPACK run on one thread; the learned hashers train inside it.

    Their products are many and mid-sized (ITQ's 51 rotations, KSH's ~24,000 matrix-vector
    steps, 512 x 512 eigenproblems). On the shared 2-core machine, threaded OpenBLAS spent far
    longer synchronising than computing: a 512 x 512 generalised eigh took 4.0 s on two
    threads against 0.04 s on one, a 50,000 x 512 covariance 1.07 s against 0.27 s. One
    thread per fit is also what a grid of fits run in parallel wants.
    """
    return threadpool_limits(1, user_api="blas")


def check_int(value, name: str, low: int = 0) -> int:
    """An int >= low (bools refused), or an InputError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_new_features(hasher, X, n_features: int) -> np.ndarray:
    """Features to encode with a fitted hasher: finite, and as many columns as it was fitted on."""
    check_is_fitted(hasher)
    X = check_features(X)
    if X.shape[1] != n_features:
        raise InputError(f"X: has {X.shape[1]} features, the hasher was fitted on {n_features}")
    return X


def labelled_subset(y, n_samples: int, n_labelled: int | None, rng: np.random.Generator):
    """(sorted indices, their labels) of the labelled training images.

    ``y`` holds labels for all ``n_samples`` training images. ``n_labelled=None`` takes them
    all; a value above ``n_samples`` also takes them all (documented rule: a small training
    set is used whole rather than refused). Otherwise ``n_labelled`` distinct images are drawn
    uniformly with ``rng``.
    """
    if y is None:
        raise InputError("y: this method is supervised and needs labels")
    y = check_labels(y, n_samples, "y")
    if n_labelled is not None:
        n_labelled = check_int(n_labelled, "n_labelled", low=1)
    if n_labelled is None or n_labelled >= n_samples:
        return np.arange(n_samples), y
    index = np.sort(rng.choice(n_samples, size=n_labelled, replace=False))
    return index, y[index]


def label_matrix(y) -> np.ndarray:
    """Float (n, c) indicator matrix: one-hot of the classes present, or the multi-hot rows."""
    if y.ndim == 2:
        return y.astype(np.float64)
    classes, codes = np.unique(y, return_inverse=True)
    onehot = np.zeros((y.shape[0], classes.size))
    onehot[np.arange(y.shape[0]), codes] = 1.0
    return onehot
