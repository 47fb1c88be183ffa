"""Which pixels to remove, and what to put in their place.

Pixel perturbation and ROAR both remove the k % most (or least) salient **pixel locations** of
an image, all three colour channels together, and fill them with something uninformative.
This module holds the three pieces, used by both:

* **ranking** (:func:`saliency_rank`): pixels sorted by their map value. Saliency maps often
  have many exactly equal values (a ReLU'd CAM is zero on most of the image); sorting those
  with a plain ``argsort`` removes tied pixels in raster order, from the top of the image down,
  which is a spatial bias. Ties are broken by a **seeded random permutation followed by a
  stable sort**: tied pixels end up in random order, the same for the same seed.
* **masks** (:func:`removal_mask`, :func:`random_mask`): ``round(k * H * W)`` pixels per image
  (whole pixels, half rounded up), the least or most salient ones, or a uniformly random set
  sampled **without replacement** for the random baseline. Masks for growing k are nested.
* **fills** (:func:`fill_pixels`): ``'black'`` = 0 in pixel space; ``'mean'`` = the dataset's
  mean colour (by default the ``mean`` buffer of the model's :class:`~vislib.models.Normalize`
  layer, i.e. the training-set mean, or an explicit ``mean=(r, g, b)``); ``'road'`` = ROAD's
  noisy linear imputation (:mod:`vislib.evaluation.imputation`), whose fill does not reveal the
  shape of the removed region. Every vislib model normalises inside, so filling happens in
  pixel space and means what it says (pitfall: 0 in *normalised* space is the mean colour,
  not black).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Union

import numpy as np
import torch
from torch import Tensor, nn

from ..checks import check_number, check_tensor
from .imputation import noisy_linear_imputation

FILLS = ("black", "mean", "road")
MODES = ("most", "least")
Fractions = Union[float, Sequence[float], Tensor]


# --------------------------------------------------------------------------- argument checks
def check_fractions(fractions: Fractions) -> list[float]:
    """Return the fractions as a list of floats, each in [0, 1]; clear errors otherwise."""
    if isinstance(fractions, Tensor):
        fractions = fractions.flatten().tolist()
    elif isinstance(fractions, (int, float)) and not isinstance(fractions, bool):
        fractions = [fractions]
    try:
        values = [float(k) for k in fractions]
    except (TypeError, ValueError):
        raise TypeError(f"fractions must be a number or a sequence of numbers in [0, 1], got {fractions!r}")
    if not values:
        raise ValueError("fractions is empty; give at least one fraction in [0, 1]")
    bad = [k for k in values if not (0.0 <= k <= 1.0)]  # also catches NaN
    if bad:
        hint = " (fractions, not percentages: 10 % is 0.1)" if any(k > 1 for k in bad) else ""
        raise ValueError(f"fractions must lie in [0, 1]{hint}; got {bad}")
    return values


def _single_fraction(k: float) -> float:
    values = check_fractions(k)
    if len(values) != 1:
        raise ValueError(f"k must be a single fraction in [0, 1], got {values}")
    return values[0]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {list(MODES)} (remove the most or the least salient pixels)")
    return mode


def check_fill(fill: str) -> str:
    if fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}; valid: {list(FILLS)}")
    return fill


def pixel_count(fraction: float, height: int, width: int) -> int:
    """Number of whole pixels a fraction k removes: ``round(k * H * W)``, half rounded up."""
    return int(math.floor(fraction * height * width + 0.5))


# --------------------------------------------------------------------------- ranking and masks
def _random_order(batch: int, n: int, seed: int) -> Tensor:
    """``[batch, n]``: an independent uniformly random permutation of ``range(n)`` per row."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.rand(batch, n, generator=gen).argsort(dim=1)


def saliency_rank(maps: Tensor, seed: int = 0, *, check: bool = True) -> Tensor:
    """Rank of every pixel by saliency: ``LongTensor[B, H*W]`` on the CPU, 0 = least salient.

    Ties are broken by a seeded random permutation then a stable sort, so tied pixels get
    their ranks in a random order (unbiased in position) that depends only on ``seed`` and
    the maps. The least salient ``n`` pixels are those with ``rank < n``, the most salient
    those with ``rank >= H*W - n``. ``check=False`` skips the finiteness check (for callers
    that have checked the maps already).
    """
    check_tensor(maps, "maps", "[B, H, W]")
    if maps.dim() != 3:
        raise ValueError(f"maps must have shape [B, H, W], got {tuple(maps.shape)}")
    if check and not torch.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinite values; they cannot be ranked")
    flat = maps.detach().reshape(maps.shape[0], -1).cpu()
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.double()
    b, n = flat.shape
    # numpy's default (introsort) argsort is about 2x faster than a stable sort; the order of
    # tied values it leaves is replaced below, and without ties the order is unique anyway.
    order_np = np.argsort(flat.numpy(), axis=1)
    values = np.take_along_axis(flat.numpy(), order_np, axis=1)
    order = torch.from_numpy(order_np)
    tied = torch.from_numpy((values[:, 1:] == values[:, :-1]).any(axis=1))
    # Without ties the order is unique and a permutation would change nothing, so one is
    # only drawn for the rows (maps) that have ties.
    if tied.any():
        rows = tied.nonzero().flatten()
        p = _random_order(len(rows), n, seed)
        ascending_in_perm = flat[rows].gather(1, p).argsort(dim=1, stable=True)
        order[rows] = p.gather(1, ascending_in_perm)  # pixel indices, least salient first
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n).expand(b, n).contiguous())
    return rank


def random_rank(batch: int, height: int, width: int, seed: int = 0) -> Tensor:
    """Ranks of a uniformly random ordering of the pixels (the random baseline), ``[B, H*W]``.

    Taking the ``n`` lowest ranks samples ``n`` pixels without replacement.
    """
    order = _random_order(batch, height * width, seed)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(height * width).expand(batch, -1).contiguous())
    return rank


def mask_from_rank(rank: Tensor, count: int | Tensor, mode: str, size: tuple[int, int]) -> Tensor:
    """Bool mask ``[B, H, W]`` of the ``count`` least or most salient pixels given their ranks.

    ``count`` is an int or a ``LongTensor[B]`` (one count per image).
    """
    check_mode(mode)
    n = rank.shape[1]
    if isinstance(count, Tensor):
        count = count.to(rank.device).reshape(-1, 1)
    mask = rank < count if mode == "least" else rank >= n - count
    return mask.reshape(rank.shape[0], *size)


def removal_mask(maps: Tensor, k: float, mode: str = "most", seed: int = 0) -> Tensor:
    """Bool mask ``[B, H, W]``: True on the ``round(k*H*W)`` most or least salient pixels.

    ``mode='most'`` removes the most salient pixels (ROAR, MoRF), ``'least'`` the least salient
    (FullGrad's pixel perturbation, LeRF). Ties are broken by a permutation seeded by ``seed``.
    """
    k = _single_fraction(k)
    check_mode(mode)
    rank = saliency_rank(maps, seed)
    h, w = maps.shape[1:]
    return mask_from_rank(rank, pixel_count(k, h, w), mode, (h, w)).to(maps.device)


def random_mask(shape: tuple[int, int, int] | Tensor, k: float, seed: int = 0) -> Tensor:
    """Bool mask ``[B, H, W]`` with exactly ``round(k*H*W)`` random pixels per image, drawn
    without replacement (the random baseline). ``shape`` is ``(B, H, W)`` or a maps tensor."""
    k = _single_fraction(k)
    device = None
    if isinstance(shape, Tensor):
        device = shape.device
        shape = tuple(shape.shape)
    if len(shape) != 3:
        raise ValueError(f"shape must be (B, H, W), got {tuple(shape)}")
    b, h, w = shape
    mask = mask_from_rank(random_rank(b, h, w, seed), pixel_count(k, h, w), "least", (h, w))
    return mask if device is None else mask.to(device)


# --------------------------------------------------------------------------- fills
def find_normalize(model: nn.Module) -> nn.Module | None:
    """The model's first :class:`~vislib.models.Normalize` layer, or None."""
    from ..models import Normalize

    for module in model.modules():
        if isinstance(module, Normalize):
            return module
    return None


def dataset_mean(model: nn.Module | None = None, mean: Sequence[float] | Tensor | None = None) -> Tensor:
    """The fill colour for ``fill='mean'``: ``Tensor[3]`` in pixel space.

    An explicit ``mean`` wins; otherwise the ``mean`` buffer of the model's
    :class:`~vislib.models.Normalize` layer (the training-set mean colour every vislib model
    carries).
    """
    if mean is not None:
        colour = torch.as_tensor(mean, dtype=torch.float32).flatten()
        if colour.numel() != 3:
            raise ValueError(f"mean must give one value per colour channel (3), got {colour.numel()}")
        if not torch.isfinite(colour).all():
            raise ValueError(f"mean must be finite, got {colour.tolist()}")
        return colour
    norm = find_normalize(model) if model is not None else None
    if norm is None:
        raise ValueError("fill='mean' needs the dataset's mean colour: pass mean=(r, g, b), or a model "
                         "whose first module is vislib.models.Normalize (every vislib model)")
    return norm.mean.detach().flatten().float().cpu()


def fill_pixels(
    images: Tensor,
    mask: Tensor,
    fill: str = "black",
    *,
    mean: Sequence[float] | Tensor | None = None,
    model: nn.Module | None = None,
    noise: float = 0.01,
    seed: int = 0,
) -> Tensor:
    """Return a copy of ``images`` ``[B, 3, H, W]`` with the pixels where ``mask`` ``[B, H, W]`` is
    True replaced (all channels together).

    ``fill``: ``'black'`` (0), ``'mean'`` (:func:`dataset_mean` of ``mean``/``model``), or
    ``'road'`` (noisy linear imputation with Gaussian ``noise`` seeded by ``seed``; an image with
    every pixel removed gets the mean colour if known, else grey).
    """
    check_fill(fill)
    check_tensor(images, "images", "[B, 3, H, W]")
    check_tensor(mask, "mask", "[B, H, W]")
    check_number(noise, "noise", low=0)
    if tuple(mask.shape) != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"mask must have shape [B, H, W] = {(images.shape[0], *images.shape[2:])} "
                         f"for images {tuple(images.shape)}, got {tuple(mask.shape)}")
    mask = mask.to(images.device).bool()
    if fill == "road":
        fallback = None
        if mean is not None or (model is not None and find_normalize(model) is not None):
            fallback = dataset_mean(model, mean)
        return noisy_linear_imputation(images, mask, noise=noise, seed=seed, fallback=fallback)
    if fill == "black":
        value = torch.zeros(1, images.shape[1], 1, 1, dtype=images.dtype, device=images.device)
    else:
        value = dataset_mean(model, mean).to(images.device, images.dtype).view(1, -1, 1, 1)
    return torch.where(mask.unsqueeze(1), value, images)
