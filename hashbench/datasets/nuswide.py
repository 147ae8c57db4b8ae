"""NUS-WIDE (Chua et al., CIVR 2009) in its official layout, restricted to the 21 most
frequent of its 81 concepts as in the hashing literature (DSH among them): 195,834 images.

Official layout of the dataset folder (``nus-wide/``)::

    Concepts81.txt            (or ConceptsList/Concepts81.txt, or the official ConceptsList.zip)
    Groundtruth/AllLabels/Labels_<concept>.txt           (or the official Groundtruth.zip)
    Groundtruth/TrainTestLabels/Labels_<concept>_{Train,Test}.txt
    ImageList/Imagelist.txt, ImageList/TrainImagelist.txt
    Flickr/<folder>/<file>.jpg  (the paths of Imagelist.txt, after any ``...\\Flickr\\`` prefix)

Labels come from ``AllLabels`` (one 0/1 line per image of ``Imagelist.txt``). The ground
truth ships twice (``AllLabels`` and the ``TrainTestLabels`` split files), so each concept's
positive count is checked across both copies when both are present.

Rule for corrupt entries (a line that is not 0 or 1): in ``AllLabels``, the labels every
number is measured with, it is an error naming the file and line; nothing is guessed. In the
split files it is reported (a warning naming file, line and value, also kept in
``NusLabels.defects``) and read as 0, and the cross-check then has to pass. The official
files hold one such entry: ``Labels_lake_Train.txt`` line 78373 reads ``-1130179``; read as
0, the Train + Test copies agree with ``AllLabels`` for every concept.

Images are resized to 64x64, the input size of the DSH authors' NUS-WIDE network, by
:func:`resize_bilinear`. ``train_mask`` is the official Train part (``TrainImagelist.txt``).
"""

import warnings
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError
from .base import Dataset

FOLDERS = ("nus-wide", "NUS-WIDE", "nuswide")
N_CONCEPTS = 21
IMAGE_SIZE = 64


class NusLabels(NamedTuple):
    """Labels of the images kept (those with at least one of the selected concepts)."""

    labels: np.ndarray  # bool (n, n_concepts) multi-hot
    concepts: tuple[str, ...]  # the selected concepts, most frequent first
    index: np.ndarray  # int64 (n,): each kept image's line in the official image list
    n_official: int  # images in the official list (269,648)
    defects: tuple[str, ...]  # corrupt entries of the split files, as reported


class _Part:
    """One part of the official distribution, read from its extracted folder or its zip
    (opened once, closed on leaving the ``with`` block)."""

    def __init__(self, folder: Path, name: str):
        self.dir, self.zip, self.name = folder / name, folder / f"{name}.zip", name
        self._zip = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._zip is not None:
            self._zip.close()

    def exists(self) -> bool:
        return self.dir.is_dir() or self.zip.is_file()

    def read(self, rel: str) -> tuple[bytes, str] | None:
        """(contents, display name) of ``rel`` inside this part, or None when absent."""
        if self.dir.is_dir():
            p = self.dir / rel
            return (p.read_bytes(), str(p)) if p.is_file() else None
        if not self.zip.is_file():
            return None
        try:
            if self._zip is None:
                self._zip = zipfile.ZipFile(self.zip)
                self._members = set(self._zip.namelist())
            for m in (rel, f"{self.name}/{rel}"):
                if m in self._members:
                    return self._zip.read(m), f"{self.zip}:{m}"
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as e:
            raise InputError(f"data: cannot read {self.zip}: damaged zip ({type(e).__name__}: {e})") from None
        return None


def is_present(folder: Path) -> bool:
    """Whether ``folder`` holds the NUS-WIDE ground truth (images or not)."""
    return _Part(folder, "Groundtruth").exists()


def images_present(folder: Path) -> bool:
    return (folder / "ImageList" / "Imagelist.txt").is_file() and (folder / "Flickr").is_dir()


def _concepts(folder: Path) -> tuple[list[str], str]:
    """(concept names, the file or zip member they were read from)."""
    p = folder / "Concepts81.txt"
    if p.is_file():
        found = (p.read_bytes(), str(p))
    else:
        with _Part(folder, "ConceptsList") as part:
            found = part.read("Concepts81.txt")
    if found is None:
        raise InputError(f"data: missing NUS-WIDE concept list: put Concepts81.txt or ConceptsList.zip in {folder}")
    names = [s.strip() for s in found[0].decode("ascii", "replace").splitlines() if s.strip()]
    if not all(s.isprintable() and "\ufffd" not in s for s in names):
        raise InputError(f"data: {found[1]} holds bytes that are not printable ASCII: damaged concept list")
    if len(names) != len(set(names)) or not names:
        raise InputError(f"data: {found[1]} must list distinct concept names, one a line")
    return names, found[1]


def _parse(data: bytes, name: str, strict: bool) -> tuple[np.ndarray, list[str]]:
    """0/1 lines -> bool array. A line that is not 0/1 raises (strict) or is read as 0 and
    reported."""
    a = np.frombuffer(data, np.uint8)
    if a.size % 2 == 0 and (a[1::2] == ord("\n")).all() and ((a[0::2] == ord("0")) | (a[0::2] == ord("1"))).all():
        return a[0::2] == ord("1"), []  # the common, well-formed case, without a Python loop
    lines = data.rstrip().decode("ascii", "replace").splitlines()
    values, defects = np.zeros(len(lines), bool), []
    for i, s in enumerate(lines):
        v = s.strip()
        if v == "1":
            values[i] = True
        elif v != "0":
            if strict:
                raise InputError(f"data: {name} line {i + 1}: {v!r} is not 0 or 1 (corrupt label file)")
            defects.append(f"{name} line {i + 1}: {v!r} is not 0 or 1; read as 0")
    return values, defects


def load_labels(folder, n_concepts: int = N_CONCEPTS) -> NusLabels:
    """Read the ground truth of ``folder``, select the ``n_concepts`` most frequent concepts
    (ties keep the order of Concepts81.txt) and keep the images holding at least one."""
    folder = Path(folder)
    if not _Part(folder, "Groundtruth").exists():
        raise InputError(f"data: missing NUS-WIDE ground truth: put Groundtruth.zip or Groundtruth/ in {folder}")
    names, source = _concepts(folder)
    if not 1 <= n_concepts <= len(names):
        raise InputError(f"n_concepts must lie in 1..{len(names)} (the concepts listed in {source}), got {n_concepts}")
    with _Part(folder, "Groundtruth") as gt:
        columns, defects = _read_ground_truth(gt, names, source)
    for d in defects:
        warnings.warn(f"NUS-WIDE: {d}", stacklevel=2)
    counts = np.array([c.sum() for c in columns])
    top = np.argsort(-counts, kind="stable")[:n_concepts]
    labels = np.stack([columns[i] for i in top], axis=1)
    index = np.flatnonzero(labels.any(axis=1))
    return NusLabels(labels[index], tuple(names[i] for i in top), index.astype(np.int64), len(labels), tuple(defects))


def _read_ground_truth(gt: _Part, names: list[str], source: str) -> tuple[list[np.ndarray], list[str]]:
    """Each concept's AllLabels column (strict), cross-checked with its Train + Test copies."""
    columns, defects, n = [], [], None
    for c in names:
        found = gt.read(f"AllLabels/Labels_{c}.txt")
        if found is None:
            raise InputError(f"data: missing NUS-WIDE label file AllLabels/Labels_{c}.txt in {gt.dir} or {gt.zip} "
                             f"(concept {c!r} of {source})")
        col, _ = _parse(*found, strict=True)
        n = len(col) if n is None else n
        if len(col) != n:
            raise InputError(f"data: {found[1]} has {len(col):,} lines, the other label files {n:,}")
        split = [gt.read(f"TrainTestLabels/Labels_{c}_{part}.txt") for part in ("Train", "Test")]
        if all(split):
            parsed = [_parse(*s, strict=False) for s in split]
            found = [d for _, ds in parsed for d in ds]
            n_split, pos_split = sum(len(v) for v, _ in parsed), sum(int(v.sum()) for v, _ in parsed)
            if n_split != n or pos_split != int(col.sum()):
                raise InputError(
                    f"data: NUS-WIDE ground truth disagrees for {c!r}: Train + Test hold {n_split:,} lines / "
                    f"{pos_split:,} positives, AllLabels {n:,} / {int(col.sum()):,}"
                    + (f" ({'; '.join(found)})" if found else "")
                )
            defects += found
        columns.append(col)
    return columns, defects


def _image_list(folder: Path, name: str) -> list[str]:
    """Image paths of an official list, relative to ``Flickr/`` (any ``...\\Flickr\\``
    prefix removed, backslashes made slashes)."""
    p = folder / "ImageList" / name
    if not p.is_file():
        raise InputError(f"data: missing NUS-WIDE image list {p}")
    rels = []
    for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
        s = line.strip().replace("\\", "/")
        if s:
            k = s.lower().rfind("flickr/")
            rels.append(s[k + len("flickr/") :] if k >= 0 else s)
    return rels


def resize_bilinear(image: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Resize uint8 (h, w, 3) to (size, size, 3) by bilinear interpolation with half-pixel
    centres, edge clamping and no antialiasing: OpenCV's INTER_LINEAR, which Caffe's
    ``convert_imageset`` uses (results within one grey level of OpenCV's fixed-point
    arithmetic). The aspect ratio is not kept, as in Caffe."""
    h, w = image.shape[:2]

    def taps(n_in):
        s = np.clip((np.arange(size) + 0.5) * (n_in / size) - 0.5, 0, n_in - 1)
        i0 = np.floor(s).astype(np.intp)
        return i0, np.minimum(i0 + 1, n_in - 1), (s - i0)

    y0, y1, fy = taps(h)
    x0, x1, fx = taps(w)
    im = image.astype(np.float64)
    rows = im[y0] * (1 - fy)[:, None, None] + im[y1] * fy[:, None, None]
    out = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]
    return np.floor(out + 0.5).astype(np.uint8)


def _load_images(root: Path, rels: list[str]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    from ..progress import progress

    paths = [root / r for r in rels]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise InputError(f"data: {len(missing):,} of {len(paths):,} NUS-WIDE images are missing, e.g. {missing[0]}")
    out = np.empty((len(paths), IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    with progress(len(paths), "NUS-WIDE images", unit="img") as bar:
        for i, p in enumerate(paths):
            try:
                with Image.open(p) as im:
                    out[i] = resize_bilinear(np.asarray(im.convert("RGB")))
            except (UnidentifiedImageError, OSError) as e:
                raise InputError(f"data: cannot read NUS-WIDE image {p} ({e})") from None
            bar.update(1)
    return out


def read(folder) -> Dataset:
    """The 21-concept NUS-WIDE with its images (each resized to 64x64)."""
    folder = Path(folder)
    if not images_present(folder):
        raise InputError(
            f"data: NUS-WIDE images not found: {folder} needs ImageList/Imagelist.txt and Flickr/ "
            "(the images are distributed on request by NUS for research use); labels alone load "
            "with hashbench.datasets.load_nuswide_labels"
        )
    lab = load_labels(folder)
    rels = _image_list(folder, "Imagelist.txt")
    if len(rels) != lab.n_official:
        raise InputError(f"data: {folder / 'ImageList/Imagelist.txt'} lists {len(rels):,} images, "
                         f"the label files {lab.n_official:,}")
    kept = [rels[i] for i in lab.index]
    train = set(_image_list(folder, "TrainImagelist.txt"))
    train_mask = np.fromiter((r in train for r in kept), bool, len(kept))
    images = _load_images(folder / "Flickr", kept)
    return Dataset("nuswide", images, lab.labels, lab.concepts, train_mask, str(folder))
