"""LSH: random hyperplanes through the data mean (Charikar, STOC 2002), the data-independent
baseline of every hashing paper.

As hashing papers use it: centre the data with the training mean, draw W ~ N(0, 1)^(d x k),
bit j = [(x - mean) w_j >= 0] (0 -> 1, hashbench's one sign rule; ties have probability 0).
For two vectors at angle theta (after centring) a bit collides with probability
1 - theta / pi.
"""

import numpy as np

from .base import Hasher, register


@register("lsh")
class LSH(Hasher):
    """Sign random projections of centred features; ``y`` is ignored.

    Parameters
    ----------
    n_bits : int, default 48
        Code length.
    seed : int, default 0
        Seed of the Gaussian projections.

    Attributes
    ----------
    mean_ : ndarray of shape (d,)
        Training mean the features are centred with.
    projections_ : ndarray of shape (d, n_bits)
        Gaussian hyperplane normals, one per bit.

    References
    ----------
    M. S. Charikar, "Similarity estimation techniques from rounding algorithms", STOC 2002.
    """

    label = "LSH"

    def __init__(self, n_bits: int = 48, seed: int = 0):
        self.n_bits = n_bits
        self.seed = seed

    def _fit(self, X, y):
        rng = np.random.default_rng(self.seed)
        self.mean_ = X.mean(axis=0)
        self.projections_ = rng.standard_normal((X.shape[1], self.n_bits))

    def _project(self, X) -> np.ndarray:
        return (X - self.mean_) @ self.projections_
