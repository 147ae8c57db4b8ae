"""Any image dataset through list files, in the format of HashNet and DeepHash-pytorch.

A dataset folder holds three lists, HashNet's file names::

    train.txt      the training images
    test.txt       the queries
    database.txt   the database

one image a line: a path, then its label vector (0/1, one column per class; a path may hold
spaces: the label vector is the last W fields). Paths are relative to the folder (absolute
paths are used as they are). An optional ``classes.txt`` names the classes, one a line, and
fixes W; without it W is the number of label fields of the first line of ``database.txt``.
Line ends may be LF or CRLF; blank lines are skipped. When every row has exactly one 1 the
dataset is single-label (class ids), else multi-label (multi-hot); relevance follows
:mod:`hashbench.labels`.

The dataset is every image the lists name, each once, in the order database, queries,
training (the first mention wins); ``Dataset.lists`` holds the split the files give (the
``lists`` protocol), ``Dataset.paths`` each image's path as written. An image named twice in
one list, a missing or undecodable image, or a label vector of the wrong width is an error
naming the list file and line; so is one path with two different label vectors.

Images are decoded with Pillow to RGB and resized to ``size`` x ``size`` (default 32, the
DSH network's input; the size is recorded in the dataset's source and cache key) by
:func:`.nuswide.resize_bilinear`, the INTER_LINEAR resize of Caffe's ``convert_imageset``
that the DSH authors fed their networks with. Decoding runs in parallel (joblib processes,
a progress bar on a terminal) and its result is cached in the feature store folder
(``<store>/<name>/images-<size>-<id>.npy`` with a JSON sidecar), keyed by the list files'
contents and every image file's size and modification time, and checked by SHA-256 when
read back, like a feature matrix.
"""

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import atomic_write
from .base import Dataset

LIST_FILES = (("database", "database.txt"), ("query", "test.txt"), ("train", "train.txt"))
CLASSES_FILE = "classes.txt"
IMAGE_SIZE = 32
PREFIX = "list:"
HOW_TO_GET = ("put train.txt, test.txt (queries) and database.txt, one 'path 0 1 0 ...' line per image with paths "
              "relative to the folder (the HashNet / DeepHash-pytorch format), in the folder")
_INT = re.compile(r"[+-]?\d+")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def is_present(folder: Path) -> bool:
    """Whether ``folder`` holds the three list files."""
    return all((Path(folder) / f).is_file() for _, f in LIST_FILES)


@dataclass(frozen=True)
class ListFiles:
    """What a folder's lists say, before any image is read."""

    folder: Path
    paths: tuple[str, ...]  # each image once, database first, then queries, then training
    labels: np.ndarray  # uint8 (n, W) 0/1
    class_names: tuple[str, ...]
    parts: dict  # "train" / "query" / "database" -> sorted int64 indices into paths
    where: tuple[str, ...]  # per image, "FILE line N" of its first mention

    def counts(self) -> dict:
        return {part: len(idx) for part, idx in self.parts.items()}


def _lines(path: Path):
    """(line number, text) of each non-blank line; CRLF and LF alike."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"data: {path} is not UTF-8 text ({e})") from None
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield i, line.rstrip("\r\n")


def _width_of(line: str) -> int:
    fields = line.split()
    k = 0
    while k < len(fields) - 1 and _INT.fullmatch(fields[-1 - k]):
        k += 1
    return k


def read_list_files(folder) -> ListFiles:
    """Parse and check a folder's three lists (the images themselves are not opened)."""
    folder = Path(folder)
    for _, name in LIST_FILES:
        if not (folder / name).is_file():
            raise InputError(f"data: {folder} has no {name} ({HOW_TO_GET})")
    classes = folder / CLASSES_FILE
    names = [t for _, t in _lines(classes)] if classes.is_file() else None
    index, rows, where = {}, [], []
    parts = {}
    width = len(names) if names else None
    for part, fname in LIST_FILES:
        lpath = folder / fname
        seen, idx = set(), []
        for lineno, line in _lines(lpath):
            at = f"{lpath} line {lineno}"
            if width is None:
                width = _width_of(line)
                if width == 0:
                    raise InputError(f"data: {at}: no label vector after the path")
            split = line.rsplit(None, width)  # the path keeps its inner blanks
            k = _width_of(line)
            if len(split) != width + 1 or k < width:
                raise InputError(f"data: {at}: label vector has {k} fields, expected {width}")
            rel, values = split[0].strip(), split[1:]
            if k > width and not _resolve(folder, rel).exists():
                raise InputError(f"data: {at}: label vector has {k} fields, expected {width}")
            if any(v not in ("0", "1") for v in values):
                raise InputError(f"data: {at}: label vector must hold 0 and 1 only, got {' '.join(values)!r}")
            if rel in seen:
                raise InputError(f"data: {at}: {rel!r} is listed twice in {fname}")
            seen.add(rel)
            label = np.array(values, np.uint8)
            if rel in index:
                i = index[rel]
                if not np.array_equal(rows[i], label):
                    raise InputError(f"data: {at}: {rel!r} has another label vector in {where[i]}")
            else:
                i = index[rel] = len(rows)
                rows.append(label)
                where.append(at)
            idx.append(i)
        if not idx:
            raise InputError(f"data: {lpath} lists no image")
        parts[part] = np.sort(np.array(idx, np.int64))
    if names is not None and len(names) != width:
        raise InputError(f"data: {classes} names {len(names)} classes, the label vectors have {width} fields")
    return ListFiles(folder, tuple(index), np.stack(rows), tuple(names or (str(c) for c in range(width))),
                     parts, tuple(where))


def _resolve(folder: Path, rel: str) -> Path:
    p = Path(rel)
    return p if p.is_absolute() else folder / p


def _decode(paths: list[str], size: int) -> tuple[np.ndarray, int, str]:
    """Decode and resize a chunk; (images, index of the first failure or -1, why)."""
    from PIL import Image, UnidentifiedImageError

    from .nuswide import resize_bilinear

    out = np.empty((len(paths), size, size, 3), np.uint8)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                out[i] = resize_bilinear(np.asarray(im.convert("RGB")), size)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            return out, i, str(e)
    return out, -1, ""


def _cache_key(lists: ListFiles, files: list[Path], size: int) -> str:
    h = hashlib.sha256(f"images|{size}|".encode())
    for _, fname in LIST_FILES:
        h.update((lists.folder / fname).read_bytes())
    for f in files:
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _load_cached(path: Path, key: str):
    try:
        side = json.loads(path.with_suffix(".json").read_text())
        if side.get("key") != key:
            return None
        images = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # a damaged cache is decoded again
        return None
    if not isinstance(images, np.ndarray):
        return None
    if hashlib.sha256(np.ascontiguousarray(images)).hexdigest() != side.get("sha256"):
        return None
    return images


def decode_images(lists: ListFiles, size: int = IMAGE_SIZE, cache_dir=None, n_jobs: int | None = None,
                  progress: bool | None = None) -> np.ndarray:
    """uint8 (n, size, size, 3) images of every listed path, decoded in parallel, cached in
    ``cache_dir`` when given; InputError naming list file and line for a missing or
    undecodable image."""
    from joblib import Parallel, delayed

    from ..progress import progress as progress_bar

    files = [_resolve(lists.folder, r) for r in lists.paths]
    for f, at in zip(files, lists.where, strict=True):
        if not f.is_file():
            raise InputError(f"data: {at}: image {f} not found")
    key = _cache_key(lists, files, size)
    cache = Path(cache_dir) / f"images-{size}-{key[:16]}.npy" if cache_dir is not None else None
    if cache is not None and (images := _load_cached(cache, key)) is not None:
        return images
    chunk = 256
    starts = range(0, len(files), chunk)
    jobs = n_jobs if n_jobs is not None else min(8, os.cpu_count() or 1)
    pool = Parallel(n_jobs=jobs if len(files) > chunk else 1, return_as="generator")
    results = pool(delayed(_decode)([str(f) for f in files[s:s + chunk]], size) for s in starts)
    images = np.empty((len(files), size, size, 3), np.uint8)
    with progress_bar(len(files), "decoding images", unit="img", enabled=progress is not False,
                      quiet_for=0.0 if progress else 5.0) as bar:
        for s, (part, bad, why) in zip(starts, results, strict=True):
            if bad >= 0:
                raise InputError(f"data: {lists.where[s + bad]}: cannot decode image {files[s + bad]} ({why})")
            images[s:s + len(part)] = part
            bar.update(len(part))
    if cache is not None:
        cache.with_suffix(".json").unlink(missing_ok=True)
        with atomic_write(cache) as f:
            np.save(f, images, allow_pickle=False)
        with atomic_write(cache.with_suffix(".json"), "w") as f:
            json.dump({"key": key, "size": size, "n_images": len(files), "folder": str(lists.folder),
                       "sha256": hashlib.sha256(images).hexdigest()}, f, indent=1)
    return images


def store_name(name: str) -> str:
    """A name for ``list:FOLDER`` that can name a store folder: the folder's name and a hash
    of its absolute path."""
    if not name.startswith(PREFIX):
        return name
    folder = str(Path(name[len(PREFIX):]).expanduser().resolve())
    base = _SAFE.sub("_", Path(folder).name).strip("_.-") or "lists"
    return f"list-{base}-{hashlib.sha256(folder.encode()).hexdigest()[:8]}"


def read(folder, name: str | None = None, size: int = IMAGE_SIZE, store=None, progress: bool | None = None) -> Dataset:
    """The dataset a folder's lists describe, its images decoded at ``size`` x ``size``
    (cached under ``store``, default the feature store's ``features/`` in the working folder)."""
    from ..features.store import DEFAULT_ROOT
    from ..paths import in_workdir

    folder = Path(folder)
    lists = read_list_files(folder)
    ds_name = store_name(name or PREFIX + str(folder))
    cache_dir = (in_workdir(DEFAULT_ROOT) if store is None else Path(store)) / ds_name
    images = decode_images(lists, size, cache_dir, progress=progress)
    single = (lists.labels.sum(1) == 1).all()
    labels = lists.labels.argmax(1).astype(np.int64) if single else lists.labels.astype(bool)
    train_mask = np.zeros(len(lists.paths), bool)
    train_mask[lists.parts["train"]] = True
    parts = lists.parts
    return Dataset(ds_name, images, labels, lists.class_names, train_mask,
                   f"{folder} (list files; images resized to {size}x{size})", paths=lists.paths,
                   lists=(parts["train"], parts["query"], parts["database"]))


def describe(folder) -> str:
    """One line: what the lists hold, without opening an image."""
    try:
        lists = read_list_files(folder)
    except InputError as e:
        return f"{folder} (unreadable: {e})"
    c = lists.counts()
    kind = "single-label" if (lists.labels.sum(1) == 1).all() else "multi-label"
    return (f"{folder} (lists: {len(lists.paths):,} images, train {c['train']:,}, queries {c['query']:,}, "
            f"database {c['database']:,}; {lists.labels.shape[1]} classes, {kind})")
