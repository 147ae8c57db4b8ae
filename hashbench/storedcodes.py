"""Stored codes: the packed query and database codes of every cell a grid ran, so metrics,
``hashbench show`` and figures are computed again without fitting anything.

One compressed ``.npz`` per cell in ``codes/`` beside the result CSV, named by the cell's key
hash (:func:`cell_id`), written atomically by the runner (the driver, never a worker) before
the row; the folder holds a ``.gitignore`` of ``*``, so codes stay out of git wherever they
are (about 0.5 MB per CIFAR-10 cell). A file holds ``query_codes`` and ``db_codes``
(uint64, :mod:`hashbench.codes`), ``n_bits``, the split's ``query_index`` and ``db_index``
into the dataset, ``split_sha256`` (its train, query and database indices),
``labels_sha256`` (the dataset's labels of the query and database images), ``key`` (the
row key, JSON), ``model_sha256`` and ``format``. Loading checks all of it: a truncated file,
a file of another cell, split, labels or format is an InputError (one line, exit code 2).

A cell that trains its own model file (DSH) has one key however often that model is
trained, and every result file in a folder shares ``codes/``: the codes of a retrained model
replace the earlier ones under the same name. So a file records the content of the model
that made it (``model_sha256``, empty for a cell without a model file of its own; format 1
files did not record it), and codes are used for a row only when that is the row's model
(:func:`check_model`): never another model's codes under a row's numbers.
"""

import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .codes import n_words
from .errors import InputError
from .io import atomic_write

FORMAT = 2  # bump when the file's fields change
READABLE = (1, 2)  # 1: before model_sha256 (read as unknown)
CODES_DIR = "codes"


@dataclass(frozen=True)
class CellCodes:
    """The codes of one cell's split (see the module docstring for the fields)."""

    key: tuple[str, ...]
    n_bits: int
    query_codes: np.ndarray
    db_codes: np.ndarray
    query_index: np.ndarray
    db_index: np.ndarray
    split_sha256: str
    labels_sha256: str
    model_sha256: str | None = None  # "" no model file of its own; None not recorded (format 1)


def cell_id(key) -> str:
    """The file name stem of a cell's codes: a hash of its row key (CSV strings)."""
    return hashlib.sha256("\x1f".join(key).encode()).hexdigest()[:24]


def codes_dir(results_csv) -> Path:
    """The folder of a result file's stored codes: ``codes/`` beside it."""
    return Path(results_csv).parent / CODES_DIR


def codes_path(folder, key) -> Path:
    return Path(folder) / f"{cell_id(key)}.npz"


def split_sha256(split) -> str:
    h = hashlib.sha256()
    for part in (split.train, split.query, split.database):
        h.update(np.ascontiguousarray(part, dtype=np.int64).tobytes() + b"|")
    return h.hexdigest()


def labels_sha256(labels, split) -> str:
    h = hashlib.sha256()
    for part in (labels[split.query], labels[split.database]):
        a = np.ascontiguousarray(part)
        h.update(f"{a.dtype.str}{a.shape}".encode() + a.tobytes())
    return h.hexdigest()


def cell_codes(key, n_bits: int, query_codes, db_codes, split, labels, model_sha256: str = "") -> CellCodes:
    """The record of a cell's codes on its split (``labels``: the whole dataset's), made by
    the model of content ``model_sha256`` ("" for a cell without a model file of its own)."""
    return CellCodes(tuple(key), int(n_bits), np.ascontiguousarray(query_codes, dtype=np.uint64),
                     np.ascontiguousarray(db_codes, dtype=np.uint64), np.asarray(split.query, np.int64),
                     np.asarray(split.database, np.int64), split_sha256(split), labels_sha256(labels, split),
                     str(model_sha256))


def save(folder, codes: CellCodes) -> Path:
    """Write a cell's codes atomically into ``folder`` (made git-ignored); return the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        with atomic_write(ignore, "w") as f:
            f.write("# stored codes of hashbench cells (hashbench rescore, show): not for git\n*\n")
    path = codes_path(folder, codes.key)
    with atomic_write(path, "wb") as f:
        np.savez_compressed(
            f, format=np.int64(FORMAT), key=np.str_(json.dumps(list(codes.key))), n_bits=np.int64(codes.n_bits),
            query_codes=codes.query_codes, db_codes=codes.db_codes, query_index=codes.query_index,
            db_index=codes.db_index, split_sha256=np.str_(codes.split_sha256),
            labels_sha256=np.str_(codes.labels_sha256), model_sha256=np.str_(codes.model_sha256 or ""))
    return path


def load(path, key=None) -> CellCodes:
    """Read stored codes and check them; with ``key`` they must be that cell's."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"stored codes: no such file {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            fields = {name: z[name] for name in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:  # truncated, foreign
        raise InputError(f"stored codes: cannot read {path} ({type(e).__name__}: truncated or not "
                         "hashbench codes); rerun its cell with --force") from None
    if "format" not in fields or int(fields["format"]) not in READABLE:
        found = int(fields["format"]) if "format" in fields else "unknown"
        raise InputError(f"stored codes: {path} is of format {found}, this hashbench reads format "
                         f"{' or '.join(map(str, READABLE))}; rerun its cell with --force")
    try:
        codes = CellCodes(
            tuple(json.loads(str(fields["key"]))), int(fields["n_bits"]), fields["query_codes"], fields["db_codes"],
            fields["query_index"], fields["db_index"], str(fields["split_sha256"]), str(fields["labels_sha256"]),
            str(fields["model_sha256"]) if int(fields["format"]) >= 2 else None)
    except (KeyError, ValueError) as e:
        raise InputError(f"stored codes: {path} lacks a field or holds a bad one ({e})") from None
    w = n_words(codes.n_bits)
    for name, c, idx in (("query", codes.query_codes, codes.query_index), ("database", codes.db_codes, codes.db_index)):
        if c.dtype != np.uint64 or c.ndim != 2 or c.shape != (len(idx), w):
            raise InputError(f"stored codes: {path}: {name} codes of {c.dtype} {c.shape} do not fit "
                             f"{len(idx)} items of {codes.n_bits} bits")
    if key is not None and codes.key != tuple(key):
        raise InputError(f"stored codes: {path} holds another cell ({', '.join(codes.key[:6])})")
    return codes


def check_split(codes: CellCodes, split, labels, path="stored codes") -> None:
    """Refuse codes made on another split or other labels than the cell's split now gives."""
    if codes.split_sha256 != split_sha256(split):
        raise InputError(f"{path}: made on another split than {split.protocol} (seed {split.seed}) gives now; "
                         "rerun its cell with --force")
    if codes.labels_sha256 != labels_sha256(labels, split):
        raise InputError(f"{path}: made with other labels than the dataset's now; rerun its cell with --force")


def check_model(codes: CellCodes, row, path="stored codes") -> None:
    """Refuse codes for a result ``row`` (a record of CSV strings) that another run made: a
    row from before stored codes (schema 1, its ``fit`` empty) has none, and a row whose
    model content is not the one the codes record was not made from them (a format-1 file
    serves only rows without a model file of their own)."""
    if not row["fit"]:
        raise InputError(f"{path}: its row is from before stored codes (schema 1), so these codes are a later "
                         "run's; rerun its cell with --force")
    if (codes.model_sha256 or "") != row["model_sha256"]:  # None (format 1): only a row without a model
        made = "a model it did not record" if codes.model_sha256 is None else \
            f"model sha256:{codes.model_sha256[:12] or '(none)'}"
        raise InputError(f"{path}: made by {made}, the row's model is sha256:{row['model_sha256'][:12] or '(none)'}"
                         "; rerun its cell with --force")


def resolve(spec: str) -> Path:
    """A stored cell named as its ``.npz`` file, or as ``RESULTS.csv:N`` (the N-th row, from 1;
    its codes must be that row's: :func:`check_model`)."""
    from .results import read_records, row_key

    csv, sep, line = spec.rpartition(":")
    if sep and csv.endswith(".csv"):
        if not line.isdigit() or int(line) < 1:
            raise InputError(f"cell: expected RESULTS.csv:N with N >= 1, got {spec!r}")
        rows = read_records(csv) if Path(csv).is_file() else None
        if rows is None:
            raise InputError(f"cell: no such result file {csv}")
        if int(line) > len(rows):
            raise InputError(f"cell: {csv} has {len(rows)} rows, not {line}")
        row = rows[int(line) - 1]
        path = codes_path(codes_dir(csv), row_key(row))
        if not path.is_file():
            raise InputError(f"cell: row {line} of {csv} has no stored codes ({path}); rerun it with --force")
        check_model(load(path, row_key(row)), row, path)
        return path
    return Path(spec)
