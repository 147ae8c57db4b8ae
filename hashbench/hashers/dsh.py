"""Deep Supervised Hashing (Liu, Wang, Shan, Chen, CVPR 2016): the released CNN trained end to
end on image pairs; code bits are the signs of its k real-valued outputs.

Network, loss and solvers live in :mod:`hashbench.nets` (which states every deviation from
the authors' Caffe release); this module makes them a hasher (``input_kind = "images"``), with
the supplementary variants: ``alpha`` (Table 1), ``relax="sigmoid"`` with its margin (Table 1),
fine-tuning longer codes from a 12-bit model (``init_from``, Table 2) and ensembles of 12-bit
models trained from different seeds (``dsh-ensemble``, Table 3). torch is imported on first
use, so listing the hashers stays fast.
"""

import numpy as np

from ..errors import InputError
from ..labels import check_labels
from .base import Hasher, check_n_bits, register


def check_images(images, name: str = "images") -> np.ndarray:
    """uint8 (n, H, W, C) square images, or an InputError naming what is wrong."""
    a = np.asarray(images)
    if a.ndim != 4 or a.shape[1] != a.shape[2] or a.shape[0] == 0:
        raise InputError(f"{name}: expected uint8 (n, H, W, C) square images, got shape {a.shape}")
    if a.dtype != np.uint8:
        raise InputError(f"{name}: expected uint8 pixels (0-255), got dtype {a.dtype}")
    return a


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

    input_kind = "images"
    supervised = True

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
        if self.relax not in (None, "sigmoid"):
            raise InputError(f"relax must be None or 'sigmoid', got {self.relax!r}")
        if self.margin is None:
            if self.relax == "sigmoid":
                raise InputError("margin: the sigmoid-relaxed variant needs a margin (Table 1 uses 1, 2, 3, 6)")
            return 2.0 * k
        if not np.isfinite(self.margin) or self.margin <= 0:
            raise InputError(f"margin must be positive, got {self.margin!r}")
        return float(self.margin)

    def fit(self, X, y=None, eval_set=None):
        import torch

        from .. import nets

        k = check_n_bits(self.n_bits)
        images = check_images(X, "X")
        if y is None:
            raise InputError("y: DSH is supervised and needs labels")
        labels = check_labels(y, images.shape[0], "y")
        held_out = None
        if eval_set is not None:
            test_images = check_images(eval_set[0], "eval_set")
            idx = nets.held_out_sample(test_images.shape[0])
            held_out = (test_images[idx], check_labels(eval_set[1], test_images.shape[0], "eval_set")[idx])
        margin = self._margin(k)
        if not (np.isfinite(self.alpha) and self.alpha >= 0):
            raise InputError(f"alpha must be >= 0, got {self.alpha!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 2:
            raise InputError(f"batch_size must be an integer >= 2, got {self.batch_size!r}")
        finetune = self.init_from is not None
        schedule = nets.get_schedule(self.schedule, finetune=finetune)
        if finetune:
            state = nets.load_state(self.init_from)
            if tuple(state["mean"].shape) != images.shape[1:]:
                raise InputError(f"init_from: model takes {tuple(state['mean'].shape)} images, X has {images.shape[1:]}")
            net = nets.finetune_net(state, k, self.seed)
        else:
            net = nets.new_net(k, images.shape[1], self.seed, images.shape[3])
            net.mean.copy_(torch.from_numpy(images.mean(0, dtype=np.float64).astype(np.float32)))
        relax, alpha = self.relax, float(self.alpha)

        def loss(out, target):
            return nets.dsh_loss(out, target, margin, alpha, relax)

        config = {"kind": "dsh", "n_bits": k, "alpha": alpha, "relax": str(relax), "margin": margin, "finetune": finetune}
        start = nets.checkpoint_iteration(self.checkpoint)
        self.losses_ = nets.train(
            net, images, loss, labels, schedule, seed=int(self.seed), batch_size=int(self.batch_size),
            device=self.device, new_head=finetune, checkpoint=self.checkpoint, config=config,
            progress=self.progress, held_out=held_out,
        )
        self.net_ = net.cpu()
        self.fit_mode_ = "loaded" if start >= schedule.iterations else "resumed" if start else "trained"
        return self

    def project(self, X) -> np.ndarray:
        from .. import nets

        images = check_images(X, "X")
        if tuple(self.net_.mean.shape) != images.shape[1:]:
            raise InputError(f"X: the model takes {tuple(self.net_.mean.shape)} images, got {images.shape[1:]}")
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

    input_kind = "images"
    supervised = True

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

    def fit(self, X, y=None):
        k, m = check_n_bits(self.n_bits), check_n_bits(self.member_bits)
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
            for s, c in zip(seeds, ckpts)
        ]
        modes = {h.fit_mode_ for h in self.members_}
        self.fit_mode_ = modes.pop() if len(modes) == 1 else "resumed"
        return self

    def project(self, X) -> np.ndarray:
        return np.concatenate([h.project(X) for h in self.members_], axis=1)
