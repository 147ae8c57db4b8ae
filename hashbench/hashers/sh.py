"""SH: Spectral Hashing (Weiss, Torralba, Fergus, NIPS 2008), as the authors' MATLAB release
does it (``trainSH.m``, ``compressSH.m``).

Training (``trainSH.m``):

1. PCA: the top ``npca = min(n_bits, d)`` eigenvectors of ``cov(X)``; the data are projected
   WITHOUT centring (the release: "no need to remove the mean"; the box below absorbs it).
2. A uniform distribution (a box) per direction: ``mn = min - eps``, ``mx = max + eps``
   over the training projections (the release computes the 5th/95th percentiles first and
   overwrites them with these; eps is MATLAB's, 2.2e-16), range ``R = mx - mn``.
3. The analytic eigenfunctions of the box's Laplacian (paper eq. 6-7): one-dimensional modes
   ``m = 1 .. ceil((n_bits + 1) R_i / max R) - 1`` along each direction i, angular
   frequency ``omega = m pi / R_i``, eigenvalue order ``omega^2``. Modes are listed direction
   by direction, the constant mode first, sorted by ``omega^2`` ascending with MATLAB's
   stable ``sort`` (ties keep list order); the constant mode is dropped and the next
   ``n_bits`` kept. Only one-dimensional modes are enumerated (as in the release; the paper's
   outer-product eigenfunctions are never used).

Encoding (``compressSH.m``): ``u_j(x) = prod_i sin(pi/2 + omega_ji (x pc_i - mn_i))`` (a
cosine; along every direction but the mode's own, omega = 0 and the factor is 1), bit j =
``u_j > 0``: the mode-m eigenfunction thresholds direction i at ``mn_i + R_i (2t + 1)/(2m)``.

Deviations, none of which changes a code but at measure-zero ties: eigenvector signs are
fixed (largest entry positive; ``eigs`` leaves them to the solver), and ``u_j = 0`` gives
bit 1 (hashbench's one sign rule; the release's ``U > 0`` gives 0). ``project`` returns the
eigenfunction values ``u`` (the release's second output ``U``).
"""

import numpy as np

from .base import Hasher, register
from .common import one_blas_thread
from .itq import top_eigenvectors

MATLAB_EPS = float(np.finfo(np.float64).eps)


def spectral_modes(R, n_bits: int) -> np.ndarray:
    """(n_bits, npca) integer modes of the smallest eigenvalues for a box of ranges R
    (``trainSH.m`` step 3): one non-zero entry per row, in eigenvalue order."""
    R = np.asarray(R, dtype=np.float64)
    npca = R.size
    max_mode = np.ceil((n_bits + 1) * R / R.max()).astype(int)
    rows = [np.zeros(npca, dtype=int)]  # the constant mode, listed first
    for i in range(npca):
        for m in range(1, max_mode[i]):
            row = np.zeros(npca, dtype=int)
            row[i] = m
            rows.append(row)
    modes = np.array(rows)
    eigenvalues = ((modes * (np.pi / R)) ** 2).sum(axis=1)
    order = np.argsort(eigenvalues, kind="stable")
    return modes[order[1 : n_bits + 1]]


def eigenfunctions(P, mn, R, modes) -> np.ndarray:
    """(n, n_bits) values of the box eigenfunctions at projected points P (``compressSH.m``)."""
    omegas = modes * (np.pi / R)
    shifted = P - mn
    return np.stack([np.prod(np.sin(shifted * w + np.pi / 2), axis=1) for w in omegas], axis=1)


@register("sh")
class SH(Hasher):
    """Spectral hashing; ``y`` is ignored.

    Parameters
    ----------
    n_bits : int, default 48
        Code length.
    seed : int, default 0
        Changes nothing (SH is deterministic); every method takes one.

    Attributes
    ----------
    components_ : ndarray of shape (d, npca)
        Principal directions, ``npca = min(n_bits, d)``.
    mn_, mx_ : ndarray of shape (npca,)
        The box of the training projections.
    modes_ : ndarray of shape (n_bits, npca)
        Integer modes.

    References
    ----------
    Y. Weiss, A. Torralba and R. Fergus, "Spectral hashing", NIPS 2008; the authors'
    ``trainSH.m`` and ``compressSH.m``.
    """

    label = "SH"

    def __init__(self, n_bits: int = 48, seed: int = 0):
        self.n_bits = n_bits
        self.seed = seed

    def _fit(self, X, y):
        with one_blas_thread():
            npca = min(self.n_bits, X.shape[1])
            _, self.components_ = top_eigenvectors(np.cov(X, rowvar=False).reshape(X.shape[1], -1), npca)
            P = X @ self.components_
            self.mn_ = P.min(axis=0) - MATLAB_EPS
            self.mx_ = P.max(axis=0) + MATLAB_EPS
            self.modes_ = spectral_modes(self.mx_ - self.mn_, self.n_bits)

    def _project(self, X) -> np.ndarray:
        return eigenfunctions(X @ self.components_, self.mn_, self.mx_ - self.mn_, self.modes_)
