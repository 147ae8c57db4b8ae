"""PCAH: the signs of the top principal components, the baseline of every hashing paper
(Wang, Kumar, Chang, CVPR 2010 and TPAMI 2012 name it; the ITQ release computes it as its
"PCA-direct" step, ``compressITQ.m``: centre, ``[pc, l] = eigs(cov(X), bit)``, ``X * pc > 0``).

Bits follow the principal directions in order of decreasing variance; the code has no
rotation, so the high-variance bits carry most of the distance (which is what ITQ's rotation
is there to fix). Bit lengths as ITQ: at most the feature dimension and at most the number of
directions of non-zero variance (refused otherwise; ``eigs`` would return zero-variance
directions without a word). Deviations, as ITQ: eigenvector signs fixed (largest entry
positive) and a projection of exactly 0 gives bit 1 (the release's ``> 0`` gives 0).
"""

import numpy as np

from ..errors import InputError
from .base import Hasher, register
from .common import one_blas_thread
from .itq import _ZERO_VARIANCE, _centred, top_eigenvectors


def principal_directions(X, n_bits: int):
    """(mean, (d, n_bits) top principal directions, their variances) of the training
    features; n_bits beyond the dimension or the directions of non-zero variance is refused."""
    _, mean, cov = _centred(X, n_bits)
    variances, components = top_eigenvectors(cov, n_bits)
    rank = int((variances > _ZERO_VARIANCE * max(variances[0], 0.0)).sum())
    if rank < n_bits:
        raise InputError(
            f"n_bits={n_bits} exceeds the {rank} directions of non-zero variance in the training features "
            f"(of {cov.shape[0]} dimensions); use at most {rank} bits"
        )
    return mean, components, variances


@register("pcah")
class PCAH(Hasher):
    """Signs of the centred features' top ``n_bits`` principal components; ``y`` is ignored.

    Parameters
    ----------
    n_bits : int, default 48
        Code length; at most the number of directions of non-zero variance.
    seed : int, default 0
        Changes nothing (PCA is deterministic); every method takes one.

    Attributes
    ----------
    mean_ : ndarray of shape (d,)
    components_ : ndarray of shape (d, n_bits)
        Principal directions.
    variances_ : ndarray of shape (n_bits,)
        Variance along each direction (descending).

    References
    ----------
    J. Wang, S. Kumar and S.-F. Chang, "Semi-supervised hashing for scalable image
    retrieval", CVPR 2010; the ITQ release's PCA-direct step (``compressITQ.m``).
    """

    label = "PCAH"

    def __init__(self, n_bits: int = 48, seed: int = 0):
        self.n_bits = n_bits
        self.seed = seed

    def _fit(self, X, y):
        with one_blas_thread():
            self.mean_, self.components_, self.variances_ = principal_directions(X, self.n_bits)

    def _project(self, X) -> np.ndarray:
        return (X - self.mean_) @ self.components_
