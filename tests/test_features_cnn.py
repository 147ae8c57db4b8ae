"""cnn-ours / cnn-cls extractors: L2-normalised FC-500 activations of a saved model, keyed by
the model file's hash."""

import numpy as np
import pytest
import torch

from hashbench import nets
from hashbench.datasets import load_dataset
from hashbench.errors import InputError
from hashbench.features import FeatureStore, get_extractor


@pytest.fixture()
def model_file(tmp_path):
    net = nets.new_net(12, 8, seed=0)
    net.mean.fill_(40.0)
    path = tmp_path / "m.pt"
    nets.save_state(net, path)
    return net, path


@pytest.mark.parametrize("name", ["cnn-ours", "cnn-cls"])
def test_features_are_normalised_fc_activations(name, model_file):
    net, path = model_file
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3)).astype(np.uint8)
    ext = get_extractor(name, model=str(path), device="cpu")
    X = ext.extract(images)
    with torch.no_grad():
        ref = net.features(torch.from_numpy(images.astype(np.float32))).numpy()
    assert X.shape == (5, 500) and X.dtype == np.float32
    np.testing.assert_allclose(X, ref / np.linalg.norm(ref, axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, rtol=1e-5)
    with pytest.raises(InputError, match="takes"):
        ext.extract(np.zeros((2, 16, 16, 3), np.uint8))


def test_key_follows_the_model_file_and_the_store_reuses_it(model_file, tmp_path):
    _net, path = model_file
    a = get_extractor("cnn-ours", model=str(path))
    copy = tmp_path / "elsewhere.pt"
    copy.write_bytes(path.read_bytes())
    assert get_extractor("cnn-ours", model=str(copy)).key() == a.key()
    assert get_extractor("cnn-ours", model=str(copy), device="cpu").key() == a.key()
    other = tmp_path / "other.pt"
    nets.save_state(nets.new_net(12, 8, seed=1), other)
    assert get_extractor("cnn-ours", model=str(other)).key() != a.key()
    ds = load_dataset("digits")
    store = FeatureStore(tmp_path / "store")
    X = store.get(ds, a)
    assert X.shape == (len(ds), 500)
    np.testing.assert_array_equal(store.get(ds, get_extractor("cnn-ours", model=str(copy))), X)


def test_missing_or_bad_model_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="train-cnn"):
        get_extractor("cnn-cls", model=str(tmp_path / "nope.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_text("junk")
    with pytest.raises(InputError):
        get_extractor("cnn-ours", model=str(bad)).extract(np.zeros((1, 8, 8, 3), np.uint8))
