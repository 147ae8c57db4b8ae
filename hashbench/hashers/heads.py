"""Deep hashing losses on frozen features: a linear hash layer (d -> k) trained with a loss of
:mod:`hashbench.nets.losses` on precomputed features (512-D GIST, the CNN-cls activations...),
the cheap track of the loss comparison (seconds to minutes per cell on a CPU, where the end
to end networks take an hour).

Everything but the network is the deep methods' (:mod:`hashbench.hashers.deep`): the loss
module and its parameters, the budget (``schedule``: ``"quick"`` = Adam, lr 1e-3, 8,000
iterations with the multistep drops; an iteration count N shortens it), the batch size (200),
the seeded stateless batch order (:func:`hashbench.nets.batch_indices`), the Caffe lr and
decay multipliers (bias x2, no decay; :func:`hashbench.nets.make_optimizer`, which trains the
loss's own parameters along) and the code rule (``loss_.codes``, the sign rule by default).

Two choices of the head's own, for inputs whose scale is anything (GIST values ~0.1, L2-
normalised CNN features ~0.04): the features are centred on the training mean and divided by
one scalar, the root mean square of the centred training values, so the Xavier-initialised
layer (Caffe's filler, as the DSH network's head: U(-a, a), a = sqrt(3 / d), bias 0) starts
with outputs of unit variance, the range every loss expects; no mirroring (features are not
images). A subclass names its :attr:`LinearHead.loss` and adds the loss's parameters, as a
deep method does (:mod:`hashbench.hashers.deep_methods` registers one per loss).
"""

from typing import ClassVar

import numpy as np

from ..codes import pack
from ..nets.schedules import BUDGET
from ..params import Interval
from .base import Hasher

HEAD_PARAMS = ("n_bits", "seed", "schedule", "batch_size")  # the head's own; every other parameter is the loss's


class LinearHead(Hasher):
    """A linear hash layer on frozen features trained with the loss :attr:`loss`.

    Parameters: ``n_bits`` (k); ``seed`` (initialisation, batch order, the loss's random
    parts); ``schedule`` the training budget (as the deep methods'; ``--budget``);
    ``batch_size`` (200, as DSH); a subclass's other parameters are the loss's.

    Learned: ``mean_`` (d,) and ``scale_`` (the input standardisation), ``weight_`` (d, k),
    ``bias_`` (k,), ``loss_`` (the trained loss module), ``losses_`` (loss per iteration).

    Parameters
    ----------
    n_bits : int
        Code length in bits.
    seed : int
        Seed of the initialisation, the batch order and any random part of the loss.
    schedule : str
        The budget: ``'quick'``, ``'paper'``, ``'paper:N'`` or an iteration count
        (:func:`hashbench.nets.schedules.parse_budget`).
    batch_size : int
        Mini-batch size (200 released).

    Attributes
    ----------
    mean_, scale_ : ndarray
        Feature standardisation.
    weight_, bias_ : ndarray
        The linear hash layer.
    loss_ : torch.nn.Module
        The trained loss.
    losses_ : list of float
        Training loss per iteration.

    References
    ----------
    See the loss modules in :mod:`hashbench.nets.losses`.
    """

    loss: ClassVar[str] = ""
    input_kind = "features"
    supervised = True
    budget_param = "schedule"
    _parameter_constraints: ClassVar[dict] = {"schedule": BUDGET, "batch_size": [Interval(int, 2, None)]}
    fast_params: ClassVar[dict] = {"n_bits": 8, "schedule": 30, "batch_size": 32}

    def __init__(self, n_bits: int = 12, seed: int = 0, schedule="quick", batch_size: int = 200):
        self.n_bits = n_bits
        self.seed = seed
        self.schedule = schedule
        self.batch_size = batch_size

    def loss_params(self) -> dict:
        """The parameters that go to the loss: every one but :data:`HEAD_PARAMS`."""
        return {k: v for k, v in self.get_params(deep=False).items() if k not in HEAD_PARAMS}

    def _fit(self, X, y):
        import torch

        from .. import nets
        from ..nets.losses import get_loss

        X = np.asarray(X, np.float64)
        self.mean_ = X.mean(0)
        centred = X - self.mean_
        rms = float(np.sqrt(np.mean(centred**2)))
        self.scale_ = rms if rms > 0 else 1.0
        Z = torch.from_numpy((centred / self.scale_).astype(np.float32))
        labels = np.asarray(y)
        targets = torch.from_numpy(labels.astype(np.float32) if labels.ndim == 2 else labels.astype(np.int64))
        n_classes = int(labels.shape[1]) if labels.ndim == 2 else int(labels.max()) + 1
        loss = get_loss(self.loss, self.n_bits, n_classes, **self.loss_params())
        layer = torch.nn.Linear(X.shape[1], self.n_bits)
        nets.caffe_xavier_(layer, torch.Generator().manual_seed(int(self.seed)))
        schedule = nets.get_schedule(self.schedule)
        opt = nets.make_optimizer(layer, schedule, loss=loss)
        losses = np.empty(schedule.iterations)
        loss.train()
        for it in range(schedule.iterations):
            for g in opt.param_groups:
                g["lr"] = schedule.lr_at(it) * g["lr_mult"]
            idx = torch.from_numpy(nets.batch_indices(len(Z), int(self.batch_size), it, int(self.seed)))
            value = loss(layer(Z[idx]), targets[idx], it / schedule.iterations)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            losses[it] = value.item()
        loss.eval()
        self.weight_ = layer.weight.detach().numpy().T.astype(np.float64)
        self.bias_ = layer.bias.detach().numpy().astype(np.float64)
        self.loss_ = loss
        self.losses_ = losses

    def _project(self, X) -> np.ndarray:
        return ((np.asarray(X, np.float64) - self.mean_) / self.scale_) @ self.weight_ + self.bias_

    def encode(self, X) -> np.ndarray:
        """Packed codes by the loss's code rule (``loss_.codes``; the sign rule unless the loss
        says otherwise)."""
        import torch

        codes = self.loss_.codes(torch.from_numpy(self.project(X)))
        return pack(codes.numpy() > 0)
