"""The DSH loss (Liu, Wang, Shan, Chen, CVPR 2016) as released
(lhmRyan/deep-supervised-hashing-DSH: src/caffe/layers/hashing_loss_layer.cpp), with the
supplementary's sigmoid relaxation (Table 1) and regulariser weight ``alpha``."""

import torch
import torch.nn.functional as F

from ...errors import InputError
from .base import HashLoss, register_loss, similarity


def dsh_loss(b, labels, margin: float, alpha: float, relax: str | None = None):
    """The DSH loss with the released normalisation (hashing_loss_layer.cpp):

        L = 1/(N(N-1)) sum_{i<j} [ s_ij/2 D_ij + (1-s_ij)/2 max(m - D_ij, 0) ]
            + alpha/N sum_i || |b_i| - 1 ||_1,      D_ij = ||b_i - b_j||^2

    The paper writes the plain sums; the release divides the pair sum by N(N-1) and the
    regulariser by N, so its alpha = 0.01 weighs the regulariser (N-1) times more than the
    paper's formula read literally. This is the released objective: the one whose gradient
    Caffe applied (Caffe's displayed loss is twice the pair term).

    ``relax="sigmoid"`` (supplementary Table 1): b <- sigmoid(b), in (0, 1), and no
    regulariser. On (0, 1) outputs one flipped bit adds 1 to D, so the margins m in
    {1, 2, 3, 6} of Table 1 at 12 bits read as Hamming distances k/12 ... k/2, m = 6 being the
    counterpart of m = 2k on +-1 outputs (where one flipped bit adds 4). A tanh to (-1, 1) would
    make m = 1 a quarter of one bit, which no one would tabulate.
    """
    n = b.shape[0]
    if relax == "sigmoid":
        b = torch.sigmoid(b)
    elif relax is not None:
        raise InputError(f"relax must be None or 'sigmoid', got {relax!r}")
    sq = (b * b).sum(1)
    d = (sq[:, None] + sq[None, :] - 2 * (b @ b.T)).clamp_min(0)
    s = similarity(labels).to(b.dtype)
    pair = 0.5 * s * d + 0.5 * (1 - s) * F.relu(margin - d)
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=b.device), diagonal=1)
    loss = pair[upper].sum() / (n * (n - 1))
    if relax is None and alpha:
        loss = loss + alpha * (b.abs() - 1).abs().sum() / n
    return loss


@register_loss("dsh")
class DSHLoss(HashLoss):
    """:func:`dsh_loss` as a loss module. ``margin`` None = 2 k (released) for the plain loss,
    required with ``relax="sigmoid"``; ``alpha`` the regulariser weight (0.01 released)."""

    def __init__(self, n_bits: int, n_classes: int, margin: float | None = None, alpha: float = 0.01,
                 relax: str | None = None):
        super().__init__(n_bits, n_classes)
        if relax not in (None, "sigmoid"):
            raise InputError(f"relax must be None or 'sigmoid', got {relax!r}")
        if margin is None:
            if relax == "sigmoid":
                raise InputError("margin: the sigmoid-relaxed variant needs a margin (Table 1 uses 1, 2, 3, 6)")
            margin = 2.0 * self.n_bits
        self.margin, self.alpha, self.relax = float(margin), float(alpha), relax

    def forward(self, outputs, labels, progress: float = 0.0):
        return dsh_loss(outputs, labels, self.margin, self.alpha, self.relax)

    def config(self) -> dict:
        # the keys and values DSH checkpoints have always recorded (a resumed run must match)
        return {"alpha": self.alpha, "relax": str(self.relax), "margin": self.margin}
