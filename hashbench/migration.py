"""One-off migrations of result files to the current schema (``hashbench results migrate``).

Schema 1 -> 2: keys named model files by path; schema 2 names them by content
(:mod:`hashbench.provenance`). The content of a schema-1 row's model files was never
recorded and the files may be gone, so a migrated key says only what is known:
``path:<PATH>`` in place of ``sha256:<hex>``, the paths in ``model_files``; ``fit``,
``commit``, ``dirty`` and ``model_sha256`` are left empty (unknown), and ``train_s`` is
kept as measured (for a model that was loaded, schema 1 recorded the loading time there).
Every other field, every metric among them, is copied as its text: bit-identical.
"""

import csv
import io
import json
from pathlib import Path

from .errors import InputError
from .features import format_param, parse_param
from .provenance import PATH, dumps, split_settings
from .results import COLUMNS, SCHEMA, SCHEMA_1_COLUMNS, read_results, row_key, write_records

# What schema-1 rows held, by name (the built-in methods' declarations when they were written):
# model files read, and settings without effect (with DSH's checkpoint location).
FILE_PARAMS = frozenset({"model", "init_from", "checkpoints"})
SETTINGS = frozenset({"progress", "threads", "n_jobs", "checkpoint"})


def _paths(value):
    return [PATH + str(v) for v in value] if isinstance(value, list) else PATH + str(value)


def _row_1_to_2(rec: dict) -> dict:
    files = {}
    name, _, rest = rec["features"].partition(":")
    if rest:
        fparams = dict(parse_param(t, "features") for t in rest.split(","))
        ffiles = {k: v for k, v in fparams.items() if k in FILE_PARAMS}
        if ffiles:
            files["features"] = ffiles
            fparams.update({k: _paths(v) for k, v in ffiles.items()})
            rec["features"] = f"{name}:{','.join(format_param(k, v) for k, v in fparams.items())}"
    params, dropped = split_settings(json.loads(rec["params"]), SETTINGS)
    pfiles = {k: v for k, v in params.items() if k in FILE_PARAMS and v is not None}
    if pfiles:
        files["params"] = pfiles
        params.update({k: _paths(v) for k, v in pfiles.items()})
    if pfiles or dropped:
        rec["params"] = dumps(params)
    return {**rec, "fit": "", "commit": "", "dirty": "", "model_sha256": "", "model_files": dumps(files),
            "schema": str(SCHEMA)}


def migrate(path) -> str:
    """Rewrite a result file of schema 1 in the current schema, atomically; return what was
    done. A file already current is left alone."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"migrate: no such file {path}")
    text = path.read_text(encoding="utf-8")
    try:
        lines = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as e:
        raise InputError(f"migrate: {path} is not readable as CSV ({e})") from None
    if lines and tuple(lines[0]) == COLUMNS:
        read_results(path)  # checked like any read
        return f"{path}: already schema {SCHEMA}, left alone"
    if not lines or tuple(lines[0]) != SCHEMA_1_COLUMNS:
        raise InputError(f"migrate: {path} is not a hashbench result file of schema 1")
    if not text.endswith("\n") or any(len(r) != len(SCHEMA_1_COLUMNS) for r in lines[1:]):
        raise InputError(f"migrate: {path} has a torn row; nothing migrated")
    records = [_row_1_to_2(dict(zip(SCHEMA_1_COLUMNS, r, strict=True))) for r in lines[1:]]
    seen = {}
    for i, rec in enumerate(records, start=2):
        key = row_key(rec)
        if key in seen:  # a setting without effect made two rows of one cell
            raise InputError(f"migrate: {path}:{i} becomes a duplicate of line {seen[key]} ({', '.join(key)}); "
                             "remove one of them first")
        seen[key] = i
    write_records(path, [{c: rec[c] for c in COLUMNS} for rec in records])
    read_results(path)
    return f"{path}: {len(records)} rows migrated from schema 1 to schema {SCHEMA}"
