"""ITQ and CCA-ITQ (Gong & Lazebnik, CVPR 2011; Gong, Lazebnik, Gordo & Perronnin, TPAMI
2013), as the authors' MATLAB release does them (``compressITQ.m``, ``ITQ.m``).

ITQ: centre, project on the top-k principal directions V, start from a random orthogonal R,
then alternate B = sign(V R) (0 -> +1) and the orthogonal Procrustes step (SVD of
B^T V = U S W^T, R = W U^T); both steps lower the quantisation loss ||B - V R||_F^2. As in
``ITQ.m`` (``for iter = 0:n_iter``) there are ``n_iter + 1`` Procrustes steps.

CCA-ITQ (the TPAMI paper's supervised variant): CCA between the centred features and the
label indicator matrix (one-hot, or multi-hot), both covariances regularised by ``reg * I``
(1e-4, the authors' value); the top-k directions w (normalised by w^T (Cxx + reg I) w = 1)
scaled by their canonical correlations, then ITQ on X W.

Bit lengths: n_bits may not exceed the feature dimension (refused: the release's PCA,
``C = cov(X); [pc, l] = eigs(C, bit);`` in ``compressITQ.m``, cannot return more
eigenvectors than C has). PCA-ITQ also refuses more bits than the training features have
directions of non-zero variance (eigenvalues above 1e-10 of the largest): ``eigs`` would
return zero-variance directions without a word, and every point projects to rounding noise
on them. This is a deliberate deviation, a refusal where the release is silent. For CCA-ITQ,
directions beyond the rank of the labels carry no signal: a canonical direction with correlation below 1e-6 (with c
classes at most c - 1 are informative, c with multi-hot labels) is scaled to exactly zero,
and the ITQ rotation then spreads the informative directions over all n_bits (some bits may
then split the classes alike). The authors' code does the same up to rounding (its extra
correlations are numerical zeros), and it is the only reading under which the DSH paper's
CCA-ITQ results at 24 to 48 bits on 10 classes exist.

Deliberate deviations: the random start is the Q factor of a QR of a Gaussian matrix with a
sign fix (Haar-distributed like ``ITQ.m``'s SVD start, but reproducible across LAPACKs), and
eigenvector signs are fixed (largest entry positive) for the same reason. The widely
circulated ``cca.m`` (M. Borga) that such code calls normalises each eigenvector of
Cxx^-1 Cxy Cyy^-1 Cyx to unit Euclidean length; we could not check which routine the release
uses and normalise by the CCA constraint above instead, which changes each direction's
length before the correlation scaling.
"""

from typing import ClassVar

import numpy as np
from scipy.linalg import eigh

from ..codes import sign
from ..errors import InputError
from ..params import Interval
from .base import Hasher, register
from .common import label_matrix, labelled_subset, one_blas_thread

_ZERO_CORRELATION = 1e-6
_ZERO_VARIANCE = 1e-10  # relative to the largest: digits pixels fall from 2e-6 to 2e-16 past their rank


def top_eigenvectors(A, k: int, B=None):
    """(values, vectors) of the k largest eigenpairs of symmetric A (generalised: A w = l B w,
    vectors B-orthonormal), in descending order, each vector signed so its largest entry is > 0."""
    d = A.shape[0]
    values, vectors = eigh(A, B, subset_by_index=[d - k, d - 1])
    values, vectors = values[::-1], vectors[:, ::-1]
    largest = vectors[np.abs(vectors).argmax(axis=0), np.arange(k)]
    return values, vectors * np.where(largest < 0, -1.0, 1.0)


def random_rotation(k: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random k x k orthogonal matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((k, k)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def quantisation_loss(Z) -> float:
    """||sign(Z) - Z||_F^2 for Z = V R: the ITQ loss with B at its optimum for R."""
    return float(((np.abs(Z) - 1.0) ** 2).sum())


def itq_rotation(V, n_iter: int, rng: np.random.Generator):
    """(R, losses): ITQ's rotation of V after n_iter + 1 Procrustes steps, and the loss at the
    start and after each step (n_iter + 2 values, never increasing)."""
    R = random_rotation(V.shape[1], rng)
    Z = V @ R
    losses = [quantisation_loss(Z)]
    for _ in range(n_iter + 1):
        U, _, Wt = np.linalg.svd(sign(Z).T @ V)
        R = Wt.T @ U.T
        Z = V @ R
        losses.append(quantisation_loss(Z))
    return R, np.array(losses)


def _centred(X, n_bits: int):
    """(X - mean, mean, covariance) with n_bits checked against the data's shape."""
    n, d = X.shape
    if n_bits > d:
        raise InputError(f"n_bits={n_bits} exceeds the feature dimension {d}; use at most {d} bits")
    mean = X.mean(axis=0)
    Xc = X - mean
    return Xc, mean, (Xc.T @ Xc) / (n - 1)


@register("itq")
class ITQ(Hasher):
    """PCA-ITQ; ``y`` is ignored.

    Parameters
    ----------
    n_bits : int, default 48
        Code length; at most the number of directions of non-zero variance.
    seed : int, default 0
        Seed of the random orthogonal start.
    n_iter : int, default 50
        ``ITQ.m``'s ``n_iter``: ``n_iter + 1`` Procrustes steps.

    Attributes
    ----------
    mean_ : ndarray of shape (d,)
        Training mean.
    components_ : ndarray of shape (d, n_bits)
        Principal directions.
    rotation_ : ndarray of shape (n_bits, n_bits)
        The learned orthogonal rotation.
    loss_history_ : ndarray of shape (n_iter + 2,)
        Quantisation loss at the random start and after each Procrustes step.

    References
    ----------
    Y. Gong and S. Lazebnik, "Iterative quantization: a Procrustean approach to learning
    binary codes", CVPR 2011; the authors' ``compressITQ.m`` and ``ITQ.m``.
    """

    label = "ITQ"
    _parameter_constraints: ClassVar[dict] = {"n_iter": [Interval(int, 0, None)]}

    def __init__(self, n_bits: int = 48, seed: int = 0, n_iter: int = 50):
        self.n_bits = n_bits
        self.seed = seed
        self.n_iter = n_iter

    def _fit(self, X, y):
        with one_blas_thread():
            self._learn(X, y)

    def _learn(self, X, y):
        rng = np.random.default_rng(self.seed)
        Xc, self.mean_, cov = _centred(X, self.n_bits)
        variances, self.components_ = top_eigenvectors(cov, self.n_bits)
        rank = int((variances > _ZERO_VARIANCE * max(variances[0], 0.0)).sum())
        if rank < self.n_bits:
            raise InputError(
                f"n_bits={self.n_bits} exceeds the {rank} directions of non-zero variance in the training features "
                f"(of {cov.shape[0]} dimensions); PCA-ITQ would fill bits from zero-variance directions: "
                f"use at most {rank} bits"
            )
        self.rotation_, self.loss_history_ = itq_rotation(Xc @ self.components_, self.n_iter, rng)

    def _project(self, X) -> np.ndarray:
        return (X - self.mean_) @ self.components_ @ self.rotation_


@register("cca-itq")
class CCAITQ(ITQ):
    """CCA-ITQ; ``y`` is (n,) class ids or (n, c) multi-hot labels.

    Parameters
    ----------
    n_bits : int, default 48
        Code length; at most the feature dimension.
    seed : int, default 0
        Seed of the labelled subset and of the random orthogonal start.
    n_labelled : int or None, default None
        Training images drawn with the seed to learn from, features and labels alike
        (None: all).
    reg : float, default 1e-4
        Ridge ``reg * I`` on both covariances (the authors' value).
    n_iter : int, default 50
        As :class:`ITQ`.

    Attributes
    ----------
    mean_, rotation_, loss_history_
        As :class:`ITQ`.
    components_ : ndarray of shape (d, n_bits)
        Canonical directions scaled by their correlations.
    correlations_ : ndarray of shape (n_bits,)
        Canonical correlations (0 past the informative ones).
    labelled_index_ : ndarray
        Rows of X it learned from.

    References
    ----------
    Y. Gong, S. Lazebnik, A. Gordo and F. Perronnin, "Iterative quantization: a Procrustean
    approach to learning binary codes for large-scale image retrieval", TPAMI 2013.
    """

    label = "CCA-ITQ"
    supervised = True
    uses_labelled_subset = True
    _parameter_constraints: ClassVar[dict] = {"reg": [Interval(float, 0, None, closed="neither")]}

    def __init__(self, n_bits: int = 48, seed: int = 0, n_labelled: int | None = None, reg: float = 1e-4,
                 n_iter: int = 50):
        self.n_bits = n_bits
        self.seed = seed
        self.n_labelled = n_labelled
        self.reg = reg
        self.n_iter = n_iter

    def _learn(self, X, y):
        n_bits = self.n_bits
        rng = np.random.default_rng(self.seed)
        self.labelled_index_, y = labelled_subset(y, X.shape[0], self.n_labelled, rng)
        Xc, self.mean_, cxx = _centred(X[self.labelled_index_], n_bits)
        Y = label_matrix(y)
        Yc = Y - Y.mean(axis=0)
        cxy = (Xc.T @ Yc) / (Xc.shape[0] - 1)
        cyy = (Yc.T @ Yc) / (Xc.shape[0] - 1) + self.reg * np.eye(Y.shape[1])
        cxx += self.reg * np.eye(X.shape[1])
        squared, directions = top_eigenvectors(cxy @ np.linalg.solve(cyy, cxy.T), n_bits, cxx)
        correlations = np.sqrt(np.clip(squared, 0.0, 1.0))
        self.correlations_ = np.where(correlations < _ZERO_CORRELATION, 0.0, correlations)
        self.components_ = directions * self.correlations_
        self.rotation_, self.loss_history_ = itq_rotation(Xc @ self.components_, self.n_iter, rng)
