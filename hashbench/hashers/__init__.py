"""Hashing methods, registered by name (importing this package registers the built-ins;
:mod:`hashbench.plugins` adds those of other packages)."""

from .base import HASHERS, ORIGINS, Hasher, get_hasher, method_label, register
from . import itq, ksh, lsh  # noqa: F401  (registers itq, cca-itq, ksh, lsh)
from . import dsh  # noqa: F401,E402  (registers dsh, dsh-ensemble)
from . import classifier, pcah, sdh, sh  # noqa: F401  (registers classifier, pcah, sdh, sh)

__all__ = ["HASHERS", "ORIGINS", "Hasher", "get_hasher", "method_label", "register"]
