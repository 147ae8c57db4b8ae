"""hashbench: one protocol, exact metrics and reproducible runs for learning-to-hash retrieval."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hashbench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.1.0+unknown"
