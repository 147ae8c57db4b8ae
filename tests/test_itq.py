"""ITQ and CCA-ITQ against slow references (SVD PCA, scipy's Procrustes, whitened-SVD CCA)
and their defining properties (monotone loss, orthogonal R, the CCA constraint)."""

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes, sqrtm

from hashbench.errors import InputError
from hashbench.hashers import get_hasher
from hashbench.hashers.itq import itq_rotation, random_rotation


def anisotropic(n=1000, d=24, seed=0):
    """Correlated Gaussian data with a decaying spectrum, off-centre."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) @ (rng.standard_normal((d, d)) * np.linspace(3, 0.2, d)[:, None]) + 5.0


def labelled(n=1200, d=30, c=6, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    return rng.standard_normal((n, d)) + 0.8 * rng.standard_normal((c, d))[y], y


def _sign_loss(V, R):
    B = np.where(V @ R >= 0, 1.0, -1.0)  # the optimal B for R, written out
    return np.linalg.norm(B - V @ R) ** 2


def test_loss_never_increases_and_ends_below_pca_start():
    X = anisotropic()
    itq = get_hasher("itq", n_bits=16, seed=0).fit(X)
    loss = itq.loss_history_
    assert loss.shape == (52,)  # the random start, then n_iter + 1 = 51 Procrustes steps as ITQ.m
    assert np.all(np.diff(loss) <= 1e-9 * loss[0])
    V = (X - itq.mean_) @ itq.components_
    assert loss[-1] < _sign_loss(V, np.eye(16))  # plain PCA hashing's loss
    assert loss[-1] < loss[0]
    assert loss[-1] == pytest.approx(_sign_loss(V, itq.rotation_), rel=1e-12)


def test_rotation_is_orthogonal():
    itq = get_hasher("itq", n_bits=20, seed=3).fit(anisotropic())
    R = itq.rotation_
    np.testing.assert_allclose(R.T @ R, np.eye(20), atol=1e-12)
    np.testing.assert_allclose(R @ R.T, np.eye(20), atol=1e-12)


def test_components_are_the_top_principal_directions():
    X = anisotropic()
    itq = get_hasher("itq", n_bits=10, seed=0).fit(X)
    _, _, Vt = np.linalg.svd(X - X.mean(0), full_matrices=False)  # PCA the slow way
    np.testing.assert_allclose(np.abs(itq.components_.T @ Vt[:10].T), np.eye(10), atol=1e-8)
    np.testing.assert_allclose(itq.mean_, X.mean(0))


def test_each_step_is_the_orthogonal_procrustes_solution():
    rng = np.random.default_rng(0)
    V = rng.standard_normal((500, 12)) * np.linspace(2, 0.5, 12)
    R, loss = itq_rotation(V, 0, np.random.default_rng(11))  # one Procrustes step
    R0 = random_rotation(12, np.random.default_rng(11))
    expected, _ = orthogonal_procrustes(V, np.where(V @ R0 >= 0, 1.0, -1.0))
    np.testing.assert_allclose(R, expected, atol=1e-10)
    np.testing.assert_allclose(loss, [_sign_loss(V, R0), _sign_loss(V, R)], rtol=1e-12)


def test_project_is_centred_pca_then_rotation():
    X = anisotropic()
    itq = get_hasher("itq", n_bits=8, seed=0).fit(X[:800])
    np.testing.assert_allclose(itq.project(X[800:]), (X[800:] - itq.mean_) @ itq.components_ @ itq.rotation_)


def test_itq_bits_cannot_exceed_dimension():
    X = anisotropic(d=24)
    assert get_hasher("itq", n_bits=24).fit(X).components_.shape == (24, 24)
    with pytest.raises(InputError, match="n_bits=25 exceeds the feature dimension 24"):
        get_hasher("itq", n_bits=25).fit(X)
    with pytest.raises(InputError, match="minimum of 2"):
        get_hasher("itq", n_bits=4).fit(X[:1])


def _regularised_covariances(X, Y, reg):
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    n = X.shape[0] - 1
    return Xc.T @ Xc / n + reg * np.eye(X.shape[1]), Xc.T @ Yc / n, Yc.T @ Yc / n + reg * np.eye(Y.shape[1])


def test_cca_directions_satisfy_the_constraint_and_match_the_canonical_correlations():
    X, y = labelled()
    cca = get_hasher("cca-itq", n_bits=5, seed=0).fit(X, y)
    cxx, cxy, cyy = _regularised_covariances(X, np.eye(6)[y], 1e-4)
    W, r = cca.components_, cca.correlations_
    # W = Wx diag(r) with Wx^T (Cxx + reg I) Wx = I
    np.testing.assert_allclose(W.T @ cxx @ W, np.diag(r**2), atol=1e-10)
    # reference: singular values of Cxx^-1/2 Cxy Cyy^-1/2
    whitened = np.linalg.inv(sqrtm(cxx).real) @ cxy @ np.linalg.inv(sqrtm(cyy).real)
    np.testing.assert_allclose(r, np.linalg.svd(whitened, compute_uv=False)[:5], rtol=1e-8)
    # and each direction solves Cxy Cyy^-1 Cyx w = r^2 Cxx w
    np.testing.assert_allclose(cxy @ np.linalg.solve(cyy, cxy.T) @ W, cxx @ W * r**2, atol=1e-10)
    assert np.all(np.diff(r) <= 0) and r[0] > 0.5


def test_cca_more_bits_than_classes_minus_one():
    """Past c - 1 directions the correlations are 0: those columns are exactly zero and every
    bit is a hyperplane in the (c - 1)-dimensional informative subspace (some bits may repeat
    a split of the classes: there are only so many)."""
    X, y = labelled(c=6)
    cca = get_hasher("cca-itq", n_bits=16, seed=0).fit(X, y)
    assert np.all(cca.correlations_[:5] > 0.1) and np.all(cca.correlations_[5:] == 0)
    assert not cca.components_[:, 5:].any()
    P = cca.project(X)
    assert np.linalg.matrix_rank(P, tol=1e-8 * np.abs(P).max()) == 5
    bits = P >= 0
    assert np.all((bits.mean(0) > 0.3) & (bits.mean(0) < 0.7))  # balanced, as ITQ makes them
    assert len({tuple(col) for col in bits.T}) > 5  # more distinct bits than directions
    assert np.all(np.diff(cca.loss_history_) <= 1e-9 * cca.loss_history_[0])


def test_cca_multilabel_and_class_ids_agree():
    X, y = labelled(c=4)
    onehot = np.eye(4, dtype=bool)[y]
    a = get_hasher("cca-itq", n_bits=8, seed=2).fit(X, y)
    b = get_hasher("cca-itq", n_bits=8, seed=2).fit(X, onehot)
    np.testing.assert_allclose(a.components_, b.components_, atol=1e-12)
    np.testing.assert_array_equal(a.encode(X), b.encode(X))


def test_cca_true_multilabel():
    rng = np.random.default_rng(5)
    Y = rng.random((900, 7)) < 0.3
    X = rng.standard_normal((900, 20)) + Y @ rng.standard_normal((7, 20))
    cca = get_hasher("cca-itq", n_bits=12, seed=0).fit(X, Y)
    assert np.all(cca.correlations_[:7] > 0.5) and np.all(cca.correlations_[7:] == 0)


def test_cca_learns_from_the_labelled_subset_only():
    X, y = labelled()
    sub = get_hasher("cca-itq", n_bits=5, seed=4, n_labelled=300).fit(X, y)
    idx = sub.labelled_index_
    whole = get_hasher("cca-itq", n_bits=5, seed=4).fit(X[idx], y[idx])
    np.testing.assert_allclose(sub.components_, whole.components_, atol=1e-12)
    np.testing.assert_allclose(sub.mean_, X[idx].mean(0))


def test_cca_bad_reg():
    X, y = labelled()
    for reg in [0, -1, "x"]:
        with pytest.raises(InputError, match="reg"):
            get_hasher("cca-itq", n_bits=4, reg=reg).fit(X, y)
