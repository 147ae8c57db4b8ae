"""Deep hashing methods: the DSH network trained end to end from raw pixels with a loss from
:mod:`hashbench.nets.losses`; code bits by the loss's code rule (the sign rule by default).

A method is the network plus a loss plus a code rule, so a new one is a loss module (one
``HashLoss`` subclass, registered) and a few lines here or in a plugin::

    @register("dpsh")
    class DPSH(DeepHasher):
        label = "DPSH"
        loss = "dpsh"                                   # the name in nets.losses.LOSSES
        _parameter_constraints: ClassVar[dict] = {"eta": [Interval(float, 0, None)]}

        def __init__(self, n_bits=12, seed=0, eta=0.1, schedule="quick", batch_size=200,
                     device="auto", init_from=None, checkpoint=None, progress=True):
            super().__init__(n_bits, seed, schedule, batch_size, device, init_from, checkpoint, progress)
            self.eta = eta

Every parameter that is not one of :data:`TRAINING_PARAMS` goes to the loss's ``__init__``
by name; the training loop, checkpoints, schedules (``schedule`` is what ``--budget`` sets),
the model file naming and the runner are the ones DSH uses, unchanged, except where the loss
declares that it needs another start (``head_init_std``, ``lr_scale``:
:class:`hashbench.nets.losses.HashLoss`). torch is imported on first use, so listing the
hashers stays fast.
"""

import dataclasses
import os
from typing import ClassVar

import numpy as np

from ..codes import pack
from ..errors import InputError
from ..nets.schedules import BUDGET
from ..params import BOOL, Instance, Interval
from .base import Hasher

PATH = Instance((str, os.PathLike), "a file path")
TRAINING_PARAMS = ("n_bits", "seed", "schedule", "batch_size", "device", "init_from", "checkpoint", "progress")
TRAINING_CONSTRAINTS = {  # the training parameters every deep method (and DSH's ensembles) share
    "schedule": BUDGET,
    "batch_size": [Interval(int, 2, None)],
    "device": [Instance(str, "a torch device name")],
    "progress": [BOOL],
}


class DeepHasher(Hasher):
    """The DSH network trained end to end with the loss :attr:`loss` (a name in
    :data:`hashbench.nets.losses.LOSSES`).

    Parameters: ``n_bits`` (k); ``seed`` (initialisation, data order, mirroring);
    ``schedule`` ``"quick"`` (default, fits a 2-core CPU), ``"paper"`` (the DSH release), an
    iteration count N (quick, shortened) or ``"paper:N"`` (the release's SGD, shortened);
    ``batch_size`` (200 released); ``device`` ``"auto"`` = CUDA when present; ``init_from`` a
    trained model file: fine-tune from it (its layers and mean image, a new output layer at
    lr x10, the fine-tuning schedule); ``checkpoint`` a file to save training state to and
    resume from (a finished checkpoint is loaded without training); ``progress`` a tqdm bar
    with loss and images/s; a subclass's other parameters are the loss's.

    ``fit(X, y, eval_set=(images, labels))`` also records the test loss of Figure 4 on a
    fixed sample of those held-out images (:func:`nets.held_out_sample`, at most 1,000, every
    :func:`nets.held_out_every` iterations), stored with the checkpoint (:func:`nets.load_history`).

    Learned: ``net_`` (the torch network, on CPU), ``loss_`` (the loss module, on CPU),
    ``losses_`` (loss per iteration), ``fit_mode_`` ("trained", "resumed" from a partial
    checkpoint, or "loaded" finished). ``project`` returns the k real-valued outputs;
    ``encode`` packs ``loss_.codes`` of them.

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
    device : str
        Torch device to train and encode on (``"auto"``: CUDA when present).
    init_from : str or None
        Checkpoint to start from instead of a random initialisation.
    checkpoint : str or None
        Path a trained model is saved to and reloaded from.
    progress : bool
        Whether to report training progress.

    Attributes
    ----------
    net_ : torch.nn.Module
        The trained network.
    loss_ : torch.nn.Module
        The trained loss.
    losses_ : list of float
        Training loss per iteration.
    fit_mode_ : str
        ``"trained"``, ``"resumed"`` (from a partial checkpoint) or ``"loaded"`` (a finished one).

    References
    ----------
    Liu, Wang, Shan, Chen. Deep Supervised Hashing for Fast Image Retrieval. CVPR 2016.
    """

    loss: ClassVar[str] = ""
    input_kind = "images"
    supervised = True
    trains_model_file = True
    monitors_held_out = True
    budget_param = "schedule"
    settings_params = ("progress",)
    model_file_params = ("init_from",)
    device_param = "device"
    _parameter_constraints: ClassVar[dict] = {
        **TRAINING_CONSTRAINTS,
        "init_from": [PATH, None],
        "checkpoint": [PATH, None],
    }
    fast_params: ClassVar[dict] = {"n_bits": 8, "schedule": 2, "batch_size": 16, "device": "cpu", "progress": False}

    def __init__(self, n_bits: int = 12, seed: int = 0, schedule="quick", batch_size: int = 200,
                 device: str = "auto", init_from=None, checkpoint=None, progress: bool = True):
        self.n_bits = n_bits
        self.seed = seed
        self.schedule = schedule
        self.batch_size = batch_size
        self.device = device
        self.init_from = init_from
        self.checkpoint = checkpoint
        self.progress = progress

    def loss_params(self) -> dict:
        """The parameters that go to the loss: every one but :data:`TRAINING_PARAMS`."""
        return {k: v for k, v in self.get_params(deep=False).items() if k not in TRAINING_PARAMS}

    def make_loss(self, n_classes: int):
        from ..nets.losses import get_loss

        return get_loss(self.loss, self.n_bits, n_classes, **self.loss_params())

    def _fit(self, images, labels, eval_set=None):
        import torch

        from .. import nets

        k = self.n_bits
        held_out = None
        if eval_set is not None:
            idx = nets.held_out_sample(eval_set[0].shape[0])
            held_out = (eval_set[0][idx], eval_set[1][idx])
        n_classes = int(labels.shape[1]) if labels.ndim == 2 else int(labels.max()) + 1
        loss = self.make_loss(n_classes)
        finetune = self.init_from is not None
        schedule = nets.get_schedule(self.schedule, finetune=finetune)
        if loss.lr_scale != 1.0:
            schedule = dataclasses.replace(schedule, lr=schedule.lr * loss.lr_scale)
        if finetune:
            state = nets.load_state(self.init_from)
            if tuple(state["mean"].shape) != images.shape[1:]:
                raise InputError(f"init_from: model takes {tuple(state['mean'].shape)} images, "
                                 f"X has {images.shape[1:]}")
            net = nets.finetune_net(state, k, self.seed)
        else:
            net = nets.new_net(k, images.shape[1], self.seed, images.shape[3], head_std=loss.head_init_std)
            net.mean.copy_(torch.from_numpy(images.mean(0, dtype=np.float64).astype(np.float32)))
        # what a checkpoint must have been written by to be resumed (DSH's keys since its first release)
        config = {"kind": loss.name, "n_bits": k, **loss.config(), "finetune": finetune}
        start = nets.checkpoint_iteration(self.checkpoint)
        self.losses_ = nets.train(
            net, images, loss, labels, schedule, seed=int(self.seed), batch_size=int(self.batch_size),
            device=self.device, new_head=finetune, checkpoint=self.checkpoint, config=config,
            progress=self.progress, held_out=held_out,
        )
        self.net_ = net.cpu()
        self.loss_ = loss.cpu()
        self.fit_mode_ = "loaded" if start >= schedule.iterations else "resumed" if start else "trained"

    def _project(self, images) -> np.ndarray:
        from .. import nets

        return nets.apply(self.net_, images, "outputs", device=self.device)

    def encode(self, X) -> np.ndarray:
        """Packed codes by the loss's code rule (``loss_.codes``; the sign rule unless the loss
        says otherwise)."""
        import torch

        codes = self.loss_.codes(torch.from_numpy(self.project(X)))
        return pack(codes.numpy() > 0)

    def save(self, path) -> None:
        """Save the trained network as a state dict (what ``init_from`` and the CNN-ours
        extractor load)."""
        from .. import nets

        nets.save_state(self.net_, path)
