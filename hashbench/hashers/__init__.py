"""Hashing methods, registered by name (importing this package registers the built-ins;
:mod:`hashbench.plugins` adds those of other packages)."""

from .base import HASHERS, ORIGINS, Hasher, get_hasher, method_label, register

# isort: split
# Registration order is the order reports list the methods in.
from . import itq, ksh, lsh  # noqa: F401  (registers itq, cca-itq, ksh, lsh)

# isort: split
from . import dsh  # noqa: F401  (registers dsh, dsh-ensemble)

# isort: split
from . import classifier, pcah, sdh, sh  # noqa: F401  (registers classifier, pcah, sdh, sh)

__all__ = ["HASHERS", "ORIGINS", "Hasher", "get_hasher", "method_label", "register"]
