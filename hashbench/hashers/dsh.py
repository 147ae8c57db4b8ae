"""Deep Supervised Hashing (Liu, Wang, Shan, Chen, CVPR 2016): the released CNN trained end to
end on image pairs; code bits are the signs of its k real-valued outputs.

Network, loss and solvers live in :mod:`hashbench.nets` (which states every deviation from
the authors' Caffe release); this module makes them a hasher (``input_kind = "images"``), with
the supplementary variants: ``alpha`` (Table 1), ``relax="sigmoid"`` with its margin (Table 1),
fine-tuning longer codes from a 12-bit model (``init_from``, Table 2) and ensembles of 12-bit
models trained from different seeds (``dsh-ensemble``, Table 3). torch is imported on first
use, so listing the hashers stays fast.
"""

import os
from typing import ClassVar

import numpy as np

from ..errors import InputError
from ..params import BOOL, SEED, Instance, Interval, ListOf, Options, Pattern
from .base import MAX_BITS, Hasher, register

PATH = Instance((str, os.PathLike), "a file path")
SCHEDULE = [Options("quick", "paper"), Pattern(r"paper:[1-9][0-9]*", "'paper:N'"), Interval(int, 1, None)]
COMMON = {  # the training parameters DSH and its ensembles share
    "alpha": [Interval(float, 0, None)],
    "schedule": SCHEDULE,
    "batch_size": [Interval(int, 2, None)],
    "device": [Instance(str, "a torch device name")],
    "progress": [BOOL],
}


@register("dsh")
class DSH(Hasher):
    """DSH hasher.

    Parameters: ``n_bits`` (k); ``seed`` (initialisation, data order, mirroring);
    ``alpha`` the regulariser weight (0.01 released); ``relax`` None or ``"sigmoid"``;
    ``margin`` None = 2k (released) for the plain loss, required with ``relax="sigmoid"``;
    ``schedule`` ``"quick"`` (default, fits a 2-core CPU), ``"paper"`` (the release), an
    iteration count N (quick, shortened) or ``"paper:N"`` (the release's SGD, shortened);
    ``batch_size`` (200 released); ``device`` ``"auto"`` = CUDA when present;
    ``init_from`` a trained model file: fine-tune from it (its layers and mean image, a new
    output layer at lr x10, the fine-tuning schedule); ``checkpoint`` a file to save training
    state to and resume from (a finished checkpoint is loaded without training);
    ``progress`` a tqdm bar with loss and images/s.

    ``fit(X, y, eval_set=(images, labels))`` also records the test loss of Figure 4 on a
    fixed sample of those held-out images (:func:`nets.held_out_sample`, at most 1,000, every
    :func:`nets.held_out_every` iterations), stored with the checkpoint (:func:`nets.load_history`).

    Learned: ``net_`` (the torch network, on CPU), ``losses_`` (loss per iteration),
    ``fit_mode_`` ("trained", "resumed" from a partial checkpoint, or "loaded" finished).
    ``project`` returns the k real-valued outputs (pre-sigmoid for the relaxed variant, whose
    bits are sigmoid > 1/2, i.e. output > 0 as well).
    """

    label = "DSH"
    input_kind = "images"
    supervised = True
    trains_model_file = True
    monitors_held_out = True
    budget_param = "schedule"
    settings_params = ("progress",)
    model_file_params = ("init_from",)
    device_param = "device"
    _parameter_constraints: ClassVar[dict] = {
        **COMMON,
        "relax": [Options(None, "sigmoid")],
        "margin": [Interval(float, 0, None, closed="neither"), None],
        "init_from": [PATH, None],
        "checkpoint": [PATH, None],
    }
    fast_params: ClassVar[dict] = {"n_bits": 8, "schedule": 2, "batch_size": 16, "device": "cpu", "progress": False}

    def __init__(
        self,
        n_bits: int = 12,
        seed: int = 0,
        alpha: float = 0.01,
        relax: str | None = None,
        margin: float | None = None,
        schedule="quick",
        batch_size: int = 200,
        device: str = "auto",
        init_from=None,
        checkpoint=None,
        progress: bool = True,
    ):
        self.n_bits = n_bits
        self.seed = seed
        self.alpha = alpha
        self.relax = relax
        self.margin = margin
        self.schedule = schedule
        self.batch_size = batch_size
        self.device = device
        self.init_from = init_from
        self.checkpoint = checkpoint
        self.progress = progress

    def _margin(self, k: int) -> float:
        if self.margin is None:
            if self.relax == "sigmoid":
                raise InputError("margin: the sigmoid-relaxed variant needs a margin (Table 1 uses 1, 2, 3, 6)")
            return 2.0 * k
        return float(self.margin)

    def _fit(self, images, labels, eval_set=None):
        import torch

        from .. import nets

        k = self.n_bits
        held_out = None
        if eval_set is not None:
            idx = nets.held_out_sample(eval_set[0].shape[0])
            held_out = (eval_set[0][idx], eval_set[1][idx])
        margin = self._margin(k)
        finetune = self.init_from is not None
        schedule = nets.get_schedule(self.schedule, finetune=finetune)
        if finetune:
            state = nets.load_state(self.init_from)
            if tuple(state["mean"].shape) != images.shape[1:]:
                raise InputError(f"init_from: model takes {tuple(state['mean'].shape)} images, "
                                 f"X has {images.shape[1:]}")
            net = nets.finetune_net(state, k, self.seed)
        else:
            net = nets.new_net(k, images.shape[1], self.seed, images.shape[3])
            net.mean.copy_(torch.from_numpy(images.mean(0, dtype=np.float64).astype(np.float32)))
        relax, alpha = self.relax, float(self.alpha)

        def loss(out, target):
            return nets.dsh_loss(out, target, margin, alpha, relax)

        config = {"kind": "dsh", "n_bits": k, "alpha": alpha, "relax": str(relax), "margin": margin,
                  "finetune": finetune}
        start = nets.checkpoint_iteration(self.checkpoint)
        self.losses_ = nets.train(
            net, images, loss, labels, schedule, seed=int(self.seed), batch_size=int(self.batch_size),
            device=self.device, new_head=finetune, checkpoint=self.checkpoint, config=config,
            progress=self.progress, held_out=held_out,
        )
        self.net_ = net.cpu()
        self.fit_mode_ = "loaded" if start >= schedule.iterations else "resumed" if start else "trained"

    def _project(self, images) -> np.ndarray:
        from .. import nets

        return nets.apply(self.net_, images, "outputs", device=self.device)

    def save(self, path) -> None:
        """Save the trained network as a state dict (what ``init_from`` and the CNN-ours
        extractor load)."""
        from .. import nets

        nets.save_state(self.net_, path)


@register("dsh-ensemble")
class DSHEnsemble(Hasher):
    """Supplementary Table 3: the codes of n_bits / member_bits DSH models, trained alike from
    seeds ``seed``, ``seed + 1``, ... (or the listed ``seeds``), concatenated. ``checkpoints``
    optionally lists one file per member (finished ones are loaded, so trained models combine
    without retraining, e.g. ``seeds=[0, 2]`` for "M1 + M3"). Other parameters as
    :class:`DSH`."""

    label = "DSH ensemble"
    input_kind = "images"
    supervised = True
    budget_param = "schedule"
    settings_params = ("progress",)
    model_file_params = ("checkpoints",)
    device_param = "device"
    _parameter_constraints: ClassVar[dict] = {
        **COMMON,
        "member_bits": [Interval(int, 1, MAX_BITS)],
        "seeds": [ListOf(SEED), None],
        "checkpoints": [ListOf(PATH), None],
    }
    fast_params: ClassVar[dict] = {"n_bits": 8, "member_bits": 4, "schedule": 2, "batch_size": 16, "device": "cpu",
                                   "progress": False}

    def __init__(
        self, n_bits: int = 24, member_bits: int = 12, seed: int = 0, seeds=None, alpha: float = 0.01,
        schedule="quick", batch_size: int = 200, device: str = "auto", checkpoints=None,
        progress: bool = True,
    ):
        self.n_bits = n_bits
        self.member_bits = member_bits
        self.seed = seed
        self.seeds = seeds
        self.alpha = alpha
        self.schedule = schedule
        self.batch_size = batch_size
        self.device = device
        self.checkpoints = checkpoints
        self.progress = progress

    def _fit(self, X, y):
        k, m = self.n_bits, self.member_bits
        if k % m:
            raise InputError(f"n_bits ({k}) must be a multiple of member_bits ({m})")
        n = k // m
        seeds = list(self.seeds) if self.seeds is not None else [self.seed + i for i in range(n)]
        ckpts = list(self.checkpoints) if self.checkpoints is not None else [None] * n
        if len(seeds) != n or len(ckpts) != n:
            raise InputError(f"seeds, checkpoints: {k} bits = {n} members need {n} of each")
        self.members_ = [
            DSH(
                n_bits=m, seed=s, alpha=self.alpha, schedule=self.schedule, batch_size=self.batch_size,
                device=self.device, checkpoint=c, progress=self.progress,
            ).fit(X, y)
            for s, c in zip(seeds, ckpts, strict=True)
        ]
        modes = {h.fit_mode_ for h in self.members_}
        self.fit_mode_ = modes.pop() if len(modes) == 1 else "resumed"

    def _project(self, X) -> np.ndarray:
        return np.concatenate([h._project(X) for h in self.members_], axis=1)
