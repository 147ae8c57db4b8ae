"""Exact splits for other codebases: a protocol's split written as list files, and list files
read back as a protocol.

``export_split`` writes HashNet's file names, in the list-file format of
:mod:`hashbench.datasets.lists` (a path, then the 0/1 label vector): ``train.txt``,
``test.txt`` (the queries), ``database.txt``, plus ``classes.txt`` (the label columns) and
``split.json`` (protocol, seed, dataset, counts). A user of another codebase runs on exactly
our split by reading them.

What names an image: its path for a list-file dataset; for CIFAR-10 the official batch file
and the record's 0-based position in it, ``data_batch_3.bin#1234`` (``test_batch.bin#0`` ..
``#9999`` for the test images; the python version's ``data_batch_3`` holds the same record at
the same position); for any other dataset ``NAME#i``, its position in hashbench's order.

``lists:FOLDER`` (``--protocol lists:FOLDER``) reads such files back: every name must be an
image of the dataset and every label vector its labels, else an error names file and line.
"""

import json
from pathlib import Path

import numpy as np

from .datasets import Dataset
from .datasets.cifar10 import BATCHES, RECORDS_PER_BATCH
from .datasets.lists import CLASSES_FILE, LIST_FILES, read_list_files
from .errors import InputError
from .io import atomic_write, check_writable

PREFIX = "lists:"


def item_names(ds: Dataset) -> list[str]:
    """What names each image of ``ds`` in exported lists (see the module docstring)."""
    if ds.paths is not None:
        return list(ds.paths)
    if ds.name == "cifar10" and len(ds) == len(BATCHES) * RECORDS_PER_BATCH:
        return [f"{BATCHES[i // RECORDS_PER_BATCH]}.bin#{i % RECORDS_PER_BATCH}" for i in range(len(ds))]
    return [f"{ds.name}#{i}" for i in range(len(ds))]


def label_vectors(ds: Dataset) -> np.ndarray:
    """uint8 (n, classes) 0/1: multi-hot labels as they are, class ids one-hot."""
    if ds.labels.ndim == 2:
        return ds.labels.astype(np.uint8)
    return np.eye(len(ds.class_names), dtype=np.uint8)[ds.labels]


def export_split(split, ds: Dataset, out) -> dict:
    """Write ``split`` of ``ds`` to the folder ``out``; returns what ``split.json`` holds."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: {out} exists and is not a folder")
    names, vectors = item_names(ds), label_vectors(ds)
    if any(n != n.strip() or "\n" in n or "\r" in n for n in names):
        raise InputError(f"{ds.name}: an image path starts or ends with a blank or holds a line break; "
                         "it cannot be written to a list file")
    parts = {"train": split.train, "query": split.query, "database": split.database}
    texts = {}
    for part, fname in LIST_FILES:
        texts[fname] = "".join(f"{names[i]} {' '.join(map(str, vectors[i]))}\n" for i in parts[part])
    texts[CLASSES_FILE] = "".join(f"{c}\n" for c in ds.class_names)
    from .protocols import get_protocol

    if ds.paths is not None:
        scheme = "the image paths of the dataset's own lists"
    elif names[0].endswith(".bin#0"):
        scheme = "official batch file and 0-based record in it, e.g. data_batch_3.bin#1234"
    else:
        scheme = f"{ds.name}#i: position i in hashbench's order of {ds.name}"
    record = {**split.record(), "topk": get_protocol(split.protocol).topk, "dataset": ds.name, "source": ds.source,
              "names": scheme}
    texts["split.json"] = json.dumps(record, indent=1) + "\n"
    for fname, text in texts.items():  # every file complete or absent: one atomic write each
        with atomic_write(out / fname, "w") as f:
            f.write(text)
    return record


def imported_protocol(name: str):
    """The protocol ``lists:FOLDER``: the split exported list files give, on any dataset
    whose images they name."""
    from .protocols import Protocol

    folder = Path(name[len(PREFIX):]).expanduser()
    if not folder.is_dir():
        raise InputError(f"protocol {name}: no such folder {folder}")
    files = read_list_files(folder)  # checked now: a bad file fails before anything runs

    def make(ds: Dataset, rng):
        index = {n: i for i, n in enumerate(item_names(ds))}
        vectors = label_vectors(ds)
        pos = np.empty(len(files.paths), np.int64)
        for k, (path, where) in enumerate(zip(files.paths, files.where, strict=True)):
            i = index.get(path)
            if i is None:
                raise InputError(f"data: {where}: {path!r} is not an image of {ds.name}")
            if files.labels.shape[1] != vectors.shape[1] or not np.array_equal(files.labels[k], vectors[i]):
                raise InputError(f"data: {where}: the label vector of {path!r} is not its label in {ds.name}")
            pos[k] = i
        parts = files.parts
        return tuple(np.sort(pos[parts[p]]) for p in ("train", "query", "database"))

    counts = files.counts()
    exclude_self, topk = False, None
    if (folder / "split.json").is_file():  # exported by hashbench: keep the protocol's own-image rule and cut
        try:
            record = json.loads((folder / "split.json").read_text())
            exclude_self = record.get("exclude_self", False) is True
            topk = record.get("topk") if isinstance(record.get("topk"), int) else None
        except (OSError, ValueError, AttributeError) as e:
            raise InputError(f"data: {folder / 'split.json'} is unreadable ({e})") from None
    return Protocol(
        name=name, dataset=None, sizes=(counts["train"], counts["query"], counts["database"]),
        query_in_database=True, query_in_train=True, exclude_self=exclude_self, seeded=False, topk=topk, make=make,
        portable=True, description=f"the split of the list files in {folder} (written by `hashbench split export`, "
        "or by hand in that format)",
    )


def _dataset_for(protocol, dataset: str | None, data_dir):
    from .datasets import load_dataset, resolve_dataset

    if dataset is None:
        if protocol.dataset is None:
            raise InputError(f"--dataset: protocol {protocol.name} applies to any dataset; name one")
        dataset = protocol.dataset
    name, _ = resolve_dataset(dataset, data_dir)
    return load_dataset(name, data_dir)


def export(protocol_name: str, seed: int, out, dataset: str | None = None, data_dir=None) -> str:
    """``hashbench split export``: write the split; one line saying what was written."""
    from .protocols import get_protocol

    check_writable(out, "--out", folder=True)
    protocol = get_protocol(protocol_name)
    ds = _dataset_for(protocol, dataset, data_dir)
    split = protocol.split(ds, seed)
    export_split(split, ds, out)
    return f"{split.describe()}: wrote {', '.join(f for _, f in LIST_FILES)}, {CLASSES_FILE} and split.json to {out}"


def import_(folder, dataset: str | None = None, data_dir=None) -> str:
    """``hashbench split import``: read exported lists back as a protocol and check them
    against the dataset; what they hold, and how to run on them."""
    from .protocols import get_protocol

    name = PREFIX + str(Path(folder))
    protocol = get_protocol(name)
    if dataset is None and (Path(folder) / "split.json").is_file():
        try:
            dataset = json.loads((Path(folder) / "split.json").read_text()).get("dataset")
        except (OSError, ValueError, AttributeError):
            dataset = None
    if dataset is None:
        raise InputError("--dataset: name the dataset the lists are a split of")
    ds = _dataset_for(protocol, dataset, data_dir)
    split = protocol.split(ds, 0)
    return f"{split.describe()}; use it with: hashbench run --dataset {dataset} --protocol {name}"
