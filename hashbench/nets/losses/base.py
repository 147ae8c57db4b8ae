"""The contract of a deep hashing loss, and the registry of losses by name.

A loss is a ``torch.nn.Module`` (so it may own parameters, e.g. a classifier layer, which the
optimiser trains with the network and the checkpoint saves):

- ``__init__(n_bits, n_classes, **params)``: its hyper-parameters (the hasher's own
  parameters of the same names, :class:`hashbench.hashers.deep.DeepHasher`);
- ``forward(outputs, labels, progress)``: the scalar loss of a minibatch of real network
  outputs ``(B, n_bits)``, labels ``(B,)`` int64 class ids or ``(B, C)`` float multi-hot, and
  ``progress`` = iteration / iterations in [0, 1] for continuation schedules (the training
  loop gives class ids as int64 and multi-hot labels as float32);
- ``codes(outputs)``: the code rule, +-1 of the same shape; by default hashbench's one sign
  rule (>= 0 -> +1, :func:`hashbench.codes.sign`);
- ``config()``: its resolved hyper-parameters, stored with a training checkpoint (a resumed
  run must be the same run);
- ``head_init_std`` and ``lr_scale`` (class attributes): how the network trained from
  scratch starts for this loss, where its release starts elsewhere (a pretrained backbone
  with a freshly drawn hash layer): the release's hash-layer initialisation N(0, std), bias
  0 (None: the network's Caffe xavier filler, as DSH's release), and a factor on the
  schedule's learning rate (1: the schedule as it is). Each loss states its measurements.

``@register_loss("name")`` adds a subclass to :data:`LOSSES`; :func:`get_loss` builds one.
"""

from typing import ClassVar

import torch

from ...errors import InputError, NameClash

LOSSES: dict[str, type] = {}


def register_loss(name: str):
    """Class decorator: make a :class:`HashLoss` subclass available as ``get_loss(name, ...)``;
    a taken name raises :class:`NameClash`."""

    def decorate(cls):
        if name in LOSSES:
            raise NameClash(f"loss {name!r} is already registered ({LOSSES[name].__module__})")
        if not (isinstance(cls, type) and issubclass(cls, HashLoss)):
            raise TypeError(f"loss {name!r}: {cls!r} is not a HashLoss subclass")
        LOSSES[name] = cls
        cls.name = name
        return cls

    return decorate


def get_loss(name: str, n_bits: int, n_classes: int, **params) -> "HashLoss":
    """The loss registered as ``name`` for ``n_bits`` outputs and ``n_classes`` classes; an
    unknown name is an InputError."""
    try:
        cls = LOSSES[name]
    except KeyError:
        raise InputError(f"unknown loss {name!r}; choose from {', '.join(sorted(LOSSES))}") from None
    return cls(n_bits, n_classes, **params)


class HashLoss(torch.nn.Module):
    """Base class of the deep hashing losses (see the module docstring for the contract)."""

    name: ClassVar[str] = ""
    head_init_std: ClassVar[float | None] = None
    lr_scale: ClassVar[float] = 1.0

    def __init__(self, n_bits: int, n_classes: int, **params):
        super().__init__()
        self.n_bits, self.n_classes = int(n_bits), int(n_classes)
        self.params = dict(params)

    def forward(self, outputs: torch.Tensor, labels: torch.Tensor, progress: float) -> torch.Tensor:
        raise NotImplementedError

    def codes(self, outputs: torch.Tensor) -> torch.Tensor:
        """+-1 codes of real outputs: hashbench's one sign rule, 0 -> +1."""
        return torch.where(outputs >= 0, 1.0, -1.0).to(outputs.dtype)

    def config(self) -> dict:
        """The hyper-parameters a training checkpoint records (JSON-like values), with the
        network's start where the loss changes it (so a checkpoint of another start is not
        resumed)."""
        start = {"head_init_std": self.head_init_std} if self.head_init_std is not None else {}
        return {**self.params, **start, **({"lr_scale": self.lr_scale} if self.lr_scale != 1.0 else {})}


def similarity(labels: torch.Tensor) -> torch.Tensor:
    """s_ij as a bool (B, B) matrix: same class, or (multi-hot labels) at least one shared label."""
    if labels.ndim == 2:
        y = labels.float()
        return (y @ y.T) > 0
    return labels[:, None] == labels[None, :]
