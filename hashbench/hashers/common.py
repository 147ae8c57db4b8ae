"""What the classic hashers share: one BLAS thread, and the labelled subset supervised ones learn from.

The paper's baselines learn from a few thousand labelled training images (KSH's authors use
l = 2,000), so supervised hashers take ``n_labelled`` and draw that many training images with
their seed; the rest of the training set stays unlabelled.
"""

import numpy as np
from threadpoolctl import threadpool_limits

from ..labels import check_labels


def one_blas_thread():
    """Context in which BLAS/LAPACK run on one thread; the learned hashers train inside it.

    Their products are many and mid-sized (ITQ's 51 rotations, KSH's ~24,000 matrix-vector
    steps, 512 x 512 eigenproblems). On the shared 2-core machine, threaded OpenBLAS spent far
    longer synchronising than computing: a 512 x 512 generalised eigh took 4.0 s on two
    threads against 0.04 s on one, a 50,000 x 512 covariance 1.07 s against 0.27 s. One
    thread per fit is also what a grid of fits run in parallel wants.
    """
    return threadpool_limits(1, user_api="blas")


def labelled_subset(y, n_samples: int, n_labelled: int | None, rng: np.random.Generator):
    """(sorted indices, their labels) of the labelled training images.

    ``y`` holds labels for all ``n_samples`` training images. ``n_labelled=None`` takes them
    all; a value above ``n_samples`` also takes them all (documented rule: a small training
    set is used whole rather than refused). Otherwise ``n_labelled`` distinct images are drawn
    uniformly with ``rng``.
    """
    y = check_labels(y, n_samples, "y")
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
