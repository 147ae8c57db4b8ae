"""Datasets by name, and where their data is found.

``load_dataset(name, data_dir=None)`` returns a :class:`Dataset`; data is looked up in
``data_dir``, then ``$HASHBENCH_DATA``, then the user cache folder (see :mod:`.base`).
``list:FOLDER`` is any image dataset given by list files (:mod:`.lists`); FOLDER is an
existing folder or one looked up in the same data folders. The named datasets ``nuswide-81``,
``coco``, ``imagenet100`` and ``mirflickr`` are such folders under those names.
``resolve_dataset("auto", data_dir)`` implements the offline default: CIFAR-10 when it is
found, else the bundled digits, with a one-line notice saying which and why.
"""

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..io import check_writable
from . import cifar10, digits, lists, nuswide
from .archives import ARCHIVES, fetch
from .base import (
    Dataset,
    asked_locations,
    check_data_location,
    data_roots,
    find_folder,
    user_cache_dir,
)
from .nuswide import NusLabels

__all__ = [
    "DATASETS", "Dataset", "DatasetInfo", "NusLabels", "data_roots", "describe_datasets", "download",
    "find_dataset", "load_dataset", "load_nuswide_labels", "resolve_dataset", "user_cache_dir",
]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    folders: tuple[str, ...]  # folder names searched in each data root; () for a bundled dataset
    present: Callable[[Path], bool] | None  # whether a candidate folder holds the data
    read: Callable[..., Dataset]  # folder -> Dataset (no argument for a bundled dataset)
    how_to_get: str


DATASETS: dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo(
        "cifar10", "CIFAR-10: 60,000 32x32 colour images, 10 classes (50,000 train + 10,000 test)",
        cifar10.FOLDERS, cifar10.is_present, cifar10.read,
        "run `hashbench download cifar10`, or put the official cifar-10-batches-bin/ (or cifar-10-batches-py/) "
        "in a data folder",
    ),
    "nuswide": DatasetInfo(
        "nuswide", "NUS-WIDE, 21 most frequent concepts: 195,834 Flickr images at 64x64, multi-label",
        nuswide.FOLDERS, nuswide.is_present, nuswide.read,
        "NUS-WIDE is distributed by NUS for research use only: put its official files in nus-wide/ in a data folder",
    ),
    "digits": DatasetInfo(
        "digits", "scikit-learn digits: 1,797 8x8 grey images of handwritten digits, 10 classes (bundled, offline)",
        (), None, digits.read, "bundled with scikit-learn",
    ),
    **{
        name: DatasetInfo(name, description, folders, lists.is_present, functools.partial(lists.read, name=name),
                          f"{lists.HOW_TO_GET} ({'/ or '.join(folders)}/ in a data folder)")
        for name, description, folders in (
            ("nuswide-81", ("NUS-WIDE, 81 concepts, from HashNet-format lists (HashNet's nus-wide / DeepHash-pytorch's "
             "nuswide_81_m)"), ("nuswide-81", "nuswide_81_m", "nus_wide_m")),
            ("coco", "MS-COCO 2014, 80 categories, from HashNet-format lists", ("coco", "COCO_2014")),
            ("imagenet100", "ImageNet-100 (HashNet's 100 classes), from HashNet-format lists",
             ("imagenet100", "imagenet")),
            ("mirflickr", "MIRFlickr-25K, from DeepHash-pytorch-format lists", ("mirflickr", "mirflickr25k")),
        )
    },
}


def _info(name: str) -> DatasetInfo:
    if name.startswith(lists.PREFIX):
        spec = name[len(lists.PREFIX):]
        if not spec:
            raise InputError("dataset list:FOLDER: the folder is missing after 'list:'")
        return DatasetInfo(name, f"images listed in {spec}", (spec,), lists.is_present,
                           functools.partial(lists.read, name=name), lists.HOW_TO_GET)
    try:
        return DATASETS[name]
    except KeyError:
        raise InputError(f"dataset: unknown dataset {name!r}; choose from {', '.join(DATASETS)}") from None


def find_dataset(name: str, data_dir=None) -> Path | None:
    """The folder holding dataset ``name`` (first in lookup order), or None; None also for
    a bundled dataset, which needs no folder."""
    info = _info(name)
    if name.startswith(lists.PREFIX) and lists.is_present(Path(info.folders[0]).expanduser()):
        return Path(info.folders[0]).expanduser()  # a folder given by its path, before the data folders
    return find_folder(info.folders, data_dir, info.present) if info.folders else None


def _given_by_path(name: str) -> bool:
    """``list:FOLDER`` with FOLDER an existing lists folder: found by its path, looked up in
    no data location."""
    return name.startswith(lists.PREFIX) and lists.is_present(Path(name[len(lists.PREFIX):]).expanduser())


def _not_found(info: DatasetInfo, data_dir) -> InputError:
    where = ", ".join(str(r) for r in data_roots(data_dir))
    looked = "/ or ".join(info.folders) + "/"
    return InputError(f"dataset {info.name}: not found (looked for {looked} in the data folders {where}); "
                      f"{info.how_to_get}")


def load_dataset(name: str, data_dir=None) -> Dataset:
    """Load every image of dataset ``name``; InputError when its data is not found, or when
    a data location it is looked up in was named and does not exist."""
    info = _info(name)
    if not info.folders:  # bundled: no data location is looked in
        return info.read()
    if not _given_by_path(name):
        check_data_location(data_dir)
    folder = find_dataset(name, data_dir)
    if folder is None:
        raise _not_found(info, data_dir)
    return info.read(folder)


def load_nuswide_labels(data_dir=None, n_concepts: int = nuswide.N_CONCEPTS) -> NusLabels:
    """NUS-WIDE labels of the ``n_concepts`` most frequent concepts, without the images."""
    check_data_location(data_dir)
    folder = find_dataset("nuswide", data_dir)
    if folder is None:
        raise _not_found(DATASETS["nuswide"], data_dir)
    return nuswide.load_labels(folder, n_concepts)


def resolve_dataset(name: str, data_dir=None) -> tuple[str, str | None]:
    """(dataset name, one-line notice or None). ``"auto"`` picks CIFAR-10 when it is found
    locally, else the bundled digits, and the notice says which; any other name is checked
    and returned as is (an explicit ``cifar10`` never falls back). The fall back to digits
    happens only when no data location was given: a ``data_dir`` or ``$HASHBENCH_DATA``
    without CIFAR-10 is an error, since its user asked for that data."""
    if name.startswith(lists.PREFIX) and name != lists.PREFIX:  # one name per folder: its absolute path
        if not _given_by_path(name):
            check_data_location(data_dir)
        folder = find_dataset(name, data_dir)
        if folder is None:
            raise _not_found(_info(name), data_dir)
        return lists.PREFIX + str(folder.expanduser().resolve()), None
    if name != "auto":
        return _info(name).name, None
    check_data_location(data_dir)
    folder = find_dataset("cifar10", data_dir)
    if folder is not None:
        return "cifar10", f"dataset auto: using CIFAR-10 found in {folder}"
    where = ", ".join(str(r) for r in data_roots(data_dir))
    asked = asked_locations(data_dir)
    if asked:
        raise InputError(
            f"dataset auto: no CIFAR-10 ({'/ or '.join(cifar10.FOLDERS)}/) in {' or '.join(asked)}; "
            "fix the location, or give --dataset digits for the bundled digits"
        )
    return "digits", (
        f"dataset auto: CIFAR-10 not found in {where}; using the bundled digits (1,797 8x8 images) instead. "
        "Get CIFAR-10 with `hashbench download cifar10`."
    )


def download(name: str, data_dir=None, fmt: str = "bin", progress: bool = True) -> tuple[Path | None, str]:
    """Fetch dataset ``name`` into ``data_dir`` (default: the user cache folder) unless it is
    already found; returns (folder, one-line message)."""
    info = _info(name)
    if not info.folders:
        return None, f"{name} is {info.how_to_get}: nothing to download"
    if (name, fmt) not in ARCHIVES:
        formats = [f for n, f in ARCHIVES if n == name]
        if not formats:
            where = ", ".join(str(r) for r in data_roots(data_dir))
            raise InputError(f"download {name}: no public archive; {info.how_to_get} ({where})")
        raise InputError(f"--format: {name} comes as {' or '.join(formats)}, not {fmt!r}")
    archive = ARCHIVES[name, fmt]
    found = find_folder((archive.folder,), data_dir, info.present)
    if found is not None:
        return found, f"{name}: already present in {found}"
    dest = Path(data_dir).expanduser() if data_dir else user_cache_dir()
    check_writable(dest, "--data-dir", folder=True)
    folder = fetch(archive, dest, progress=progress)
    return folder, f"{name}: downloaded, checked (md5 {archive.md5}) and extracted to {folder}"


def describe_datasets(data_dir=None) -> list[dict]:
    """One row per dataset: name, description, where its data was found."""
    check_data_location(data_dir)
    rows = []
    for name, info in DATASETS.items():
        folder = find_dataset(name, data_dir)
        if not info.folders:
            where = info.how_to_get
        elif folder is None:
            where = "not found"
        elif name == "nuswide" and not nuswide.images_present(folder):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    lab = nuswide.load_labels(folder)
                where = (
                    f"{folder} (labels only, images missing: {len(lab.index):,} images labelled; "
                    f"corrupt split-file entries read as 0: {len(lab.defects)})"
                )
            except InputError as e:
                where = f"{folder} (unreadable: {e})"
        elif info.present is lists.is_present:
            where = lists.describe(folder)
        else:
            where = str(folder)
        rows.append({"dataset": name, "description": info.description, "data": where})
    return rows
