"""The one packed code format of hashbench.

A set of ``n`` codes of ``k`` bits is a C-contiguous ``uint64`` array of shape
``(n, ceil(k / 64))``. Bit ``j`` of a code lives in word ``j // 64`` at bit position
``j % 64`` counted from the least significant bit (little-endian bit order). Padding bits
past ``k`` are always 0, so Hamming distances need no mask. A set bit means the code bit is
1 (equivalently +1 in the +-1 convention of the hashing papers).

FAISS interop: viewed as bytes (:func:`to_bytes`), these codes are FAISS's binary code
layout (``IndexBinary*``): bit ``j`` in byte ``j // 8`` at position ``j % 8`` from the least
significant bit, since the uint64 words are little-endian. One difference in making codes
from real values: :func:`sign` sets a bit for ``x >= 0`` (ITQ's reference code), FAISS's
``real_to_binary`` for ``x > 0``; an output of exactly 0 gets bit 1 here, 0 there.
"""

import numpy as np

from .errors import InputError


def n_words(n_bits: int) -> int:
    """Number of uint64 words that hold ``n_bits`` bits."""
    return (int(n_bits) + 63) // 64


def sign(x) -> np.ndarray:
    """+-1 signs as int8, with sign(0) = +1 as in ITQ's reference code (``B = V R >= 0``)."""
    x = np.asarray(x)
    return np.where(x >= 0, 1, -1).astype(np.int8)


def _as_bits(codes, name: str) -> np.ndarray:
    """Validate a (n, k) array of {0,1} or +-1 values and return it as uint8 {0,1}."""
    a = np.asarray(codes)
    if a.ndim != 2:
        raise InputError(f"{name}: expected a 2-D (n, bits) array, got shape {a.shape}")
    if a.dtype == np.bool_:
        return a.astype(np.uint8)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise InputError(f"{name}: expected numeric codes, got dtype {a.dtype}")
    if a.size == 0:
        return a.astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        raise InputError(f"{name}: codes contain NaN or inf")
    values = np.unique(a)
    if np.all(np.isin(values, (0, 1))):
        return a.astype(np.uint8)
    if np.all(np.isin(values, (-1, 1))):
        return (a > 0).astype(np.uint8)
    raise InputError(
        f"{name}: codes must hold only {{0,1}} or {{-1,+1}}, found values {values[:5].tolist()}"
    )


def pack(codes, name: str = "codes") -> np.ndarray:
    """Pack (n, k) codes of {0,1} or +-1 (or bool) into the uint64 format above."""
    bits = _as_bits(codes, name)
    n, k = bits.shape
    if k == 0:
        raise InputError(f"{name}: codes have 0 bits")
    padded = np.zeros((n, n_words(k) * 64), dtype=np.uint8)
    padded[:, :k] = bits
    as_bytes = np.packbits(padded, axis=1, bitorder="little")  # byte b holds bits 8b..8b+7
    return np.ascontiguousarray(as_bytes).view("<u8").astype(np.uint64, copy=False)


def unpack(packed, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack`: (n, n_bits) uint8 array of {0,1}."""
    words = np.ascontiguousarray(packed, dtype=np.uint64)
    if words.ndim != 2 or words.shape[1] != n_words(n_bits):
        raise InputError(
            f"packed codes of shape {words.shape} do not hold {n_bits} bits "
            f"(expected {n_words(n_bits)} uint64 words per code)"
        )
    as_bytes = words.astype("<u8", copy=False).view(np.uint8)
    return np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :n_bits]


def pack_bytes(packed_bytes, n_bits: int, name: str = "codes") -> np.ndarray:
    """Convert (n, ceil(k/8)) uint8 codes packed MSB-first (numpy's ``packbits`` default,
    as most hashing code writes them) to the uint64 format above."""
    a = np.asarray(packed_bytes)
    if a.ndim != 2 or a.dtype != np.uint8:
        raise InputError(f"{name}: packed codes must be a 2-D uint8 array, got {a.dtype} {a.shape}")
    if a.shape[1] != (n_bits + 7) // 8:
        raise InputError(
            f"{name}: --bits {n_bits} needs {(n_bits + 7) // 8} bytes per code, array has {a.shape[1]}"
        )
    bits = np.unpackbits(a, axis=1)
    if bits[:, n_bits:].any():
        raise InputError(f"{name}: padding bits past bit {n_bits} are set; is --bits right?")
    return pack(bits[:, :n_bits], name)


def to_bytes(packed, n_bits: int) -> np.ndarray:
    """uint8 ``(n, ceil(n_bits / 8))``: the packed codes' bytes, FAISS's binary layout."""
    words = np.ascontiguousarray(packed, dtype=np.uint64)
    if words.ndim != 2 or words.shape[1] != n_words(n_bits):
        raise InputError(f"packed codes of shape {words.shape} do not hold {n_bits} bits")
    return np.ascontiguousarray(words.astype("<u8", copy=False).view(np.uint8)[:, : (int(n_bits) + 7) // 8])
