"""KSH against slow references (explicit kernel, dense pair matrix, Cholesky-reduced
eigenproblem) and its defining properties (greedy objective per bit, refinement descent)."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from hashbench.errors import InputError
from hashbench.hashers import get_hasher
from hashbench.hashers.ksh import PairMatrix, refine

PARAMS = {"n_anchors": 40, "n_labelled": 300}


def labelled(n=800, d=20, c=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    return rng.standard_normal((n, d)) + 0.7 * rng.standard_normal((c, d))[y], y


def dense_pairs(y, n_bits):
    """k * S0 written out: +k for pairs sharing a label, -k otherwise."""
    l = len(y)
    S = np.empty((l, l))
    for i in range(l):
        for j in range(l):
            share = np.any(y[i] & y[j]) if y.ndim == 2 else y[i] == y[j]
            S[i, j] = n_bits if share else -n_bits
    return S


def test_kernel_matches_the_definition():
    X, y = labelled()
    ksh = get_hasher("ksh", n_bits=4, seed=0, **PARAMS).fit(X, y)
    d2 = cdist(X, ksh.anchors_, "sqeuclidean")
    assert ksh.sigma_ == pytest.approx(d2.mean(), rel=1e-12)
    raw = np.exp(-d2 / (2 * d2.mean()))
    np.testing.assert_allclose(ksh.kernel_mean_, raw.mean(0), rtol=1e-12)
    new = np.random.default_rng(1).standard_normal((30, 20))
    expected = np.exp(-cdist(new, ksh.anchors_, "sqeuclidean") / (2 * ksh.sigma_)) - ksh.kernel_mean_
    np.testing.assert_allclose(ksh.kernel(new), expected, atol=1e-12)
    # anchors are distinct training samples
    assert len({tuple(a) for a in ksh.anchors_}) == 40
    assert all(np.any(np.all(a == X, axis=1)) for a in ksh.anchors_)


@pytest.mark.parametrize("multi", [False, True])
def test_pair_matrix_is_the_residual_matrix(multi):
    rng = np.random.default_rng(0)
    y = rng.random((60, 6)) < 0.25 if multi else rng.integers(0, 4, 60)
    S = PairMatrix(y, 12)
    dense = dense_pairs(y, 12)
    V = rng.standard_normal((60, 3))
    np.testing.assert_allclose(S @ V, dense @ V, atol=1e-10)
    for _ in range(3):
        b = np.where(rng.random(60) < 0.5, 1.0, -1.0)
        S.subtract(b)
        dense -= np.outer(b, b)
    np.testing.assert_allclose(S @ V, dense @ V, atol=1e-10)
    np.testing.assert_allclose(S @ V[:, 0], dense @ V[:, 0], atol=1e-10)
    assert S.objective(V[:, 1]) == pytest.approx(V[:, 1] @ dense @ V[:, 1])


@pytest.mark.parametrize("multi", [False, True])
def test_each_bit_improves_or_keeps_its_spectral_start(multi):
    X, y = labelled()
    if multi:
        y = np.random.default_rng(3).random((800, 6)) < 0.3
        X = X + y @ np.random.default_rng(4).standard_normal((6, 20))
    n_bits = 12
    ksh = get_hasher("ksh", n_bits=n_bits, seed=0, **PARAMS).fit(X, y)
    spectral, kept = ksh.objective_history_.T
    assert np.all(kept >= spectral)
    assert np.all(ksh.refined_ == (kept > spectral))
    assert ksh.refined_.any()  # the gradient refinement does help (the point of KSH's step 2)
    # recompute y^T S y of every learned bit on its residual, from the codes, with a dense S
    idx = ksh.labelled_index_
    S = dense_pairs(y[idx], n_bits)
    codes = np.where(ksh.project(X[idx]) >= 0, 1.0, -1.0)
    for j in range(n_bits):
        assert codes[:, j] @ S @ codes[:, j] == pytest.approx(kept[j], rel=1e-12)
        S -= np.outer(codes[:, j], codes[:, j])


def test_spectral_start_is_the_top_generalised_eigenvector():
    X, y = labelled()
    ksh = get_hasher("ksh", n_bits=1, seed=0, **PARAMS).fit(X, y)
    K = ksh.kernel(X[ksh.labelled_index_])
    S = dense_pairs(y[ksh.labelled_index_], 1)
    # reduce (K^T S K) a = l (K^T K) a with the Cholesky factor, solve the symmetric problem
    L = np.linalg.cholesky(K.T @ K)
    Li = np.linalg.inv(L)
    _w, U = np.linalg.eigh(Li @ K.T @ S @ K @ Li.T)
    a = Li.T @ U[:, -1]
    b = np.where(K @ a >= 0, 1.0, -1.0)
    assert b @ S @ b == pytest.approx(ksh.objective_history_[0, 0], rel=1e-12)


def test_refinement_starts_from_the_scaled_spectral_vector(monkeypatch):
    """Each refinement starts at a with a^T K^T K a = l (the authors' scaling, which sets how
    far into the sigmoid's saturation the start lies)."""
    import hashbench.hashers.ksh as ksh_module

    starts = []
    real = ksh_module.refine

    def spy(K, S, a0):
        starts.append((K, a0))
        return real(K, S, a0)

    monkeypatch.setattr(ksh_module, "refine", spy)
    X, y = labelled()
    get_hasher("ksh", n_bits=3, seed=0, **PARAMS).fit(X, y)
    assert len(starts) == 3
    for K, a0 in starts:
        assert np.sum((K @ a0) ** 2) == pytest.approx(300, rel=1e-9)


def _smooth_cost(K, S, a):
    p = 2 / (1 + np.exp(-(K @ a))) - 1
    return -p @ (S @ p)


def test_refinement_descends_the_smooth_objective():
    rng = np.random.default_rng(0)
    K = rng.standard_normal((120, 15)) * 0.3
    y = rng.integers(0, 3, 120)
    S = PairMatrix(y, 8)
    a0 = rng.standard_normal(15)
    a = refine(K, S, a0)
    dense = dense_pairs(y, 8)
    assert _smooth_cost(K, dense, a) < _smooth_cost(K, dense, a0) - 1.0
    # a stationary point: the gradient -K^T[(S p)(1 - p^2)] has become small
    p = np.tanh(K @ a / 2)
    g0 = np.linalg.norm(K.T @ ((dense @ np.tanh(K @ a0 / 2)) * (1 - np.tanh(K @ a0 / 2) ** 2)))
    assert np.linalg.norm(K.T @ ((dense @ p) * (1 - p**2))) < 0.2 * g0


def test_class_ids_and_equivalent_multihot_agree():
    X, y = labelled(c=4)
    a = get_hasher("ksh", n_bits=6, seed=1, **PARAMS).fit(X, y)
    b = get_hasher("ksh", n_bits=6, seed=1, **PARAMS).fit(X, np.eye(4, dtype=bool)[y])
    np.testing.assert_allclose(a.coefficients_, b.coefficients_, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(a.encode(X), b.encode(X))


def test_kernel_statistics_use_all_training_samples():
    X, y = labelled()
    ksh = get_hasher("ksh", n_bits=2, seed=0, n_anchors=40, n_labelled=100).fit(X, y)
    assert ksh.labelled_index_.size == 100
    np.testing.assert_allclose(ksh.kernel(X).mean(0), 0, atol=1e-12)


def test_too_few_samples():
    X, y = labelled(n=100)
    with pytest.raises(InputError, match="fewer than n_anchors=300"):
        get_hasher("ksh", n_bits=8).fit(X, y)
    with pytest.raises(InputError, match="n_labelled: 30 labelled samples are fewer than n_anchors=40"):
        get_hasher("ksh", n_bits=8, n_anchors=40, n_labelled=30).fit(X, y)
    with pytest.raises(InputError, match="n_anchors"):
        get_hasher("ksh", n_bits=8, n_anchors=0).fit(X, y)


def test_all_labelled_and_the_multilabel_size_limit():
    X, y = labelled(n=400)
    assert get_hasher("ksh", n_bits=2, n_anchors=40, n_labelled=None).fit(X, y).labelled_index_.size == 400
    X = np.zeros((10_001, 2))
    X[:, 0] = np.arange(10_001)
    with pytest.raises(InputError, match="at most 10000"):
        get_hasher("ksh", n_bits=2, n_anchors=2, n_labelled=None).fit(X, np.ones((10_001, 3), dtype=bool))


def test_duplicate_samples_are_refused_with_a_reason():
    X, y = labelled(n=100)
    X = np.repeat(X, 5, axis=0)
    with pytest.raises(InputError, match="linearly dependent"):
        get_hasher("ksh", n_bits=8, n_anchors=120, n_labelled=500).fit(X, np.repeat(y, 5))
