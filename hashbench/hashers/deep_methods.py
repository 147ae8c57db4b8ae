"""The field's deep hashing losses as methods, each twice: end to end on the DSH network from
raw pixels (:class:`~hashbench.hashers.deep.DeepHasher`: DSH's network, quick schedule, batch
200 and seed) and as a linear head on frozen features
(:class:`~hashbench.hashers.heads.LinearHead`, method name ``<loss>-head``).

====================  ====================================  =====================
method                 loss (:mod:`hashbench.nets.losses`)    source
====================  ====================================  =====================
``dpsh``               pairwise likelihood + quantisation      Li et al., IJCAI 2016
``hashnet``            weighted pairwise CE, tanh continuation Cao et al., ICCV 2017
``greedyhash``         sign + straight-through, CE, cubic      Su et al., NeurIPS 2018
``csq``                BCE to Hadamard centres + quantisation  Yuan et al., CVPR 2020
``orthohash``          margin CE on cosines to codewords       Hoe et al., NeurIPS 2021
====================  ====================================  =====================

Each loss module states what its authors released and every deviation. The parameters here
are the loss's (same names, same defaults: ``tests/test_deep_methods.py`` checks it); a loss
that draws something at random (a classifier, centres, a codebook) draws it from the
method's ``seed``. ``dsh-head`` is DSH's own loss on the linear head, the cheap track's
reference.
"""

from typing import ClassVar

from ..params import Interval, Options
from .base import register
from .deep import DeepHasher
from .heads import LinearHead

POSITIVE = Interval(float, 0, None, closed="neither")
NON_NEGATIVE = Interval(float, 0, None)


class _SeedsTheLoss:
    """For losses with random parts: the method's ``seed`` goes to the loss too."""

    def loss_params(self) -> dict:
        return {**super().loss_params(), "seed": int(self.seed)}


DPSH_PARAMS = {"eta": [NON_NEGATIVE]}
HASHNET_PARAMS = {"alpha": [POSITIVE, None], "class_num": [POSITIVE, None], "threshold": [POSITIVE]}
GREEDYHASH_PARAMS = {"alpha": [NON_NEGATIVE]}
CSQ_PARAMS = {"lambda2": [NON_NEGATIVE]}
ORTHOHASH_PARAMS = {"scale": [POSITIVE], "margin": [NON_NEGATIVE]}
DSH_PARAMS = {"margin": [POSITIVE, None], "alpha": [NON_NEGATIVE], "relax": [Options(None, "sigmoid")]}


# ---- end to end on the DSH network -------------------------------------------------------

@register("dpsh")
class DPSH(DeepHasher):
    """DPSH (Li, Wang, Kang, IJCAI 2016) trained end to end on the DSH network
    (:mod:`hashbench.nets.losses.dpsh`); ``eta`` the quantisation weight.

    Parameters
    ----------
    n_bits : int
        Code length in bits.
    seed : int
        Seed of the initialisation, the batch order and any random part of the loss.
    eta : float
        Weight of the quantisation term (DPSH).
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
    Li, Wang, Kang. Feature Learning based Deep Supervised Hashing with Pairwise Labels. IJCAI 2016.
    """

    label = "DPSH"
    loss = "dpsh"
    _parameter_constraints: ClassVar[dict] = DPSH_PARAMS

    def __init__(self, n_bits: int = 12, seed: int = 0, eta: float = 0.002, schedule="quick", batch_size: int = 200,
                 device: str = "auto", init_from=None, checkpoint=None, progress: bool = True):
        super().__init__(n_bits, seed, schedule, batch_size, device, init_from, checkpoint, progress)
        self.eta = eta


@register("hashnet")
class HashNet(DeepHasher):
    """HashNet (Cao et al., ICCV 2017) trained end to end on the DSH network
    (:mod:`hashbench.nets.losses.hashnet`); ``alpha`` None = 10 / n_bits, ``class_num``
    None = the number of classes, ``threshold`` 15.

    Parameters
    ----------
    n_bits : int
        Code length in bits.
    seed : int
        Seed of the initialisation, the batch order and any random part of the loss.
    alpha : float or None
        HashNet's sigmoid scale on the inner products; None: 10 / n_bits, the release's.
    class_num : float or None
        HashNet's positive-pair weight; None = the number of classes.
    threshold : float
        HashNet's similarity threshold.
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
    Cao et al. HashNet: Deep Learning to Hash by Continuation. ICCV 2017.
    """

    label = "HashNet"
    loss = "hashnet"
    _parameter_constraints: ClassVar[dict] = HASHNET_PARAMS

    def __init__(self, n_bits: int = 12, seed: int = 0, alpha: float | None = None, class_num: float | None = None,
                 threshold: float = 15.0, schedule="quick", batch_size: int = 200, device: str = "auto",
                 init_from=None, checkpoint=None, progress: bool = True):
        super().__init__(n_bits, seed, schedule, batch_size, device, init_from, checkpoint, progress)
        self.alpha = alpha
        self.class_num = class_num
        self.threshold = threshold


@register("greedyhash")
class GreedyHash(_SeedsTheLoss, DeepHasher):
    """GreedyHash (Su et al., NeurIPS 2018) trained end to end on the DSH network
    (:mod:`hashbench.nets.losses.greedyhash`; its classifier trains with the network);
    ``alpha`` the cubic penalty's weight.

    Parameters
    ----------
    n_bits : int
        Code length in bits.
    seed : int
        Seed of the initialisation, the batch order and any random part of the loss.
    alpha : float
        Weight of GreedyHash's cubic penalty |abs(h) - 1|^3.
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
    Su et al. Greedy Hash: Towards Fast Optimization for Accurate Hash Coding in CNN. NeurIPS 2018.
    """

    label = "GreedyHash"
    loss = "greedyhash"
    _parameter_constraints: ClassVar[dict] = GREEDYHASH_PARAMS

    def __init__(self, n_bits: int = 12, seed: int = 0, alpha: float = 0.1, schedule="quick", batch_size: int = 200,
                 device: str = "auto", init_from=None, checkpoint=None, progress: bool = True):
        super().__init__(n_bits, seed, schedule, batch_size, device, init_from, checkpoint, progress)
        self.alpha = alpha


@register("csq")
class CSQ(_SeedsTheLoss, DeepHasher):
    """CSQ (Yuan et al., CVPR 2020) trained end to end on the DSH network
    (:mod:`hashbench.nets.losses.csq`); ``lambda2`` the quantisation weight.

    Parameters
    ----------
    n_bits : int
        Code length in bits.
    seed : int
        Seed of the initialisation, the batch order and any random part of the loss.
    lambda2 : float
        Weight of CSQ's quantisation term.
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
    Yuan et al. Central Similarity Quantization for Efficient Image and Video Retrieval. CVPR 2020.
    """

    label = "CSQ"
    loss = "csq"
    _parameter_constraints: ClassVar[dict] = CSQ_PARAMS

    def __init__(self, n_bits: int = 12, seed: int = 0, lambda2: float = 0.05, schedule="quick", batch_size: int = 200,
                 device: str = "auto", init_from=None, checkpoint=None, progress: bool = True):
        super().__init__(n_bits, seed, schedule, batch_size, device, init_from, checkpoint, progress)
        self.lambda2 = lambda2


@register("orthohash")
class OrthoHash(_SeedsTheLoss, DeepHasher):
    """OrthoHash (Hoe et al., NeurIPS 2021) trained end to end on the DSH network
    (:mod:`hashbench.nets.losses.orthohash`); ``scale`` s, ``margin`` m.

    Parameters
    ----------
    n_bits : int
        Code length in bits.
    seed : int
        Seed of the initialisation, the batch order and any random part of the loss.
    scale : float
        OrthoHash's scale s.
    margin : float
        OrthoHash's margin m, subtracted from the true class's cosine (default 0.2).
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
    Hoe et al. One Loss for All: Deep Hashing with a Single Cosine Similarity based Learning Objective. NeurIPS 2021.
    """

    label = "OrthoHash"
    loss = "orthohash"
    _parameter_constraints: ClassVar[dict] = ORTHOHASH_PARAMS

    def __init__(self, n_bits: int = 12, seed: int = 0, scale: float = 8.0, margin: float = 0.2, schedule="quick",
                 batch_size: int = 200, device: str = "auto", init_from=None, checkpoint=None, progress: bool = True):
        super().__init__(n_bits, seed, schedule, batch_size, device, init_from, checkpoint, progress)
        self.scale = scale
        self.margin = margin


# ---- linear heads on frozen features --------------------------------------------------------

@register("dpsh-head")
class DPSHHead(LinearHead):
    """DPSH's loss on a linear hash layer over frozen features (see :class:`DPSH`).

    Parameters
    ----------
    n_bits : int
        Code length in bits.
    seed : int
        Seed of the initialisation, the batch order and any random part of the loss.
    eta : float
        Weight of the quantisation term (DPSH).
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
    Li, Wang, Kang. Feature Learning based Deep Supervised Hashing with Pairwise Labels. IJCAI 2016.
    """

    label = "DPSH head"
    loss = "dpsh"
    _parameter_constraints: ClassVar[dict] = DPSH_PARAMS

    def __init__(self, n_bits: int = 12, seed: int = 0, eta: float = 0.002, schedule="quick", batch_size: int = 200):
        super().__init__(n_bits, seed, schedule, batch_size)
        self.eta = eta


@register("hashnet-head")
class HashNetHead(LinearHead):
    """HashNet's loss on a linear hash layer over frozen features (see :class:`HashNet`).

    Parameters
    ----------
    n_bits : int
        Code length in bits.
    seed : int
        Seed of the initialisation, the batch order and any random part of the loss.
    alpha : float or None
        HashNet's sigmoid scale on the inner products; None: 10 / n_bits, the release's.
    class_num : float or None
        HashNet's positive-pair weight; None = the number of classes.
    threshold : float
        HashNet's similarity threshold.
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
    Cao et al. HashNet: Deep Learning to Hash by Continuation. ICCV 2017.
    """

    label = "HashNet head"
    loss = "hashnet"
    _parameter_constraints: ClassVar[dict] = HASHNET_PARAMS

    def __init__(self, n_bits: int = 12, seed: int = 0, alpha: float | None = None, class_num: float | None = None,
                 threshold: float = 15.0, schedule="quick", batch_size: int = 200):
        super().__init__(n_bits, seed, schedule, batch_size)
        self.alpha = alpha
        self.class_num = class_num
        self.threshold = threshold


@register("greedyhash-head")
class GreedyHashHead(_SeedsTheLoss, LinearHead):
    """GreedyHash's loss on a linear hash layer over frozen features (see :class:`GreedyHash`).

    Parameters
    ----------
    n_bits : int
        Code length in bits.
    seed : int
        Seed of the initialisation, the batch order and any random part of the loss.
    alpha : float
        Weight of GreedyHash's cubic penalty |abs(h) - 1|^3.
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
    Su et al. Greedy Hash: Towards Fast Optimization for Accurate Hash Coding in CNN. NeurIPS 2018.
    """

    label = "GreedyHash head"
    loss = "greedyhash"
    _parameter_constraints: ClassVar[dict] = GREEDYHASH_PARAMS

    def __init__(self, n_bits: int = 12, seed: int = 0, alpha: float = 0.1, schedule="quick", batch_size: int = 200):
        super().__init__(n_bits, seed, schedule, batch_size)
        self.alpha = alpha


@register("csq-head")
class CSQHead(_SeedsTheLoss, LinearHead):
    """CSQ's loss on a linear hash layer over frozen features (see :class:`CSQ`).

    Parameters
    ----------
    n_bits : int
        Code length in bits.
    seed : int
        Seed of the initialisation, the batch order and any random part of the loss.
    lambda2 : float
        Weight of CSQ's quantisation term.
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
    Yuan et al. Central Similarity Quantization for Efficient Image and Video Retrieval. CVPR 2020.
    """

    label = "CSQ head"
    loss = "csq"
    _parameter_constraints: ClassVar[dict] = CSQ_PARAMS

    def __init__(self, n_bits: int = 12, seed: int = 0, lambda2: float = 0.05, schedule="quick", batch_size: int = 200):
        super().__init__(n_bits, seed, schedule, batch_size)
        self.lambda2 = lambda2


@register("orthohash-head")
class OrthoHashHead(_SeedsTheLoss, LinearHead):
    """OrthoHash's loss on a linear hash layer over frozen features (see :class:`OrthoHash`).

    Parameters
    ----------
    n_bits : int
        Code length in bits.
    seed : int
        Seed of the initialisation, the batch order and any random part of the loss.
    scale : float
        OrthoHash's scale s.
    margin : float
        OrthoHash's margin m, subtracted from the true class's cosine (default 0.2).
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
    Hoe et al. One Loss for All: Deep Hashing with a Single Cosine Similarity based Learning Objective. NeurIPS 2021.
    """

    label = "OrthoHash head"
    loss = "orthohash"
    _parameter_constraints: ClassVar[dict] = ORTHOHASH_PARAMS

    def __init__(self, n_bits: int = 12, seed: int = 0, scale: float = 8.0, margin: float = 0.2, schedule="quick",
                 batch_size: int = 200):
        super().__init__(n_bits, seed, schedule, batch_size)
        self.scale = scale
        self.margin = margin


@register("dsh-head")
class DSHHead(LinearHead):
    """DSH's loss (:mod:`hashbench.nets.losses.dsh`: ``margin`` None = 2k, ``alpha`` 0.01,
    ``relax`` None or ``"sigmoid"``) on a linear hash layer over frozen features.

    Parameters
    ----------
    n_bits : int
        Code length in bits.
    seed : int
        Seed of the initialisation, the batch order and any random part of the loss.
    margin : float or None
        DSH's margin m: None = 2 * n_bits (released) for the plain loss; required with ``relax="sigmoid"``.
    alpha : float
        Weight of DSH's regulariser pulling outputs to +-1 (the released 0.01).
    relax : str or None
        DSH's relaxation: None or ``"sigmoid"``.
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
    Liu, Wang, Shan, Chen. Deep Supervised Hashing for Fast Image Retrieval. CVPR 2016.
    """

    label = "DSH head"
    loss = "dsh"
    _parameter_constraints: ClassVar[dict] = DSH_PARAMS

    def __init__(self, n_bits: int = 12, seed: int = 0, margin: float | None = None, alpha: float = 0.01,
                 relax: str | None = None, schedule="quick", batch_size: int = 200):
        super().__init__(n_bits, seed, schedule, batch_size)
        self.margin = margin
        self.alpha = alpha
        self.relax = relax
