"""LSH: random hyperplanes through the data mean (Charikar, STOC 2002), the data-independent
baseline of every hashing paper.

As hashing papers use it: centre the data with the training mean, draw W ~ N(0, 1)^(d x k),
bit j = [(x - mean) w_j >= 0] (0 -> 1, hashbench's one sign rule; ties have probability 0).
For two vectors at angle theta (after centring) a bit collides with probability
1 - theta / pi.
"""

import numpy as np

from .base import Hasher, check_features, check_n_bits, register
from .common import check_int, check_new_features


@register("lsh")
class LSH(Hasher):
    """Sign random projections of centred features; ``y`` is ignored.

    Learned: ``mean_`` (d,), ``projections_`` (d, n_bits) Gaussian.
    """

    def __init__(self, n_bits: int = 48, seed: int = 0):
        self.n_bits = n_bits
        self.seed = seed

    def fit(self, X, y=None):
        n_bits = check_n_bits(self.n_bits)
        rng = np.random.default_rng(check_int(self.seed, "seed"))
        X = check_features(X)
        self.mean_ = X.mean(axis=0)
        self.projections_ = rng.standard_normal((X.shape[1], n_bits))
        return self

    def project(self, X) -> np.ndarray:
        X = check_new_features(self, X, self.mean_.shape[0])
        return (X - self.mean_) @ self.projections_
