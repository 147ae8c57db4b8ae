"""The classifier baseline (Sablayrolles et al., ICASSP 2017): codes are exactly the
codeword of the predicted class; the codewords; the cnn-cls-logits features it reads."""

import numpy as np
import pytest

from hashbench.codes import pack, unpack
from hashbench.codewords import class_codewords, hadamard, paley
from hashbench.errors import InputError
from hashbench.hashers import get_hasher


@pytest.mark.parametrize("n", [1, 2, 4, 8, 12, 16, 20, 24, 32, 48, 64])
def test_hadamard_rows_are_orthogonal(n):
    H = hadamard(n)
    assert set(np.unique(H)) <= {-1, 1}
    np.testing.assert_array_equal(H @ H.T, n * np.eye(n))


def test_paley_order_4_by_hand_and_orders_without_a_construction():
    # q = 3: squares mod 3 = {1}, chi = (0, 1, -1); S = [[0, 1 1 1], [-1, Q]], H = S + I
    np.testing.assert_array_equal(paley(3), [[1, 1, 1, 1], [-1, 1, 1, -1], [-1, -1, 1, 1], [-1, 1, -1, 1]])
    assert hadamard(10) is None and hadamard(6) is None and hadamard(28) is None  # 28: q = 27 is not prime


def test_class_codewords_hadamard_distances_and_random_fallback():
    C = class_codewords(10, 12)
    D = (12 - C.astype(int) @ C.T.astype(int)) // 2
    assert (D[~np.eye(10, dtype=bool)] == 6).all()  # every pair exactly k/2 apart
    np.testing.assert_array_equal(class_codewords(10, 12, seed=5), C)  # no seed involved
    np.testing.assert_array_equal(class_codewords(20, 12), np.vstack([hadamard(12), -hadamard(12)])[:20])
    R = class_codewords(10, 10, seed=1)  # no Hadamard matrix of order 10: seeded random
    np.testing.assert_array_equal(class_codewords(10, 10, seed=1), R)
    assert len({r.tobytes() for r in R}) == 10
    assert not np.array_equal(class_codewords(10, 10, seed=2), R)
    assert len({r.tobytes() for r in class_codewords(16, 4)}) == 16  # every 4-bit word, distinct
    with pytest.raises(InputError, match="10 classes need at least 4 bits"):
        class_codewords(10, 3)


def test_codes_are_the_codewords_of_the_argmax_by_hand():
    logits = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, -1.0], [0.1, 0.0, 0.2], [5.0, 5.0, 1.0]])
    h = get_hasher("classifier", n_bits=4).fit(logits, np.array([0, 1, 2, 0]))
    H4 = hadamard(4)
    np.testing.assert_array_equal(h.codewords_, H4[:3])
    # argmax 0, 1, 2, and a tie resolved to the first column
    np.testing.assert_array_equal(h.project(logits), H4[[0, 1, 2, 0]])
    np.testing.assert_array_equal(h.encode(logits), pack(H4[[0, 1, 2, 0]] > 0))
    with pytest.raises(InputError, match="labels name 4 classes"):
        get_hasher("classifier", n_bits=4).fit(logits, np.array([0, 1, 3, 0]))


def test_a_trained_classifier_gives_exactly_the_class_codewords(tmp_path):
    """A CNN-cls classifier trained for a few iterations on digits: the cnn-cls-logits
    features are its outputs, and every code is the Hadamard codeword of its predicted
    class, through the experiment runner (the features' key holds the model's SHA-256)."""
    from hashbench import nets
    from hashbench.datasets import load_dataset
    from hashbench.experiment import make_cell, prepare
    from hashbench.features import get_extractor
    from hashbench.training import train_classifier

    model = tmp_path / "cls.pt"
    train_classifier(model, schedule=30, protocol="digits-dsh", device="cpu", progress=False)
    ds = load_dataset("digits")
    ext = get_extractor("cnn-cls-logits", model=str(model), device="cpu")
    logits = ext.extract(ds.images[:300])
    net = nets.DSHNet.from_state_dict(nets.load_state(model))
    np.testing.assert_allclose(logits, nets.apply(net, ds.images[:300], "outputs", device="cpu"), rtol=1e-6)
    assert logits.shape == (300, 10) and "model_sha256" in ext.key()

    cell = make_cell("digits", "digits-dsh", f"cnn-cls-logits:model={model}", "classifier", 12, 0)
    _, split, hasher, X = prepare(cell, store=str(tmp_path / "features"))
    hasher.fit(X[split.train], ds.labels[split.train])
    predicted = X.argmax(axis=1)
    assert len(np.unique(predicted)) > 1
    bits = unpack(hasher.encode(X), 12)
    np.testing.assert_array_equal(bits, (hadamard(12)[predicted] > 0).astype(np.uint8))
