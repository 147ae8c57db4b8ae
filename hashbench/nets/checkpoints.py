"""Model files and training checkpoints of the DSH network family: written atomically with
``torch.save``, read with ``weights_only=True`` after checking the archive (torch's reader
checks neither its end record nor its CRCs).

A model file is a plain state dict of :class:`~hashbench.nets.model.DSHNet`; a training
checkpoint (``.ckpt``) holds ``model``, ``optimizer``, ``iteration``, ``losses``,
``test_losses`` and the run's ``config`` (and ``loss``, the loss's own state, only for a loss
that has parameters).
"""

from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..io import atomic_write


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
    except Exception as e:  # noqa: BLE001  (torch raises many kinds for a file that is not a checkpoint)
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


def save_state(net: torch.nn.Module, path) -> None:
    """Save the model's state dict atomically (load it back with :func:`load_state`)."""
    with atomic_write(path) as f:
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, f)


def _cpu_state(module) -> dict:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def save_checkpoint(path, net, opt, it, losses, config, test_losses, loss=None) -> None:
    """Write a training checkpoint atomically; ``loss`` (a loss module) is stored under
    ``"loss"`` only when it has a state, so a DSH checkpoint is the same file as ever."""
    state = {
        "model": _cpu_state(net),
        "optimizer": opt.state_dict(),
        "iteration": it,
        "losses": torch.tensor(losses, dtype=torch.float64),
        "test_losses": torch.tensor(test_losses, dtype=torch.float64).reshape(-1, 2),
        "config": config,
    }
    if isinstance(loss, torch.nn.Module) and loss.state_dict():
        state["loss"] = _cpu_state(loss)
    with atomic_write(path) as f:
        torch.save(state, f)


def load_checkpoint(path, config: dict) -> dict:
    """A training checkpoint written by the run that ``config`` describes (InputError for a
    file of another kind or another run: resuming it would mix two trainings)."""
    ck = _torch_load(path, "checkpoint", "training checkpoint")
    if not isinstance(ck, dict) or not {"model", "optimizer", "iteration", "losses"} <= ck.keys():
        raise InputError(f"checkpoint: {path} is not a training checkpoint; remove it or change the path")
    if ck.get("config") != config:
        raise InputError(f"checkpoint: {path} was written by a different training run; remove it or change the path")
    return ck


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


