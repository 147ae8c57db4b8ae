"""What produced a result: the content of the model files a cell reads, the settings that
cannot change a result, and the identity of the code.

A result row is keyed by what a cell *is*, not by where its inputs live: a model file a
cell reads (``cnn-ours:model=PATH``, DSH's ``init_from``, an ensemble's ``checkpoints``)
appears in the key as ``sha256:<hex>`` of its bytes, so a model retrained at the same path
gives a new key and its cells run again. A file that is not there (rows migrated from
schema 1, whose model files were not kept) can only be named by its path: ``path:<PATH>``.
The paths themselves go to the row's ``model_files`` column, for reading only.
"""

import functools
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

from . import __version__

# Which parameters are settings without effect, model files read, or the device is what a
# method *declares* (``Hasher.settings_params``, ``model_file_params``, ``device_param``;
# ``Extractor.model_file_params``); the functions below take those declarations. A method that
# ``trains_model_file`` has its ``checkpoint`` as a location: not in the key (the model is a
# product of the key), its content goes to the row's ``model_sha256``.
LOCATION = "checkpoint"

SHA256 = "sha256:"
PATH = "path:"  # a file that was not there when the key was made: only its path is known


@functools.lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int, inode: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes, computed once per (path, size, mtime, inode) in a process;
    a file changed in the last 2 seconds is hashed every time (as git treats "racily clean"
    files: a rewrite within one timestamp tick keeps size and mtime)."""
    p = os.path.realpath(path)
    st = os.stat(p)
    if time.time_ns() - st.st_mtime_ns < 2_000_000_000:
        return _sha256.__wrapped__(p, st.st_size, st.st_mtime_ns, st.st_ino)
    return _sha256(p, st.st_size, st.st_mtime_ns, st.st_ino)


def file_ref(path) -> str:
    """``sha256:<hex>`` of a file's content, or ``path:<PATH>`` when there is no such file."""
    return SHA256 + file_sha256(path) if Path(path).is_file() else PATH + str(path)


def _refs(value):
    return [file_ref(v) for v in value] if isinstance(value, (list, tuple)) else file_ref(value)


def content_params(params: dict, file_params) -> tuple[dict, dict]:
    """(params with every model file (the declared ``file_params``) replaced by its content
    reference, {name: path(s)})."""
    out, files = dict(params), {}
    for name in sorted(set(file_params) & set(params)):
        if params[name] is not None:
            out[name], files[name] = _refs(params[name]), params[name]
    return out, files


def split_settings(params: dict, inert) -> tuple[dict, dict]:
    """(params that can change a result, settings that cannot: the names in ``inert``)."""
    return ({k: v for k, v in params.items() if k not in inert},
            {k: v for k, v in params.items() if k in inert})


def canonical_device(device) -> str | None:
    """The device a result depends on: None for the CPU (also "auto" without CUDA), "cuda"
    for any CUDA device (cuda:0 and cuda:1 compute alike)."""
    from .nets import resolve_device

    kind = resolve_device(str(device)).type
    return None if kind == "cpu" else kind


def dumps(obj) -> str:
    """The one JSON form of keys and display columns: sorted, compact."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


@functools.lru_cache(maxsize=8)
def code_identity(root=None) -> dict:
    """``version`` (the package's), and when the package runs from a git checkout, ``commit``
    (HEAD) and ``dirty`` ("yes" when the package's files differ from HEAD, untracked ones
    included; results and other files of the checkout do not count), else empty strings.
    ``root``: the checkout (default: the folder above the package)."""
    pkg = Path(__file__).resolve().parent
    root = Path(root).resolve() if root is not None else pkg.parent
    where = str(pkg) if root == pkg.parent else "."

    def git(*args) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], check=False, capture_output=True, text=True,
                                  timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    commit = git("rev-parse", "HEAD")
    if top is None or commit is None or Path(top.strip()).resolve() != root:
        return {"version": __version__, "commit": "", "dirty": ""}  # not a checkout (an installed wheel)
    status = git("status", "--porcelain", "--untracked-files=all", "--", where)
    dirty = "" if status is None else ("yes" if status.strip() else "no")
    return {"version": __version__, "commit": commit.strip(), "dirty": dirty}
