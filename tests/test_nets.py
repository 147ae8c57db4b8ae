"""The DSH network, loss and training loop against direct computations of what the authors'
Caffe release does (see hashbench/nets/)."""

import math
import sys

import numpy as np
import pytest
import torch

from hashbench import nets
from hashbench.errors import InputError


def direct_lrn(x, size=3, alpha=5e-5, beta=0.75):
    """Caffe WITHIN_CHANNEL LRN by loops: zero-padded window, always divided by size^2."""
    _n, _c, h, w = x.shape
    r = size // 2
    out = np.empty_like(x)
    for i in range(h):
        for j in range(w):
            win = x[:, :, max(i - r, 0) : i + r + 1, max(j - r, 0) : j + r + 1]
            out[:, :, i, j] = x[:, :, i, j] / (1 + alpha * (win**2).sum(axis=(2, 3)) / size**2) ** beta
    return out


def direct_caffe_avg_pool(x, k=3, s=2):
    """Caffe AVE pooling, pad 0, ceil rounding: windows clipped at the border, divided by the
    clipped size."""
    n, c, h, w = x.shape
    ph, pw = math.ceil((h - k) / s) + 1, math.ceil((w - k) / s) + 1
    out = np.empty((n, c, ph, pw))
    for i in range(ph):
        for j in range(pw):
            win = x[:, :, i * s : min(i * s + k, h), j * s : min(j * s + k, w)]
            out[:, :, i, j] = win.mean(axis=(2, 3))
    return out


def direct_loss(b, labels, m, alpha):
    """The released objective pair by pair (hashing_loss_layer.cpp, gradient-consistent form)."""
    n = b.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            sim = bool((labels[i] & labels[j]).any()) if labels.ndim == 2 else labels[i] == labels[j]
            d = ((b[i] - b[j]) ** 2).sum()
            total = total + (0.5 * d if sim else 0.5 * torch.clamp(m - d, min=0))
    reg = (b.abs() - 1).abs().sum()
    return total / (n * (n - 1)) + alpha * reg / n


def caffe_gradient(b, labels, m, alpha):
    """The gradient exactly as hashing_loss_layer.cpp's Forward_cpu writes it."""
    b = b.detach().numpy().astype(np.float64)
    n = b.shape[0]
    g = np.zeros_like(b)
    a, beta = 1.0 / (n * (n - 1)), 1.0 / n
    for i in range(n):
        for j in range(i + 1, n):
            sim = labels[i] == labels[j]
            diff = b[i] - b[j]
            if sim:
                g[i] += a * diff
                g[j] -= a * diff
            elif m - diff @ diff > 0:
                g[i] -= a * diff
                g[j] += a * diff
        v = b[i]
        g[i] += beta * alpha * np.where((v >= 1) | ((v <= 0) & (v >= -1)), 1.0, -1.0)
    return g


def test_lrn_matches_direct_within_channel_computation():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 150, (2, 3, 5, 7))
    got = nets.WithinChannelLRN()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, direct_lrn(x), rtol=1e-12)
    # and it is not torch's across-channel LRN
    across = torch.nn.LocalResponseNorm(3, 5e-5, 0.75, 1.0)(torch.from_numpy(x)).numpy()
    assert np.abs(across - got).max() > 1e-3


def test_lrn_gradient_and_channels_last():
    x = (torch.randn(2, 3, 4, 5, dtype=torch.float64) * 200).requires_grad_()
    assert torch.autograd.gradcheck(nets.WithinChannelLRN(), (x,))
    xc = torch.randn(2, 4, 6, 6).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = nets.WithinChannelLRN()(xc)
    y.sum().backward()
    assert y.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(y.detach().numpy(), direct_lrn(xc.detach().numpy()), rtol=1e-5)


@pytest.mark.parametrize("size, expected", [(32, [16, 8, 4]), (64, [32, 16, 8]), (8, [4, 2, 1])])
def test_pooled_sizes_round_up_like_caffe(size, expected):
    net = nets.new_net(12, size, seed=0)
    seen = []
    for pool in (net.pool1, net.pool2, net.pool3):
        pool.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    out = net(torch.zeros(2, size, size, 3))
    assert seen == expected
    assert out.shape == (2, 12)
    assert net.fc.in_features == 64 * expected[-1] ** 2
    assert [nets.caffe_pooled_size(s) for s in (size, expected[0], expected[1])] == expected


def test_average_pooling_divides_by_the_clipped_window():
    """The network's own AVE pooling layers (pool2, pool3 of the release), on the inputs the
    forward pass gives them (16x16 and 8x8: the last window of each row hangs over the edge),
    against Caffe's rule by loops."""
    from hashbench.nets import DSHNet

    net = DSHNet(12, image_size=32)
    pools = [m for m in net.modules() if isinstance(m, torch.nn.AvgPool2d)]
    assert len(pools) == 2  # the trunk's two AVE pools; the first pool is MAX
    seen = []
    for pool in pools:
        pool.register_forward_hook(lambda m, args, out: seen.append((args[0].detach(), out.detach())))
    images = torch.from_numpy(np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32))
    with torch.no_grad():
        net.features(images)
    assert [tuple(x.shape[2:]) for x, _ in seen] == [(16, 16), (8, 8)]
    for x, out in seen:
        want = direct_caffe_avg_pool(x.double().numpy())
        assert out.shape == want.shape
        np.testing.assert_allclose(out.double().numpy(), want, rtol=1e-5, atol=1e-4 * np.abs(want).max())


def test_xavier_init_is_caffes_and_seeded():
    a, b, c = nets.new_net(12, 32, seed=3), nets.new_net(12, 32, seed=3), nets.new_net(12, 32, seed=4)
    for (name, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters(), strict=True):
        assert torch.equal(p, q)
        if name.endswith("bias"):
            assert not p.any()
            continue
        assert not torch.equal(p, r)
        bound = math.sqrt(3 / p[0].numel())
        assert p.abs().max() <= bound
        assert abs(p.std().item() - bound / math.sqrt(3)) < 0.1 * bound  # U(-a, a): std a/sqrt(3)


def test_head_std_draws_the_output_layer_alone():
    plain, small = nets.new_net(12, 32, seed=3), nets.new_net(12, 32, seed=3, head_std=0.01)
    for (name, p), q in zip(plain.named_parameters(), small.parameters(), strict=True):
        assert torch.equal(p, q) == (name != "head.weight")  # xavier leaves biases 0 too
    assert not small.head.bias.any()
    w = small.head.weight
    assert abs(w.mean().item()) < 0.001 and abs(w.std().item() - 0.01) < 0.001  # 6,000 draws of N(0, 0.01)
    assert torch.equal(w, nets.new_net(12, 32, seed=3, head_std=0.01).head.weight)  # seeded


@pytest.mark.parametrize("multilabel", [False, True])
def test_loss_value_and_gradient_match_the_per_pair_formula(multilabel):
    rng = np.random.default_rng(2)
    n, k = 9, 5
    labels = rng.random((n, 4)) < 0.35 if multilabel else rng.integers(0, 3, n)
    b0 = torch.from_numpy(rng.normal(0, 1.5, (n, k)))
    b1 = b0.clone().requires_grad_()
    b2 = b0.clone().requires_grad_()
    m = 2.0 * k
    got = nets.dsh_loss(b1, torch.from_numpy(labels), m, 0.01)
    ref = direct_loss(b2, labels, m, 0.01)
    assert abs(got.item() - ref.item()) < 1e-12
    got.backward()
    ref.backward()
    np.testing.assert_allclose(b1.grad.numpy(), b2.grad.numpy(), atol=1e-14)
    # both hinge branches and both similarity values occur
    d = torch.cdist(b0, b0) ** 2
    sim = nets.similarity(torch.from_numpy(labels))
    assert sim.any() and (~sim).any() and (d[~sim] < m).any() and (d[~sim] > m).any()


def test_loss_gradient_is_the_released_caffe_gradient():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 10)
    b = torch.from_numpy(rng.normal(0, 1.2, (10, 4))).requires_grad_()
    nets.dsh_loss(b, torch.from_numpy(labels), 8.0, 0.1).backward()
    np.testing.assert_allclose(b.grad.numpy(), caffe_gradient(b, labels, 8.0, 0.1), atol=1e-14)


def test_sigmoid_relaxed_loss_is_the_pair_loss_on_sigmoid_outputs_without_regulariser():
    rng = np.random.default_rng(3)
    labels = torch.from_numpy(rng.integers(0, 2, 6))
    u = torch.from_numpy(rng.normal(0, 2, (6, 4)))
    got = nets.dsh_loss(u, labels, 2.0, alpha=0.5, relax="sigmoid")
    ref = direct_loss(torch.sigmoid(u), labels.numpy(), 2.0, alpha=0.0)
    assert abs(got.item() - ref.item()) < 1e-12
    with pytest.raises(InputError, match="relax"):
        nets.dsh_loss(u, labels, 2.0, 0.01, relax="tanh")


def test_batches_are_per_epoch_permutations_wrapping_across_epochs():
    n, bs = 10, 4
    seq = np.concatenate([nets.batch_indices(n, bs, it, seed=7) for it in range(5)])  # 20 = 2 epochs
    assert sorted(seq[:10]) == list(range(10)) and sorted(seq[10:]) == list(range(10))
    assert not np.array_equal(seq[:10], seq[10:])
    assert np.array_equal(nets.batch_indices(n, bs, 2, seed=7), seq[8:12])
    assert not np.array_equal(nets.batch_indices(n, bs, 0, seed=8), seq[:4])
    flips = np.concatenate([nets.mirror_mask(200, it, 0) for it in range(10)])
    assert 0.45 < flips.mean() < 0.55


def test_schedules():
    paper = nets.get_schedule("paper")
    assert (paper.optimizer, paper.iterations, paper.weight_decay) == ("sgd", 70_000, 0.004)
    assert [paper.lr_at(i) for i in (0, 59_999, 60_000, 65_000, 69_999)] == pytest.approx(
        [1e-3, 1e-3, 1e-4, 1e-5, 1e-5]
    )
    ft = nets.get_schedule("paper", finetune=True)
    assert ft.iterations == 30_000
    assert [ft.lr_at(i) for i in (0, 3_999, 4_000, 29_999)] == pytest.approx([1e-4, 1e-4, 6e-5, 1e-4 * 0.6**7])
    short = nets.get_schedule(80)
    quick = nets.get_schedule("quick")
    assert short.iterations == 80 and short.optimizer == quick.optimizer
    assert short.milestones == tuple(round(m * 80 / quick.iterations) for m in quick.milestones)
    sgd = nets.get_schedule("paper:7000")  # the release's solver, a tenth as long
    assert (sgd.optimizer, sgd.iterations, sgd.weight_decay, sgd.milestones) == ("sgd", 7_000, 0.004, (6_000, 6_500))
    assert nets.get_schedule("paper:300", finetune=True).step == 40  # 4,000 of 30,000
    for bad in ("fast", 0, -3, 2.5, True, "paper:", "paper:0", "paper:x"):
        with pytest.raises(InputError, match="schedule"):
            nets.get_schedule(bad)


def test_parameter_groups_follow_the_prototxt_multipliers():
    net = nets.new_net(12, 32, 0)
    for new_head in (False, True):
        groups = nets.param_groups(net, nets.get_schedule("paper"), new_head)
        names = [n for n, _ in net.named_parameters()]
        for name, g in zip(names, groups, strict=True):
            bias = name.endswith("bias")
            head = new_head and name.startswith("head.")
            assert g["lr_mult"] == (2 if bias else 1) * (10 if head else 1)
            assert g["weight_decay"] == (0 if bias else 0.004)


def _tiny_problem(n=60, size=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    images = rng.integers(0, 256, (n, size, size, 3)).astype(np.uint8)
    images[..., 0] = np.clip(images[..., 0] * 0.3 + labels[:, None, None] * 80, 0, 255).astype(np.uint8)
    return images, labels


def _loss(out, y, progress):
    return nets.dsh_loss(out, y, 8.0, 0.01)


SGD = nets.Schedule("sgd", 1e-3, 12, milestones=(8,), weight_decay=0.004)


@pytest.mark.parametrize("schedule", [SGD, nets.get_schedule(12)], ids=["sgd", "adam"])
def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path, schedule):
    images, labels = _tiny_problem()
    straight = nets.new_net(4, 8, seed=1)
    losses = nets.train(straight, images, _loss, labels, schedule, seed=2, batch_size=20, device="cpu", progress=False)

    class Interrupt(Exception):
        pass

    calls = []

    def dying_loss(out, y, progress):
        calls.append(1)
        if len(calls) == 8:
            raise Interrupt
        return _loss(out, y, progress)

    ck = tmp_path / "run.ckpt"
    with pytest.raises(Interrupt):
        nets.train(nets.new_net(4, 8, seed=1), images, dying_loss, labels, schedule, seed=2, batch_size=20,
                   device="cpu", checkpoint=ck, checkpoint_every=5, progress=False)
    assert torch.load(ck, weights_only=True)["iteration"] == 5
    resumed = nets.new_net(4, 8, seed=99)  # different init: everything must come from the file
    losses2 = nets.train(resumed, images, _loss, labels, schedule, seed=2, batch_size=20, device="cpu",
                         checkpoint=ck, checkpoint_every=5, progress=False)
    np.testing.assert_array_equal(losses, losses2)
    for p, q in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    # a finished checkpoint is loaded without training; a different run refuses it
    again = nets.new_net(4, 8, seed=5)
    nets.train(again, images, _loss, labels, schedule, seed=2, batch_size=20, device="cpu", checkpoint=ck,
               progress=False)
    assert torch.equal(again.head.weight, straight.head.weight)
    with pytest.raises(InputError, match="checkpoint"):
        nets.train(nets.new_net(4, 8, 0), images, _loss, labels, schedule, seed=3, batch_size=20,
                   device="cpu", checkpoint=ck, progress=False)


def test_training_lowers_the_loss_and_is_seeded():
    images, labels = _tiny_problem(n=90)
    sched = nets.get_schedule(60)
    runs = []
    for _ in range(2):
        net = nets.new_net(6, 8, seed=0)
        net.mean.copy_(torch.from_numpy(images.mean(0).astype(np.float32)))
        runs.append(nets.train(net, images, nets.DSHLoss(6, 3, margin=12.0), labels, sched,
                               seed=0, batch_size=30, device="cpu", progress=False))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert runs[0][-10:].mean() < 0.7 * runs[0][:3].mean()


def test_save_load_and_finetune_start(tmp_path):
    net = nets.new_net(12, 8, seed=0)
    net.mean.fill_(17.0)
    path = tmp_path / "m12.pt"
    nets.save_state(net, path)
    state = nets.load_state(path)
    rebuilt = nets.DSHNet.from_state_dict(state)
    x = torch.rand(3, 8, 8, 3) * 255
    assert torch.equal(rebuilt(x), net(x))
    ft = nets.finetune_net(state, 48, seed=1)
    for name, p in ft.state_dict().items():
        if name.startswith("head."):
            assert p.shape[0] == 48
        else:
            assert torch.equal(p, state[name]), name
    assert torch.equal(ft.features(x), net.features(x))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    for p in (bad, tmp_path / "missing.pt"):
        with pytest.raises(InputError):
            nets.load_state(p)


def test_apply_outputs_and_features():
    net = nets.new_net(5, 8, seed=0)
    images = np.random.default_rng(0).integers(0, 256, (7, 8, 8, 3)).astype(np.uint8)
    out = nets.apply(net, images, batch_size=3, device="cpu")
    feats = nets.apply(net, images, "features", batch_size=3, device="cpu")
    assert out.shape == (7, 5) and feats.shape == (7, nets.FC_DIM) and out.dtype == np.float32
    assert (feats >= 0).all()
    with torch.no_grad():
        np.testing.assert_allclose(out, net(torch.from_numpy(images.astype(np.float32))).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_retain_freed_memory_is_accepted_by_glibc():
    # both settings must be accepted (mallopt returns 0 for a value it refuses, e.g. > 32 MiB)
    assert nets.retain_freed_memory()


@pytest.mark.slow
def test_adam_collapses_the_sigmoid_relaxed_loss_and_sgd_trains_it(data_root):
    """Why Table 1's sigmoid models train with the release's SGD (README, supplementary
    Table 1): 20 iterations on 4,000 CIFAR-10 images. Adam's first steps take the outputs
    where the sigmoid is flat (one code for every test image); SGD keeps training."""
    from dataclasses import replace

    from hashbench.datasets import load_dataset

    ds = load_dataset("cifar10", data_root)
    probe = ds.images[50_000:50_200]
    solvers = {"adam": nets.get_schedule(20), "sgd": replace(nets.get_schedule("paper:20"), milestones=())}
    found = {}
    for name, schedule in solvers.items():
        net = nets.new_net(12, 32, 0)
        losses = nets.train(net, ds.images[:4000], nets.DSHLoss(12, 10, margin=6.0, alpha=0.0, relax="sigmoid"),
                            ds.labels[:4000], schedule, seed=0, device="cpu", progress=False)
        out = nets.apply(net, probe, "outputs", device="cpu")
        found[name] = (np.abs(out).max(), len({tuple(r) for r in out > 0}), losses)
    assert found["adam"][0] > 100 and found["adam"][1] == 1
    assert found["adam"][2][-1] >= found["adam"][2][0]  # nothing learned
    assert found["sgd"][0] < 100 and found["sgd"][1] > 10
    assert found["sgd"][2][-5:].mean() < found["sgd"][2][:5].mean()
