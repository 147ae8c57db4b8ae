"""The DSH CNN family (Liu, Wang, Shan, Chen, CVPR 2016), in torch, one concern per module:

- :mod:`~hashbench.nets.model`: the released network (``DSHNet``), its initialisation, the
  fine-tuning start, ``apply`` (outputs or features of images);
- :mod:`~hashbench.nets.losses`: the hashing losses by name (``LOSSES``), DSH's the first;
- :mod:`~hashbench.nets.trainer`: the one training loop, optimiser and lr multipliers, the
  held-out loss, the CPU allocator tweak;
- :mod:`~hashbench.nets.checkpoints`: model files and training checkpoints;
- :mod:`~hashbench.nets.schedules`: schedules and the one budget parser, torch-free.

Importing this package loads no torch: the names below are looked up in their module on
first use, so ``hashbench.nets.parse_budget`` costs what the schedules module costs.

Deviation from the release in the solver (the quick schedule is Adam): Adam does not suit the
sigmoid-relaxed loss: its first steps, a step of lr in every weight whatever the gradient's
size, take the outputs to |x| ~ 1000 on raw-pixel inputs, where the sigmoid is flat and
training stops with one code for every image (CIFAR-10, 12 bits: margins 6, 3 and 2 of
Table 1). SGD, whose steps scale with the gradient, trains it; Table 1's sigmoid models
therefore use the release's solver (``"paper:N"``).
"""

import importlib

from .schedules import (
    BUDGET,
    SCHEDULES,
    Schedule,
    budget_tag,
    get_schedule,
    parse_budget,
)

_LAZY = {
    "model": ("FC_DIM", "DSHNet", "WithinChannelLRN", "apply", "caffe_pooled_size", "caffe_xavier_",
              "finetune_net", "new_net", "resolve_device"),
    "losses": ("LOSSES", "DSHLoss", "HashLoss", "dsh_loss", "get_loss", "register_loss", "similarity"),
    "trainer": ("TEST_SAMPLE", "batch_indices", "held_out_every", "held_out_loss", "held_out_sample",
                "make_optimizer", "mirror_mask", "param_groups", "retain_freed_memory", "train"),
    "checkpoints": ("checkpoint_iteration", "load_checkpoint", "load_history", "load_state", "save_checkpoint",
                    "save_state"),
}
_HOME = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "BUDGET",
    "FC_DIM",
    "LOSSES",
    "SCHEDULES",
    "TEST_SAMPLE",
    "DSHLoss",
    "DSHNet",
    "HashLoss",
    "Schedule",
    "WithinChannelLRN",
    "apply",
    "batch_indices",
    "budget_tag",
    "caffe_pooled_size",
    "caffe_xavier_",
    "checkpoint_iteration",
    "dsh_loss",
    "finetune_net",
    "get_loss",
    "get_schedule",
    "held_out_every",
    "held_out_loss",
    "held_out_sample",
    "load_checkpoint",
    "load_history",
    "load_state",
    "make_optimizer",
    "mirror_mask",
    "new_net",
    "param_groups",
    "parse_budget",
    "register_loss",
    "resolve_device",
    "retain_freed_memory",
    "save_checkpoint",
    "save_state",
    "similarity",
    "train",
]


def __getattr__(name: str):
    if name in _HOME:
        value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_HOME))
