"""Where hashbench keeps files, in one place (standard library only: the package's
``__init__`` uses it before numpy or Numba load).

- The working folder (``--workdir``, else ``$HASHBENCH_HOME``, else the current folder)
  holds what runs make: ``results/``, the feature store ``features/`` and trained models
  ``runs/models/``. Paths given on the command line are taken as given (relative to the
  current folder); only the defaults live in the working folder.
- The user cache folder (``$XDG_CACHE_HOME/hashbench``, ``~/.cache/hashbench``) holds
  downloaded datasets and Numba's compiled kernels (unless ``NUMBA_CACHE_DIR`` is set).
"""

import os
from pathlib import Path

HOME_ENV = "HASHBENCH_HOME"


def user_cache_dir() -> Path:
    """The per-user cache folder: ``$XDG_CACHE_HOME/hashbench`` (``~/.cache/hashbench``),
    ``%LOCALAPPDATA%\\hashbench`` on Windows."""
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "hashbench"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hashbench"


def workdir() -> Path:
    """The working folder: ``$HASHBENCH_HOME`` (what ``--workdir`` sets), else the current folder."""
    return Path(os.environ.get(HOME_ENV) or ".").expanduser()


def in_workdir(relative) -> Path:
    """A default location (``results/run.csv``, ``features``, ``runs/models``) in the working folder."""
    return workdir() / relative
