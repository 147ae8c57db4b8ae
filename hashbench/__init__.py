"""hashbench: one protocol, exact metrics and reproducible runs for learning-to-hash retrieval."""

import os

# GNU OpenMP's default busy-waiting makes torch training several times slower on a shared
# machine (README, "DSH throughput").
# Set before torch or Numba load OpenMP; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Numba caches compiled kernels next to the source by default: inside an installed (or
# editable) package. Keep them in the user cache folder instead, unless the user chose.
# Set before hashbench.ranking imports Numba (Numba reads it when it is first imported).
from .paths import user_cache_dir

os.environ.setdefault("NUMBA_CACHE_DIR", str(user_cache_dir() / "numba"))

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hashbench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.1.0+unknown"
