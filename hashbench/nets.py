"""The DSH CNN family (Liu, Wang, Shan, Chen, CVPR 2016) as its authors released it in Caffe
(lhmRyan/deep-supervised-hashing-DSH: CIFAR-10/train_test.prototxt, solver.prototxt,
finetune*.prototxt, src/caffe/layers/hashing_loss_layer.cpp), in torch.

One trunk (conv-pool-LRN x2, conv-pool, FC 500) with a linear head: k outputs for hashing
(:func:`dsh_loss`) or 10 for the CNN-cls classifier (softmax). :func:`train` is the one
training loop (minibatches, mirroring, lr multipliers, schedules, resumable checkpoints).

Deliberate deviations from the release, each small and stated where it lives:
- the data order is a fresh seeded permutation each epoch (Caffe cycles its LMDB in stored
  order), so that a run depends on its seed only;
- torch's SGD scales the momentum buffer by the current lr at update time, Caffe by the lr of
  each past step: the two differ only for a few hundred iterations after an lr step;
- the default "quick" schedule uses Adam (see :data:`SCHEDULES`); "paper" is the release.
  Adam does not suit the sigmoid-relaxed loss: its first steps, a step of lr in every weight
  whatever the gradient's size, take the outputs to |x| ~ 1000 on raw-pixel inputs, where the
  sigmoid is flat and training stops with one code for every image (CIFAR-10, 12 bits:
  margins 6, 3 and 2 of Table 1). SGD, whose steps scale with the gradient, trains it; Table 1's
  sigmoid models therefore use the release's solver (``"paper:N"``).
"""

import ctypes
import ctypes.util
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import InputError
from .io import atomic_write
from .params import Interval, check

FC_DIM = 500


def _box_mean(x, size: int):
    """Mean over a size x size window, zero padding counted (symmetric: its own adjoint)."""
    return F.avg_pool2d(x, size, stride=1, padding=size // 2, count_include_pad=True)


def _pow_neg_three_quarters(t):
    """t^(-3/4) as rsqrt(t) * sqrt(rsqrt(t)): two cheap vector ops instead of one ``pow``."""
    r = t.rsqrt()
    return r.mul_(r.sqrt())


class _WithinChannelLRNFn(torch.autograd.Function):
    """y = x t^-beta, t = 1 + alpha box_mean(x^2); the backward pass written out,
    dL/dx = g t^-beta + 2 x box_mean(-alpha beta g y / t), to spare autograd's extra passes
    over these memory-bound tensors (the LRNs cost as much as a convolution on a CPU)."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta):
        t = _box_mean(x * x, size).mul_(alpha).add_(1)
        scale = _pow_neg_three_quarters(t) if beta == 0.75 else t.pow(-beta)
        y = x * scale
        ctx.save_for_backward(x, y, t, scale)
        ctx.size, ctx.alpha, ctx.beta = size, alpha, beta
        return y

    @staticmethod
    def backward(ctx, g):
        x, y, t, scale = ctx.saved_tensors
        inner = _box_mean((g * y).div_(t).mul_(-ctx.alpha * ctx.beta), ctx.size)
        return g * scale + inner.mul_(x).mul_(2), None, None, None


class WithinChannelLRN(nn.Module):
    """Caffe's LRN with ``norm_region: WITHIN_CHANNEL``: x / (1 + alpha * mean(x^2))^beta, the
    mean over a size x size window of the same channel, zero-padded and always divided by
    size^2 (Caffe builds it from AVE pooling with pad (size-1)/2, which counts the padding).
    ``torch.nn.LocalResponseNorm`` normalises ACROSS channels: a different layer."""

    def __init__(self, size: int = 3, alpha: float = 5e-5, beta: float = 0.75):
        super().__init__()
        self.size, self.alpha, self.beta = size, alpha, beta

    def forward(self, x):
        return _WithinChannelLRNFn.apply(x, self.size, self.alpha, self.beta)


def caffe_pooled_size(n: int, kernel: int = 3, stride: int = 2) -> int:
    """Caffe rounds pooled sizes up: ceil((n - kernel) / stride) + 1 (32 -> 16 -> 8 -> 4)."""
    return max(math.ceil((n - kernel) / stride), 0) + 1


class DSHNet(nn.Module):
    """The released network. ``forward`` takes raw pixels, float (n, H, W, C) in 0-255 (NHWC,
    as datasets hold them); the per-pixel mean image of the training set is a buffer of the
    model, so a saved state dict is all an extractor needs. Inside, tensors are channels-last
    views, the fast layout for CPU convolutions."""

    def __init__(self, n_out: int, image_size: int = 32, channels: int = 3):
        super().__init__()
        s = image_size
        for _ in range(3):
            s = caffe_pooled_size(s)
        self.conv1 = nn.Conv2d(channels, 32, 5, padding=2)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.norm1 = WithinChannelLRN()
        self.conv2 = nn.Conv2d(32, 32, 5, padding=2)
        self.pool2 = nn.AvgPool2d(3, 2, ceil_mode=True)
        self.norm2 = WithinChannelLRN()
        self.conv3 = nn.Conv2d(32, 64, 5, padding=2)
        self.pool3 = nn.AvgPool2d(3, 2, ceil_mode=True)
        self.fc = nn.Linear(64 * s * s, FC_DIM)
        self.head = nn.Linear(FC_DIM, n_out)
        self.register_buffer("mean", torch.zeros(image_size, image_size, channels))

    def features(self, x):
        """The 500-D activations of the first FC layer after its ReLU (Caffe's ReLU is in
        place, so the released ``ip2`` blob holds these): the CNN-ours / CNN-cls features."""
        x = (x - self.mean).permute(0, 3, 1, 2)  # NHWC memory seen as NCHW: channels-last
        x = self.norm1(F.relu(self.pool1(self.conv1(x))))
        x = self.norm2(F.relu(self.pool2(self.conv2(x))))
        x = self.pool3(F.relu(self.conv3(x)))
        # flatten in NCHW order, as Caffe's InnerProduct reads its (C, H, W) blob
        return F.relu(self.fc(x.contiguous().flatten(1)))

    def forward(self, x):
        return self.head(self.features(x))

    @classmethod
    def from_state_dict(cls, state: dict) -> "DSHNet":
        """Rebuild a network of the right shape from its state dict and load it."""
        h, _, c = state["mean"].shape
        net = cls(state["head.weight"].shape[0], image_size=h, channels=c)
        net.load_state_dict(state)
        return net


def caffe_xavier_(module: nn.Module, generator: torch.Generator) -> None:
    """Caffe's "xavier" filler on every conv / linear weight: U(-a, a), a = sqrt(3 / fan_in)
    (torch's ``xavier_uniform_`` averages fan_in and fan_out instead); biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            a = math.sqrt(3.0 / fan_in)
            with torch.no_grad():
                m.weight.uniform_(-a, a, generator=generator)
                m.bias.zero_()


def new_net(n_out: int, image_size: int, seed: int, channels: int = 3) -> DSHNet:
    """A freshly initialised network; the same seed gives the same weights."""
    net = DSHNet(n_out, image_size, channels)
    caffe_xavier_(net, torch.Generator().manual_seed(seed))
    return net


def finetune_net(state: dict, n_out: int, seed: int) -> DSHNet:
    """The released fine-tuning start: every layer (and the mean image) from a trained model,
    a new Xavier-initialised output layer of ``n_out`` units."""
    h, _, c = state["mean"].shape
    net = new_net(n_out, h, seed, c)
    trunk = {k: v for k, v in state.items() if not k.startswith("head.")}
    missing, unexpected = net.load_state_dict(trunk, strict=False)
    if unexpected or set(missing) != {"head.weight", "head.bias"}:
        raise InputError("init_from: not a DSH network state dict")
    return net


def similarity(labels) -> torch.Tensor:
    """s_ij: same class, or (multi-hot labels) at least one shared label."""
    if labels.ndim == 2:
        y = labels.float()
        return (y @ y.T) > 0
    return labels[:, None] == labels[None, :]


def dsh_loss(b, labels, margin: float, alpha: float, relax: str | None = None):
    """The DSH loss with the released normalisation (hashing_loss_layer.cpp):

        L = 1/(N(N-1)) sum_{i<j} [ s_ij/2 D_ij + (1-s_ij)/2 max(m - D_ij, 0) ]
            + alpha/N sum_i || |b_i| - 1 ||_1,      D_ij = ||b_i - b_j||^2

    The paper writes the plain sums; the release divides the pair sum by N(N-1) and the
    regulariser by N, so its alpha = 0.01 weighs the regulariser (N-1) times more than the
    paper's formula read literally. This is the released objective: the one whose gradient
    Caffe applied (Caffe's displayed loss is twice the pair term).

    ``relax="sigmoid"`` (supplementary Table 1): b <- sigmoid(b), in (0, 1), and no
    regulariser. On (0, 1) outputs one flipped bit adds 1 to D, so the margins m in
    {1, 2, 3, 6} of Table 1 at 12 bits read as Hamming distances k/12 ... k/2, m = 6 being the
    counterpart of m = 2k on +-1 outputs (where one flipped bit adds 4). A tanh to (-1, 1) would
    make m = 1 a quarter of one bit, which no one would tabulate.
    """
    n = b.shape[0]
    if relax == "sigmoid":
        b = torch.sigmoid(b)
    elif relax is not None:
        raise InputError(f"relax must be None or 'sigmoid', got {relax!r}")
    sq = (b * b).sum(1)
    d = (sq[:, None] + sq[None, :] - 2 * (b @ b.T)).clamp_min(0)
    s = similarity(labels).to(b.dtype)
    pair = 0.5 * s * d + 0.5 * (1 - s) * F.relu(margin - d)
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=b.device), diagonal=1)
    loss = pair[upper].sum() / (n * (n - 1))
    if relax is None and alpha:
        loss = loss + alpha * (b.abs() - 1).abs().sum() / n
    return loss


@dataclass(frozen=True)
class Schedule:
    """An optimiser and its lr policy (Caffe's "multistep" with ``milestones``, or "step"
    with ``step``: lr * gamma^(it // step)). lr multipliers: weights x1, biases x2 (no weight
    decay), a fine-tuned new output layer x10 / x20, as in the released prototxts."""

    optimizer: str
    lr: float
    iterations: int
    milestones: tuple = ()
    step: int = 0
    gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0

    def lr_at(self, it: int) -> float:
        if self.step:
            return self.lr * self.gamma ** (it // self.step)
        return self.lr * self.gamma ** sum(it >= m for m in self.milestones)


SCHEDULES = {
    # solver.prototxt of the release: 70k iterations of batch 200 (280 epochs).
    "paper": Schedule("sgd", 1e-3, 70_000, milestones=(60_000, 65_000), weight_decay=0.004),
    # finetune_solver.prototxt of the release.
    "paper-finetune": Schedule("sgd", 1e-4, 30_000, step=4_000, gamma=0.6, weight_decay=0.004),
    # Deviation, chosen by measurement (CIFAR-10, 12 bits, seed 0, cifar10-dsh): the released
    # SGD needs its 70k iterations (0.437 mAP after 8k, issue 6), so Adam, lr 1e-3, no weight
    # decay, 8,000 iterations (32 epochs, ~14 min at 2,000 images/s), with the release's
    # multistep shape scaled to that length (x0.1 at 6,857 and 7,429): mAP 0.607, against
    # 0.580 for constant-lr Adam continued from the same run's iteration 6,500.
    "quick": Schedule("adam", 1e-3, 8_000, milestones=(6_857, 7_429)),
    # The release's fine-tuning shape (lr 1e-4, x0.6 every 4k of 30k) scaled by the same
    # 8,000 / 70,000.
    "quick-finetune": Schedule("adam", 1e-4, 3_429, step=457, gamma=0.6),
}


def get_schedule(schedule, finetune: bool = False) -> Schedule:
    """``"quick"`` / ``"paper"`` (their fine-tuning forms when ``finetune``); an int N: the
    quick schedule shortened to N iterations; ``"paper:N"``: the release's SGD solver
    shortened to N iterations. A shortened schedule scales its lr steps along."""
    suffix = "-finetune" if finetune else ""
    if isinstance(schedule, str):
        if schedule.startswith("paper:"):
            n = schedule.removeprefix("paper:")
            if not (n.isdigit() and int(n) >= 1):
                raise InputError(f"schedule 'paper:N' needs a positive iteration count N, got {schedule!r}")
            return _shortened(SCHEDULES["paper" + suffix], int(n))
        if schedule not in ("quick", "paper"):
            raise InputError(f"schedule must be 'quick', 'paper', 'paper:N' or an iteration count, got {schedule!r}")
        return SCHEDULES[schedule + suffix]
    n = check(schedule, "schedule", Interval(int, 1, None))
    return _shortened(SCHEDULES["quick" + suffix], n)


def _shortened(base: Schedule, iterations: int) -> Schedule:
    f = iterations / base.iterations
    return replace(
        base,
        iterations=iterations,
        milestones=tuple(max(1, round(m * f)) for m in base.milestones),
        step=max(1, round(base.step * f)) if base.step else 0,
    )


def param_groups(net: DSHNet, schedule: Schedule, new_head: bool = False) -> list[dict]:
    """Caffe's per-blob lr / decay multipliers as optimiser groups (``lr_mult`` is read by
    :func:`train` at every iteration)."""
    groups = []
    for name, p in net.named_parameters():
        is_bias = name.endswith("bias")
        mult = (2.0 if is_bias else 1.0) * (10.0 if new_head and name.startswith("head.") else 1.0)
        groups.append(
            {"params": [p], "lr_mult": mult, "weight_decay": 0.0 if is_bias else schedule.weight_decay}
        )
    return groups


def make_optimizer(net: DSHNet, schedule: Schedule, new_head: bool = False):
    groups = param_groups(net, schedule, new_head)
    if schedule.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=schedule.lr, momentum=schedule.momentum)
    if schedule.optimizer == "adam":
        return torch.optim.Adam(groups, lr=schedule.lr)
    raise InputError(f"unknown optimizer {schedule.optimizer!r}")


def batch_indices(n: int, batch_size: int, it: int, seed: int) -> np.ndarray:
    """Indices of minibatch ``it``: consecutive slices of one seeded permutation per epoch,
    wrapping across epochs. Stateless (a function of seed and iteration), so a resumed run
    draws exactly what the uninterrupted run drew."""
    start = it * batch_size
    out = []
    while len(out) < batch_size:
        epoch, pos = divmod(start + len(out), n)
        perm = np.random.default_rng([seed, 0, epoch]).permutation(n)
        out.extend(perm[pos : pos + batch_size - len(out)])
    return np.asarray(out)


def mirror_mask(batch_size: int, it: int, seed: int) -> np.ndarray:
    """Which images of minibatch ``it`` are mirrored (each with probability 1/2, as Caffe)."""
    return np.random.default_rng([seed, 1, it]).random(batch_size) < 0.5


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise InputError(f"device: unknown device {device!r}") from None


def retain_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks of up to 32 MiB in the heap (instead of mmap /
    munmap per block and trimming the heap top), so the large activation and gradient buffers
    of every iteration reuse pages already mapped. Without it each iteration page-faults its
    buffers in afresh: measured on the 2-core machine, a CIFAR-10 training inside
    ``hashbench reproduce`` took 56,000 minor page faults/s and ran at 573 images/s; resumed
    with this, 1,400 faults/s and about 1,250 images/s (a fresh benchmark process gains less:
    1,386-1,511 -> 1,802-2,049 in one A/B run, within noise in another). It is what the Intel
    and PyTorch tuning guides get from jemalloc or tcmalloc. Process-wide; the cost is up to
    1 GiB of freed memory held for reuse. Returns False where there is no glibc ``mallopt``."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


def _check_archive(path, kind: str) -> None:
    """A file of ``torch.save`` is a zip archive ending in its end-of-directory record (torch
    writes no comment) whose members all pass their CRC-32: torch's own reader checks
    neither, and loads a file with bytes appended or flipped in places it skips."""
    import zipfile

    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            if f.tell() < 22:
                raise InputError(f"cannot read {path} as a {kind}: damaged or another format (too short)")
            f.seek(-22, 2)
            if f.read(4) != b"PK\x05\x06":
                raise InputError(f"cannot read {path} as a {kind}: damaged or another format (does not end as a "
                                 "torch.save archive does: truncated, or bytes appended)")
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except FileNotFoundError:
        return  # the caller says "no such file"
    except InputError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise InputError(f"cannot read {path} as a {kind}: damaged or another format ({type(e).__name__})") from None
    if bad is not None:
        raise InputError(f"cannot read {path} as a {kind}: damaged (member {bad} fails its CRC check)")


def _torch_load(path, missing: str, kind: str):
    """``torch.load(weights_only=True)`` on CPU; a missing file ("no such ``missing``") or an
    unreadable one ("cannot read it as a ``kind``") is an InputError."""
    if Path(path).is_dir():
        raise InputError(f"{path} is a folder, not a {kind}")
    _check_archive(path, kind)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"no such {missing}: {path}") from None
    except Exception as e:  # noqa: BLE001  torch raises many kinds for a file that is not a checkpoint
        reason = "it holds objects other than tensors" if "weights_only" in str(e) else "damaged or another format"
        raise InputError(f"cannot read {path} as a {kind}: {reason} ({type(e).__name__})") from None


def load_state(path) -> dict:
    """A model state dict from a saved model or a training checkpoint (``weights_only``)."""
    obj = _torch_load(path, "model file", "torch state dict")
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or "mean" not in obj or "head.weight" not in obj:
        raise InputError(f"{path} does not hold a DSH network state dict")
    return obj


def save_state(net: DSHNet, path) -> None:
    """Save the model's state dict atomically (load it back with :func:`load_state`)."""
    with atomic_write(path) as f:
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, f)


def _save_checkpoint(path, net, opt, it, losses, config, test_losses) -> None:
    with atomic_write(path) as f:
        torch.save(
            {
                "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                "optimizer": opt.state_dict(),
                "iteration": it,
                "losses": torch.tensor(losses, dtype=torch.float64),
                "test_losses": torch.tensor(test_losses, dtype=torch.float64).reshape(-1, 2),
                "config": config,
            },
            f,
        )


TEST_SAMPLE = 1000  # held-out images the test loss is measured on (supplementary Figure 4)


def held_out_every(iterations: int) -> int:
    """Iterations between two test losses: 100, or iterations // 20 (at least 1) on shorter
    schedules, so that every run records at least 20 points."""
    return max(1, min(100, iterations // 20))


def held_out_sample(n: int, size: int = TEST_SAMPLE) -> np.ndarray:
    """The fixed held-out sample: ``size`` evenly spaced indices of ``n`` (all when fewer)."""
    return np.unique(np.linspace(0, n - 1, min(n, size)).round().astype(np.int64))


@torch.no_grad()
def held_out_loss(net: DSHNet, loss_fn, images: np.ndarray, targets, batch_size: int, device) -> float:
    """The training loss measured on held-out images: ``loss_fn`` over their consecutive
    batches (no mirroring), averaged weighted by batch size; a last batch of one image, which
    has no pair, is left out."""
    net.eval()
    total, count = 0.0, 0
    for s in range(0, images.shape[0], batch_size):
        x = images[s : s + batch_size]
        if x.shape[0] < 2:
            break
        out = net(torch.from_numpy(x.astype(np.float32)).to(device))
        total += loss_fn(out, torch.tensor(np.asarray(targets[s : s + batch_size])).to(device)).item() * x.shape[0]
        count += x.shape[0]
    net.train()
    return total / count


def load_history(path) -> dict:
    """The losses a training checkpoint recorded: ``train`` (every iteration), and
    ``test_iterations`` / ``test`` (the held-out loss after those iterations; empty when the
    run had no held-out images)."""
    ck = _torch_load(path, "checkpoint", "training checkpoint")
    if not isinstance(ck, dict) or "losses" not in ck:
        raise InputError(f"{path} holds no training history (a model file, not a training checkpoint)")
    test = ck.get("test_losses", torch.zeros(0, 2, dtype=torch.float64)).numpy()
    return {"train": ck["losses"].numpy(), "test_iterations": test[:, 0].astype(np.int64), "test": test[:, 1]}


def checkpoint_iteration(path) -> int:
    """The iterations a training checkpoint has done (0 when there is no such file)."""
    if path is None or not Path(path).is_file():
        return 0
    ck = _torch_load(path, "checkpoint", "training checkpoint")
    return int(ck["iteration"]) if isinstance(ck, dict) and "iteration" in ck else 0


def train(
    net: DSHNet,
    images: np.ndarray,
    loss_fn,
    targets,
    schedule: Schedule,
    *,
    seed: int,
    batch_size: int = 200,
    device: str = "auto",
    new_head: bool = False,
    checkpoint=None,
    checkpoint_every: int = 500,
    config: dict | None = None,
    progress: bool = True,
    held_out=None,
) -> np.ndarray:
    """Train ``net`` in place on uint8 (n, H, W, C) ``images``; ``loss_fn(outputs, targets
    of the batch)``. Returns the loss of every iteration.

    With ``checkpoint`` (a path), model, optimiser, iteration and losses are saved there every
    ``checkpoint_every`` iterations and at the end; if the file exists the run resumes from it
    (the data order and mirroring are functions of (seed, iteration), so the resumed run is
    the uninterrupted one). ``config`` is stored with it and must match on resume.

    With ``held_out`` = (images, targets) never trained on, :func:`held_out_loss` is recorded
    every :func:`held_out_every` iterations and at the end, as (iteration, loss) rows of the
    checkpoint's ``test_losses`` (:func:`load_history`); it changes nothing in the training.
    """
    dev = resolve_device(device)
    n = images.shape[0]
    if n < 2:
        raise InputError("images: need at least 2 training images")
    config = {**(config or {}), "schedule": asdict(schedule), "seed": seed, "batch_size": batch_size, "n_train": n}
    config["schedule"]["milestones"] = list(schedule.milestones)
    net.to(dev)
    if dev.type == "cpu":
        net.to(memory_format=torch.channels_last)
        retain_freed_memory()
    opt = make_optimizer(net, schedule, new_head)
    start, losses, test_losses = 0, [], []
    if checkpoint is not None and Path(checkpoint).exists():
        ck = _torch_load(checkpoint, "checkpoint", "training checkpoint")
        if not isinstance(ck, dict) or not {"model", "optimizer", "iteration", "losses"} <= ck.keys():
            raise InputError(f"checkpoint: {checkpoint} is not a training checkpoint; remove it or change the path")
        if ck.get("config") != config:
            raise InputError(f"checkpoint: {checkpoint} was written by a different training run; "
                             "remove it or change the path")
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start, losses = int(ck["iteration"]), ck["losses"].tolist()
        test_losses = ck["test_losses"].tolist() if "test_losses" in ck else []
    targets_t = torch.tensor(np.asarray(targets))  # a copy: the labels may be read-only (memory-mapped)
    bar = _progress(schedule.iterations, start, progress)
    net.train()
    t0, seen = time.perf_counter(), 0
    for it in range(start, schedule.iterations):
        lr = schedule.lr_at(it)
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_mult"]
        idx = batch_indices(n, batch_size, it, seed)
        x = images[idx].astype(np.float32)
        flip = mirror_mask(len(idx), it, seed)
        x[flip] = x[flip, :, ::-1]
        x = torch.from_numpy(x).to(dev, non_blocking=True)
        loss = loss_fn(net(x), targets_t[idx].to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        seen += len(idx)
        done = it + 1
        if bar is not None:
            bar.update(1)
            if done % 10 == 0 or done == schedule.iterations:
                rate = seen / (time.perf_counter() - t0)
                bar.set_postfix(loss=f"{np.mean(losses[-10:]):.4f}", img_s=f"{rate:,.0f}")
        if held_out is not None and (done % held_out_every(schedule.iterations) == 0 or done == schedule.iterations):
            test_losses.append([done, held_out_loss(net, loss_fn, *held_out, batch_size, dev)])
        if checkpoint is not None and (done % checkpoint_every == 0 or done == schedule.iterations):
            _save_checkpoint(checkpoint, net, opt, done, losses, config, test_losses)
    if bar is not None:
        bar.close()
    net.eval()
    return np.asarray(losses)


def _progress(total: int, start: int, enabled: bool):
    if not enabled or start >= total:
        return None
    from .progress import progress

    return progress(total, "train", initial=start, quiet_for=0.0)


@torch.no_grad()
def apply(net: DSHNet, images: np.ndarray, what: str = "outputs", batch_size: int = 1000, device: str = "auto"):
    """float32 (n, k) outputs (``what="outputs"``) or (n, 500) FC features (``"features"``)
    of uint8 images, in batches, without mirroring."""
    dev = resolve_device(device)
    net.to(dev).eval()
    fn = net.features if what == "features" else net
    out = []
    for s in range(0, images.shape[0], batch_size):
        x = torch.from_numpy(images[s : s + batch_size].astype(np.float32)).to(dev)
        out.append(fn(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, net.head.out_features), np.float32)
