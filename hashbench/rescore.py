"""Scores from stored codes: ``hashbench rescore`` recomputes every metric of a result file
from its cells' stored codes (:mod:`hashbench.storedcodes`) without fitting anything, with
the one scoring function of the runner (:func:`experiment.score`), so the numbers are
bitwise those of the run when nothing changed. ``hashbench evaluate --stored`` and
``hashbench show`` read stored cells through :func:`stored_cell`.
"""

from pathlib import Path

from . import storedcodes
from .errors import InputError
from .experiment import cached_dataset, score
from .protocols import get_protocol
from .results import (
    CURVE_COLUMN,
    KEY_COLUMNS,
    METRIC_COLUMNS,
    _field,
    read_records,
    row_key,
    write_records,
)


def stored_cell(path, data_dir=None, key=None):
    """(dataset, split, codes) of a stored cell, checked against the split its protocol and
    seed give now and the dataset's labels (another split or labels: InputError)."""
    codes = storedcodes.load(path, key)
    return (*_checked_split(codes, path, data_dir), codes)


def _checked_split(codes, path, data_dir):
    fields = dict(zip(KEY_COLUMNS, codes.key, strict=True))
    ds = cached_dataset(fields["dataset"], data_dir)
    split = get_protocol(fields["protocol"]).split(ds, int(fields["seed"]))
    storedcodes.check_split(codes, split, ds.labels, f"stored codes {path}")
    return ds, split


def rescore(path, data_dir=None, skip_missing: bool = False) -> str:
    """Recompute the metric columns (and curves) of every row of the result file ``path``
    from stored codes; rewrite the file atomically when a value changed. Rows without stored
    codes of their own (none, or another run's: :func:`storedcodes.check_model`) are an
    InputError, or left as they are with ``skip_missing``. Returns a summary."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"rescore: no such result file {path}")
    records = read_records(path)
    folder = storedcodes.codes_dir(path)
    why = {}  # rows without stored codes of their own: the reason
    columns = (*METRIC_COLUMNS, CURVE_COLUMN)
    changed, changed_rows = 0, 0
    for i, rec in enumerate(records):
        key = row_key(rec)
        file = storedcodes.codes_path(folder, key)
        if not file.is_file():
            why[i] = f"no file {file.name}"
            continue
        try:
            codes = storedcodes.load(file, key)
            storedcodes.check_model(codes, rec, file.name)
        except InputError as e:
            why[i] = str(e).split("; rerun")[0]
            continue
        if why and not skip_missing:
            continue  # the file will not be rewritten: check the other rows, score none
        ds, split = _checked_split(codes, file, data_dir)
        new = score(split, ds.labels, codes.query_codes, codes.db_codes, codes.n_bits)
        diff = [c for c in columns if rec[c] != _field(new[c])]
        changed += len(diff)
        changed_rows += bool(diff)
        rec.update({c: _field(new[c]) for c in diff})
    missing = sorted(why)
    if missing and not skip_missing:
        first = missing[0]
        raise InputError(f"rescore: {len(missing)} of {len(records)} rows of {path} have no stored codes of their own "
                         f"in {folder} (first: line {first + 2}, {'/'.join(row_key(records[first])[:6])}: "
                         f"{why[first]}); rerun them with --force, or pass --skip-missing")
    if changed:
        write_records(path, records)
    done = len(records) - len(missing)
    return (f"{path}: rescored {done} of {len(records)} rows from stored codes; "
            + (f"{changed} values in {changed_rows} rows changed" if changed else "every value unchanged")
            + (f"; {len(missing)} {'row' if len(missing) == 1 else 'rows'} without stored codes left as "
               f"{'it is' if len(missing) == 1 else 'they are'}" if missing else ""))
