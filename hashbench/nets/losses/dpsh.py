"""DPSH: Feature Learning based Deep Supervised Hashing with Pairwise Labels (Li, Wang, Kang,
IJCAI 2016), as released by its first author's student in PyTorch (jiangqy/DPSH-pytorch,
``DPSH_CIFAR_10.py``; the paper's own release is MatConvNet).

The pairwise negative log-likelihood of the labels given the inner products of the real
outputs, plus the quantisation term (paper Eq. 4; release lines 191-203)::

    theta_ij = u_i . u_j / 2
    L = mean_ij [ log(1 + exp(theta_ij)) - s_ij theta_ij ] + eta * mean_i || b_i - u_i ||^2,
    b_i = sign(u_i) (a constant: ``torch.sign`` passes no gradient)

The release's ``logloss`` sums over (batch x all n training images) and divides by that count:
a mean over pairs; its ``regterm`` sums over the batch and divides by the same n x batch, so
its ``lamda`` weighs a per-image mean by ``lamda / n``: ``eta = lamda / n``. The default is
the release's demo that produced its README table for 12-48 bits (``DPSH_CIFAR_10_demo.py``
line 6, ``lamda = 10``, on its n = 5,000 training images): eta = 0.002. Codes: sign(u).

Deviations, each forced by the shared training loop or the small network:
- the release pairs each batch output with a memory bank ``U`` of every training image's last
  output (lines 153-154, 187-189, 193), a constant in the gradient. The loss interface sees
  one minibatch, so the bank is the minibatch itself, detached: theta = u_i . stop_grad(u_j)
  / 2 over all B x B pairs, the item with itself included (the release's bank holds the
  batch's own rows too), gradient through the batch side only, as in the release;
- sign(0) is +1 (hashbench's one sign rule), not 0.

Start: the release's hash layer is torch's default ``nn.Linear(4096, bit)``
(``CNN_model.py`` lines 28 and 48: U(+-1/64), std 0.009) on a pretrained backbone, so its
outputs start small; on the DSH network the head is drawn from N(0, 0.01) likewise
(``head_init_std``), not from the network's xavier filler (which starts 83% of the outputs
beyond |2| and theta in the hundreds). Measured on CIFAR-10 (``cifar10-dsh``, 12 bits, 600
quick-schedule iterations): mAP 0.156 with the xavier head, 0.185 with the release's start.
"""

import torch
import torch.nn.functional as F

from .base import HashLoss, register_loss, similarity


@register_loss("dpsh")
class DPSHLoss(HashLoss):
    """DPSH's pairwise likelihood plus ``eta`` times the quantisation error (see module doc)."""

    head_init_std = 0.01  # the release's hash layer starts small: module doc

    def __init__(self, n_bits: int, n_classes: int, eta: float = 10 / 5000):
        super().__init__(n_bits, n_classes, eta=float(eta))
        self.eta = float(eta)

    def forward(self, outputs, labels, progress: float = 0.0):
        u = outputs
        s = similarity(labels).to(u.dtype)
        theta = u @ u.detach().T / 2
        nll = (F.softplus(theta) - s * theta).mean()  # softplus: the release's Logtrick (line 65)
        b = torch.where(u >= 0, 1.0, -1.0).to(u.dtype).detach()
        return nll + self.eta * (b - u).pow(2).sum(1).mean()
