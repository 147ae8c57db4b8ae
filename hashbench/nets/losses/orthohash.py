"""OrthoHash: One Loss for All (Hoe, Ng, Zhang, Chan, Song, Xiang, NeurIPS 2021), as its
authors released it (kamwoh/orthohash: ``functions/loss/orthohash.py`` lines 49-119, the loss;
``models/alexnet.py`` lines 8-30, the cosine layer; ``scripts/train_hashing.py`` lines
257-265, the codebook; ``main.py`` lines 27-37, the defaults).

Each class has a fixed binary codeword o_c in {-1, +1}^k, Bernoulli(1/2) bits (the default
codebook method ``B``); the loss is the cross-entropy of the scaled cosines between the
output v and every codeword, the true class's cosine lowered by the margin m (``m_type``
``cos``, the default)::

    logit_c = s (cos(v, o_c) - m [c = y]),   L = CE(logit, y)

s = 8, m = 0.2 (``main.py`` defaults; the README's CIFAR-10 command uses m = 0.3). Multi-hot
labels: logit_c = s (cos(v, o_c) - m y_c) and the release's default ``label_smoothing``
loss, the cross-entropy against y / sum(y). The release's quantisation term defaults to 0
(``--quan 0``) and is left out. Codes: sign(v). The codebook is drawn from ``seed``.

Deviation: the release's hash layer is Linear (no bias, N(0, 0.01) init) + BatchNorm1d,
which centres and scales each bit over the batch; on the DSH network v is the output of its
linear head with a bias (a loss sees outputs, not layers; the cosine is blind to each
output's overall scale, and the bias can learn each bit's offset), its weights drawn from
the release's N(0, 0.01) (``models/alexnet.py`` line 66; ``head_init_std``) as every loss
here starts from its release's hash layer. Measured on CIFAR-10 (``cifar10-dsh``, 12 bits,
600 quick-schedule iterations): mAP 0.317 with the DSH network's xavier head, 0.295 with
N(0, 0.01) (one seed each).
"""

import torch
import torch.nn.functional as F

from .base import HashLoss, register_loss
from .targets import multi_hot


@register_loss("orthohash")
class OrthoHashLoss(HashLoss):
    """OrthoHash's margin cross-entropy on scaled cosines to fixed class codewords."""

    head_init_std = 0.01  # the release's hash layer: module doc

    def __init__(self, n_bits: int, n_classes: int, scale: float = 8.0, margin: float = 0.2, seed: int = 0):
        super().__init__(n_bits, n_classes, scale=float(scale), margin=float(margin), seed=int(seed))
        self.scale, self.margin = float(scale), float(margin)
        g = torch.Generator().manual_seed(int(seed))
        bits = torch.bernoulli(torch.full((n_classes, n_bits), 0.5), generator=g)
        self.register_buffer("codebook", bits * 2 - 1)

    def forward(self, outputs, labels, progress: float = 0.0):
        cos = F.normalize(outputs, dim=1) @ F.normalize(self.codebook.to(outputs.dtype), dim=1).T
        y = multi_hot(labels, self.n_classes).to(cos.dtype)
        logits = self.scale * (cos - self.margin * y)
        if labels.ndim == 1:
            return F.cross_entropy(logits, labels.long())
        return -((y / y.sum(1, keepdim=True).clamp_min(1)) * F.log_softmax(logits, 1)).sum(1).mean()
