"""The one training loop of the DSH network family: seeded minibatches and mirroring, Caffe's
per-blob lr multipliers on SGD or Adam, a loss module (:mod:`hashbench.nets.losses`) whose own
parameters train along, resumable checkpoints (:mod:`hashbench.nets.checkpoints`), the
held-out loss of Figure 4, and the CPU allocator tweak that keeps it fast.

Deliberate deviations from the Caffe release, each small:
- the data order is a fresh seeded permutation each epoch (Caffe cycles its LMDB in stored
  order), so that a run depends on its seed only;
- torch's SGD scales the momentum buffer by the current lr at update time, Caffe by the lr of
  each past step: the two differ only for a few hundred iterations after an lr step;
- the default "quick" schedule uses Adam (:data:`hashbench.nets.schedules.SCHEDULES`).
"""

import ctypes
import ctypes.util
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .checkpoints import load_checkpoint, save_checkpoint
from .model import resolve_device
from .schedules import Schedule


def _loss_parameters(loss) -> list:
    return list(loss.named_parameters(prefix="loss")) if isinstance(loss, nn.Module) else []


def param_groups(net: nn.Module, schedule: Schedule, new_head: bool = False, loss=None) -> list[dict]:
    """Caffe's per-blob lr / decay multipliers as optimiser groups (``lr_mult`` is read by
    :func:`train` at every iteration): the network's, then the loss module's own parameters
    (a classifier layer, say), by the same rule (weights x1, biases x2 without decay)."""
    groups = []
    for name, p in [*net.named_parameters(), *_loss_parameters(loss)]:
        is_bias = name.endswith("bias")
        mult = (2.0 if is_bias else 1.0) * (10.0 if new_head and name.startswith("head.") else 1.0)
        groups.append(
            {"params": [p], "lr_mult": mult, "weight_decay": 0.0 if is_bias else schedule.weight_decay}
        )
    return groups


def make_optimizer(net: nn.Module, schedule: Schedule, new_head: bool = False, loss=None):
    groups = param_groups(net, schedule, new_head, loss)
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


def retain_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks of up to 32 MiB in the heap (instead of mmap /
    munmap per block and trimming the heap top), so the large activation and gradient buffers
    of every iteration reuse pages already mapped. Without it each iteration page-faults its
    buffers in afresh (the README's "DSH throughput" has the measurement). It is what the Intel
    and PyTorch tuning guides get from jemalloc or tcmalloc. Process-wide; the cost is up to
    1 GiB of freed memory held for reuse. Returns False where there is no glibc ``mallopt``."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


TEST_SAMPLE = 1000  # held-out images the test loss is measured on (supplementary Figure 4)


def held_out_every(iterations: int) -> int:
    """Iterations between two test losses: 100, or iterations // 20 (at least 1) on shorter
    schedules, so that every run records at least 20 points."""
    return max(1, min(100, iterations // 20))


def held_out_sample(n: int, size: int = TEST_SAMPLE) -> np.ndarray:
    """The fixed held-out sample: ``size`` evenly spaced indices of ``n`` (all when fewer)."""
    return np.unique(np.linspace(0, n - 1, min(n, size)).round().astype(np.int64))


@torch.no_grad()
def held_out_loss(net: nn.Module, loss, images: np.ndarray, targets, batch_size: int, device,
                  progress: float = 1.0) -> float:
    """The training loss measured on held-out images: ``loss(outputs, targets, progress)``
    over their consecutive batches (no mirroring), averaged weighted by batch size; a last
    batch of one image, which has no pair, is left out."""
    net.eval()
    _set_mode(loss, False)
    total, count = 0.0, 0
    for s in range(0, images.shape[0], batch_size):
        x = images[s : s + batch_size]
        if x.shape[0] < 2:
            break
        out = net(torch.from_numpy(x.astype(np.float32)).to(device))
        y = label_tensor(targets[s : s + batch_size]).to(device)
        total += loss(out, y, progress).item() * x.shape[0]
        count += x.shape[0]
    net.train()
    _set_mode(loss, True)
    return total / count


def label_tensor(labels) -> torch.Tensor:
    """Labels as a loss receives them: int64 (n,) class ids, or float32 (n, C) multi-hot (a
    copy: the labels may be read-only, memory-mapped)."""
    a = np.asarray(labels)
    return torch.from_numpy(a.astype(np.float32)) if a.ndim == 2 else torch.tensor(a)


def _set_mode(loss, training: bool) -> None:
    if isinstance(loss, nn.Module):
        loss.train(training)


def train(
    net: nn.Module,
    images: np.ndarray,
    loss,
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
    """Train ``net`` in place on uint8 (n, H, W, C) ``images``; ``loss(outputs, targets of the
    batch, progress)`` with ``progress`` = iteration / iterations in [0, 1) (a
    :class:`~hashbench.nets.losses.HashLoss`, or any callable of those three; a loss module's
    parameters train along and are saved in the checkpoint). Returns the loss of every
    iteration.

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
    if isinstance(loss, nn.Module):
        loss.to(dev)
    if dev.type == "cpu":
        net.to(memory_format=torch.channels_last)
        retain_freed_memory()
    opt = make_optimizer(net, schedule, new_head, loss)
    start, losses, test_losses = 0, [], []
    if checkpoint is not None and Path(checkpoint).exists():
        ck = load_checkpoint(checkpoint, config)
        net.load_state_dict(ck["model"])
        if "loss" in ck:
            loss.load_state_dict(ck["loss"])
        opt.load_state_dict(ck["optimizer"])
        start, losses = int(ck["iteration"]), ck["losses"].tolist()
        test_losses = ck["test_losses"].tolist() if "test_losses" in ck else []
    targets_t = label_tensor(targets)
    bar = _progress(schedule.iterations, start, progress)
    net.train()
    _set_mode(loss, True)
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
        value = loss(net(x), targets_t[idx].to(dev), it / schedule.iterations)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        losses.append(value.item())
        seen += len(idx)
        done = it + 1
        if bar is not None:
            bar.update(1)
            if done % 10 == 0 or done == schedule.iterations:
                rate = seen / (time.perf_counter() - t0)
                bar.set_postfix(loss=f"{np.mean(losses[-10:]):.4f}", img_s=f"{rate:,.0f}")
        if held_out is not None and (done % held_out_every(schedule.iterations) == 0 or done == schedule.iterations):
            test_losses.append([done, held_out_loss(net, loss, *held_out, batch_size, dev, done / schedule.iterations)])
        if checkpoint is not None and (done % checkpoint_every == 0 or done == schedule.iterations):
            save_checkpoint(checkpoint, net, opt, done, losses, config, test_losses, loss)
    if bar is not None:
        bar.close()
    net.eval()
    _set_mode(loss, False)
    return np.asarray(losses)


def _progress(total: int, start: int, enabled: bool):
    if not enabled or start >= total:
        return None
    from ..progress import progress

    return progress(total, "train", initial=start, quiet_for=0.0)


