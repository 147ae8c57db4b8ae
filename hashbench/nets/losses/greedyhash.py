"""GreedyHash: Towards Fast Optimization for Accurate Hash Coding in CNN (Su, Zhang, Han,
Tian, NeurIPS 2018), as its authors released it (ssppp/GreedyHash, ``cifar1.py``: the hash
layer lines 121-136, the network lines 139-155, the loss lines 186-189).

The hash layer is b = sign(h) in the forward pass and the identity in the backward pass (the
straight-through "greedy" step: dL/dh = dL/db). A linear classifier without bias,
``n_bits -> n_classes``, reads the codes b; the loss is its cross-entropy plus the cubic
penalty that pulls h towards +-1::

    L = CE(W sign(h), y) + alpha * mean | |h| - 1 |^3

alpha = 0.1 (``cifar1.py`` line 189; the ImageNet script uses 1). The classifier is this
loss's own parameter (the optimiser trains it with the network), initialised as torch's
``nn.Linear`` (U(-1/sqrt(k), 1/sqrt(k))) from ``seed``. Codes: sign(h).

Deviations: sign(0) is +1 (hashbench's one sign rule; torch.sign gives 0); multi-hot labels,
which the release never trains on, use the binary cross-entropy of each class (sigmoid)
instead of the softmax cross-entropy.

Deviation, the start the DSH network needs (measured on CIFAR-10, ``cifar10-dsh``, 12 bits, 600
quick-schedule iterations; DSH's own loss 0.258): the release's hash layer ``fc_plus`` is
torch's default ``nn.Linear(4096, k)`` (``cifar1.py`` line 144: U(+-1/64), std 0.009) on a
pretrained AlexNet, so its outputs start small; the DSH network's xavier head on raw pixels
starts them large (83% beyond |2|): mAP 0.261.
Drawn from N(0, 0.01) here (``head_init_std``, the release's std rounded as for CSQ and
HashNet): 0.393.
"""

import math

import torch
import torch.nn.functional as F

from .base import HashLoss, register_loss


class _SignStraightThrough(torch.autograd.Function):
    """sign forward (0 -> +1), identity backward (release lines 121-132)."""

    @staticmethod
    def forward(ctx, h):
        return torch.where(h >= 0, 1.0, -1.0).to(h.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad


def sign_straight_through(h: torch.Tensor) -> torch.Tensor:
    return _SignStraightThrough.apply(h)


@register_loss("greedyhash")
class GreedyHashLoss(HashLoss):
    """GreedyHash's classification loss on sign(h) (straight-through) plus ``alpha`` times
    its cubic penalty (see module doc)."""

    head_init_std = 0.01  # the release's hash layer starts small: module doc

    def __init__(self, n_bits: int, n_classes: int, alpha: float = 0.1, seed: int = 0):
        super().__init__(n_bits, n_classes, alpha=float(alpha), seed=int(seed))
        self.alpha = float(alpha)
        self.classifier = torch.nn.Linear(n_bits, n_classes, bias=False)
        bound = 1.0 / math.sqrt(n_bits)  # what nn.Linear's kaiming_uniform_(a=sqrt(5)) draws
        with torch.no_grad():
            self.classifier.weight.uniform_(-bound, bound, generator=torch.Generator().manual_seed(int(seed)))

    def forward(self, outputs, labels, progress: float = 0.0):
        logits = self.classifier(sign_straight_through(outputs))
        if labels.ndim == 2:
            ce = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        else:
            ce = F.cross_entropy(logits, labels.long())
        return ce + self.alpha * (outputs.abs() - 1).abs().pow(3).mean()
