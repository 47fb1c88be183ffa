"""Occlusion (Zeiler & Fergus, ECCV 2014, arXiv 1311.2901), with captum's window semantics.

A ``patch`` (h x w pixels, all channels) slides over the image in steps of ``stride``; for each
window position the patch is filled and the drop of the class score is measured::

    drop(window) = S(x) - S(x with the window filled)
    M[i, j]      = mean of drop(window) over the windows that cover pixel (i, j)

Along a dimension of size D there are ``ceil((D - w) / s) + 1`` window positions starting at
``0, s, 2s, ...``; the last ones are clipped at the border (a patch larger than the image is
the whole image). With ``stride > patch`` some pixels are covered by no window; their value is 0.

Fills (pixel space): ``"black"`` = 0; ``"mean"`` = the training-set mean colour when the model
starts with a :class:`vislib.models.Normalize` layer (its ``mean``), else each image's own mean
colour; ``"blur"`` = a Gaussian-blurred copy of the image (``blur_sigma``, default
``max(patch) / 3``); a number, or a tensor that broadcasts to ``[B, 3, H, W]`` (e.g. a colour
``[3]``).

Cost: ``B * n_windows`` forward passes, run under ``no_grad`` in chunks of ``batch_size`` images.
"""
from __future__ import annotations

import math
from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import TargetSpec, check_images
from ..hooks import frozen
from ..models import Normalize
from ._base import check_batch_size, class_scores, explaining, finish, progress_bar

Fill = Union[str, float, Tensor]


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return pair


def window_masks(size: int, patch: int, stride: int) -> Tensor:
    """``[n, size]`` bool: row k marks the pixels of window k along one dimension (captum's grid)."""
    patch = min(patch, size)
    n = math.ceil((size - patch) / stride) + 1
    masks = torch.zeros(n, size, dtype=torch.bool)
    for k in range(n):
        masks[k, k * stride:k * stride + patch] = True
    return masks


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """A separable Gaussian blur of ``[B, C, H, W]`` images (replicate padding, radius 3 sigma)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    x = F.pad(images, (radius, radius, 0, 0), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.pad(x, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _input_normalize(model: nn.Module) -> Normalize | None:
    """The model's first leaf module if it is a :class:`Normalize`, else None."""
    first = next((m for m in model.modules() if not list(m.children())), None)
    return first if isinstance(first, Normalize) else None


def fill_images(model: nn.Module, x: Tensor, fill: Fill, sigma: float) -> Tensor:
    """What fills an occluded patch: a tensor broadcastable to ``x`` ``[B, 3, H, W]``."""
    if isinstance(fill, str):
        if fill == "black":
            return torch.zeros_like(x[:1])
        if fill == "mean":
            normalize = _input_normalize(model)
            if normalize is not None:
                return normalize.mean.to(x).view(1, -1, 1, 1)
            return x.mean(dim=(2, 3), keepdim=True)
        if fill == "blur":
            return gaussian_blur(x, sigma)
        raise ValueError(f"unknown fill {fill!r}; valid: 'mean', 'black', 'blur', a number or a tensor")
    if isinstance(fill, (int, float)) and not isinstance(fill, bool):
        return torch.full_like(x[:1], float(fill))
    if isinstance(fill, Tensor):
        value = fill.to(x)
        if value.dim() == 1:
            value = value.view(1, -1, 1, 1)
        try:
            torch.broadcast_shapes(value.shape, x.shape)
        except RuntimeError:
            raise ValueError(f"a fill tensor of shape {tuple(fill.shape)} does not broadcast to the "
                             f"images {tuple(x.shape)}") from None
        return value
    raise TypeError(f"fill must be a string, a number or a tensor, got {type(fill).__name__}")


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

    ``patch`` defaults to an eighth of the smaller image side, ``stride`` to half the patch.
    """
    check_batch_size(batch_size)
    height, width = check_images(images).shape[-2:]
    patch = _pair(patch if patch is not None else max(1, round(min(height, width) / 8)), "patch")
    stride = _pair(stride if stride is not None else max(1, min(patch) // 2), "stride")
    with explaining(model, images, target, gradients=False) as p:
        x, classes, clean = p.inputs, p.classes, p.scores()
    sigma = blur_sigma if blur_sigma is not None else max(patch) / 3
    filled = fill_images(model, x, fill, sigma).expand_as(x)
    rows = window_masks(height, patch[0], stride[0]).to(x.device)
    cols = window_masks(width, patch[1], stride[1]).to(x.device)
    n_rows, n_cols = len(rows), len(cols)
    per_image = n_rows * n_cols
    drops = torch.empty(x.shape[0] * per_image, dtype=x.dtype, device=x.device)
    n_chunks = math.ceil(len(drops) / batch_size)
    with frozen(model), torch.no_grad(), progress_bar(n_chunks, progress, "Occlusion") as bar:
        for start in range(0, len(drops), batch_size):
            q = torch.arange(start, min(start + batch_size, len(drops)), device=x.device)
            b, window = q // per_image, q % per_image
            mask = rows[window // n_cols][:, None, :, None] & cols[window % n_cols][:, None, None, :]
            occluded = torch.where(mask, filled[b], x[b])
            drops[q] = clean[b] - class_scores(model(occluded), classes[b])
            bar.update()
    # Each window mask is an outer product row x col, so the sum of drop * mask is a matrix product.
    rows, cols = rows.to(x.dtype), cols.to(x.dtype)
    total = torch.einsum("rh,brc,cw->bhw", rows, drops.view(-1, n_rows, n_cols), cols)
    count = torch.outer(rows.sum(0), cols.sum(0))
    return finish(torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total)), images)
