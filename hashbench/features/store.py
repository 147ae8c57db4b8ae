"""The feature store: each extractor's matrix for every image of a dataset, computed once.

An entry is ``<root>/<dataset>/<extractor>-<id>.npy`` with a JSON sidecar ``.json`` saying
how it was made; ``<id>`` hashes the dataset name and the extractor key (name, version,
parameters, a learned extractor's model hash). The sidecar also records the images it was
made from (count, shape, SHA-256 of their bytes) and the matrix's own shape and SHA-256.
An entry is reused only when all of that matches the dataset and extractor asked for and
the matrix reads back with the recorded shape and checksum; anything else (other images,
a torn or edited file, bytes appended, a sidecar of an older format or not UTF-8 JSON) is
recomputed and said so in one line, never silently reused: the store is a checked cache, so
damage costs time, never a wrong number. A folder where an entry's file belongs is an error.

Writes: the old sidecar is removed first, then the matrix and the new sidecar are each
written atomically (``hashbench.io.atomic_write``), the sidecar last. A run killed at any
moment leaves either a complete entry or one without a sidecar, which reads as missing.
"""

import hashlib
import json
import re
import shlex
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InputError
from ..io import atomic_write
from ..paths import in_workdir
from .base import Extractor, check_images, format_param

FORMAT = 1
DEFAULT_ROOT = "features"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def images_fingerprint(images: np.ndarray) -> str:
    """SHA-256 of the images' shape and bytes (~0.25 s for CIFAR-10's 184 MB here): content,
    not a sample, so features are never reused for images that differ in one pixel."""
    h = hashlib.sha256(repr((images.dtype.str, images.shape)).encode())
    h.update(np.ascontiguousarray(images))
    return h.hexdigest()


def _matrix_sha256(X: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(X)).hexdigest()


class FeatureStore:
    """Feature matrices on disk under ``root`` (default ``features/`` in the working folder,
    :func:`hashbench.paths.workdir`)."""

    def __init__(self, root=None):
        self.root = in_workdir(DEFAULT_ROOT) if root is None else Path(root)

    def path(self, dataset, extractor: Extractor) -> Path:
        """Where the entry's matrix lives (its sidecar: the same path with ``.json``)."""
        if not _SAFE_NAME.fullmatch(dataset.name):
            raise InputError(f"dataset: name {dataset.name!r} cannot name a store folder")
        entry = json.dumps({"dataset": dataset.name, "extractor": extractor.key()}, sort_keys=True)
        return self.root / dataset.name / f"{extractor.name}-{hashlib.sha256(entry.encode()).hexdigest()[:16]}.npy"

    def get(self, dataset, extractor: Extractor, progress: bool | None = None, report=None) -> np.ndarray:
        """float32 ``(len(dataset), d)`` features of every image of ``dataset``: the stored
        matrix when it is valid, else computed (with a progress bar; None: on a terminal
        only) and stored. ``report``, if given, receives one line saying which it was."""
        images = check_images(dataset.images, f"{dataset.name} images")
        path = self.path(dataset, extractor)
        expected = {
            "format": FORMAT,
            "dataset": dataset.name,
            "n_images": int(images.shape[0]),
            "image_shape": list(images.shape[1:]),
            "images_sha256": images_fingerprint(images),
            "extractor": extractor.key(),
        }
        for p in (path, path.with_suffix(".json")):
            if p.is_dir():
                raise InputError(f"--store: {p} is a folder where the store keeps a file; move it away")
        X, why = self._read(path, expected)
        if X is not None:
            if report:
                report(f"{extractor.name} features of {dataset.name}: reusing {path}")
            return X
        if report:
            report(f"{extractor.name} features of {dataset.name}: computing ({why}) -> {path}")
        start = time.perf_counter()
        X = extractor.extract(images, progress=progress)
        seconds = time.perf_counter() - start
        sidecar = dict(
            expected,
            params=extractor.key_params(),
            shape=list(X.shape),
            dtype=X.dtype.str,
            sha256=_matrix_sha256(X),
            seconds=round(seconds, 3),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            hashbench=__version__,
            # from the constructor's parameters: a learned extractor's key holds a model hash instead
            command=shlex.join(["hashbench", "features", "extract", extractor.name, "--dataset", dataset.name]
                               + [a for k, v in sorted(extractor.get_params().items())
                                  for a in ("--param", format_param(k, v))]),
        )
        path.with_suffix(".json").unlink(missing_ok=True)
        with atomic_write(path) as f:
            np.save(f, X, allow_pickle=False)
        with atomic_write(path.with_suffix(".json"), "w") as f:
            json.dump(sidecar, f, indent=1, sort_keys=True)
        return X

    @staticmethod
    def _read(path: Path, expected: dict):
        """(matrix, "") for a valid entry, else (None, why it cannot be used)."""
        try:
            sidecar = json.loads(path.with_suffix(".json").read_bytes().decode("utf-8"))
        except FileNotFoundError:
            return None, "not stored"
        except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            return None, f"sidecar unreadable: {type(e).__name__}"
        if not isinstance(sidecar, dict):
            return None, "sidecar unreadable"
        for k, v in expected.items():
            if sidecar.get(k) != v:
                return None, f"stored for another {k.replace('_', ' ')}"
        try:
            with open(path, "rb") as f:
                X = np.load(f, allow_pickle=False)
                if f.read(1):
                    return None, "matrix file has bytes after its data"
        except Exception as e:  # noqa: BLE001  numpy raises ValueError, EOFError, ... for a damaged file
            return None, f"matrix unreadable: {type(e).__name__}"
        if not isinstance(X, np.ndarray):
            return None, "matrix file is not one .npy array"
        if (X.dtype != np.float32 or X.ndim != 2 or list(X.shape) != sidecar.get("shape")
                or X.shape[0] != expected["n_images"]):
            return None, f"matrix {X.dtype} {X.shape} does not match its sidecar"
        if _matrix_sha256(X) != sidecar.get("sha256"):
            return None, "matrix checksum does not match its sidecar"
        return X, ""
