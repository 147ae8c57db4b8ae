"""CIFAR-10 (Krizhevsky, 2009): 60,000 32x32 RGB images of 10 classes, 50,000 for training
(``data_batch_1`` .. ``data_batch_5``) and 10,000 for testing (``test_batch``).

Both official formats are read, giving identical arrays: the binary version
(``cifar-10-batches-bin/``: records of 1 label byte + 3,072 pixel bytes, the red plane, then
green, then blue, each row-major 32x32) and the python version (``cifar-10-batches-py/``:
pickled dicts). The pickles are read with an unpickler that only resolves the three numpy
names the official files use, so a tampered file cannot run code.
Images are ordered training batches 1-5 then the test batch; ``train_mask`` marks the first
50,000.
"""

import importlib
import io
import pickle
from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import Dataset

BIN_FOLDER = "cifar-10-batches-bin"
PY_FOLDER = "cifar-10-batches-py"
FOLDERS = (BIN_FOLDER, PY_FOLDER)
BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
N_TRAIN_BATCHES = 5
RECORDS_PER_BATCH = 10_000  # every official batch file holds exactly this many images
PIXELS = 3 * 32 * 32
N_CLASSES = 10


def is_present(folder: Path) -> bool:
    """Whether ``folder`` looks like an extracted CIFAR-10 (either format)."""
    return (folder / "test_batch.bin").is_file() or (folder / "test_batch").is_file()


def read(folder) -> Dataset:
    """Read an extracted CIFAR-10 folder of either format; InputError on anything missing,
    truncated or malformed, naming the file."""
    folder = Path(folder)
    if (folder / "test_batch.bin").is_file():
        labels, pixels, names = _read_bin(folder)
    elif (folder / "test_batch").is_file():
        labels, pixels, names = _read_python(folder)
    else:
        raise InputError(f"data: {folder} holds neither test_batch.bin (binary CIFAR-10) "
                         "nor test_batch (python CIFAR-10)")
    n = len(labels)
    images = np.empty((n, 32, 32, 3), np.uint8)
    for c in range(3):  # plane by plane: 3x faster than one strided transpose of (n, 3, 32, 32)
        images[..., c] = pixels[:, c * 1024 : (c + 1) * 1024].reshape(n, 32, 32)
    train_mask = np.arange(n) < N_TRAIN_BATCHES * RECORDS_PER_BATCH
    return Dataset("cifar10", images, labels, names, train_mask, str(folder))


def _need(path: Path) -> Path:
    if path.is_dir():
        raise InputError(f"data: {path} is a folder, not a CIFAR-10 file")
    if not path.is_file():
        raise InputError(f"data: missing CIFAR-10 file {path}")
    return path


def _check_labels(labels: np.ndarray, path: Path) -> None:
    bad = np.flatnonzero(labels >= N_CLASSES)
    if bad.size:
        raise InputError(f"data: {path} record {bad[0]}: label {labels[bad[0]]} is not a class id 0-9")


def _read_bin(folder: Path):
    n = RECORDS_PER_BATCH
    raw = np.empty((len(BATCHES) * n, 1 + PIXELS), np.uint8)
    for i, batch in enumerate(BATCHES):
        path = _need(folder / f"{batch}.bin")
        size = path.stat().st_size
        if size != raw[:n].nbytes:
            raise InputError(
                f"data: {path} has {size:,} bytes, expected {raw[:n].nbytes:,} "
                f"({n:,} records of {1 + PIXELS:,} bytes): truncated or not CIFAR-10 binary"
            )
        with open(path, "rb") as f:
            f.readinto(memoryview(raw[i * n : (i + 1) * n]).cast("B"))
        _check_labels(raw[i * n : (i + 1) * n, 0], path)
    meta = _need(folder / "batches.meta.txt")
    names = [s.strip() for s in meta.read_bytes().decode("ascii", errors="replace").splitlines() if s.strip()]
    if not all(s.isprintable() and "\ufffd" not in s for s in names):
        raise InputError(f"data: {meta} holds bytes that are not printable ASCII: damaged CIFAR-10 class list")
    if len(names) != N_CLASSES:
        raise InputError(f"data: {meta} lists {len(names)} class names, expected {N_CLASSES}")
    return raw[:, 0].astype(np.int64), raw[:, 1:], tuple(names)


def _numpy_reconstruct():
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(module)._reconstruct
        except (ImportError, AttributeError):
            continue
    raise ImportError("numpy has no multiarray._reconstruct")


class _SafeUnpickler(pickle.Unpickler):
    """Resolves only the names a pickled numpy array needs; anything else is refused."""

    _ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    })

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return getattr(np, name)


def _unpickle(path: Path) -> dict:
    data = _need(path).read_bytes()
    stream = io.BytesIO(data)
    try:
        obj = _SafeUnpickler(stream, encoding="bytes").load()
    except MemoryError:
        raise InputError(f"data: {path} is not a CIFAR-10 python batch "
                         "(damaged: asks for more memory than there is)") from None
    except pickle.UnpicklingError as e:
        raise InputError(f"data: {path} is not a CIFAR-10 python batch ({e})".splitlines()[0]) from None
    except Exception as e:  # noqa: BLE001  a damaged pickle raises almost any kind (KeyError, OverflowError, ...)
        why = f"{type(e).__name__}: {e}".splitlines()[0]
        raise InputError(f"data: {path} is not a CIFAR-10 python batch ({why})") from None
    if stream.tell() != len(data):
        raise InputError(f"data: {path} has {len(data) - stream.tell():,} bytes after its pickle: "
                         "damaged CIFAR-10 python batch")
    if not isinstance(obj, dict):
        raise InputError(f"data: {path} is not a CIFAR-10 python batch (holds a {type(obj).__name__})")
    return obj


def _read_python(folder: Path):
    n = RECORDS_PER_BATCH
    labels, pixels = [], []
    for batch in BATCHES:
        path = folder / batch
        d = _unpickle(path)
        data, y = d.get(b"data"), d.get(b"labels")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape != (n, PIXELS):
            got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
            raise InputError(f"data: {path}: 'data' must be uint8 ({n:,}, {PIXELS:,}), got {got}: "
                             "truncated or not CIFAR-10")
        if not isinstance(y, list) or len(y) != n or not all(isinstance(v, int) and 0 <= v < 256 for v in y):
            raise InputError(f"data: {path}: 'labels' must be a list of {n:,} class ids")
        y = np.array(y, np.int64)
        _check_labels(y, path)
        labels.append(y)
        pixels.append(data)
    meta = _unpickle(folder / "batches.meta")
    names = meta.get(b"label_names")
    if not isinstance(names, list) or len(names) != N_CLASSES or not all(isinstance(s, bytes) for s in names):
        raise InputError(f"data: {folder / 'batches.meta'}: 'label_names' must list {N_CLASSES} names")
    return np.concatenate(labels), np.concatenate(pixels), tuple(s.decode("ascii", "replace") for s in names)
