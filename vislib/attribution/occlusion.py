"""Occlusion (Zeiler & Fergus, ECCV 2014, arXiv 1311.2901), with captum's window semantics.

A ``patch`` (h x w pixels, all channels) slides over the image in steps of ``stride``; for each
window position the patch is filled and the drop of the class score is measured::

    drop(window) = S(x) - S(x with the window filled)
    M[i, j]      = mean of drop(window) over the windows that cover pixel (i, j)

Along a dimension of size D there are ``ceil((D - w) / s) + 1`` window positions starting at
``0, s, 2s, ...`` (:func:`window_count`); the last ones are clipped at the border (a patch larger
than the image is the whole image). With ``stride > patch`` some pixels are covered by no window;
their value is 0. The two steps are public: :func:`window_drops` (the drop of every window,
``[B, n_rows, n_cols]``) and :func:`average_over_windows` (the per-pixel mean of those drops).

Fills (pixel space): ``"black"`` = 0; ``"mean"`` = the training-set mean colour when the model
starts with a :class:`vislib.models.Normalize` layer (its ``mean``), else each image's own mean
colour; ``"blur"`` = a Gaussian-blurred copy of the image (``blur_sigma``, default
``max(patch) / 3``); a number, or a tensor that broadcasts to ``[B, 3, H, W]`` (e.g. a colour
``[3]``).

Cost: ``B * n_windows`` forward passes, run under ``no_grad`` in chunks of ``batch_size`` images
(:func:`vislib.attribution.core.score_variants`).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..checks import TargetSpec, check_images, check_number
from ._base import check_batch_size, explaining, finish
from .core import Fill, fill_images, score_variants


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return pair


def window_count(size: int, patch: int, stride: int) -> int:
    """Number of window positions along a side of ``size`` pixels: ``ceil((size - patch) / stride) + 1``.

    Windows start at ``0, stride, 2·stride, ...`` until one reaches the border; the last ones are
    clipped there. A patch larger than the side counts as the whole side (one window).
    """
    for value, name in ((size, "size"), (patch, "patch"), (stride, "stride")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    return math.ceil((size - min(patch, size)) / stride) + 1


def window_masks(size: int, patch: int, stride: int) -> Tensor:
    """``[n, size]`` bool: row k marks the pixels of window k along one dimension (captum's grid)."""
    n = window_count(size, patch, stride)
    patch = min(patch, size)
    masks = torch.zeros(n, size, dtype=torch.bool)
    for k in range(n):
        masks[k, k * stride:k * stride + patch] = True
    return masks


def _setting(height: int, width: int, patch, stride) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(patch, stride)`` as pairs; ``patch`` defaults to an eighth of the smaller side, ``stride`` to half of it."""
    patch = _pair(patch if patch is not None else max(1, round(min(height, width) / 8)), "patch")
    stride = _pair(stride if stride is not None else max(1, min(patch) // 2), "stride")
    return patch, stride


def _window_drops(model: nn.Module, images: Tensor, target: TargetSpec, patch: tuple[int, int],
                  stride: tuple[int, int], fill: Fill, blur_sigma: float | None, batch_size: int,
                  progress: bool | None) -> Tensor:
    """The drops ``[B, n_rows, n_cols]`` on the model's device and in its dtype."""
    height, width = images.shape[-2:]
    with explaining(model, images, target, gradients=False) as p:
        x, classes, clean = p.inputs, p.classes, p.scores()
    sigma = blur_sigma if blur_sigma is not None else max(patch) / 3
    filled = fill_images(model, x, fill, sigma).expand_as(x)
    rows = window_masks(height, patch[0], stride[0]).to(x.device)
    cols = window_masks(width, patch[1], stride[1]).to(x.device)
    n_rows, n_cols = len(rows), len(cols)

    def occluded(b: Tensor, window: Tensor) -> Tensor:
        mask = rows[window // n_cols][:, None, :, None] & cols[window % n_cols][:, None, None, :]
        return torch.where(mask, filled[b], x[b])

    scores = score_variants(model, x, classes, n_rows * n_cols, occluded, batch_size=batch_size,
                            progress=progress, desc="Occlusion")
    return (clean[:, None] - scores).view(-1, n_rows, n_cols)


def window_drops(
    model: nn.Module,
    images: Tensor,
    target: TargetSpec = None,
    *,
    patch: int | tuple[int, int] | None = None,
    stride: int | tuple[int, int] | None = None,
    fill: Fill = "mean",
    blur_sigma: float | None = None,
    batch_size: int = 64,
    progress: bool | None = None,
) -> Tensor:
    """The drop of the class score for every window position: a tensor ``[B, n_rows, n_cols]``.

    ``drops[b, r, c] = S(x_b) - S(x_b with window (r, c) filled)``, where window ``(r, c)`` covers
    rows ``r·stride .. r·stride + patch - 1`` and the same for columns (clipped at the border);
    ``n_rows = window_count(H, patch, stride)``. Options as in :func:`occlusion`, which is
    :func:`average_over_windows` of these drops. ``batch_size=1`` runs one forward pass per window.
    """
    check_batch_size(batch_size)
    height, width = check_images(images).shape[-2:]
    patch, stride = _setting(height, width, patch, stride)
    if blur_sigma is not None:
        check_number(blur_sigma, "blur_sigma", positive=True)
    return finish(_window_drops(model, images, target, patch, stride, fill, blur_sigma, batch_size, progress), images)


def average_over_windows(drops: Tensor, height: int, width: int, patch: int | tuple[int, int],
                         stride: int | tuple[int, int]) -> Tensor:
    """Per pixel, the mean of ``drops`` ``[..., n_rows, n_cols]`` over the windows that cover it.

    Returns ``[..., height, width]``; a pixel that no window covers (``stride > patch``) is 0.
    """
    patch, stride = _pair(patch, "patch"), _pair(stride, "stride")
    rows = window_masks(height, patch[0], stride[0]).to(device=drops.device, dtype=drops.dtype)
    cols = window_masks(width, patch[1], stride[1]).to(device=drops.device, dtype=drops.dtype)
    if tuple(drops.shape[-2:]) != (len(rows), len(cols)):
        raise ValueError(f"drops of shape {tuple(drops.shape)} do not match the {len(rows)} x {len(cols)} windows of "
                         f"a {height} x {width} image with patch {patch} and stride {stride}")
    # Each window mask is an outer product row x col, so the sum of drop * mask is a matrix product.
    total = torch.einsum("rh,...rc,cw->...hw", rows, drops, cols)
    count = torch.outer(rows.sum(0), cols.sum(0))
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


def occlusion(
    model: nn.Module,
    images: Tensor,
    target: TargetSpec = None,
    *,
    patch: int | tuple[int, int] | None = None,
    stride: int | tuple[int, int] | None = None,
    fill: Fill = "mean",
    blur_sigma: float | None = None,
    batch_size: int = 64,
    progress: bool | None = None,
) -> Tensor:
    """Occlusion map: mean score drop over the windows covering each pixel (module docstring).

    ``patch`` defaults to an eighth of the smaller image side, ``stride`` to half the patch. The
    same as ``average_over_windows(window_drops(...), H, W, patch, stride)``.
    """
    check_batch_size(batch_size)
    height, width = check_images(images).shape[-2:]
    patch, stride = _setting(height, width, patch, stride)
    if blur_sigma is not None:
        check_number(blur_sigma, "blur_sigma", positive=True)
    drops = _window_drops(
model, images, target, patch, stride, fill, blur_sigma, batch_size, progress)
    return finish(average_over_windows(drops, height, width, patch, stride), images)
