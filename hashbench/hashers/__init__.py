"""Hashing methods, registered by name (importing this package registers the built-ins;
:mod:`hashbench.plugins` adds those of other packages)."""

# importing registers: itq, cca-itq, ksh, lsh; dsh, dsh-ensemble; pcah, sh, sdh, classifier; dpsh,
# hashnet, greedyhash, csq, orthohash and their -head forms
from . import classifier, deep_methods, dsh, itq, ksh, lsh, pcah, sdh, sh  # noqa: F401
from .base import HASHERS, ORIGINS, Hasher, get_hasher, method_label, register

__all__ = ["HASHERS", "ORIGINS", "Hasher", "get_hasher", "method_label", "register"]
