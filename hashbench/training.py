"""Train and record the CNN models that other steps load: a k-bit DSH model (its codes; its
500-D layer is the CNN-ours feature) and the CNN-cls classifier (same layers, 10-way softmax).

Each model is trained on the training images of its protocol's split, saved as a plain state
dict (``<out>.pt``, loaded with ``weights_only=True``) and described by ``<out>.json``: the
command, seed, schedule, wall time, images/s, the model file's sha256 and its scores (DSH: mAP
and precision within Hamming radius 2 with each query's own image left out and kept, e.g.
``cifar10-dsh`` and ``cifar10-dsh-self``; CNN-cls: accuracy on the query images).
"""

import hashlib
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import nets
from .datasets import load_dataset
from .errors import InputError
from .hashers.dsh import DSH
from .io import atomic_write, check_writable
from .metrics import evaluate
from .protocols import get_protocol

# protocol pairs scored for a DSH model: (query left out, query kept)
SELF_VARIANT = {"cifar10-dsh": "cifar10-dsh-self"}


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _paths(out) -> tuple[Path, Path]:
    """The model file and its record, checked (with the checkpoint beside them) before any
    training: a folder in their place or an unwritable folder is refused now, not after it."""
    out = Path(out)
    if out.suffix != ".pt":
        raise InputError(f"--out: the model file must end in .pt, got {out}")
    for path in (out, out.with_suffix(".json"), out.with_suffix(".ckpt")):
        check_writable(path, "--out")
    return out, out.with_suffix(".json")


def _environment() -> dict:
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "machine": platform.processor() or platform.machine()}


def score_codes(hasher, dataset, protocol_name: str, seed: int = 0) -> dict:
    """mAP, tie-aware mAP and precision within radius 2 of a fitted hasher's codes."""
    split = get_protocol(protocol_name).split(dataset, seed)
    q = hasher.encode(dataset.images[split.query])
    db = q if np.array_equal(split.query, split.database) else hasher.encode(dataset.images[split.database])
    res = evaluate(q, db, dataset.labels[split.query], dataset.labels[split.database], hasher.n_bits,
                   radius=2, self_index=split.self_index())
    return {
        "map": res["map"], "map_expected": res["map_expected"],
        "precision_r2": res["precision_r"]["2"],
        "empty_r2_fraction": res["empty_r_fraction"],
    }


def train_dsh(out, *, bits: int = 12, seed: int = 0, schedule="quick", protocol: str = "cifar10-dsh",
              alpha: float = 0.01, relax=None, margin=None, init_from=None, device: str = "auto",
              data_dir=None, command: str = "", progress: bool = True) -> dict:
    """Train DSH on the protocol's training images, save it to ``out`` and return the record
    (also written next to it as JSON). An interrupted run resumes from ``<out>.ckpt``."""
    model_path, json_path = _paths(out)
    proto = get_protocol(protocol)
    if proto.dataset is None:
        raise InputError(f"--protocol {protocol} applies to any dataset; train-cnn needs one defined on a dataset")
    ds = load_dataset(proto.dataset, data_dir)
    split = proto.split(ds, 0)
    ck = model_path.with_suffix(".ckpt")
    h = DSH(n_bits=bits, seed=seed, alpha=alpha, relax=relax, margin=margin, schedule=schedule,
            device=device, init_from=init_from, checkpoint=ck, progress=progress)
    resumed = ck.is_file()
    t0 = time.perf_counter()
    h.fit(ds.images[split.train], ds.labels[split.train], eval_set=(ds.images[split.query], ds.labels[split.query]))
    wall = time.perf_counter() - t0
    h.save(model_path)
    sched = nets.get_schedule(schedule, finetune=init_from is not None)
    record = {
        "kind": "dsh", "command": command, "model": model_path.name, "sha256": sha256_file(model_path),
        "dataset": ds.name, "train_protocol": protocol, "n_train": len(split.train),
        "bits": bits, "seed": seed, "alpha": alpha, "relax": relax, "margin": margin,
        "init_from": str(init_from) if init_from else None,
        "schedule": schedule, "optimizer": sched.optimizer, "iterations": sched.iterations,
        "train_wall_s": round(wall, 1), "final_loss_mean100": float(np.mean(h.losses_[-100:])),
        "environment": _environment(),
        "scores": {protocol: score_codes(h, ds, protocol)},
    }
    if protocol in SELF_VARIANT:
        record["scores"][SELF_VARIANT[protocol]] = score_codes(h, ds, SELF_VARIANT[protocol])
    record["images_per_s"] = _images_per_s(sched.iterations, h.batch_size, wall, resumed)
    _write_json(json_path, record)
    return record


def train_classifier(out, *, seed: int = 0, schedule="quick", protocol: str = "cifar10-dsh", device: str = "auto",
                     data_dir=None, command: str = "", progress: bool = True) -> dict:
    """CNN-cls: the DSH layers with a 10-way softmax output (supplementary Table 4), trained
    with the same solver on the protocol's training images; accuracy on its query images."""
    model_path, json_path = _paths(out)
    proto = get_protocol(protocol)
    if proto.dataset is None:
        raise InputError(f"--protocol {protocol} applies to any dataset; train-cnn needs one defined on a dataset")
    ds = load_dataset(proto.dataset, data_dir)
    if ds.labels.ndim != 1:
        raise InputError(f"protocol {protocol}: the classifier needs single-label data")
    split = proto.split(ds, 0)
    images, labels = ds.images[split.train], ds.labels[split.train]
    n_classes = len(ds.class_names)
    net = nets.new_net(n_classes, images.shape[1], seed, images.shape[3])
    net.mean.copy_(torch.from_numpy(images.mean(0, dtype=np.float64).astype(np.float32)))
    sched = nets.get_schedule(schedule)
    ck = model_path.with_suffix(".ckpt")
    resumed = ck.is_file()
    t0 = time.perf_counter()
    losses = nets.train(net, images, _cross_entropy, labels, sched, seed=seed, device=device, checkpoint=ck,
                        config={"kind": "cls", "n_classes": n_classes}, progress=progress)
    wall = time.perf_counter() - t0
    net.cpu()
    nets.save_state(net, model_path)
    pred = nets.apply(net, ds.images[split.query], device=device).argmax(1)
    record = {
        "kind": "cls", "command": command, "model": model_path.name, "sha256": sha256_file(model_path),
        "dataset": ds.name, "train_protocol": protocol, "n_train": len(split.train), "seed": seed,
        "schedule": schedule, "optimizer": sched.optimizer, "iterations": sched.iterations,
        "train_wall_s": round(wall, 1), "final_loss_mean100": float(np.mean(losses[-100:])),
        "environment": _environment(),
        "test_accuracy": float((pred == ds.labels[split.query]).mean()),
    }
    record["images_per_s"] = _images_per_s(sched.iterations, 200, wall, resumed)
    _write_json(json_path, record)
    return record


def _cross_entropy(outputs, labels, progress):
    """The classifier's loss: softmax cross-entropy (Caffe's SoftmaxWithLoss)."""
    return F.cross_entropy(outputs, labels)


def _images_per_s(iterations: int, batch_size: int, wall: float, resumed: bool) -> float | None:
    """Training images/s of this call; None when it resumed from a checkpoint (its wall time
    then covers only part of the iterations)."""
    return None if resumed else round(iterations * batch_size / wall, 1)


def _write_json(path: Path, record: dict) -> None:
    with atomic_write(path, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
