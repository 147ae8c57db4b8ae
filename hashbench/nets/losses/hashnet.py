"""HashNet: Deep Learning to Hash by Continuation (Cao, Long, Wang, Yu, ICCV 2017), as its
authors released it (thuml/HashNet: ``pytorch/src/loss.py`` ``pairwise_loss``, lines 6-23;
``pytorch/src/network.py`` lines 25-41, the continuation; ``pytorch/src/train.py``
lines 208-215 and 237-264, the setting; the Caffe ``PairwiseLoss`` layer is the same loss).

The network's outputs pass through tanh(beta z), beta growing during training (the
continuation: beta = (1 + 0.005 it)^0.5, recomputed every 200 iterations, from 1 to
sqrt(51) ~ 7.1 over the release's 10,000 iterations). The minibatch is split in halves (the
release feeds two loaders of 36 images; Caffe's ``Slice`` layer cuts one batch in two) and
every pair across the halves, h_i . h_j scaled by alpha = 10 / k (``sigmoid_param``), gets
the weighted cross-entropy::

    l_ij = log(1 + exp(alpha h_i . h_j)) - s_ij alpha h_i . h_j      (alpha h.h <= 15)
         = (1 - s_ij) alpha h_i . h_j                                 (above: ``l_threshold``)
    L = (w sum_{s=1} l_ij + sum_{s=0} l_ij) / (w |S1| + |S0|)

with w = ``class_num``, the weight of similar pairs. The authors' instructions
(``caffe/models/train/README.md``) set it to (|S0| + |S1|) / |S1| of the training set, which
is the number of classes for balanced single-label data (CIFAR-10: 10); that is the default
here (``class_num=None``). Codes: sign(z) = sign(tanh(beta z)).

Deviation: the continuation is laid on the run's length: ``progress`` (iteration / total)
maps to the release's iteration 10,000 x progress, so every schedule ends at the release's
final beta (the quick schedule's 8,000 iterations would otherwise stop at beta ~ 6.4, a
test's 20 iterations at 1).

Deviations, the start the DSH network needs (measured on CIFAR-10, ``cifar10-dsh``, 12 bits,
600 quick-schedule iterations; DSH's own loss: mAP 0.258): the release trains a pretrained
AlexNet with SGD, lr 3e-4, its hash layer drawn from N(0, 0.01) (``network.py`` lines 20-22)
so that tanh starts in its linear range. On the DSH network from raw pixels (xavier head, 83%
of the initial outputs beyond |2|) under the quick schedule's Adam at lr 1e-3 the loss rises
and the outputs run away to one code for every image (mAP 0.101 = chance); with the release's
N(0, 0.01) head alone, the same (0.101); with Adam at lr 1e-4 alone, 0.193; with both, 0.213.
So the head starts as the release's (``head_init_std``) and the schedule's lr is scaled by 0.1
(``lr_scale``; lr steps and iterations as the schedule's).
"""

import math

import torch
import torch.nn.functional as F

from .base import HashLoss, register_loss
from .targets import cross_similarity

RELEASE_ITERATIONS = 10_000  # train.py line 237
STEP, GAMMA, POWER = 200, 0.005, 0.5  # network.py lines 25-27


def continuation_scale(progress: float) -> float:
    """beta at ``progress`` in [0, 1]: (1 + GAMMA it)^POWER, it = the release's iteration
    rounded down to a multiple of STEP (network.py lines 39-40)."""
    it = STEP * math.floor(RELEASE_ITERATIONS * min(max(progress, 0.0), 1.0) / STEP)
    return (1.0 + GAMMA * it) ** POWER


@register_loss("hashnet")
class HashNetLoss(HashLoss):
    """HashNet's weighted pairwise cross-entropy on tanh(beta z) (see module doc).
    ``alpha`` None = 10 / n_bits; ``class_num`` None = n_classes."""

    head_init_std = 0.01  # the release's hash layer (network.py lines 20-22): module doc
    lr_scale = 0.1  # Adam at the quick schedule's lr 1e-3 diverges: module doc

    def __init__(self, n_bits: int, n_classes: int, alpha: float | None = None, class_num: float | None = None,
                 threshold: float = 15.0):
        alpha = 10.0 / n_bits if alpha is None else float(alpha)
        class_num = float(n_classes) if class_num is None else float(class_num)
        super().__init__(n_bits, n_classes, alpha=alpha, class_num=class_num, threshold=float(threshold))
        self.alpha, self.class_num, self.threshold = alpha, class_num, float(threshold)

    def forward(self, outputs, labels, progress: float = 0.0):
        h = torch.tanh(continuation_scale(progress) * outputs)
        half = h.shape[0] // 2
        s = cross_similarity(labels[:half], labels[half : 2 * half]).to(h.dtype)
        dot = self.alpha * (h[:half] @ h[half : 2 * half].T)
        pair = torch.where(dot > self.threshold, dot * (1 - s), F.softplus(dot) - s * dot)
        w = torch.where(s > 0, self.class_num, 1.0).to(h.dtype)
        return (w * pair).sum() / w.sum()
