"""Fixed binary codewords, one per class: rows of a Hadamard matrix where one is known,
else seeded random codewords as far apart as a few draws find.

Any two rows of a Hadamard matrix of order k differ in exactly k/2 bits (a row and its
negation in all k), the largest minimum distance C <= k codewords of length k can have but
for rounding (Plotkin bound: k C / (2 (C - 1))). For retrieval by Hamming distance this means
every other class is equally far (no class order is imposed by the code) and, from k = 6 on,
a radius-2 lookup returns exactly the items given the query's class. Orders built here:
Sylvester's 2^a, Paley's construction I (q + 1 for a prime q = 3 mod 4: 4, 8, 12, 20, 24,
32, 44, 48, ...) and their Kronecker products (e.g. 24 = 12 x 2, 48 = 12 x 4).
"""

import numpy as np

from .errors import InputError

_RANDOM_DRAWS = 100


def _is_prime(q: int) -> bool:
    return q >= 2 and all(q % p for p in range(2, int(q**0.5) + 1))


def paley(q: int) -> np.ndarray:
    """Paley's construction I: the Hadamard matrix of order q + 1 for a prime q = 3 (mod 4)."""
    if not (_is_prime(q) and q % 4 == 3):
        raise ValueError(f"Paley construction I needs a prime q = 3 mod 4, got {q}")
    squares = {(i * i) % q for i in range(1, q)}
    chi = np.array([0] + [1 if d in squares else -1 for d in range(1, q)])
    Q = chi[(np.arange(q)[None, :] - np.arange(q)[:, None]) % q]  # Jacobsthal: chi(j - i)
    S = np.zeros((q + 1, q + 1), dtype=np.int64)
    S[0, 1:], S[1:, 0], S[1:, 1:] = 1, -1, Q
    return S + np.eye(q + 1, dtype=np.int64)


def hadamard(n: int) -> np.ndarray | None:
    """An n x n matrix of +-1 with H H^T = n I, or None when n is not 1, 2 or a Sylvester
    power of 2 times a Paley order (q + 1, q prime = 3 mod 4)."""
    for a in range(max(n.bit_length(), 1)):
        if n % (1 << a):
            break
        m = n >> a
        if m == 1:
            base = np.ones((1, 1), dtype=np.int64)
        elif m % 4 == 0 and _is_prime(m - 1):
            base = paley(m - 1)
        else:
            continue
        H = base
        for _ in range(a):
            H = np.block([[H, H], [H, -H]])
        return H
    return None


def _min_distance(C) -> int:
    if len(C) < 2:
        return C.shape[1]
    D = (C.shape[1] - C @ C.T) // 2
    np.fill_diagonal(D, C.shape[1])
    return int(D.min())


def class_codewords(n_classes: int, n_bits: int, seed: int = 0) -> np.ndarray:
    """(n_classes, n_bits) int8 +-1 codewords, class c in row c, pairwise distinct.

    Rows of [H; -H] for a Hadamard matrix H of order n_bits when there is one and
    n_classes <= 2 n_bits (no seed involved); otherwise the best of 100 seeded draws of
    distinct random codewords by minimum pairwise distance (the first draw among equals).
    More classes than 2^n_bits is an InputError."""
    if n_bits < 63 and n_classes > 2**n_bits:
        raise InputError(f"n_bits={n_bits}: {n_classes} classes need at least {int(np.ceil(np.log2(n_classes)))} bits "
                         "for distinct codewords")
    H = hadamard(n_bits)
    if H is not None and n_classes <= 2 * n_bits:
        return np.vstack([H, -H])[:n_classes].astype(np.int8)
    rng = np.random.default_rng(seed)
    best, best_d = None, -1
    for _ in range(_RANDOM_DRAWS):
        if n_bits <= 20:
            ints = rng.choice(2**n_bits, size=n_classes, replace=False)
            C = np.where((ints[:, None] >> np.arange(n_bits)) & 1, 1, -1).astype(np.int64)
        else:
            C = np.where(rng.random((n_classes, n_bits)) < 0.5, 1, -1).astype(np.int64)
        d = _min_distance(C)
        if d > best_d:
            best, best_d = C, d
    if best_d == 0:  # pragma: no cover  (distinct draws or >20 random bits: not met in practice)
        raise InputError(f"n_bits={n_bits}: no distinct codewords for {n_classes} classes were drawn")
    return best.astype(np.int8)
