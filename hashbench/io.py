"""Files in and out: atomic writes, output checks, and reading user arrays.

``atomic_write`` writes to a temporary file in the target folder, then ``os.replace``, so a
reader never sees a torn file, whatever moment a run is killed at. A write through a
symbolic link goes to the link's target (the link stays). Temporary files are named
``.<name>.<pid>.<random>.tmp``: the next write of the same file removes those of writers
that are no longer alive (a killed run), never those of a live one (``--jobs``).

``check_writable`` is the check every command makes on each output location before any
work starts: a failure is an :class:`InputError` naming the option. ``load_array`` reads a
user's array file (``.npy`` or text), refusing anything damaged with one line.
"""

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from .errors import InputError

_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp")
_LEGACY_TEMP = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")  # before 0.1.x named the pid
_STARTED = time.time()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temps(path) -> list[Path]:
    """Remove the temporary files that killed writers of ``path`` left in its folder
    (``.<name>.<pid>.*.tmp`` of a pid no longer running, and ``.<name>.<8 chars>.tmp`` of
    older hashbench versions, which named no pid, made before this process started);
    returns those removed."""
    path = Path(path)
    removed = []
    try:
        entries = list(path.parent.glob(f".{_glob_escape(path.name)}.*.tmp"))
    except OSError:
        return removed
    for p in entries:
        m = _TEMP.fullmatch(p.name)
        if m is not None and m["name"] == path.name:
            if _alive(int(m["pid"])):
                continue
        else:  # a temp file without a pid (older hashbench): stale when older than this process
            m = _LEGACY_TEMP.fullmatch(p.name)
            try:
                if m is None or m["name"] != path.name or p.stat().st_mtime >= _STARTED:
                    continue
            except OSError:
                continue
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def resolve_link(path) -> Path:
    """``path``, or the file a symbolic link at ``path`` points to (followed to the end)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """Context manager yielding a file object; the file appears at ``path`` only on success."""
    path = resolve_link(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _probe(folder: Path, what: str, target: Path) -> None:
    """Create and remove a file in the existing folder ``folder``, or raise an InputError."""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".hashbench-write-check.", suffix=".tmp")
    except OSError as e:
        where = "" if folder == target else f" (needed to create {target})"
        raise InputError(f"{what}: cannot write in the folder {folder}{where}: {e.strerror or e}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def check_writable(path, what: str, folder: bool = False) -> Path:
    """Refuse, before any work, an output that cannot be written: ``path`` is a file to
    write (``folder=False``; it may exist, but not as a folder) or a folder to write files
    into (``folder=True``; it may not exist yet, but not as a file). The nearest existing
    folder on the way is checked by really creating a file in it, which also catches
    read-only mounts and permissions that ``os.access`` misreports. Creates nothing that
    stays; returns the path (a symbolic link resolved to its target)."""
    path = resolve_link(Path(path).expanduser())
    if folder and path.exists() and not path.is_dir():
        raise InputError(f"{what}: {path} is a file, not a folder")
    if not folder and path.is_dir():
        raise InputError(f"{what}: {path} is a folder, not a file")
    start = path if folder else path.parent
    existing = start
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{what}: cannot create {start}: {existing} is a file, not a folder")
    _probe(existing, what, start)
    return path


TEXT_SUFFIXES = (".txt", ".csv", ".tsv")


def load_array(path, what: str) -> np.ndarray:
    """A numeric array from a ``.npy`` file or a text file of numbers (``.txt``, ``.csv``,
    ``.tsv``: one row a line, separated by commas, tabs or spaces); anything unreadable is an
    InputError naming the option and the file. ``.npz`` archives are refused: they hold
    several arrays and which one is meant would be a guess."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what}: {path} is a folder, not an array file")
    if not path.is_file():
        raise InputError(f"{what}: no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        raise InputError(f"{what}: {path} is an .npz archive of several arrays; save the one meant with np.save (.npy)")
    if suffix in TEXT_SUFFIXES:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{what}: {path} is not UTF-8 text (byte {e.start})") from None
        except OSError as e:
            raise InputError(f"{what}: cannot read {path} ({e.strerror})") from None
        rows = [line.replace(",", " ").replace("\t", " ").split() for line in text.splitlines() if line.strip()]
        if not rows:
            raise InputError(f"{what}: {path} holds no numbers")
        widths = {len(r) for r in rows}
        if len(widths) != 1:
            bad = next(i for i, r in enumerate(rows) if len(r) != len(rows[0]))
            raise InputError(f"{what}: {path}: row {bad + 1} has {len(rows[bad])} values, row 1 has {len(rows[0])}")
        try:
            a = np.array([[int(v) for v in r] for r in rows], dtype=np.int64)
        except (ValueError, OverflowError):
            raise InputError(f"{what}: {path} holds a value that is not an integer") from None
        return a[:, 0] if a.shape[1] == 1 else a
    try:
        with open(path, "rb") as f:
            a = np.load(f, allow_pickle=False)
            trailing = isinstance(a, np.ndarray) and f.read(1) != b""
    except OSError as e:
        raise InputError(f"{what}: cannot read {path} ({e.strerror or e})") from None
    except Exception as e:  # noqa: BLE001  numpy raises ValueError, EOFError, UnicodeError ... for a damaged file
        why = f"{type(e).__name__}: {e}".splitlines()[0]
        raise InputError(f"{what}: {path} is not a readable .npy array ({why})") from None
    if not isinstance(a, np.ndarray):  # an .npz archive under another name
        raise InputError(f"{what}: {path} is an .npz archive, not one .npy array")
    if trailing:
        raise InputError(f"{what}: {path} has bytes after its array's data: damaged or not one .npy array")
    return a


def read_text_file(path, what: str) -> str:
    """The UTF-8 text of a file the user's run reads back; a folder, an unreadable file, an
    empty one or other bytes than UTF-8 are an InputError naming the file."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a {what}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read the {what} {path} ({e.strerror or e})") from None
    if not data:
        raise InputError(f"{path}: empty file, not a {what} (remove it to start afresh)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: byte {e.start} is not UTF-8 text: damaged {what}") from None
