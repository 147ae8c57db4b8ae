"""PCA-RR: PCA followed by a random orthogonal rotation (the "PCA-RR" baseline of Gong &
Lazebnik, "Iterative Quantization", CVPR 2011, Section 3 / Figure 3; the rotation idea is
Jegou, Douze, Schmid & Perez, "Aggregating local descriptors into a compact image
representation", CVPR 2010, Section 4.2).

Centre the training features, project on the top ``n_bits`` principal directions W, then
rotate by a Haar-random orthogonal R drawn with the seed: bit j = sign(((x - mean) W R)_j).
PCA puts most variance in the first few directions, so plain PCA hashing spends its later
bits on directions with little spread; a random rotation spreads the variance over all bits.
ITQ (hashbench's ``itq``) starts from this R and then learns it; PCA-RR stops here.

This package is hashbench's worked example of a plugin: see its README.
"""

from typing import ClassVar

import numpy as np

from hashbench.errors import InputError
from hashbench.hashers import Hasher
from hashbench.params import BOOL

__all__ = ["PCARR"]


class PCARR(Hasher):
    """PCA then a seeded random rotation; ``y`` is ignored.

    ``center=False`` skips subtracting the training mean (for features centred already).

    Learned: ``mean_`` (d,), ``components_`` (d, n_bits) principal directions (largest
    variance first), ``rotation_`` (n_bits, n_bits) orthogonal.
    """

    label = "PCA-RR"
    # n_bits and seed are checked by the base class; our one extra parameter:
    _parameter_constraints: ClassVar[dict] = {"center": [BOOL]}
    fast_params: ClassVar[dict] = {"n_bits": 8}

    def __init__(self, n_bits: int = 48, seed: int = 0, center: bool = True):
        self.n_bits = n_bits
        self.seed = seed
        self.center = center

    def _fit(self, X, y):
        n, d = X.shape
        if self.n_bits > d:
            raise InputError(f"n_bits={self.n_bits} exceeds the feature dimension {d}; use at most {d} bits")
        self.mean_ = X.mean(axis=0) if self.center else np.zeros(d)
        Xc = X - self.mean_
        _, vectors = np.linalg.eigh(Xc.T @ Xc / max(n - 1, 1))
        top = vectors[:, ::-1][:, : self.n_bits]
        # eigenvector signs are arbitrary; fix them (largest entry positive) so a seed gives one answer
        self.components_ = top * np.where(top[np.abs(top).argmax(axis=0), np.arange(self.n_bits)] < 0, -1.0, 1.0)
        rng = np.random.default_rng(self.seed)
        q, r = np.linalg.qr(rng.standard_normal((self.n_bits, self.n_bits)))
        self.rotation_ = q * np.where(np.diag(r) < 0, -1.0, 1.0)  # Haar-distributed (Mezzadri 2007)

    def _project(self, X):
        return (X - self.mean_) @ self.components_ @ self.rotation_
