"""Noisy linear imputation: the fill of ROAD (Rong et al., ICML 2022, arXiv 2202.00449).

Removing pixels by painting them black or with the mean colour leaves a hole whose *shape*
tells a retrained model (or even the original one) where the object was: the removal mask leaks
the class. ROAD fills each removed pixel with the weighted mean of its 8 neighbours instead,

    x_i = sum_j w_ij x_j / sum_j w_ij,     w = 1/6 for the 4 direct neighbours,
                                               1/12 for the 4 diagonal ones,

where the sum runs over the neighbours inside the image (at the border the weights are
renormalised by dividing by their sum). Removed neighbours are unknowns too, so all removed
pixels of an image are solved **jointly** as one sparse linear system; holes are filled smoothly
from their rim (a discrete harmonic interpolation: a linear ramp is reproduced exactly inside
the image). Small Gaussian noise ``noise * N(0, 1)`` is then added to the imputed values so that
a model cannot recognise the imputed pixels by their smoothness.

The system is ``A x = b`` with ``A_ii = sum_j w_ij`` (valid neighbours), ``A_ij = -w_ij`` for a
removed neighbour j, and ``b_i = sum_j w_ij x_j`` over the kept neighbours; all colour channels
share ``A`` and are solved together. ``A`` is symmetric and diagonally dominant; it is
non-singular whenever the image keeps at least one pixel. An image with every pixel removed has
nothing to interpolate from and is filled with ``fallback`` (the dataset mean when known).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

from ..checks import check_number, check_tensor

#: (dy, dx, weight) of the 8 neighbours used by ROAD's noisy linear imputation.
NEIGHBOUR_WEIGHTS: tuple[tuple[int, int, float], ...] = (
    (-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
    (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12),
)


def _solve_batch(images: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Imputed values ``[n_removed, C]`` for the removed pixels of ``images`` ``[B, C, H, W]``.

    Every image must keep at least one pixel. The unknowns are numbered in raster order,
    image after image; neighbours never cross images, so the system is block diagonal and each
    block is solved on its own. Inside a block two neighbours are at most ``W + 1`` unknowns
    apart, so the block is a symmetric positive-definite band matrix: a banded Cholesky solve
    (LAPACK ``pbsv`` via :func:`scipy.linalg.solveh_banded`) costs O(n W^2) and is several times
    faster here than a general sparse LU; the tests check it against ``scipy.sparse.linalg.spsolve``.
    """
    b, c, h, w = images.shape
    pixels = np.ascontiguousarray(images.transpose(0, 2, 3, 1))  # [B, H, W, C]
    bi, yi, xi = np.nonzero(mask)
    n = len(bi)
    ids = np.full(mask.shape, -1, dtype=np.int64)
    ids[bi, yi, xi] = np.arange(n)
    diag = np.zeros(n)
    rhs = np.zeros((n, c))
    rows, cols, vals = [], [], []  # upper triangle of A (row < col)
    for dy, dx, weight in NEIGHBOUR_WEIGHTS:
        ny, nx = yi + dy, xi + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        row = np.nonzero(inside)[0]
        diag[row] += weight
        nb, ny, nx = bi[row], ny[row], nx[row]
        neighbour = ids[nb, ny, nx]
        later = neighbour > row  # a removed neighbour further on in raster order
        rows.append(row[later])
        cols.append(neighbour[later])
        vals.append(np.full(int(later.sum()), -weight))
        kept = neighbour < 0
        # Each unknown has at most one neighbour per offset, so plain fancy-index += is safe.
        rhs[row[kept]] += weight * pixels[nb[kept], ny[kept], nx[kept]]
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    order = np.argsort(rows, kind="stable")
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.concatenate([[0], np.cumsum(np.bincount(bi, minlength=b))])
    entry_starts = np.searchsorted(rows, starts)
    out = np.empty((n, c))
    for i in range(b):
        s, e = starts[i], starts[i + 1]
        if s == e:
            continue
        es, ee = entry_starts[i], entry_starts[i + 1]
        r, col, v = rows[es:ee] - s, cols[es:ee] - s, vals[es:ee]
        band = int((col - r).max()) if len(r) else 0
        ab = np.zeros((band + 1, e - s))
        ab[band] = diag[s:e]
        ab[band + r - col, col] = v
        out[s:e] = scipy.linalg.solveh_banded(ab, rhs[s:e], check_finite=False)
    return out


def noisy_linear_imputation(
    images: Tensor,
    mask: Tensor,
    *,
    noise: float = 0.01,
    seed: int = 0,
    fallback: Sequence[float] | Tensor | None = None,
    clip: bool = True,
) -> Tensor:
    """Fill the pixels where ``mask`` is True by ROAD's noisy linear imputation.

    ``images`` ``[B, C, H, W]``, ``mask`` ``[B, H, W]`` (bool, True = removed; all channels of a
    pixel are removed together). Returns a new tensor: kept pixels unchanged, removed pixels
    the joint solution of ``x_i = sum_j w_ij x_j / sum_j w_ij`` (see the module docstring) plus
    ``noise * N(0, 1)`` drawn from a generator seeded by ``seed``, clipped to [0, 1] when
    ``clip`` (images are pixel-space). Images whose pixels are all removed become ``fallback``
    (a colour per channel; default 0.5 grey) plus the noise.
    """
    check_tensor(images, "images", "[B, C, H, W]")
    check_tensor(mask, "mask", "[B, H, W]")
    if images.dim() != 4 or tuple(mask.shape) != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"mask must have shape [B, H, W] = {(images.shape[0], *images.shape[2:])} "
                         f"for images {tuple(images.shape)}, got {tuple(mask.shape)}")
    check_number(noise, "noise", low=0)
    mask = mask.bool()
    out = images.detach().clone()
    if not mask.any():
        return out
    c = images.shape[1]
    mask_np = mask.cpu().numpy()
    imgs_np = images.detach().cpu().double().numpy()
    colour = None
    if fallback is not None:
        colour = np.asarray(torch.as_tensor(fallback, dtype=torch.float64).flatten())
        if colour.size != c:
            raise ValueError(f"fallback must have {c} values (one per channel), got {colour.size}")
    # Values of the removed pixels in torch.nonzero order: image by image, raster order.
    counts = mask_np.reshape(len(mask_np), -1).sum(axis=1)
    full = counts == mask_np[0].size
    values = np.empty((int(counts.sum()), c))
    starts = np.concatenate([[0], np.cumsum(counts)])
    partial = np.nonzero((counts > 0) & ~full)[0]
    if len(partial):
        with _single_threaded_blas():
            solved = _solve_batch(imgs_np[partial], mask_np[partial])
        pos = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in partial])
        values[pos] = solved
    for i in np.nonzero(full)[0]:
        values[starts[i]:starts[i + 1]] = np.full(c, 0.5) if colour is None else colour
    values = torch.from_numpy(values)
    if noise > 0:
        gen = torch.Generator().manual_seed(int(seed))
        values = values + noise * torch.randn(values.shape, generator=gen, dtype=torch.float64)
    if clip:
        values = values.clamp(0.0, 1.0)
    bi, yi, xi = torch.nonzero(mask, as_tuple=True)
    out[bi, :, yi, xi] = values.to(out.device, out.dtype)
    return out


def _single_threaded_blas():
    """Limit BLAS to one thread for the many small banded solves (threads only add overhead
    here, and under CPU contention OpenBLAS' spinning threads make a 0.3 ms solve take 250 ms).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
