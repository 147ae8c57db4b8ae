"""The CSV result store.

A result file holds one row per experiment cell (the ``KEY_COLUMNS``, model files in them
by content: :mod:`hashbench.provenance`), in the schema ``SCHEMA`` (its last column);
a file of an older schema is refused with the command that migrates it. Every write rewrites
the whole file to a temporary file and moves it into place (``hashbench.io.atomic_write``),
under a lock on the folder, so a run killed at any moment leaves the file as it was before
or after the write: never a torn row, never a lost row of a concurrent run. Reading is
strict: a short or long row, a bad number or a repeated cell is an error, never skipped.
"""

import contextlib
import csv
import io
import json
import math
import os
import re
from pathlib import Path

import pandas as pd

from .errors import InputError
from .io import atomic_write, check_writable, read_text_file

KEY_COLUMNS = ("dataset", "protocol", "features", "method", "bits", "seed", "n_labelled", "params")
METRIC_COLUMNS = (
    "map", "map_expected", "map_optimistic", "map_pessimistic", "map_at_k", "precision_r2",
    "empty_r2_fraction", "n_queries", "n_database", "n_no_relevant", "n_train",
)
# fit: "trained", "resumed" (from a partial checkpoint) or "loaded" (train_s then empty; a
# re-run of a cell that trained its model keeps the training record: write_row);
# version, commit, dirty: the code's identity (provenance.code_identity)
RUN_COLUMNS = ("train_s", "encode_s", "rank_s", "fit", "version", "commit", "dirty", "machine", "timestamp")
# model_sha256: the cell's own trained model file; model_files: JSON of every model file path
# the cell read or wrote (for reading: keys hold content hashes)
MODEL_COLUMNS = ("model_sha256", "model_files")
CURVE_COLUMN = "curves"
SCHEMA_COLUMN = "schema"
SCHEMA = 2  # bump on any change of columns or of what a key holds; add a migration (hashbench.migration)
COLUMNS = KEY_COLUMNS + METRIC_COLUMNS + RUN_COLUMNS + MODEL_COLUMNS + (CURVE_COLUMN, SCHEMA_COLUMN)
SCHEMA_1_COLUMNS = KEY_COLUMNS + METRIC_COLUMNS + ("train_s", "encode_s", "rank_s", "version", "machine",
                                                   "timestamp", CURVE_COLUMN)
INT_COLUMNS = ("bits", "seed", "n_queries", "n_database", "n_no_relevant", "n_train", SCHEMA_COLUMN)
FLOAT_COLUMNS = (
    "map", "map_expected", "map_optimistic", "map_pessimistic", "map_at_k", "precision_r2",
    "empty_r2_fraction", "train_s", "encode_s", "rank_s",
)


def _field(value) -> str:
    """The CSV text of one value: ints plain, floats in shortest round-trip form, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        raise TypeError("booleans have no place in a result row")
    if isinstance(value, float) or (hasattr(value, "dtype") and value.dtype.kind == "f"):
        return repr(float(value))
    if hasattr(value, "dtype") and value.dtype.kind in "iu":
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def row_key(row) -> tuple[str, ...]:
    """The cell a row (a dict of values or of CSV strings) belongs to, as CSV strings."""
    return tuple(_field(row[c]) for c in KEY_COLUMNS)


_REF = re.compile(r"(sha256:[0-9a-f]*|path:[^,\"\]]*)")


def lineage(rec) -> tuple[str, ...] | None:
    """What a row was run *from*: its key with model files' content references blanked, and
    the paths of the model files it read. Two rows of one lineage and different keys are one
    cell run on two versions of a model file at the same path; the later supersedes the
    earlier. None for a row that read no model file."""
    files = json.loads(rec["model_files"] or "{}")
    files.pop("checkpoint", None)  # its own model: a product of the key, not an input
    if not files:
        return None
    return (*(_REF.sub("", _field(rec[c])) for c in KEY_COLUMNS), _field(_resolved(files)))


def _resolved(value):
    """Model file paths made absolute against the working folder, so a row that named a file
    relative to it (schema 1 rows, migrated) and one that named it absolutely are one lineage."""
    from .paths import in_workdir

    if isinstance(value, dict):
        return {k: _resolved(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v) for v in value]
    path = Path(str(value))
    return os.path.abspath(path if path.is_absolute() else in_workdir(path))


def _is_number(text: str, integer: bool) -> bool:
    """Whether a CSV field parses as an int, or a float (empty: an undefined metric)."""
    if text == "" and not integer:
        return True
    try:
        (int if integer else float)(text)
    except ValueError:
        return False
    return True


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _read_records(path: Path) -> list[dict]:
    """The rows of a result file as dicts of CSV strings, checked strictly."""
    text = read_text_file(path, "result file")
    if "\0" in text:
        raise InputError(f"{path}:{text[: text.index(chr(0))].count(chr(10)) + 1}: NUL byte: damaged result file")
    if not text.endswith("\n"):  # every write ends with a newline: a missing one means a cut
        raise InputError(f"{path}:{text.count(chr(10)) + 1}: torn row (the file does not end with a newline)")
    try:
        lines = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as e:
        raise InputError(f"{path}: not readable as CSV ({e})") from None
    header = tuple(lines[0])
    if header == SCHEMA_1_COLUMNS:
        raise InputError(f"{path}: result schema 1 (keys hold model paths, rows no code identity); "
                         f"migrate it once with `hashbench results migrate {path}`")
    if header != COLUMNS:
        found = (lines[1][header.index(SCHEMA_COLUMN)]
                 if SCHEMA_COLUMN in header and len(lines) > 1 and len(lines[1]) == len(header) else None)
        if found is not None and found != str(SCHEMA):
            raise InputError(f"{path}: result schema {found}, this hashbench reads schema {SCHEMA}; "
                             "use the hashbench that wrote it")
        raise InputError(f"{path}: not a hashbench result file of this version (columns {', '.join(header[:6])}...)")
    records, seen = [], {}
    for lineno, fields in enumerate(lines[1:], start=2):
        if len(fields) != len(COLUMNS):
            raise InputError(f"{path}:{lineno}: torn row with {len(fields)} fields, expected {len(COLUMNS)}")
        rec = dict(zip(COLUMNS, fields, strict=True))
        if rec[SCHEMA_COLUMN] != str(SCHEMA):
            raise InputError(f"{path}:{lineno}: result schema {rec[SCHEMA_COLUMN]!r}, expected {SCHEMA}")
        for c in INT_COLUMNS + FLOAT_COLUMNS:
            if not _is_number(rec[c], integer=c in INT_COLUMNS):
                raise InputError(f"{path}:{lineno}: column {c} holds {rec[c]!r}, not a number")
        if not _is_json_object(rec[CURVE_COLUMN]):
            raise InputError(f"{path}:{lineno}: column {CURVE_COLUMN} is not a JSON object: damaged row")
        key = row_key(rec)
        if key in seen:
            raise InputError(f"{path}:{lineno}: duplicate of the cell in line {seen[key]}: {', '.join(key)}")
        seen[key] = lineno
        records.append(rec)
    return records


def read_records(path) -> list[dict]:
    """The rows of a result file as dicts of their CSV text, checked as strictly as
    :func:`read_results` (for rewriting fields without a round trip through floats)."""
    return _read_records(Path(path))


def read_results(path) -> pd.DataFrame:
    """All rows of a result file (empty frame when the file does not exist), typed."""
    path = Path(path)
    records = _read_records(path) if path.exists() else []
    df = pd.DataFrame(records, columns=list(COLUMNS))
    for c in INT_COLUMNS:
        df[c] = df[c].astype("int64")
    for c in FLOAT_COLUMNS:
        df[c] = pd.to_numeric(df[c].replace("", math.nan)).astype("float64")
    return df


def check_output(path, what: str = "--out") -> None:
    """Refuse, before any work, a result path that cannot be read back or written."""
    check_writable(path, what)
    try:
        done_cells(path)
    except InputError as e:
        raise InputError(f"{e}; choose another {what}") from None


def done_cells(path) -> set[tuple[str, ...]]:
    """Keys of the cells a result file already holds (what a resumed run skips)."""
    path = Path(path)
    return {row_key(r) for r in _read_records(path)} if path.exists() else set()


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """An exclusive lock on the folder, so concurrent writers do not lose each other's rows."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): one writer per file is then the user's job
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_row(path, row: dict, replace: bool = False) -> bool:
    """Add one finished cell to the result file atomically.

    A cell already in the file is replaced when ``replace`` (``--force``) and kept otherwise;
    a row of the same :func:`lineage` (the cell run on an earlier version of a model file) is
    replaced. A replacing row that loaded the very model the replaced row trained (same
    ``model_sha256``) keeps that row's training record (``fit``, ``train_s``): re-evaluating
    a cell does not forget how long its model took to train. Returns whether the row was
    written."""
    missing = [c for c in COLUMNS if c not in row]
    if missing:
        raise ValueError(f"result row lacks columns {missing}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = {c: _field(row[c]) for c in COLUMNS}
    with _folder_lock(path.parent):
        records = _read_records(path) if path.exists() else []
        keys = [row_key(r) for r in records]
        key = row_key(new)
        if key in keys:
            if not replace:
                return False
            old = records[keys.index(key)]
            if new["fit"] == "loaded" and old["fit"] in ("trained", "resumed") and \
                    old["model_sha256"] != "" and old["model_sha256"] == new["model_sha256"]:
                new["fit"], new["train_s"] = old["fit"], old["train_s"]
            records[keys.index(key)] = new
        else:
            same = lineage(new)
            records = [r for r in records if same is None or lineage(r) != same] + [new]
        write_records(path, records)
    return True


def write_records(path, records) -> None:
    """Write rows of CSV strings (dicts over ``COLUMNS``) as the whole file, atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([r[c] for c in COLUMNS] for r in records)
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue().encode("utf-8"))
