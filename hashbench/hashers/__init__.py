"""Hashing methods, registered by name (importing this package registers them all)."""

from .base import HASHERS, Hasher, get_hasher, register

__all__ = ["HASHERS", "Hasher", "get_hasher", "register"]
