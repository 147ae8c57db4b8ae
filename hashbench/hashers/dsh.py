"""Deep Supervised Hashing (Liu, Wang, Shan, Chen, CVPR 2016): the released CNN trained end to
end on image pairs; code bits are the signs of its k real-valued outputs.

DSH is the first :class:`~hashbench.hashers.deep.DeepHasher`: the network of
:mod:`hashbench.nets.model` with the loss of :mod:`hashbench.nets.losses.dsh` (which, with
:mod:`hashbench.nets`, states every deviation from the authors' Caffe release). This module
adds the supplementary variants: ``alpha`` (Table 1), ``relax="sigmoid"`` with its margin
(Table 1), fine-tuning longer codes from a 12-bit model (``init_from``, Table 2) and ensembles
of 12-bit models trained from different seeds (``dsh-ensemble``, Table 3).
"""

from typing import ClassVar

import numpy as np

from ..errors import InputError
from ..params import SEED, Interval, ListOf, Options
from .base import MAX_BITS, Hasher, register
from .deep import PATH, TRAINING_CONSTRAINTS, DeepHasher

COMMON = {**TRAINING_CONSTRAINTS, "alpha": [Interval(float, 0, None)]}  # DSH's and its ensembles'


@register("dsh")
class DSH(DeepHasher):
    """Deep Supervised Hashing: the DSH network trained with the ``dsh`` loss (a :class:`DeepHasher`).

    ``project`` returns the k real-valued outputs (pre-sigmoid for the relaxed variant, whose
    bits are sigmoid > 1/2, i.e. output > 0 as well).

    Parameters
    ----------
    n_bits : int
        Code length in bits.
    seed : int
        Seed of the initialisation, the batch order and any random part of the loss.
    alpha : float
        Weight of DSH's regulariser pulling outputs to +-1 (the released 0.01).
    relax : str or None
        DSH's relaxation: None or ``"sigmoid"``.
    margin : float or None
        DSH's margin m: None = 2 * n_bits (released) for the plain loss; required with ``relax="sigmoid"``.
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

    label = "DSH"
    loss = "dsh"
    _parameter_constraints: ClassVar[dict] = {
        **COMMON,
        "relax": [Options(None, "sigmoid")],
        "margin": [Interval(float, 0, None, closed="neither"), None],
    }

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
        super().__init__(n_bits, seed, schedule, batch_size, device, init_from, checkpoint, progress)
        self.alpha = alpha
        self.relax = relax
        self.margin = margin


@register("dsh-ensemble")
class DSHEnsemble(Hasher):
    """Supplementary Table 3: the codes of n_bits / member_bits DSH models, trained alike from
    seeds ``seed``, ``seed + 1``, ... (or the listed ``seeds``), concatenated. ``checkpoints``
    optionally lists one file per member (finished ones are loaded, so trained models combine
    without retraining, e.g. ``seeds=[0, 2]`` for "M1 + M3"). Other parameters as
    :class:`DSH`.

    Parameters
    ----------
    n_bits : int
        Code length in bits.
    member_bits : int
        Bits of each member model.
    seed : int
        Seed of the initialisation, the batch order and any random part of the loss.
    seeds : list of int or None
        One seed per member; None = derived from ``seed``.
    alpha : float
        Weight of DSH's regulariser pulling outputs to +-1 (the released 0.01).
    schedule : str
        The budget: ``'quick'``, ``'paper'``, ``'paper:N'`` or an iteration count
        (:func:`hashbench.nets.schedules.parse_budget`).
    batch_size : int
        Mini-batch size (200 released).
    device : str
        Torch device to train and encode on (``"auto"``: CUDA when present).
    checkpoints : list of str or None
        One checkpoint path per member.
    progress : bool
        Whether to report training progress.

    Attributes
    ----------
    members_ : list of DSH
        The member models.
    fit_mode_ : str
        Whether the members were trained or loaded.

    References
    ----------
    Liu, Wang, Shan, Chen. Deep Supervised Hashing for Fast Image Retrieval. CVPR 2016.
    """

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
