"""The deep hashing losses as methods (hashbench.hashers.deep_methods): end to end on the DSH
network and as linear heads on frozen features; learning on digits, defaults shared with the
loss modules, seeds reaching the losses' random parts. (Every method also runs through
``check_hasher`` in tests/test_hasher_contract.py.)"""

import inspect

import numpy as np
import pytest

from hashbench.datasets import load_dataset
from hashbench.hashers import HASHERS, get_hasher
from hashbench.metrics import evaluate
from hashbench.nets.losses import LOSSES
from hashbench.protocols import get_protocol

END_TO_END = ("dpsh", "hashnet", "greedyhash", "csq", "orthohash")
HEADS = (*tuple(f"{m}-head" for m in END_TO_END), "dsh-head")


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits")
    return ds, get_protocol("digits-dsh").split(ds, 0)


def score(hasher, ds, split, X):
    q = hasher.encode(X[split.query])
    return evaluate(q, q, ds.labels[split.query], ds.labels[split.query], hasher.n_bits,
                    self_index=split.self_index())["map"]


@pytest.fixture(scope="module")
def lsh_map(digits):
    ds, split = digits
    pixels = ds.images.reshape(len(ds.images), -1).astype(np.float64)
    return score(get_hasher("lsh", n_bits=12, seed=0).fit(pixels[split.train]), ds, split, pixels)


# Measured on this machine (digits-dsh, seed 0, 12 bits, 150 iterations of batch 64 of the quick
# schedule; LSH on pixels 0.401; DSH 0.721): greedyhash 0.726, csq 0.705, orthohash 0.562,
# hashnet 0.480, dpsh 0.226. Every loss starts as its release's hash layer (N(0, 0.01); HashNet
# also at a tenth of the lr: see the loss modules, measured on CIFAR-10), which lifted CSQ,
# HashNet and GreedyHash from 0.406, 0.108 and 0.490 here and lowered OrthoHash and DPSH from
# 0.628 and 0.352 (on CIFAR-10 DPSH rose). OrthoHash and HashNet need longer, and get it
# (ITERATIONS; seeds 0 / 1: OrthoHash at 400 0.869 / 0.856, HashNet at 700 0.752 / 0.788, 5 and
# 10 s). DPSH does not learn reliably from scratch here at any length a test can afford (seeds
# 0 / 1 / 2 at 2,000 iterations, 30 s each: 0.565 / 0.471 / 0.108; at 400 / 700 / 1,000, seed
# 0: 0.390 / 0.275 / 0.532): its loss sits near ln 2 (every output near 0, where its gradient,
# proportional to the other outputs, vanishes) for hundreds of iterations before it leaves, at
# a point that moves with the lr schedule and the seed. On CIFAR-10 it leaves at about half the
# quick schedule (README, leaderboard).
ITERATIONS = {"orthohash": 400, "hashnet": 700}  # default 150
SHORT_OF_LSH = {"dpsh"}


@pytest.mark.parametrize("name", [  # in the default suite: 2-10 s each on two idle cores
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="short of LSH + 0.2 on digits: SHORT_OF_LSH"))
    if n in SHORT_OF_LSH else n for n in END_TO_END])
def test_end_to_end_on_digits_beats_lsh(name, digits, lsh_map):
    ds, split = digits
    h = get_hasher(name, n_bits=12, seed=0, schedule=ITERATIONS.get(name, 150), batch_size=64, device="cpu",
                   progress=False)
    h.fit(ds.images[split.train], ds.labels[split.train])
    assert np.isfinite(h.losses_).all()
    got = score(h, ds, split, ds.images)
    assert got > lsh_map + 0.2, (name, got, lsh_map)


@pytest.mark.parametrize("name", END_TO_END)
def test_end_to_end_trains_its_loss(name, digits):
    """Fast: every loss runs through the DSH network's training loop and lowers its loss."""
    ds, split = digits
    h = get_hasher(name, n_bits=12, seed=0, schedule=12, batch_size=32, device="cpu", progress=False)
    h.fit(ds.images[split.train], ds.labels[split.train])
    assert np.isfinite(h.losses_).all() and h.losses_[-3:].mean() < h.losses_[:2].mean(), h.losses_


def test_a_loss_that_needs_another_start_gets_it(digits, monkeypatch):
    """The loss's declared start (``head_init_std``, ``lr_scale``) reaches the network and the
    schedule, and nothing else does."""
    from hashbench import nets

    ds, split = digits
    seen, new_net, train = {}, nets.new_net, nets.train

    def spy_new_net(*args, **kw):
        net = new_net(*args, **kw)
        seen["head"] = (kw.get("head_std"), net.head.weight.detach().std().item(), net.head.bias.detach().abs().max())
        return net

    def spy_train(net, images, loss, labels, schedule, **kw):
        seen["lr"] = schedule.lr
        return train(net, images, loss, labels, schedule, **kw)

    monkeypatch.setattr(nets, "new_net", spy_new_net)
    monkeypatch.setattr(nets, "train", spy_train)
    for name, std, lr in (("hashnet", 0.01, 1e-4), ("csq", 0.01, 1e-3), ("greedyhash", 0.01, 1e-3),
                          ("dpsh", 0.01, 1e-3), ("orthohash", 0.01, 1e-3), ("dsh", None, 1e-3)):
        h = get_hasher(name, n_bits=12, seed=0, schedule=2, batch_size=16, device="cpu", progress=False)
        h.fit(ds.images[split.train], ds.labels[split.train])
        head_std, drawn, bias = seen["head"]
        assert head_std == std and seen["lr"] == pytest.approx(lr), name
        if std is not None:
            assert abs(drawn - std) < 0.2 * std and bias == 0


@pytest.mark.parametrize("name", HEADS)
def test_heads_on_pixel_features_beat_lsh(name, digits, lsh_map):
    ds, split = digits
    pixels = ds.images.reshape(len(ds.images), -1).astype(np.float64)
    h = get_hasher(name, n_bits=12, seed=0, schedule=300).fit(pixels[split.train], ds.labels[split.train])
    got = score(h, ds, split, pixels)
    assert got > lsh_map + 0.2, (name, got, lsh_map)


@pytest.mark.parametrize("name", END_TO_END + HEADS)
def test_registered_with_the_loss_defaults(name):
    cls = HASHERS[name]
    loss = LOSSES[cls.loss]
    own = ("n_bits", "n_classes", "seed")
    ours = {k: v for k, v in cls().get_params(deep=False).items() if k in inspect.signature(loss).parameters
            and k not in own}
    theirs = {k: p.default for k, p in inspect.signature(loss).parameters.items() if k not in own}
    assert ours == theirs


def test_seed_reaches_the_loss_and_heads_take_multi_hot_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 10))
    y = rng.random((60, 3)) < 0.4
    a, b, c = (get_hasher("greedyhash-head", n_bits=6, seed=s, schedule=5).fit(X, y) for s in (0, 0, 1))
    assert a.loss_.classifier.weight.shape == (3, 6)
    np.testing.assert_array_equal(a.encode(X), b.encode(X))
    assert not np.array_equal(a.weight_, c.weight_)
    for name in ("dpsh-head", "hashnet-head", "csq-head", "orthohash-head", "dsh-head"):
        h = get_hasher(name, n_bits=6, seed=0, schedule=20).fit(X, y)
        assert np.isfinite(h.losses_).all(), name

