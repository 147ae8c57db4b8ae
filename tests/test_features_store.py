"""The feature store: round trip, cache hits, invalidation (parameters, images, damaged or
mismatched files), torn writes; the extractor registry and the pixels extractor."""

import json
import os

import numpy as np
import pytest

from hashbench.datasets import Dataset
from hashbench.errors import InputError
from hashbench.features import EXTRACTORS, Extractor, FeatureStore, format_param, get_extractor, parse_param
from hashbench.features import store as store_module


class Counting(Extractor):
    """Mean colour times ``scale``; counts how often it really computes."""

    name = "counting"

    def __init__(self, scale=1.0):
        self.scale = scale

    def _extract(self, images, bar):
        Counting.calls += 1
        bar.update(len(images))
        return (images.mean(axis=(1, 2)) * self.scale).astype(np.float32)


@pytest.fixture
def counting():
    Counting.calls = 0
    return Counting


def make_dataset(name="toy", n=12, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 6, 5, 3), dtype=np.uint8)
    return Dataset(name, images, np.arange(n) % 3, ("a", "b", "c"), np.ones(n, bool), "test")


def entries(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_round_trip_and_cache_hit(tmp_path, counting):
    ds, ext = make_dataset(), counting(scale=2.0)
    X = FeatureStore(tmp_path).get(ds, ext)
    assert counting.calls == 1
    np.testing.assert_array_equal(X, (ds.images.mean(axis=(1, 2)) * 2).astype(np.float32))
    path = FeatureStore(tmp_path).path(ds, ext)
    assert entries(tmp_path) == [f"toy/{path.stem}.json", f"toy/{path.stem}.npy"]
    messages = []
    Y = FeatureStore(tmp_path).get(ds, counting(scale=2.0), report=messages.append)
    assert counting.calls == 1 and np.array_equal(X, Y) and "reusing" in messages[0]
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["extractor"] == ext.key() == 'counting/v1:{"scale":2.0}'
    assert side["shape"] == [12, 3] and side["n_images"] == 12 and side["image_shape"] == [6, 5, 3]
    assert side["command"] == "hashbench features extract counting --dataset toy --param scale=2.0"


class Learned(Extractor):
    """Keyed by its model's content, as the CNN extractors are."""

    name = "learned"

    def __init__(self, model="m.bin"):
        self.model = model

    def key_params(self):
        return {"model_sha256": "ab12"}

    def _extract(self, images, bar):
        bar.update(len(images))
        return images.mean(axis=(1, 2)).astype(np.float32)


def test_sidecar_command_uses_constructor_parameters(tmp_path):
    ds, ext = make_dataset(), Learned(model="runs/my model.pt")
    FeatureStore(tmp_path).get(ds, ext)
    side = json.loads(FeatureStore(tmp_path).path(ds, ext).with_suffix(".json").read_text())
    assert side["params"] == {"model_sha256": "ab12"} and side["extractor"] == 'learned/v1:{"model_sha256":"ab12"}'
    assert side["command"] == "hashbench features extract learned --dataset toy --param 'model=runs/my model.pt'"


def test_changed_parameters_are_a_different_entry(tmp_path, counting):
    store, ds = FeatureStore(tmp_path), make_dataset()
    a = store.get(ds, counting(scale=1.0))
    b = store.get(ds, counting(scale=3.0))
    assert counting.calls == 2 and np.allclose(b, 3 * a)
    assert store.path(ds, counting(scale=1.0)) != store.path(ds, counting(scale=3.0))
    store.get(ds, counting(scale=1.0))
    store.get(ds, counting(scale=3.0))
    assert counting.calls == 2  # both stay valid
    assert store.path(make_dataset("other"), counting()) .parent.name == "other"


def test_other_images_under_the_same_name_are_recomputed(tmp_path, counting):
    store, ds = FeatureStore(tmp_path), make_dataset()
    store.get(ds, counting())
    images = ds.images.copy()
    images[7, 2, 3, 1] ^= 1  # one bit of one pixel
    changed = Dataset("toy", images, ds.labels, ds.class_names, ds.train_mask, "test")
    messages = []
    X = store.get(changed, counting(), report=messages.append)
    assert counting.calls == 2 and "another images sha256" in messages[0]
    np.testing.assert_array_equal(X, changed.images.mean(axis=(1, 2)).astype(np.float32))
    store.get(changed, counting())
    assert counting.calls == 2
    store.get(make_dataset(n=11), counting())  # fewer images
    assert counting.calls == 3


def damage_same_shape(path):
    np.save(path, np.zeros((12, 3), np.float32))


def damage_truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def damage_shape(path):
    np.save(path, np.zeros((12, 4), np.float32))


def damage_dtype(path):
    np.save(path, np.zeros((12, 3), np.float64))


def damage_sidecar_garbage(path):
    path.with_suffix(".json").write_text("{not json")


def damage_sidecar_shape(path):
    side = json.loads(path.with_suffix(".json").read_text())
    side["shape"] = [12, 4]
    path.with_suffix(".json").write_text(json.dumps(side))


def damage_sidecar_format(path):
    side = json.loads(path.with_suffix(".json").read_text())
    side["format"] = 0
    path.with_suffix(".json").write_text(json.dumps(side))


def damage_remove_matrix(path):
    path.unlink()


@pytest.mark.parametrize("damage", [damage_same_shape, damage_truncate, damage_shape, damage_dtype,
                                    damage_sidecar_garbage, damage_sidecar_shape, damage_sidecar_format,
                                    damage_remove_matrix])
def test_damaged_entries_are_recomputed_never_reused(tmp_path, counting, damage):
    store, ds = FeatureStore(tmp_path), make_dataset()
    good = store.get(ds, counting())
    damage(store.path(ds, counting()))
    messages = []
    X = store.get(ds, counting(), report=messages.append)
    assert counting.calls == 2 and "computing" in messages[0]
    np.testing.assert_array_equal(X, good)
    store.get(ds, counting())
    assert counting.calls == 2  # repaired


def test_torn_matrix_write_leaves_no_entry(tmp_path, counting, monkeypatch):
    store, ds = FeatureStore(tmp_path), make_dataset()

    def dies_halfway(f, X, allow_pickle):
        f.write(b"\x93NUMPY half a matrix")
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module.np, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        store.get(ds, counting())
    assert entries(tmp_path) == []  # no matrix, no sidecar, no temp file
    monkeypatch.undo()
    store.get(ds, counting())
    assert counting.calls == 2


def test_killed_between_matrix_and_sidecar_never_pairs_new_matrix_with_old_sidecar(tmp_path, counting, monkeypatch):
    """The dangerous case: a valid entry for images A is being replaced by one for images B
    of the same shape; if the old sidecar survived next to the new matrix, a later run on A
    would take B's features. The old sidecar goes first, so nothing is readable."""
    store, a = FeatureStore(tmp_path), make_dataset(seed=0)
    b = make_dataset(seed=1)
    store.get(a, counting())

    def dies(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module.json, "dump", dies)
    with pytest.raises(KeyboardInterrupt):
        store.get(b, counting())
    monkeypatch.undo()
    path = store.path(a, counting())
    assert path.exists() and not path.with_suffix(".json").exists()
    X = store.get(a, counting())
    assert counting.calls == 3
    np.testing.assert_array_equal(X, a.images.mean(axis=(1, 2)).astype(np.float32))


def test_no_temporary_files_left_and_atomic_replace(tmp_path, counting):
    store, ds = FeatureStore(tmp_path), make_dataset()
    store.get(ds, counting())
    store.get(make_dataset(seed=2), counting())  # same name, other images: replaces in place
    assert len(entries(tmp_path)) == 2
    assert not [p for p in os.listdir(tmp_path / "toy") if p.startswith(".")]


def test_store_rejects_unsafe_dataset_names(tmp_path, counting):
    ds = make_dataset()
    bad = Dataset("../up", ds.images, ds.labels, ds.class_names, ds.train_mask, "test")
    with pytest.raises(InputError, match="dataset"):
        FeatureStore(tmp_path).get(bad, counting())


def test_gist_on_the_bundled_digits_through_the_store(tmp_path):
    from hashbench.datasets import load_dataset

    ds = load_dataset("digits")
    X = FeatureStore(tmp_path).get(ds, get_extractor("gist"))
    assert X.shape == (1797, 512) and X.dtype == np.float32 and np.isfinite(X).all()
    np.testing.assert_array_equal(FeatureStore(tmp_path).get(ds, get_extractor("gist")), X)


# ---- registry, parameters, pixels ----

def test_registry_and_unknown_names():
    assert {"gist", "pixels"} <= set(EXTRACTORS)
    with pytest.raises(InputError, match="unknown extractor 'gist2'"):
        get_extractor("gist2")
    with pytest.raises(InputError, match="unknown parameter"):
        get_extractor("pixels", scale=2)


def test_pixels():
    images = np.arange(2 * 2 * 3 * 3, dtype=np.uint8).reshape(2, 2, 3, 3)
    X = get_extractor("pixels").extract(images)
    assert X.dtype == np.float32 and X.shape == (2, 18)
    np.testing.assert_array_equal(X[1], np.arange(18, 36))
    assert get_extractor("pixels").key() == "pixels/v1:{}"


@pytest.mark.parametrize("text,value", [
    ("mode=lmgist", "lmgist"), ("color=true", True), ("n_blocks=4", 4), ("fc_prefilt=3.5", 3.5),
    ("orientations=[8,8,4]", [8, 8, 4]), ("name=true_story", "true_story"), ('tag="4"', "4"),
])
def test_param_text_round_trip(text, value):
    key, v = parse_param(text)
    assert v == value and type(v) is type(value)
    assert parse_param(format_param(key, v)) == (key, v)


@pytest.mark.parametrize("text", ["mode", "=3", "two words=1"])
def test_bad_param_text(text):
    with pytest.raises(InputError, match="--param"):
        parse_param(text)
