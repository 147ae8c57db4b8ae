"""KSH: Supervised Hashing with Kernels (Liu, Wang, Ji, Jiang, Chang, CVPR 2012), as the
authors' MATLAB release does it (``KSH_demo.m``, ``OptProjectionFast.m``).

- m anchors drawn from the training set; kernel k(x, a) = exp(-||x - a||^2 / (2 sigma)) with
  sigma the mean squared distance from the training images to the anchors; kernel columns are
  centred with the training mean; sigma and that mean are reused to encode new data.
- l labelled training images; S = k * S0 (k = n_bits), S0_ij = +1 when i and j share a label,
  -1 otherwise (multi-label: at least one shared label).
- Bits are learned greedily on the residual S <- S - y y^T. Each bit: the top generalised
  eigenvector of (K^T S K, K^T K), scaled so a^T K^T K a = l (the spectral start); then
  Nesterov gradient descent with backtracking on -phi(K a)^T S phi(K a), phi(x) =
  2 / (1 + exp(-x)) - 1, at most 500 iterations, stopping when the cost changes by at most
  1e-2 * l; the refined vector is kept only when it raises the discrete y^T S y.
- Code bit j = sign(k(x) a_j).

Deliberate deviations, none of which changes the result: anchors and labelled images are drawn
with the seed (the demo loads fixed index files); S is never formed as an l x l matrix when
labels are class ids (S v = k (2 Y Y^T v - 1 1^T v) - B B^T v with Y one-hot, B the bits so
far), the probe and trial points reuse K a by linearity instead of new products, and a
projection of exactly 0 gives bit +1 (the demo's ``> 0`` gives -1; hashbench's one sign rule).
"""

from typing import ClassVar

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..codes import sign
from ..errors import InputError
from ..labels import relevance_matrix
from ..params import Interval
from ..progress import progress
from .base import Hasher, register
from .common import label_matrix, labelled_subset, one_blas_thread
from .itq import top_eigenvectors

_MAX_ITER = 500
_TOLERANCE = 1e-2
_MAX_BACKTRACK = 50
_MAX_DENSE = 10_000  # multi-hot labels: the l x l pair matrix is stored (800 MB at this size)


def squared_distances(X, anchors) -> np.ndarray:
    """(n, m) squared Euclidean distances, clipped at 0 against rounding."""
    d2 = (X**2).sum(axis=1)[:, None] - 2.0 * (X @ anchors.T) + (anchors**2).sum(axis=1)[None, :]
    return np.maximum(d2, 0.0, out=d2)


def _phi(x):
    """2 / (1 + exp(-x)) - 1 = tanh(x / 2), computed without overflow."""
    return np.tanh(0.5 * x)


class PairMatrix:
    """The residual pair matrix S = k (2 R - 1 1^T) - sum_j y_j y_j^T of the labelled images,
    R the 0/1 relevance matrix, kept as F diag(w) F^T (+ a dense part for multi-hot labels).

    With class ids R = Y Y^T (Y one-hot), so F = [Y, 1, y_1, y_2, ...] with weights
    [2k, ..., -k, -1, -1, ...] and S is never formed; multi-hot relevance has no such
    factorisation, so k (2 R - 1 1^T) is stored densely and F holds only the bits."""

    def __init__(self, y, n_bits: int):
        k = float(n_bits)
        if y.ndim == 1:
            onehot = label_matrix(y)
            first = np.column_stack([onehot, np.ones(y.shape[0])])
            weights = np.r_[np.full(onehot.shape[1], 2.0 * k), -k]
            self.dense = None
        else:
            first, weights = np.zeros((y.shape[0], 0)), np.zeros(0)
            self.dense = k * (2.0 * relevance_matrix(y, y) - 1.0)
        self.factor = np.zeros((y.shape[0], first.shape[1] + n_bits))
        self.factor[:, : first.shape[1]] = first
        self.weights = np.r_[weights, np.full(n_bits, -1.0)]
        self.used = first.shape[1]

    def __matmul__(self, V):
        F = self.factor[:, : self.used]
        out = F @ ((F.T @ V).T * self.weights[: self.used]).T
        return out if self.dense is None else out + self.dense @ V

    def subtract(self, y):
        """S <- S - y y^T."""
        self.factor[:, self.used] = y
        self.used += 1

    def objective(self, y) -> float:
        return float(y @ (self @ y))


def refine(K, S: PairMatrix, a0):
    """Minimise -phi(K a)^T S phi(K a) from a0 by Nesterov's method with backtracking on the
    Lipschitz estimate, as ``OptProjectionFast.m``; returns the last accepted a."""
    n = K.shape[0]
    a_prev = a = a0
    Ka_prev = Ka = K @ a0
    p = _phi(Ka)
    cost = -p @ (S @ p)
    delta_prev, delta, beta = 0.0, 1.0, 1.0
    for _ in range(_MAX_ITER):
        alpha = (delta_prev - 1.0) / delta
        v = a + alpha * (a - a_prev)
        Kv = Ka + alpha * (Ka - Ka_prev)
        p = _phi(Kv)
        Sp = S @ p
        cost_v = -p @ Sp
        grad = -(K.T @ (Sp * (1.0 - p**2)))
        Kgrad = K @ grad
        half_norm = 0.5 * (grad @ grad)
        for j in range(_MAX_BACKTRACK + 1):
            b = beta * 2.0**j
            Kz = Kv - Kgrad / b
            p = _phi(Kz)
            cost_z = -p @ (S @ p)
            if cost_z <= cost_v - half_norm / b:  # the quadratic upper bound at z = v - grad / b
                break
        else:
            return a
        beta = b
        a_prev, Ka_prev = a, Ka
        a, Ka = v - grad / b, Kz
        delta_prev, delta = delta, (1.0 + np.sqrt(1.0 + 4.0 * delta**2)) / 2.0
        converged = abs(cost_z - cost) / n <= _TOLERANCE
        cost = cost_z
        if converged:
            break
    return a


def _signs(x):
    return sign(x).astype(np.float64)


@register("ksh")
class KSH(Hasher):
    """Kernel-based supervised hashing; ``y`` is (n,) class ids or (n, c) multi-hot labels.

    All of X serves the kernel statistics; the pair loss uses the labelled subset.

    Parameters
    ----------
    n_bits : int, default 48
        Code length (bits are learned one after the other).
    seed : int, default 0
        Seed of the anchors and of the labelled subset.
    n_labelled : int or None, default 2000
        Labelled training images drawn with the seed (2,000: the authors' demo; the paper
        also reports 1,000; None: all; a smaller training set is used whole). At least
        ``n_anchors``, so that K^T K is invertible, and at most 10,000 with multi-hot labels,
        whose pair matrix is stored densely.
    n_anchors : int, default 300
        Kernel anchors m drawn from the training set.

    Attributes
    ----------
    anchors_ : ndarray of shape (m, d)
    sigma_ : float
        Kernel width: mean squared distance from the training images to the anchors.
    kernel_mean_ : ndarray of shape (m,)
        Training mean of the kernel columns.
    coefficients_ : ndarray of shape (m, n_bits)
    labelled_index_ : ndarray
        Rows of X whose labels it learned from.
    objective_history_ : ndarray of shape (n_bits, 2)
        y^T S y of each bit on its residual S at the spectral start and as kept.
    refined_ : ndarray of shape (n_bits,), bool
        Whether the gradient refinement was kept.

    References
    ----------
    W. Liu, J. Wang, R. Ji, Y.-G. Jiang and S.-F. Chang, "Supervised hashing with kernels",
    CVPR 2012; the authors' ``KSH_demo.m`` and ``OptProjectionFast.m``.
    """

    label = "KSH"
    supervised = True
    uses_labelled_subset = True
    _parameter_constraints: ClassVar[dict] = {"n_anchors": [Interval(int, 1, None)]}
    fast_params: ClassVar[dict] = {"n_bits": 8, "n_anchors": 20}

    def __init__(self, n_bits: int = 48, seed: int = 0, n_labelled: int = 2000, n_anchors: int = 300):
        self.n_bits = n_bits
        self.seed = seed
        self.n_labelled = n_labelled
        self.n_anchors = n_anchors

    def _fit(self, X, y):
        with one_blas_thread():
            self._learn(X, y)

    def _learn(self, X, y):
        n_bits, m = self.n_bits, self.n_anchors
        rng = np.random.default_rng(self.seed)
        if X.shape[0] < m:
            raise InputError(f"X: {X.shape[0]} training samples are fewer than n_anchors={m}")
        self.labelled_index_, y = labelled_subset(y, X.shape[0], self.n_labelled, rng)
        l = self.labelled_index_.size
        if l < m:
            raise InputError(f"n_labelled: {l} labelled samples are fewer than n_anchors={m}")
        if y.ndim == 2 and l > _MAX_DENSE:
            raise InputError(
                f"n_labelled: {l} multi-label samples need a dense {l} x {l} pair matrix; use at most {_MAX_DENSE}"
            )
        self.anchors_ = X[np.sort(rng.choice(X.shape[0], size=m, replace=False))]
        d2 = squared_distances(X, self.anchors_)
        self.sigma_ = float(d2.mean())
        kernel = np.exp(-d2 / (2.0 * self.sigma_))
        self.kernel_mean_ = kernel.mean(axis=0)
        K = kernel[self.labelled_index_] - self.kernel_mean_
        self._learn_bits(K, PairMatrix(y, n_bits), n_bits)

    def _learn_bits(self, K, S: PairMatrix, n_bits: int):
        """Greedy bit-by-bit learning on the labelled kernel rows K (l x m)."""
        l, m = K.shape
        gram = K.T @ K
        try:
            np.linalg.cholesky(gram)
        except np.linalg.LinAlgError:
            raise InputError(
                "X: the anchors' kernel columns are linearly dependent on the labelled samples "
                "(duplicate samples?); use fewer anchors or more labelled samples"
            ) from None
        self.coefficients_ = np.zeros((m, n_bits))
        self.objective_history_ = np.zeros((n_bits, 2))
        self.refined_ = np.zeros(n_bits, dtype=bool)
        with progress(n_bits, "ksh bits", unit="bit", leave=False) as bar:
            for j in range(n_bits):
                self._learn_bit(j, K, S, gram, l)
                bar.update(1)

    def _learn_bit(self, j: int, K, S: PairMatrix, gram, l: int) -> None:
        """Bit j: spectral start, gradient refinement, kept when it raises y^T S y."""
        _, a = top_eigenvectors(K.T @ (S @ K), 1, gram)
        a = a[:, 0] * np.sqrt(l / (a[:, 0] @ gram @ a[:, 0]))
        y = _signs(K @ a)
        spectral = S.objective(y)
        a_refined = refine(K, S, a)
        y_refined = _signs(K @ a_refined)
        refined = S.objective(y_refined)
        if refined > spectral:
            a, y, self.refined_[j] = a_refined, y_refined, True
        self.objective_history_[j] = spectral, max(spectral, refined)
        self.coefficients_[:, j] = a
        S.subtract(y)

    def kernel(self, X) -> np.ndarray:
        """Centred kernel features k(x) of new data (n, m), with the training sigma and mean."""
        check_is_fitted(self)
        return self._kernel(self._check_input(X, reset=False))

    def _kernel(self, X) -> np.ndarray:
        return np.exp(-squared_distances(X, self.anchors_) / (2.0 * self.sigma_)) - self.kernel_mean_

    def _project(self, X) -> np.ndarray:
        return self._kernel(X) @ self.coefficients_
