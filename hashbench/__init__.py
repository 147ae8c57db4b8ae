"""hashbench: one protocol, exact metrics and reproducible runs for learning-to-hash retrieval."""

import os

# GNU OpenMP's default busy-waiting made torch training 2-10x slower on a shared 2-core
# machine (measured: DSH on CIFAR-10 at 2 threads, 286 images/s, 566 with passive waiting).
# Set before torch or Numba load OpenMP; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from importlib.metadata import PackageNotFoundError, version  # noqa: E402

try:
    __version__ = version("hashbench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.1.0+unknown"
