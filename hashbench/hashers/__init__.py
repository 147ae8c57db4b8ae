"""Hashing methods, registered by name (importing this package registers them all)."""

from .base import HASHERS, Hasher, get_hasher, register
from . import itq, ksh, lsh  # noqa: F401  (registers itq, cca-itq, ksh, lsh)
from . import dsh  # noqa: F401,E402  (registers dsh, dsh-ensemble)

__all__ = ["HASHERS", "Hasher", "get_hasher", "register"]
