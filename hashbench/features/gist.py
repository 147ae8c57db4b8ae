"""GIST descriptors (Oliva & Torralba, IJCV 2001), computed exactly as LMgist.m does, in batches.

The algorithm (LMgist.m; see ``../shared/paper/reference-facts.md``): grey image = mean of R, G,
B; prefilter = log(1 + I), whitening by subtracting a Gaussian low-pass (fc = 4) and local
contrast normalisation (divide by 0.2 + local std), both computed with circular filters on
the image padded by 5 pixels (symmetric) to an even square; a bank of Gabor transfer
functions (``createGabor``: scale i, orientation j -> [0.35, 0.3/1.85^(i-1),
16 or^2/32^2, pi/or (j-1)]) applied in the Fourier domain; the magnitude of each response
averaged over an n_blocks x n_blocks grid. The descriptor lists filter by filter (scales
outer, orientations inner) the grid means in column-major block order, as LMgist.m and the
LEAR C code both do. 4 scales x 8 orientations x 4 x 4 blocks = 512-D.

Modes:
  ``lear`` (default, the Table 4 "Hand" features): no boundary extension, no rescale. This is
  what the LEAR C implementation (Douze et al.) computes, and it matches its descriptors in
  ``gist-lear-reference.npz`` to ~1e-5 relative error. With ``color=True`` it is LEAR's
  colour GIST: the three channels are prefiltered together (one local std, from the channel
  mean) and described one after the other (``orientations=(8, 8, 4)`` gives LEAR's 960-D).
  Which GIST code the DSH paper used is not stated; this one is verifiable.
  ``lmgist``: LMgist.m's defaults, a 32-pixel symmetric boundary extension before the Gabor
  filters and a min/max rescale of the grey image to [0, 255] (so the descriptor does not
  change when the image's brightness is scaled or offset).

Deliberate deviations (the last two change nothing beyond float32 rounding):
  - no resize: LMgist.m first resizes/crops to ``param.imageSize``; here the filter bank is
    built for each image size instead, so CIFAR-10 is described at its native 32x32.
    On non-square images LEAR's C code departs from LMgist.m (it whitens the rectangular
    padded image, and its radial term mixes height and width); this module follows LMgist.m.
  - a constant image, for which LMgist.m's rescale divides 0 by 0, gives the zero descriptor.
  - float32 throughout (LEAR's code is float32 too); grid means use integer block bounds
    ``i * size // n_blocks`` (LEAR's; the same as LMgist's ``fix(linspace)`` when n_blocks
    is a power of two).
  - speed: the Gaussian prefilter is separable, so it is applied as two products with a
    circulant matrix (the same circular convolution as the FFT in LMgist.m). Each Gabor
    response is computed by matrix products with the inverse-DFT matrices restricted to the
    band where the filter is non-negligible (values below float32's unit roundoff relative
    to its peak are dropped: they add less than float32 rounding already does) and to the
    output pixels kept after the boundary crop. On 32x32 images this is ~4x (lear) and ~6x
    (lmgist) faster than batched FFTs (tests/benchmarks/test_bench_gist.py); filters for which
    the products would cost more (fine scales of large images) use the FFT.
"""

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import numba
import numpy as np
import scipy.fft as sfft
from threadpoolctl import threadpool_limits

from ..errors import InputError
from ..params import BOOL, Interval, ListOf, Options
from .base import Extractor, register_extractor

MODES = ("lear", "lmgist")
PREFILTER_PAD = 5  # LMgist.m prefilt: w = 5
LMGIST_BOUNDARY = 32  # LMgist.m: param.boundaryExtension
_TOL = float(np.finfo(np.float32).eps) / 2  # filter values below this x peak are zero in float32 sums
# Calibration of the DFT-vs-FFT choice (measured on the 2-core Xeon here): complex64 matrix
# products run ~10x more flops per second than pocketfft on 32..128-point transforms.
_GEMM_ADVANTAGE = 10.0
_BATCH_PIXELS = 1 << 16  # planes per batch x pixels per plane: keeps a batch's spectra in L2


def gabor_bank(orientations, rows: int, cols: int) -> np.ndarray:
    """LMgist.m ``createGabor``: float64 ``(n_filters, rows, cols)`` transfer functions in
    FFT order (DC at [0, 0]); radial frequency is normalised by the number of columns."""
    fx, fy = np.meshgrid(np.arange(cols) - cols / 2, np.arange(rows) - rows / 2)
    fr = np.fft.fftshift(np.hypot(fx, fy))
    t = np.fft.fftshift(np.arctan2(fy, fx))
    bank = []
    for i, n_or in enumerate(orientations):
        for j in range(n_or):
            p = (0.35, 0.3 / 1.85**i, 16 * n_or**2 / 32**2, np.pi / n_or * j)
            tr = t + p[3]
            tr = tr + 2 * np.pi * (tr < -np.pi) - 2 * np.pi * (tr > np.pi)
            bank.append(np.exp(-10 * p[0] * (fr / cols / p[1] - 1) ** 2 - 2 * p[2] * np.pi * tr**2))
    return np.array(bank)


@functools.lru_cache(maxsize=8)
def _lowpass_matrix(n: int, fc: float) -> np.ndarray:
    """The symmetric circulant float32 ``(n, n)`` matrix C with ``C x C`` = LMgist.m's
    Gaussian low-pass ``ifft2(fft2(x) .* gf)`` of an n x n image (gf is separable and even)."""
    s1 = fc / math.sqrt(math.log(2))
    f = np.arange(n) - n // 2
    c = np.fft.ifft(np.fft.fftshift(np.exp(-(f**2) / s1**2))).real
    return c[(np.arange(n)[:, None] - np.arange(n)[None, :]) % n].astype(np.float32)


def _prefilter(x: np.ndarray, fc: float) -> np.ndarray:
    """LMgist.m ``prefilt`` on float32 images ``(B, c, h, w)`` (c channels normalised together)."""
    w = PREFILTER_PAD
    _, _, h, wd = x.shape
    n = max(h, wd) + 2 * w
    n += n % 2
    x = np.pad(np.log1p(x), ((0, 0), (0, 0), (w, w), (w, w)), mode="symmetric")
    if n > h + 2 * w or n > wd + 2 * w:  # to an even square, mirroring the padded image (as LMgist.m)
        x = np.pad(x, ((0, 0), (0, 0), (0, n - h - 2 * w), (0, n - wd - 2 * w)), mode="symmetric")
    C = _lowpass_matrix(n, float(fc))
    white = x - np.matmul(C, x @ C)
    m = white[:, 0] if white.shape[1] == 1 else white.mean(axis=1)
    local = np.matmul(C[w:w + h], (m * m) @ C[:, w:w + wd])
    return white[:, :, w:w + h, w:w + wd] / (np.float32(0.2) + np.sqrt(np.abs(local)))[:, None]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _block_abs_sum(Y, pmap, qmap, n_pblocks, n_qblocks):
    """Block sums of magnitudes: out[j, pmap[p], qmap[q]] = sum of |Y[p, j, q]|, for complex
    Y given as float32 (P, J, 2Q) re/im pairs (the inner loop vectorises; a scatter by qmap
    would not)."""
    P, J, Q2 = Y.shape
    Q = Q2 // 2
    acc = np.zeros((J, n_pblocks, Q), np.float32)
    for p in range(P):
        bp = pmap[p]
        for j in range(J):
            row = Y[p, j]
            a = acc[j, bp]
            for q in range(Q):
                a[q] += np.sqrt(row[2 * q] * row[2 * q] + row[2 * q + 1] * row[2 * q + 1])
    out = np.zeros((J, n_pblocks, n_qblocks), np.float32)
    for j in range(J):
        for b in range(n_pblocks):
            for q in range(Q):
                out[j, b, qmap[q]] += acc[j, b, q]
    return out


def _shift_transpose(F: np.ndarray, axes: tuple) -> np.ndarray:
    """``np.fft.fftshift`` over the first and last axes of ``F.transpose(axes)``, as one
    contiguous copy (quadrant by quadrant, instead of np.roll's copies plus a transpose)."""
    X = F.transpose(axes)
    out = np.empty(X.shape, X.dtype)
    (a, _, b), (ha, hb) = X.shape, (X.shape[0] - X.shape[0] // 2, X.shape[2] - X.shape[2] // 2)
    for o0, i0 in ((slice(a // 2, None), slice(None, ha)), (slice(None, a // 2), slice(ha, None))):
        for o2, i2 in ((slice(b // 2, None), slice(None, hb)), (slice(None, b // 2), slice(hb, None))):
            out[o0, :, o2] = X[i0, :, i2]
    return out


def _n_cpus() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class _GaborPlan:
    """Everything per (image size, boundary, orientations): how each filter's response over
    the kept pixels is computed, chosen by estimated cost.

    ``"rows"``: T = Z B (product over column frequencies), then Y = A T (row frequencies);
    ``"cols"``: the other order; ``"fft"``: full inverse FFT, then the crop. Z is the
    filtered spectrum cut to the filter's band, A/B the inverse-DFT matrices cut to that band
    and to the kept rows/columns.
    """

    def __init__(self, h: int, w: int, boundary: int, orientations: tuple, n_blocks: int):
        self.h, self.w, self.boundary = h, w, boundary
        R, C = h + 2 * boundary, w + 2 * boundary
        bank = gabor_bank(orientations, R, C)
        shifted = np.fft.fftshift(bank, axes=(1, 2)).astype(np.float32)
        rows = np.arange(boundary, boundary + h)
        cols = np.arange(boundary, boundary + w)
        A = (np.exp(2j * np.pi * np.outer(rows, np.arange(R) - R // 2) / R) / R).astype(np.complex64)  # (h, R)
        B = (np.exp(2j * np.pi * np.outer(np.arange(C) - C // 2, cols) / C) / C).astype(np.complex64)  # (C, w)
        fft_flops = _GEMM_ADVANTAGE * 5 * R * C * math.log2(R * C)
        self.steps = []
        for k, g in enumerate(shifted):
            keep = g > _TOL * g.max()
            r = np.flatnonzero(keep.any(axis=1))
            c = np.flatnonzero(keep.any(axis=0))
            rs, cs = slice(r[0], r[-1] + 1), slice(c[0], c[-1] + 1)
            nr, nc = len(range(R)[rs]), len(range(C)[cs])
            cost_rows = nr * nc * w + h * nr * w
            cost_cols = nc * nr * h + w * nc * h
            if 8 * min(cost_rows, cost_cols) > fft_flops:
                self.steps.append(("fft", np.ascontiguousarray(bank[k].astype(np.float32))))
            elif cost_rows <= cost_cols:
                self.steps.append(("rows", rs, cs, g[rs, cs][:, None, :], B[cs], np.ascontiguousarray(A[:, rs])))
            else:
                self.steps.append(("cols", cs, rs, g[rs, cs].T[:, None, :].copy(), A[:, rs].T.copy(), B[cs].T.copy()))
        self.n_filters = len(self.steps)
        self.n_blocks = n_blocks
        row_sizes, col_sizes = (np.diff(np.arange(n_blocks + 1) * size // n_blocks) for size in (h, w))
        self.row_block = np.repeat(np.arange(n_blocks), row_sizes)  # block of each kept row
        self.col_block = np.repeat(np.arange(n_blocks), col_sizes)
        self.counts = np.outer(row_sizes, col_sizes).astype(np.float32)

    def describe(self, planes: np.ndarray) -> np.ndarray:
        """Grid means of every filter's response magnitude: float32 (P, n_filters, nb, nb),
        indexed [plane, filter, row block, column block]."""
        h, w, be = self.h, self.w, self.boundary
        P = len(planes)
        if be:
            planes = np.pad(planes, ((0, 0), (be, be), (be, be)), mode="symmetric")
        F = sfft.fft2(planes, workers=1)
        kinds = {step[0] for step in self.steps}
        by = {"rows": _shift_transpose(F, (1, 0, 2)) if "rows" in kinds else None,  # (R, P, C)
              "cols": _shift_transpose(F, (2, 0, 1)) if "cols" in kinds else None}  # (C, P, R)
        nb = self.n_blocks
        out = np.empty((P, self.n_filters, nb, nb), np.float32)
        for k, step in enumerate(self.steps):
            if step[0] == "fft":
                Y = sfft.ifft2(F * step[1], workers=1, overwrite_x=True)[:, be:be + h, be:be + w].transpose(1, 0, 2)
                transposed = False
            else:
                kind, s1, s2, g, M1, M2 = step
                Z = by[kind][s1, :, s2] * g
                T = (Z.reshape(-1, Z.shape[2]) @ M1).reshape(Z.shape[0], -1)
                Y = (M2 @ T).reshape(M2.shape[0], P, -1)
                transposed = kind == "cols"
            pmap, qmap = (self.col_block, self.row_block) if transposed else (self.row_block, self.col_block)
            sums = _block_abs_sum(Y.view(np.float32), pmap, qmap, nb, nb)
            out[:, k] = sums.transpose(0, 2, 1) if transposed else sums
        return out / self.counts


@functools.lru_cache(maxsize=8)
def _plan(h: int, w: int, boundary: int, orientations: tuple, n_blocks: int) -> _GaborPlan:
    return _GaborPlan(h, w, boundary, orientations, n_blocks)


@register_extractor("gist")
class Gist(Extractor):
    """GIST descriptors (see the module docstring) of dimension
    (3 if color else 1) x sum(orientations) x n_blocks^2.

    Parameters
    ----------
    mode : {"lear", "lmgist"}, default "lear"
        LEAR's C implementation (the Table 4 "Hand" features) or LMgist.m's defaults.
    color : bool, default False
        LEAR's colour GIST (lear mode only; per-channel descriptors, R then G then B)
        instead of the grey one.
    orientations : sequence of int, default (8, 8, 8, 8)
        Orientations per scale; its length is the number of scales.
    n_blocks : int, default 4
        The grid of averaged magnitudes is n_blocks x n_blocks.
    fc_prefilt : float, default 4
        The prefilter's cut-off.

    References
    ----------
    A. Oliva and A. Torralba, "Modeling the shape of the scene: a holistic representation of
    the spatial envelope", IJCV 2001; LMgist.m; M. Douze et al., "Evaluation of GIST
    descriptors for web-scale image search", CIVR 2009 (the LEAR code).
    """

    def __init__(self, mode: str = "lear", color: bool = False, orientations=(8, 8, 8, 8),
                 n_blocks: int = 4, fc_prefilt: float = 4):
        self.mode = mode
        self.color = color
        self.orientations = orientations
        self.n_blocks = n_blocks
        self.fc_prefilt = fc_prefilt

    _parameter_constraints: ClassVar[dict] = {
        "mode": [Options(*MODES)],
        "color": [BOOL],
        "orientations": [ListOf(Interval(int, 1, None))],
        "n_blocks": [Interval(int, 1, None)],
        "fc_prefilt": [Interval(float, 0, None, closed="neither")],
    }

    def check_params(self) -> None:
        super().check_params()
        if self.color and self.mode != "lear":
            raise InputError("gist color: the colour GIST exists only in LEAR's implementation (mode lear)")

    def key_params(self) -> dict:
        p = self.get_params()  # canonical types, so fc_prefilt=4 and 4.0 share one store entry
        p.update(orientations=[int(v) for v in self.orientations], n_blocks=int(self.n_blocks),
                 fc_prefilt=float(self.fc_prefilt))
        return p

    def dim(self) -> int:
        return (3 if self.color else 1) * sum(self.orientations) * self.n_blocks**2

    def _extract(self, images: np.ndarray, bar) -> np.ndarray:
        n, h, w, _ = images.shape
        if min(h, w) < self.n_blocks:
            raise InputError(f"images: GIST with n_blocks={self.n_blocks} needs images of at least that many pixels "
                             f"a side, got {h}x{w}")
        channels = 3 if self.color else 1
        boundary = LMGIST_BOUNDARY if self.mode == "lmgist" else 0
        plan = _plan(h, w, boundary, tuple(int(v) for v in self.orientations), int(self.n_blocks))
        batch = max(1, _BATCH_PIXELS // (h * w * channels))
        out = np.empty((n, self.dim()), np.float32)

        def run(start):
            x = images[start:start + batch].astype(np.float32).transpose(0, 3, 1, 2)
            if not self.color:  # the mean of R, G, B (summed explicitly: numpy's mean over a short axis is slow)
                x = ((x[:, 0] + x[:, 1] + x[:, 2]) / np.float32(3))[:, None]
            if self.mode == "lmgist":
                lo = x.min(axis=(1, 2, 3), keepdims=True)
                span = x.max(axis=(1, 2, 3), keepdims=True) - lo
                x = np.where(span > 0, (x - lo) * (np.float32(255) / np.where(span > 0, span, 1)), 0).astype(np.float32)
            x = _prefilter(x, self.fc_prefilt)
            d = plan.describe(x.reshape(-1, h, w))  # planes image-major, channel-minor
            out[start:start + len(x)] = d.transpose(0, 1, 3, 2).reshape(len(x), -1)
            return len(x)

        starts = range(0, n, batch)
        workers = min(_n_cpus(), len(starts))
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            for done in pool.map(run, starts):
                bar.update(done)
        return out
