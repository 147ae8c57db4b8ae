"""Protocols: stated sizes, stated overlap rules, seeding, per-class draws, self indices and
the checks themselves; on full-size synthetic datasets (labels only, images a zero-stride
view), on digits, and on the real CIFAR-10 and NUS-WIDE labels when HASHBENCH_DATA is set."""

import dataclasses

import numpy as np
import pytest

from hashbench.datasets import Dataset, cifar10, load_dataset, load_nuswide_labels
from hashbench.errors import InputError
from hashbench.protocols import PROTOCOLS, Split, default_protocol, get_protocol


def labels_only(name, labels, class_names, train_mask, size=32):
    images = np.broadcast_to(np.zeros((1, size, size, 3), np.uint8), (len(labels), size, size, 3))
    return Dataset(name, images, labels, class_names, train_mask, "synthetic")


@pytest.fixture(scope="module")
def cifar_like():
    """CIFAR-10's shape: 5,000 training and 1,000 test images per class, shuffled."""
    rng = np.random.default_rng(0)
    y = np.concatenate([rng.permutation(np.repeat(np.arange(10), 5000)),
                        rng.permutation(np.repeat(np.arange(10), 1000))])
    return labels_only("cifar10", y, tuple("abcdefghij"), np.arange(60000) < 50000)


@pytest.fixture(scope="module")
def nus_like():
    """195,834 multi-hot rows over 21 concepts of decreasing frequency, each row labelled."""
    rng = np.random.default_rng(0)
    y = rng.random((195_834, 21)) < np.linspace(0.3, 0.02, 21)
    y[~y.any(1), 0] = True
    return labels_only("nuswide", y, tuple(f"c{i}" for i in range(21)), np.ones(len(y), bool), 64)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def multi_hot(name, n, c, seed=0):
    """``n`` multi-hot rows over ``c`` labels, each row labelled."""
    rng = np.random.default_rng(seed)
    y = rng.random((n, c)) < np.linspace(0.2, 0.01, c)
    y[~y.any(1), 0] = True
    return labels_only(name, y, tuple(f"c{i}" for i in range(c)), np.ones(n, bool), 8)


@pytest.fixture(scope="module")
def list_like():
    """The list-file datasets at their sources' sizes: MS-COCO's 122,218 labelled images (80
    categories, HashNet), ImageNet-100 as 100 classes of 1,335 images, MIRFlickr-25K's 25,000
    images (38 label files, DeepHash-pytorch), NUS-WIDE-81 (any size: its database is the rest)."""
    y = np.random.default_rng(0).permutation(np.repeat(np.arange(100), 1335))
    return {
        "coco": multi_hot("coco", 122_218, 80),
        "imagenet100": labels_only("imagenet100", y, tuple(f"n{i}" for i in range(100)), np.ones(len(y), bool), 8),
        "mirflickr": multi_hot("mirflickr", 25_000, 38),
        "nuswide-81": multi_hot("nuswide-81", 40_000, 81),
    }


@pytest.fixture
def datasets(cifar_like, nus_like, digits, list_like):
    return {"cifar10": cifar_like, "nuswide": nus_like, "digits": digits, **list_like}


DEFINED_ON_ONE = [n for n, p in PROTOCOLS.items() if p.dataset is not None]

# (train, query, database) as each source states them, on the datasets above
SOURCE_SIZES = {
    "cifar10-1k": (5_000, 1_000, 59_000), "cifar10-1k-hashnet": (5_000, 1_000, 54_000),
    "cifar10-1k-all": (59_000, 1_000, 59_000), "cifar10-unseen": (48_000, 200, 11_800),
    "coco-hashnet": (10_000, 5_000, 117_218), "imagenet100-hashnet": (13_000, 5_000, 128_500),
    "mirflickr-deephash": (4_000, 1_000, 20_000), "nuswide-81-hashnet": (10_000, 5_000, 35_000),
}


@pytest.mark.parametrize("name", DEFINED_ON_ONE)
def test_stated_sizes_and_overlap_rules_hold(name, datasets):
    p = get_protocol(name)
    ds = datasets[p.dataset]
    s = p.split(ds, seed=3)
    sizes = p.expected_sizes(len(ds))
    assert (len(s.train), len(s.query), len(s.database)) == sizes == SOURCE_SIZES.get(name, p.sizes)
    for a in (s.train, s.query, s.database):
        assert a.dtype == np.int64 and (np.diff(a) > 0).all() and a[0] >= 0 and a[-1] < len(ds)
    in_db = np.isin(s.query, s.database)
    assert in_db.all() if p.query_in_database else not in_db.any()
    assert not p.query_in_train and not np.isin(s.query, s.train).any()
    shared = np.isin(s.train, s.database)
    rule = {"subset": shared.all(), "disjoint": not shared.any(), "equal": np.array_equal(s.train, s.database)}
    assert rule.get(p.train_in_database, True)
    assert s.exclude_self == p.exclude_self and s.protocol == name and s.seed == 3
    assert s.record() == {"protocol": name, "seed": 3, "n_train": sizes[0], "n_query": sizes[1],
                          "n_database": sizes[2], "exclude_self": p.exclude_self}
    assert f"seed 3: train {sizes[0]:,}, query {sizes[1]:,}, database {sizes[2]:,}" in s.describe()


def test_cifar10_1k_family_shares_its_draw(cifar_like):
    """The three 1,000-query CIFAR-10 protocols draw the same queries (and the first two the
    same training images) for a seed, 100 / 500 per class; they differ only in the database."""
    a, b, c = (get_protocol(n).split(cifar_like, 5) for n in ("cifar10-1k", "cifar10-1k-hashnet", "cifar10-1k-all"))
    np.testing.assert_array_equal(a.query, b.query)
    np.testing.assert_array_equal(a.query, c.query)
    np.testing.assert_array_equal(a.train, b.train)
    assert (np.bincount(cifar_like.labels[a.query]) == 100).all()
    assert (np.bincount(cifar_like.labels[a.train]) == 500).all()
    np.testing.assert_array_equal(b.database, np.setdiff1d(a.database, a.train))
    np.testing.assert_array_equal(c.train, a.database)
    assert get_protocol("cifar10-1k-hashnet").topk == 54_000 and get_protocol("cifar10-1k").topk is None


def test_unseen_classes(cifar_like, nus_like):
    p = get_protocol("cifar10-unseen")
    s = p.split(cifar_like, 2)
    seen = np.unique(cifar_like.labels[s.train])
    held = np.unique(cifar_like.labels[s.query])
    assert len(seen) == 8 and len(held) == 2 and not np.isin(held, seen).any()
    assert set(np.unique(cifar_like.labels[s.database])) == set(held)
    assert (np.bincount(cifar_like.labels[s.query])[held] == 100).all()
    choices = {tuple(np.unique(cifar_like.labels[p.split(cifar_like, k).train])) for k in range(6)}
    assert len(choices) > 1  # the class choice is seeded
    # the same rule on any labelled dataset, multi-label included
    g = get_protocol("unseen-75")
    s = g.split(nus_like, 0)
    seen_cols = nus_like.labels[s.train].any(0)
    assert seen_cols.sum() == 16  # round(0.75 x 21)
    assert not nus_like.labels[s.query][:, seen_cols].any() and not nus_like.labels[s.database][:, seen_cols].any()
    assert len(s.query) == 100 * 5 and not np.isin(s.query, s.database).any()
    np.testing.assert_array_equal(g.split(nus_like, 0).query, s.query)


def test_cut_offs_are_protocol_variants(cifar_like):
    p = get_protocol("cifar10-1k@5000")
    assert p.topk == 5000 and p.name == "cifar10-1k@5000" and "mAP@5000" in p.description
    a, b = p.split(cifar_like, 1), get_protocol("cifar10-1k").split(cifar_like, 1)
    np.testing.assert_array_equal(a.database, b.database)
    assert a.record()["protocol"] == "cifar10-1k@5000"
    for bad in ("cifar10-1k@", "cifar10-1k@0", "cifar10-1k@x"):
        with pytest.raises(InputError, match="cut-off after @ must be a positive integer"):
            get_protocol(bad)


def test_portable_protocols_refuse_what_they_cannot_draw(nus_like, digits):
    with pytest.raises(InputError, match="cifar10-1k: draws per class, so it needs single-label data"):
        get_protocol("cifar10-1k").split(nus_like, 0)
    with pytest.raises(InputError, match="coco-hashnet: digits has 1,797 images, needs at least 15,000"):
        get_protocol("coco-hashnet").split(digits, 0)
    with pytest.raises(InputError, match="protocol lists: digits has no list files"):
        get_protocol("lists").split(digits, 0)


@pytest.mark.parametrize("name", [n for n, p in PROTOCOLS.items() if p.portable and p.dataset])
def test_portable_protocols_run_on_a_list_dataset(name, datasets):
    """`--dataset list:FOLDER --protocol P`: a list dataset holding P's data under another name
    gets the same split as the named dataset."""
    p = get_protocol(name)
    ds = datasets[p.dataset]
    as_list = dataclasses.replace(ds, name="list-user-0123abcd")
    a, b = p.split(ds, 1), p.split(as_list, 1)
    for part in ("train", "query", "database"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    with pytest.raises(InputError, match="is for dataset cifar10"):
        get_protocol("cifar10-dsh").split(as_list, 0)


def test_readme_names_every_protocol_and_its_source():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = readme[readme.index("### Protocols: where each comes from"):]
    for name, p in PROTOCOLS.items():
        assert f"`{name}`" in table, name
        assert len(p.description) > 40


@pytest.mark.parametrize("name", DEFINED_ON_ONE)
def test_seeding(name, datasets):
    p = get_protocol(name)
    ds = datasets[p.dataset]
    a, b, c = p.split(ds, 0), p.split(ds, 0), p.split(ds, 1)
    for part in ("train", "query", "database"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert (not np.array_equal(a.query, c.query)) == p.seeded


def test_official_splits(cifar_like):
    train, test = np.arange(50000), np.arange(50000, 60000)
    for name, db in (("cifar10-dsh", test), ("cifar10-dsh-self", test), ("cifar10-standard", train)):
        s = get_protocol(name).split(cifar_like, 0)
        np.testing.assert_array_equal(s.train, train)
        np.testing.assert_array_equal(s.query, test)
        np.testing.assert_array_equal(s.database, db)
    assert get_protocol("cifar10-dsh").exclude_self and not get_protocol("cifar10-dsh-self").exclude_self


def test_per_class_draws(cifar_like, digits):
    s = get_protocol("cifar10-1k").split(cifar_like, 7)
    y = cifar_like.labels
    assert (np.bincount(y[s.query]) == 100).all() and (np.bincount(y[s.train]) == 500).all()
    np.testing.assert_array_equal(s.database, np.setdiff1d(np.arange(60000), s.query))
    assert np.isin(s.train, s.database).all()  # training images are database items too
    assert s.query.min() < 50000 <= s.query.max()  # drawn from all 60,000, not just one part
    for name in ("digits-dsh", "digits-standard"):
        s = get_protocol(name).split(digits, 7)
        assert (np.bincount(digits.labels[s.query]) == 50).all()
        np.testing.assert_array_equal(s.train, np.setdiff1d(np.arange(len(digits)), s.query))


def test_nuswide_queries_cover_every_concept(nus_like):
    s = get_protocol("nuswide-21").split(nus_like, 5)
    assert (nus_like.labels[s.query].sum(0) >= 100).all()
    np.testing.assert_array_equal(s.train, s.database)
    t = get_protocol("nuswide-21-top5000").split(nus_like, 5)
    np.testing.assert_array_equal(s.query, t.query)
    assert (get_protocol("nuswide-21").topk, get_protocol("nuswide-21-top5000").topk) == (None, 5000)


@pytest.mark.parametrize("name", [n for n, p in PROTOCOLS.items() if p.exclude_self])
def test_self_index_points_at_each_querys_own_image(name, datasets):
    p = get_protocol(name)
    s = p.split(datasets[p.dataset], 2)
    idx = s.self_index()
    for i in range(len(s.query)):  # obvious reference
        assert idx[i] == int(np.flatnonzero(s.database == s.query[i])[0])


def test_self_index_general_cases():
    s = Split("x", 0, np.array([0]), np.array([9, 4, 7]), np.array([7, 2, 9, 5, 4]), True)
    np.testing.assert_array_equal(s.self_index(), [2, 4, 0])
    s = Split("x", 0, np.array([0]), np.array([9, 3, 11]), np.array([7, 2, 9, 5, 4]), True)
    np.testing.assert_array_equal(s.self_index(), [2, -1, -1])
    s = dataclasses.replace(s, exclude_self=False)
    np.testing.assert_array_equal(s.self_index(), [-1, -1, -1])


def test_the_checks_catch_a_faulty_protocol(digits):
    base = get_protocol("digits-standard")
    n = np.arange(len(digits))
    faulty = {
        "queries are also in the training set": lambda ds, rng: (n[:100], n[50:150], n[200:]),
        "queries are also in the database": lambda ds, rng: (n[:100], n[100:150], n[120:]),
        "indices must be non-empty, sorted, unique": lambda ds, rng: (n[:100], n[150:100:-1], n[200:]),
        "in 0..1796": lambda ds, rng: (n[:100], n[100:150], n[200:] + 1),
    }
    for message, make in faulty.items():
        with pytest.raises(RuntimeError, match=message):
            dataclasses.replace(base, make=make).split(digits, 0)
    bad_self = dataclasses.replace(base, exclude_self=True, query_in_database=True,
                                   make=lambda ds, rng: (n[:100], n[100:150], n[140:300]))
    with pytest.raises(RuntimeError, match="exclude_self needs every query in the database"):
        bad_self.split(digits, 0)


def test_bad_input(cifar_like, digits):
    with pytest.raises(InputError, match=r"unknown protocol 'cifar10-2k'.*cifar10-1k"):
        get_protocol("cifar10-2k")
    with pytest.raises(InputError, match="protocol cifar10-dsh is for dataset cifar10, not digits"):
        get_protocol("cifar10-dsh").split(digits, 0)
    for seed in (-1, 1.5, True, "3", None):
        with pytest.raises(InputError, match="seed must be an integer >= 0"):
            get_protocol("digits-dsh").split(digits, seed)
    small = labels_only("cifar10", cifar_like.labels[:3000], cifar_like.class_names, np.ones(3000, bool))
    with pytest.raises(InputError, match=r"protocol cifar10-1k: class '\w' has \d+ images, needs 600"):
        get_protocol("cifar10-1k").split(small, 0)


def test_default_protocols():
    assert default_protocol("cifar10") == "cifar10-dsh"
    assert default_protocol("digits") == "digits-dsh"
    assert default_protocol("nuswide") == "nuswide-21"
    for d in ("cifar10", "digits", "nuswide"):
        assert get_protocol(default_protocol(d)).dataset == d
    for d in ("coco", "imagenet100", "mirflickr", "nuswide-81", "list:/some/folder"):
        assert default_protocol(d) == "lists"
    with pytest.raises(InputError, match="no default protocol for 'mnist'"):
        default_protocol("mnist")


# --- real data -------------------------------------------------------------------------------

def test_real_cifar10_protocols(cifar_dir):
    ds = cifar10.read(cifar_dir)
    for name in ("cifar10-dsh", "cifar10-dsh-self", "cifar10-standard", "cifar10-1k", "cifar10-1k-hashnet",
                 "cifar10-1k-all", "cifar10-unseen"):
        p = get_protocol(name)
        s = p.split(ds, 0)
        assert (len(s.train), len(s.query), len(s.database)) == p.sizes
        assert not np.isin(s.query, s.train).any()
    s = get_protocol("cifar10-1k").split(ds, 0)
    assert (np.bincount(ds.labels[s.query]) == 100).all() and (np.bincount(ds.labels[s.train]) == 500).all()


def test_real_nuswide_protocol_on_labels_only(data_root):
    with pytest.warns(UserWarning, match="Labels_lake_Train"):
        lab = load_nuswide_labels(data_root)
    ds = labels_only("nuswide", lab.labels, lab.concepts, np.ones(len(lab.labels), bool), 64)
    p = get_protocol("nuswide-21")
    s = p.split(ds, 0)
    assert (len(s.train), len(s.query), len(s.database)) == p.sizes == (193_734, 2_100, 193_734)
    assert not np.isin(s.query, s.database).any() and (lab.labels[s.query].sum(0) >= 100).all()
