"""The ``Dataset`` record every dataset module returns, and where data is looked up.

Data folders are searched in a fixed order: the ``data_dir`` the user passed
(``--data-dir``), then ``$HASHBENCH_DATA``, then the user cache folder (where
``hashbench download`` puts archives by default). The first folder holding the dataset wins.
A location the user named (flag or environment) that does not exist is an error whenever
data is looked up (not for the bundled digits, which are looked up nowhere).
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..labels import check_labels
from ..paths import user_cache_dir


@dataclass(frozen=True, eq=False)
class Dataset:
    """All images of one dataset, in a fixed order that index arrays (splits) refer to.

    ``images``: uint8 (n, H, W, 3) RGB 0-255; ``labels``: int64 (n,) class ids or bool
    (n, c) multi-hot; ``class_names``: one name per class / label column; ``train_mask``:
    bool (n,), the official training part (all True when the dataset has none);
    ``source``: where the data came from (a folder, or a bundled copy), for the record.
    Datasets read from list files (:mod:`.lists`) also carry ``paths`` (each image's path
    as its list names it) and ``lists`` (the (train, query, database) index arrays their
    files give). The arrays are made read-only: every split and feature refers to this one copy.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    train_mask: np.ndarray
    source: str
    paths: tuple[str, ...] | None = None
    lists: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __post_init__(self):
        im = self.images
        if not (isinstance(im, np.ndarray) and im.dtype == np.uint8 and im.ndim == 4 and im.shape[3] == 3):
            shape = getattr(im, "shape", None)
            raise InputError(f"{self.name}: images must be uint8 (n, H, W, 3), "
                             f"got {getattr(im, 'dtype', type(im))} {shape}")
        n = im.shape[0]
        labels = check_labels(self.labels, n, f"{self.name} labels")
        k = len(self.class_names)
        if labels.ndim == 2 and labels.shape[1] != k:
            raise InputError(f"{self.name}: {k} class names for {labels.shape[1]} label columns")
        if labels.ndim == 1 and not (labels.min() >= 0 and labels.max() < k):
            raise InputError(f"{self.name} labels: class ids must lie in 0..{k - 1} ({k} class names)")
        mask = np.asarray(self.train_mask)
        if mask.dtype != np.bool_ or mask.shape != (n,):
            raise InputError(f"{self.name}: train_mask must be bool ({n},), got {mask.dtype} {mask.shape}")
        if self.paths is not None and len(self.paths) != n:
            raise InputError(f"{self.name}: {len(self.paths)} paths for {n} images")
        for a in (im, labels, mask):
            a.setflags(write=False)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "train_mask", mask)
        object.__setattr__(self, "class_names", tuple(self.class_names))

    def __len__(self) -> int:
        return self.images.shape[0]


def data_roots(data_dir=None) -> list[Path]:
    """The folders searched for data, in order, without duplicates."""
    roots = []
    for r in (data_dir, os.environ.get("HASHBENCH_DATA"), user_cache_dir()):
        if r:
            p = Path(r).expanduser()
            if p not in roots:
                roots.append(p)
    return roots


def check_data_location(data_dir=None) -> None:
    """A data location the user gave (``--data-dir``, ``$HASHBENCH_DATA``) must be an existing
    folder: a mistyped one is an error, never a silent fall back to other data."""
    for what, r in (("--data-dir", data_dir), ("HASHBENCH_DATA", os.environ.get("HASHBENCH_DATA"))):
        if r:
            p = Path(r).expanduser()
            if not p.is_dir():
                state = "a file, not a folder" if p.exists() else "not found"
                raise InputError(f"{what}: the data location {p} is {state}")


def asked_locations(data_dir=None) -> list[str]:
    """The data locations the user named (flag, then environment), as words for messages."""
    env = os.environ.get("HASHBENCH_DATA")
    return ([f"--data-dir {data_dir}"] if data_dir else []) + ([f"HASHBENCH_DATA={env}"] if env else [])


def find_folder(names, data_dir=None, present=Path.is_dir) -> Path | None:
    """The first ``root/name`` (roots in lookup order, then ``names`` in order) for which
    ``present`` holds, or None."""
    for root in data_roots(data_dir):
        for name in names:
            if present(root / name):
                return root / name
    return None
