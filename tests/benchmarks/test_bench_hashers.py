"""Speed of the classic hashers at the paper's CIFAR-10 sizes (issue 4 goals, this machine):
KSH training at 48 bits with l = 2,000 labelled images and m = 300 anchors on a 50,000 x 512
training set (goal <= 30 s), KSH encoding 60,000 x 512 features (<= 5 s), CCA-ITQ training on
50,000 x 512 (<= 10 s); LSH and ITQ alongside for scale.

Features are GIST-like 512-D vectors (non-negative, ten classes): CIFAR-10 pixels through a
fixed random projection when $HASHBENCH_DATA has CIFAR-10, synthetic ones otherwise (the
group name says which). KSH's time depends on the data through the number of refinement
iterations, and real images take more of them than synthetic clusters.
"""

import os
from pathlib import Path

import numpy as np
import pytest

from hashbench.hashers import get_hasher

pytestmark = pytest.mark.bench

N_TRAIN, N_ALL, DIM, BITS = 50_000, 60_000, 512, 48


@pytest.fixture(scope="module")
def features():
    """(name, X (60,000 x 512) float32, labels): the first 50,000 rows are the training set."""
    root = os.environ.get("HASHBENCH_DATA")
    if root and (Path(root) / "cifar-10-batches-bin").is_dir():
        from hashbench.datasets import load_dataset

        ds = load_dataset("cifar10", root)
        proj = np.random.default_rng(0).standard_normal((3072, DIM)).astype(np.float32)
        X = np.abs(ds.images.reshape(len(ds.images), -1).astype(np.float32) @ proj) / 1e4
        return "cifar10-projected", X, ds.labels
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, N_ALL)
    X = np.abs(0.05 * rng.standard_normal((N_ALL, DIM)) + 0.03 * rng.standard_normal((10, DIM))[y] + 0.1)
    return "synthetic", X.astype(np.float32), y


def _once(benchmark, fn):
    """Run fn once, timed: each of these takes seconds, so one round says enough."""
    return benchmark.pedantic(fn, rounds=1, iterations=1)


def test_ksh_train(benchmark, features):
    name, X, y = features
    benchmark.group = f"train 48 bits, {name} 50,000 x 512"
    ksh = _once(benchmark, lambda: get_hasher("ksh", n_bits=BITS, seed=0).fit(X[:N_TRAIN], y[:N_TRAIN]))
    assert ksh.coefficients_.shape == (300, BITS) and ksh.labelled_index_.size == 2000


def test_cca_itq_train(benchmark, features):
    name, X, y = features
    benchmark.group = f"train 48 bits, {name} 50,000 x 512"
    cca = _once(benchmark, lambda: get_hasher("cca-itq", n_bits=BITS, seed=0).fit(X[:N_TRAIN], y[:N_TRAIN]))
    assert cca.components_.shape == (DIM, BITS)


def test_itq_train(benchmark, features):
    name, X, _ = features
    benchmark.group = f"train 48 bits, {name} 50,000 x 512"
    _once(benchmark, lambda: get_hasher("itq", n_bits=BITS, seed=0).fit(X[:N_TRAIN]))


def test_ksh_encode(benchmark, features):
    """Encoding cost depends on m, d and the bits only, so a quickly trained KSH (l = 500)
    encodes exactly as fast as the l = 2,000 one."""
    name, X, y = features
    benchmark.group = f"encode 48 bits, {name} 60,000 x 512"
    ksh = get_hasher("ksh", n_bits=BITS, seed=0, n_labelled=500).fit(X[:N_TRAIN], y[:N_TRAIN])
    codes = benchmark.pedantic(ksh.encode, args=(X,), rounds=3, iterations=1)
    assert codes.shape == (N_ALL, 1)


def test_lsh_encode(benchmark, features):
    name, X, _ = features
    benchmark.group = f"encode 48 bits, {name} 60,000 x 512"
    lsh = get_hasher("lsh", n_bits=BITS, seed=0).fit(X[:N_TRAIN])
    benchmark.pedantic(lsh.encode, args=(X,), rounds=3, iterations=1)
