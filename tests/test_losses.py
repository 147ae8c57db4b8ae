"""The loss contract (hashbench.nets.losses) and the generic deep hasher built on it: DSH as
a registered loss gives the very codes of a training wired by hand; a loss with its own
parameters trains them, saves them in the checkpoint and resumes them; the progress a
continuation schedule reads; a loss's own code rule; the registry's refusals."""

from typing import ClassVar

import numpy as np
import pytest
import torch

from hashbench import nets
from hashbench.codes import pack, sign
from hashbench.errors import InputError, NameClash
from hashbench.hashers import HASHERS, ORIGINS, register
from hashbench.hashers.deep import DeepHasher
from hashbench.nets.losses import LOSSES, HashLoss, get_loss, register_loss
from hashbench.params import Interval


def _tiny(n=60, size=8, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    X[..., 0] = np.clip(X[..., 0] * 0.3 + y[:, None, None] * 80, 0, 255).astype(np.uint8)
    return X, y


FAST = {"schedule": 6, "batch_size": 16, "device": "cpu", "progress": False}


@pytest.mark.parametrize("params", [{}, {"alpha": 0.1}, {"relax": "sigmoid", "margin": 2.0, "schedule": "paper:6"}],
                         ids=["released", "alpha", "sigmoid"])
def test_dsh_through_the_loss_registry_equals_training_wired_by_hand(params, tmp_path):
    """The ``dsh`` method (DeepHasher + the ``dsh`` loss) against the pre-refactor recipe spelled
    out: the same network init, mean image, ``nets.train`` on the bare loss function, the sign
    rule. Same losses, bitwise the same outputs and codes, the checkpoint config DSH
    checkpoints always held (so models trained before the refactor load)."""
    X, y = _tiny()
    params = {**FAST, **params}
    ck = tmp_path / "m.ckpt"
    h = HASHERS["dsh"](n_bits=8, seed=3, checkpoint=ck, **params).fit(X, y)

    net = nets.new_net(8, 8, 3)
    net.mean.copy_(torch.from_numpy(X.mean(0, dtype=np.float64).astype(np.float32)))
    relax, alpha = params.get("relax"), params.get("alpha", 0.01)
    margin = params.get("margin", 16.0)
    losses = nets.train(net, X, lambda out, t, progress: nets.dsh_loss(out, t, margin, alpha, relax), y,
                        nets.get_schedule(params["schedule"]), seed=3, batch_size=16, device="cpu", progress=False)
    np.testing.assert_array_equal(h.losses_, losses)
    out = nets.apply(net, X, device="cpu")
    np.testing.assert_array_equal(h.project(X), out)
    np.testing.assert_array_equal(h.encode(X), pack(sign(out)))
    config = torch.load(ck, weights_only=True)["config"]
    assert {k: config[k] for k in ("kind", "n_bits", "alpha", "relax", "margin", "finetune")} == {
        "kind": "dsh", "n_bits": 8, "alpha": alpha, "relax": str(relax), "margin": margin, "finetune": False}
    assert "loss" not in torch.load(ck, weights_only=True)  # a loss without parameters adds nothing


class _Probe(HashLoss):
    """A test loss: DSH's pair term plus a softmax classifier on the outputs (a parameter of
    the loss), recording the progress values it is given; its code rule flips the sign."""

    seen: ClassVar[list] = []

    def __init__(self, n_bits, n_classes, weight=1.0):
        super().__init__(n_bits, n_classes, weight=weight)
        self.classifier = torch.nn.Linear(n_bits, n_classes)
        self.weight = float(weight)

    def forward(self, outputs, labels, progress):
        if torch.is_grad_enabled():
            type(self).seen.append(progress)
        ce = torch.nn.functional.cross_entropy(self.classifier(outputs), labels)
        return nets.dsh_loss(outputs, labels, 2.0 * self.n_bits, 0.0) + self.weight * ce

    def codes(self, outputs):
        return torch.where(outputs < 0, 1.0, -1.0)


@pytest.fixture
def probe_method():
    """``probe`` registered as a loss and as a DeepHasher method (the documented few lines),
    removed again afterwards."""
    register_loss("probe")(_Probe)

    class ProbeHasher(DeepHasher):
        label = "Probe"
        loss = "probe"
        _parameter_constraints: ClassVar[dict] = {"weight": [Interval(float, 0, None)]}

        def __init__(self, n_bits=12, seed=0, weight=1.0, schedule="quick", batch_size=200, device="auto",
                     init_from=None, checkpoint=None, progress=True):
            super().__init__(n_bits, seed, schedule, batch_size, device, init_from, checkpoint, progress)
            self.weight = weight

    register("probe")(ProbeHasher)
    _Probe.seen.clear()
    yield ProbeHasher
    for registry in (LOSSES, HASHERS, ORIGINS):
        registry.pop("probe", None)


def test_the_method_gives_the_loss_its_parameters_and_trains_and_saves_the_losss_own(probe_method, tmp_path):
    X, y = _tiny()
    torch.manual_seed(0)  # the probe's classifier is initialised by torch's global generator
    initial = _Probe(6, 3).classifier.weight.detach().clone()
    torch.manual_seed(0)
    ck = tmp_path / "p.ckpt"
    h = probe_method(n_bits=6, seed=1, weight=0.5, checkpoint=ck, **FAST).fit(X, y)
    assert h.loss_.weight == 0.5  # the method's own parameter reached the loss
    assert _Probe.seen == [i / 6 for i in range(6)]  # progress = iteration / iterations
    assert not torch.equal(h.loss_.classifier.weight, initial)  # the optimiser trained it
    saved = torch.load(ck, weights_only=True)
    assert torch.equal(saved["loss"]["classifier.weight"], h.loss_.classifier.weight)
    n_net = len(list(nets.new_net(6, 8, 1).parameters()))
    assert len(saved["optimizer"]["param_groups"]) == n_net + 2
    assert {k: saved["config"][k] for k in ("kind", "n_bits", "weight", "finetune")} == {
        "kind": "probe", "n_bits": 6, "weight": 0.5, "finetune": False}
    again = probe_method(n_bits=6, seed=1, weight=0.5, checkpoint=ck, **FAST).fit(X, y)
    assert again.fit_mode_ == "loaded" and _Probe.seen == [i / 6 for i in range(6)]  # nothing trained
    np.testing.assert_array_equal(again.encode(X), h.encode(X))
    assert torch.equal(again.loss_.classifier.weight, h.loss_.classifier.weight)
    with pytest.raises(InputError, match="different training run"):
        probe_method(n_bits=6, seed=1, weight=0.25, checkpoint=ck, **FAST).fit(X, y)


def test_resumed_training_of_a_loss_with_parameters_is_the_uninterrupted_one(probe_method, tmp_path):
    X, y = _tiny()
    schedule = nets.get_schedule(6)

    def run(checkpoint=None, die_at=None):
        torch.manual_seed(0)  # the same classifier init for every run
        loss = _Probe(6, 3)
        net = nets.new_net(6, 8, 1)
        net.mean.fill_(100.0)
        if die_at is not None:
            original = loss.forward

            def dying(outputs, labels, progress):
                if torch.is_grad_enabled() and round(progress * 6) == die_at:
                    raise KeyboardInterrupt
                return original(outputs, labels, progress)

            loss.forward = dying
        losses = nets.train(net, X, loss, y, schedule, seed=1, batch_size=16, device="cpu", checkpoint=checkpoint,
                            checkpoint_every=3, progress=False)
        return net, loss, losses

    net, loss, losses = run()
    ck = tmp_path / "r.ckpt"
    with pytest.raises(KeyboardInterrupt):
        run(ck, die_at=4)
    torch.manual_seed(123)  # a different classifier init: its state must come from the checkpoint
    resumed_loss = _Probe(6, 3)
    resumed = nets.new_net(6, 8, 99)
    losses2 = nets.train(resumed, X, resumed_loss, y, schedule, seed=1, batch_size=16, device="cpu",
                         checkpoint=ck, checkpoint_every=3, progress=False)
    np.testing.assert_array_equal(losses, losses2)
    assert torch.equal(resumed_loss.classifier.weight, loss.classifier.weight)
    assert torch.equal(resumed.head.weight, net.head.weight)


def test_a_loss_code_rule_is_the_methods_code_rule(probe_method):
    X, y = _tiny()
    h = probe_method(n_bits=6, seed=0, **FAST).fit(X, y)
    out = h.project(X)
    np.testing.assert_array_equal(h.encode(X), pack(out < 0))  # the probe's rule, not the sign rule
    assert h.fit_mode_ == "trained" and h.get_params()["weight"] == 1.0


def test_default_code_rule_is_the_sign_rule_zero_included():
    loss = get_loss("dsh", 4, 2)
    out = torch.tensor([[0.0, -0.0, 1e-30, -1e-30]])
    np.testing.assert_array_equal(loss.codes(out).numpy(), sign(out.numpy()))


def test_registry_refuses_clashes_strangers_and_unknown_names():
    with pytest.raises(NameClash, match="dsh"):
        register_loss("dsh")(_Probe)
    with pytest.raises(TypeError, match="HashLoss"):
        register_loss("not-a-loss")(object)
    assert "not-a-loss" not in LOSSES
    with pytest.raises(InputError, match=r"unknown loss 'nope'.*dsh"):
        get_loss("nope", 4, 2)
    with pytest.raises(InputError, match="margin"):
        get_loss("dsh", 4, 2, relax="sigmoid")
    assert get_loss("dsh", 6, 2).config() == {"alpha": 0.01, "relax": "None", "margin": 12.0}


@pytest.mark.parametrize("multi_hot", [False, True], ids=["class-ids", "multi-hot"])
def test_a_loss_receives_int64_class_ids_or_float32_multi_hot(multi_hot):
    X, y = _tiny(n=20)
    labels = np.eye(3, dtype=bool)[y] if multi_hot else y
    seen = []

    def loss(outputs, batch_labels, progress):
        seen.append((batch_labels.dtype, tuple(batch_labels.shape)))
        return nets.dsh_loss(outputs, batch_labels, 8.0, 0.01)

    nets.train(nets.new_net(4, 8, 0), X, loss, labels, nets.get_schedule(2), seed=0, batch_size=10, device="cpu",
               progress=False, held_out=(X[:6], labels[:6]))
    expected = (torch.float32, (10, 3)) if multi_hot else (torch.int64, (10,))
    assert seen[0] == expected and {d for d, _ in seen} == {expected[0]}  # training and held-out batches
