"""LSH: the collision law of random hyperplanes, centring, seeds."""

import numpy as np
import pytest

from hashbench.codes import unpack
from hashbench.hashers import get_hasher


def _pair_at_angle(theta, d, rng):
    """Two unit vectors at angle theta in a random plane of R^d."""
    q, _ = np.linalg.qr(rng.standard_normal((d, 2)))
    return np.stack([q[:, 0], np.cos(theta) * q[:, 0] + np.sin(theta) * q[:, 1]])


@pytest.mark.parametrize("theta", [np.pi / 8, np.pi / 3, np.pi / 2, 2 * np.pi / 3, 7 * np.pi / 8])
def test_collision_rate_is_one_minus_angle_over_pi(theta):
    rng = np.random.default_rng(1)
    d, k = 20, 4096
    train = rng.standard_normal((50, d))
    train = np.vstack([train, -train])  # mean exactly 0: the pair is hashed about the origin
    lsh = get_hasher("lsh", n_bits=k, seed=3).fit(train)
    assert np.abs(lsh.mean_).max() < 1e-12
    bits = unpack(lsh.encode(_pair_at_angle(theta, d, rng)), k)
    rate = (bits[0] == bits[1]).mean()
    p = 1 - theta / np.pi
    assert abs(rate - p) <= 4 * np.sqrt(p * (1 - p) / k)


def test_projections_are_standard_gaussian():
    lsh = get_hasher("lsh", n_bits=256, seed=0).fit(np.random.default_rng(0).standard_normal((10, 64)))
    w = lsh.projections_
    assert w.shape == (64, 256)
    assert abs(w.mean()) < 4 / np.sqrt(w.size) and abs(w.std() - 1) < 0.02


def test_centring_makes_codes_translation_invariant():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 30))
    shift = 100 * rng.standard_normal(30)
    a = get_hasher("lsh", n_bits=64, seed=5).fit(X)
    b = get_hasher("lsh", n_bits=64, seed=5).fit(X + shift)
    np.testing.assert_allclose(b.mean_ - a.mean_, shift)
    np.testing.assert_array_equal(a.encode(X), b.encode(X + shift))
    # bit = [(x - mean) w >= 0], by hand
    np.testing.assert_array_equal(unpack(a.encode(X), 64), ((X - X.mean(0)) @ a.projections_ >= 0))


def test_bits_are_balanced_on_symmetric_data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2000, 16))
    bits = unpack(get_hasher("lsh", n_bits=32, seed=0).fit(X).encode(X), 32)
    assert np.all(np.abs(bits.mean(0) - 0.5) < 0.1)
