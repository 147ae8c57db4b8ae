"""The deep hashing losses (hashbench.nets.losses): each one's value and gradient on a tiny
case worked out by hand (plain Python arithmetic, not the module's formula), and, where the
gradient bypasses autograd (GreedyHash's straight-through sign), against finite differences."""

import math

import pytest
import torch

from hashbench.nets.losses import csq, greedyhash, hashnet
from hashbench.nets.losses.csq import CSQLoss, hash_centres, sylvester_hadamard
from hashbench.nets.losses.dpsh import DPSHLoss
from hashbench.nets.losses.greedyhash import GreedyHashLoss
from hashbench.nets.losses.hashnet import HashNetLoss, continuation_scale
from hashbench.nets.losses.orthohash import OrthoHashLoss


def softplus(x):
    return math.log1p(math.exp(x))


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def value_and_grad(loss, z, labels, progress=0.0):
    z = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    value = loss(z, labels, progress)
    value.backward()
    return value.item(), z.grad.numpy()


def test_dpsh_hand_case():
    eta = 0.5
    u = [[1.0, 0.0], [0.0, 2.0]]
    labels = torch.tensor([3, 3])  # one similar pair (and each item with itself)
    value, grad = value_and_grad(DPSHLoss(2, 4, eta=eta), u, labels)
    theta = [[0.5, 0.0], [0.0, 2.0]]  # u_i . u_j / 2
    nll = sum(softplus(theta[i][j]) - theta[i][j] for i in range(2) for j in range(2)) / 4
    quant = ((1 - 1) ** 2 + (1 - 0) ** 2 + (1 - 0) ** 2 + (1 - 2) ** 2) / 2  # sign(0) = +1
    assert value == pytest.approx(nll + eta * quant, rel=1e-12)
    # gradient through the batch side only (the release's bank side is a constant)
    for i in range(2):
        for d in range(2):
            g = sum((sigmoid(theta[i][j]) - 1) * u[j][d] / 2 for j in range(2)) / 4
            g += eta * 2 * (u[i][d] - 1) / 2
            assert grad[i, d] == pytest.approx(g, rel=1e-12)


def test_dpsh_dissimilar_pair_pushes_apart():
    z = torch.tensor([[1.0, 1.0], [1.0, 1.0]], requires_grad=True)
    DPSHLoss(2, 2, eta=0)(z, torch.tensor([0, 1]), 0).backward()
    # moving either output along the other raises theta on the dissimilar pair: gradient > 0 along it
    assert (z.grad.sum(1) > 0).all()


def test_hashnet_continuation_schedule():
    assert continuation_scale(0.0) == 1.0
    assert continuation_scale(0.0199) == 1.0  # release iteration 199: not yet recomputed
    assert continuation_scale(0.02) == pytest.approx(math.sqrt(1 + 0.005 * 200))
    assert continuation_scale(0.5) == pytest.approx(math.sqrt(26.0))
    assert continuation_scale(1.0) == pytest.approx(math.sqrt(51.0))


def test_hashnet_one_pair_by_hand():
    z1, z2 = [1.0, 0.0], [0.5, 0.5]
    loss = HashNetLoss(2, 10)  # alpha = 10 / 2
    value, grad = value_and_grad(loss, [z1, z2], torch.tensor([4, 4]), progress=0.5)
    beta = math.sqrt(26.0)
    h1, h2 = [math.tanh(beta * v) for v in z1], [math.tanh(beta * v) for v in z2]
    d = 5 * (h1[0] * h2[0] + h1[1] * h2[1])
    assert value == pytest.approx(softplus(d) - d, rel=1e-12)
    # dL/dz1 = (sigmoid(d) - 1) * 5 * h2 * beta (1 - h1^2)
    for k in range(2):
        assert grad[0, k] == pytest.approx((sigmoid(d) - 1) * 5 * h2[k] * beta * (1 - h1[k] ** 2), rel=1e-9, abs=1e-15)
        assert grad[1, k] == pytest.approx((sigmoid(d) - 1) * 5 * h1[k] * beta * (1 - h2[k] ** 2), rel=1e-9, abs=1e-15)


def test_hashnet_weights_similar_pairs_by_class_num():
    # halves (a, b) x (c, d): labels a=0, b=1 | c=0, d=0 -> similar pairs (a, c), (a, d)
    z = [[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2], [0.2, 0.2]]
    labels = torch.tensor([0, 1, 0, 0])
    value, _ = value_and_grad(HashNetLoss(2, 10, alpha=1.0, class_num=3.0), z, labels)
    h = [[math.tanh(v) for v in row] for row in z]
    total, weight = 0.0, 0.0
    for i in range(2):
        for j in range(2, 4):
            d = h[i][0] * h[j][0] + h[i][1] * h[j][1]
            s = int(labels[i] == labels[j])
            w = 3.0 if s else 1.0
            total += w * (softplus(d) - s * d)
            weight += w
    assert value == pytest.approx(total / weight, rel=1e-12)


def test_hashnet_threshold_branch():
    z = torch.tensor([[10.0, 10.0], [10.0, 10.0]])
    loss = HashNetLoss(2, 2, alpha=20.0)  # dot = 40 > 15: the linear branch, finite
    assert loss(z, torch.tensor([0, 1]), 1.0).item() == pytest.approx(40.0, rel=1e-5)
    assert loss(z, torch.tensor([0, 0]), 1.0).item() == pytest.approx(0.0, abs=1e-6)


def greedy_loss(w):
    loss = GreedyHashLoss(2, 3, alpha=0.1)
    with torch.no_grad():
        loss.classifier.weight.copy_(torch.tensor(w))
    return loss.double()


def test_greedyhash_hand_case():
    w = [[1.0, 0.0], [0.0, 1.0], [0.5, -0.5]]
    h = [0.5, -2.0]
    value, grad = value_and_grad(greedy_loss(w), [h], torch.tensor([0]))
    b = [1.0, -1.0]
    logits = [w[c][0] * b[0] + w[c][1] * b[1] for c in range(3)]  # [1, -1, 1]
    lse = math.log(sum(math.exp(v) for v in logits))
    penalty = (abs(abs(0.5) - 1) ** 3 + abs(abs(-2.0) - 1) ** 3) / 2  # (0.125 + 1) / 2
    assert value == pytest.approx(lse - logits[0] + 0.1 * penalty, rel=1e-12)
    p = [math.exp(v - lse) for v in logits]
    # straight-through: dL/dh = dCE/db + alpha dpenalty/dh
    dpen = [3 * (0.5 - 1) ** 2 * -1 * 1 / 2, 3 * (2 - 1) ** 2 * 1 * -1 / 2]
    for k in range(2):
        dce = sum(w[c][k] * (p[c] - (c == 0)) for c in range(3))
        assert grad[0, k] == pytest.approx(dce + 0.1 * dpen[k], rel=1e-12)


def test_greedyhash_straight_through_against_finite_differences():
    torch.manual_seed(0)
    loss = GreedyHashLoss(6, 4, alpha=0.3, seed=1).double()
    h = torch.randn(5, 6, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 1])
    hv = h.clone().requires_grad_(True)
    loss(hv, y, 0.0).backward()
    b = torch.where(h >= 0, 1.0, -1.0).double()

    def ce_of_codes(bb):  # the classifier loss as a function of the codes themselves
        return torch.nn.functional.cross_entropy(loss.classifier(bb), y).item()

    def penalty(hh):
        return 0.3 * (hh.abs() - 1).abs().pow(3).mean().item()

    eps = 1e-6
    fd = torch.zeros_like(h)
    for i in range(5):
        for k in range(6):
            e = torch.zeros_like(h)
            e[i, k] = eps
            fd[i, k] = ((ce_of_codes(b + e) - ce_of_codes(b - e)) / (2 * eps)
                        + (penalty(h + e) - penalty(h - e)) / (2 * eps))
    torch.testing.assert_close(hv.grad, fd, rtol=1e-6, atol=1e-8)
    # the forward pass sees the codes: the value is the loss of sign(h), not of h
    assert loss(h, y, 0.0).item() == pytest.approx(ce_of_codes(b) + penalty(h), rel=1e-12)


def test_greedyhash_classifier_is_seeded_and_trainable():
    a, b, c = (GreedyHashLoss(8, 3, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
    assert a.classifier.weight.abs().max() <= 1 / math.sqrt(8)
    assert [p.shape for p in a.parameters()] == [(3, 8)]


def test_sylvester_hadamard():
    h4 = [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]
    assert sylvester_hadamard(4).tolist() == h4
    h = sylvester_hadamard(32)
    assert torch.equal(h @ h.T, 32 * torch.eye(32))
    with pytest.raises(ValueError):
        sylvester_hadamard(12)


def test_csq_centres_hadamard_rows_then_negatives():
    g = torch.Generator().manual_seed(0)
    assert hash_centres(3, 4, g).tolist() == sylvester_hadamard(4)[:3].tolist()
    c = hash_centres(6, 4, g)
    assert c[4:].tolist() == (-sylvester_hadamard(4)[:2]).tolist()


def test_csq_random_centres_when_no_sylvester_matrix():
    c = hash_centres(10, 12, torch.Generator().manual_seed(0))
    assert c.shape == (10, 12) and set(c.unique().tolist()) == {-1.0, 1.0}
    assert (c == -1).sum(1).tolist() == [6] * 10  # exactly k/2 bits -1 each
    d = (12 - c @ c.T) / 2
    off = ~torch.eye(10, dtype=torch.bool)
    assert d[off].min() >= 20 / 64 * 12 and d[off].mean() >= 6
    assert torch.equal(c, hash_centres(10, 12, torch.Generator().manual_seed(0)))
    assert not torch.equal(c, hash_centres(10, 12, torch.Generator().manual_seed(1)))
    # more than 2k classes: random; 9 balanced 4-bit centres cannot all differ (6 exist), so no
    # draw passes and the one with the largest smallest distance is kept
    assert (hash_centres(9, 4, torch.Generator().manual_seed(0)) == -1).sum(1).tolist() == [2] * 9


def test_csq_hand_case():
    loss = CSQLoss(4, 3, lambda2=0.05).double()
    z = [[math.atanh(0.5), 0.0, -math.atanh(0.5), 0.0]]
    value, grad = value_and_grad(loss, z, torch.tensor([0]))  # centre [1, 1, 1, 1]
    y = [0.5, 0.0, -0.5, 0.0]
    bce = [-math.log((v + 1) / 2) for v in y]  # target bit 1 everywhere
    q = [(abs(v) - 1) ** 2 for v in y]
    assert value == pytest.approx(sum(bce) / 4 + 0.05 * sum(q) / 4, rel=1e-12)
    for k, v in enumerate(y):
        dy = -1 / (v + 1) / 4 + 0.05 * 2 * (abs(v) - 1) * (1 if v >= 0 else -1) / 4
        if v == 0:  # |y| has no derivative at 0; torch's sign(0) = 0 drops that part
            dy = -1 / (v + 1) / 4
        assert grad[0, k] == pytest.approx(dy * (1 - v * v), rel=1e-12)


def test_csq_multi_hot_centre_is_the_sign_of_the_mean_with_fixed_ties():
    loss = CSQLoss(4, 3, seed=2)
    labels = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    t = loss.targets(labels)
    ties = loss.tie_bits
    assert t[0].tolist() == [1, ties[1].item(), 1, ties[3].item()]  # mean of rows 0, 1 of H4 = [1, 0, 1, 0]
    assert t[1].tolist() == [1, 1, -1, -1]
    assert t[2].tolist() == ties.tolist()
    assert set(ties.tolist()) <= {-1.0, 1.0}


def ortho_loss(codebook, **kw):
    loss = OrthoHashLoss(2, 2, **kw).double()
    loss.codebook.copy_(torch.tensor(codebook))
    return loss


def test_orthohash_hand_case():
    loss = ortho_loss([[1.0, 1.0], [1.0, -1.0]], scale=8.0, margin=0.2)
    v = [2.0, 0.0]
    value, grad = value_and_grad(loss, [v], torch.tensor([0]))
    # both cosines are 1/sqrt(2): -log softmax_0 of (8 (r - 0.2), 8 r) = log(1 + e^1.6)
    assert value == pytest.approx(math.log1p(math.exp(8 * 0.2)), rel=1e-12)
    p0 = 1 / (1 + math.exp(8 * 0.2))
    dlogit = [p0 - 1, 1 - p0]
    # d cos(v, o) / dv = o / (|v| |o|) - (v . o) v / (|v|^3 |o|), |v| = 2, |o| = sqrt(2)
    codebook = [[1.0, 1.0], [1.0, -1.0]]
    for k in range(2):
        g = 0.0
        for c in range(2):
            o = codebook[c]
            vo = v[0] * o[0] + v[1] * o[1]
            g += dlogit[c] * 8 * (o[k] / (2 * math.sqrt(2)) - vo * v[k] / (8 * math.sqrt(2)))
        assert grad[0, k] == pytest.approx(g, rel=1e-12, abs=1e-15)


def test_orthohash_multi_hot_label_smoothing():
    loss = ortho_loss([[1.0, 1.0], [1.0, -1.0]], scale=8.0, margin=0.2)
    # both classes: equal logits 8 (r - 0.2), targets (1/2, 1/2): loss = log 2
    assert loss(torch.tensor([[2.0, 0.0]], dtype=torch.float64), torch.tensor([[1.0, 1.0]]), 0).item() \
        == pytest.approx(math.log(2), rel=1e-12)


def test_orthohash_codebook_is_seeded_bernoulli():
    a, b = OrthoHashLoss(64, 10, seed=0), OrthoHashLoss(64, 10, seed=1)
    assert set(a.codebook.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(a.codebook, OrthoHashLoss(64, 10, seed=0).codebook)
    assert not torch.equal(a.codebook, b.codebook)
    assert 0.35 < (a.codebook > 0).float().mean() < 0.65


@pytest.mark.parametrize("make", [
    lambda: HashNetLoss(6, 3), lambda: CSQLoss(6, 3), lambda: OrthoHashLoss(6, 3),
])
def test_autograd_losses_against_finite_differences(make):
    loss = make().double()
    z = torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 0.7
    y = torch.tensor([0, 1, 2, 0, 1, 1])
    assert torch.autograd.gradcheck(lambda t: loss(t, y, 0.3), (z.requires_grad_(True),))


def test_module_names():
    names = (csq.CSQLoss.name, greedyhash.GreedyHashLoss.name, hashnet.HashNetLoss.name)
    assert names == ("csq", "greedyhash", "hashnet")
