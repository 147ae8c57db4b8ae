"""CSQ: Central Similarity Quantization for Efficient Image and Video Retrieval (Yuan et al.,
CVPR 2020), as its authors released it (yuanli2333/Hadamard-Matrix-for-hashing:
``train.py`` lines 62-64, 110-130 and 192-215; the centres in ``Tutorial_ hash_center_generation
.ipynb``; the weights in the README's training commands).

Each class has a hash centre c in {-1, +1}^k. The outputs pass through tanh (the release's
network ends in ``nn.Tanh``, ``network.py`` line 26) and are pulled to their centre by the
binary cross-entropy of (y + 1) / 2 against (c + 1) / 2, plus a quantisation term::

    y = tanh(z);  L = BCE((y + 1) / 2, (c + 1) / 2) + lambda2 * mean (|y| - 1)^2

(both means over batch x bits, torch's ``BCELoss`` with its log clamped at -100). The README's
commands train with ``--lambda1 0 --lambda2 0.05``: the release's optional pairwise term is
off, lambda2 = 0.05. Codes: sign(z).

Centres (the tutorial): the rows of the Sylvester Hadamard matrix H_k (``scipy.linalg.hadamard``,
k a power of 2) when n_classes <= k, of [H_k; -H_k] when n_classes <= 2k; otherwise, and for
every k that is not a power of 2 (12 and 48 bits among them: Hadamard matrices of those orders
exist, but the release builds only Sylvester's), random centres with exactly round(k / 2) bits
-1, drawn until their smallest pairwise Hamming distance is at least 20 / 64 k and the mean at
least k / 2 (the tutorial's 20 and 32 at 64 bits), at most 10,000 draws (deviation: the
thresholds are scaled from 64 bits to k, and the draw with the largest smallest distance is
kept when none passes). A multi-hot label's centre is the sign of the mean of its classes'
centres, ties (0) taking the bits of one random +-1 vector drawn once (``train.py`` line 64,
lines 192-215; a row with no label is all ties). Random draws use ``seed``.

Deviation, an initialisation the DSH network needs (measured on CIFAR-10, ``cifar10-dsh``,
12 bits, 600 quick-schedule iterations): the release's hash layer starts in tanh's linear
range (``fc3``, torch's default ``nn.Linear`` init behind two fresh 4,096- or 2,048-D layers
on a pretrained AlexNet or ResNet-50, ``network.py`` lines 25 and 59: U(+-1/sqrt(d)), std
0.009 or 0.013); the DSH network on raw pixels with its xavier head starts
with 83% of its outputs beyond |2|, tanh saturates, and the training collapses to one code for
every image (mAP 0.101 = chance). The head is drawn from N(0, 0.01) here (``head_init_std``,
HashNet's hash layer, between the two): mAP 0.214 at the same 600 iterations (DSH's own
loss: 0.258).
"""

import torch
import torch.nn.functional as F

from .base import HashLoss, register_loss
from .targets import multi_hot

MAX_DRAWS = 10_000
CHUNK = 100


def sylvester_hadamard(k: int) -> torch.Tensor:
    """The k x k Sylvester Hadamard matrix (k a power of 2), as ``scipy.linalg.hadamard``.
    Not :func:`hashbench.codewords.hadamard`, which builds Paley's orders too (12, 48) and may
    pick a Paley matrix where Sylvester's exists (32): CSQ's centres are the release's."""
    if k < 1 or k & (k - 1):
        raise ValueError(f"Sylvester Hadamard matrices have orders 2^n, not {k}")
    h = torch.ones(1, 1)
    while h.shape[0] < k:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def random_centres(n_classes: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """The tutorial's Bernoulli centres: round(k/2) bits -1 per centre, redrawn until far
    apart (drawn CHUNK sets at a time; the first passing set in draw order is kept)."""
    if n_classes < 2:
        return _balanced_draws(1, n_classes, k, generator)[0]
    min_needed, mean_needed = 20 / 64 * k, k / 2
    off_diagonal = ~torch.eye(n_classes, dtype=torch.bool)
    best, best_min = None, -1.0
    for _ in range(MAX_DRAWS // CHUNK):
        c = _balanced_draws(CHUNK, n_classes, k, generator)
        dist = ((k - c @ c.transpose(1, 2)) / 2)[:, off_diagonal]
        lo, mean = dist.min(1).values, dist.mean(1)
        ok = torch.nonzero((lo >= min_needed) & (mean >= mean_needed)).flatten()
        if ok.numel():
            return c[ok[0]]
        i = int(lo.argmax())
        if lo[i] > best_min:
            best, best_min = c[i], float(lo[i])
    return best


def _balanced_draws(m: int, n_classes: int, k: int, generator: torch.Generator) -> torch.Tensor:
    order = torch.rand(m, n_classes, k, generator=generator).argsort(2)
    c = torch.ones(m, n_classes, k)
    return c.scatter_(2, order[:, :, : round(k / 2)], -1.0)


def hash_centres(n_classes: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """float (n_classes, k) centres in {-1, +1}: Hadamard rows where the release uses them."""
    if k & (k - 1) == 0 and n_classes <= 2 * k:
        h = sylvester_hadamard(k)
        return torch.cat([h, -h], 0)[:n_classes].clone()
    return random_centres(n_classes, k, generator)


@register_loss("csq")
class CSQLoss(HashLoss):
    """CSQ's central similarity (BCE to the class's hash centre) plus ``lambda2`` times the
    quantisation error (see module doc). Centres are buffers (saved with a checkpoint)."""

    head_init_std = 0.01  # the release's hash layer starts in tanh's linear range: module doc

    def __init__(self, n_bits: int, n_classes: int, lambda2: float = 0.05, seed: int = 0):
        super().__init__(n_bits, n_classes, lambda2=float(lambda2), seed=int(seed))
        self.lambda2 = float(lambda2)
        g = torch.Generator().manual_seed(int(seed))
        self.register_buffer("centres", hash_centres(n_classes, n_bits, g))
        self.register_buffer("tie_bits", torch.randint(0, 2, (n_bits,), generator=g).float() * 2 - 1)

    def targets(self, labels) -> torch.Tensor:
        """The centre of each item: its class's, or for multi-hot rows the sign of the mean
        of its classes' centres with ties from ``tie_bits``."""
        if labels.ndim == 1:
            return self.centres[labels.long()]
        y = multi_hot(labels, self.n_classes)
        mean = (y @ self.centres) / y.sum(1, keepdim=True).clamp_min(1)
        return torch.where(mean == 0, self.tie_bits, mean.sign())

    def forward(self, outputs, labels, progress: float = 0.0):
        y = torch.tanh(outputs)
        c = self.targets(labels).to(y.dtype)
        centre = F.binary_cross_entropy((y + 1) / 2, (c + 1) / 2)
        return centre + self.lambda2 * (y.abs() - 1).pow(2).mean()
