"""Is there a lattice in a saliency map? Periodicity statistics, and saliency on an object's outline.

Gradient maps of networks with strided layers often show a fine grid (a "checkerboard"). A
stride-``s`` convolution with kernel ``k`` reads input pixel ``i`` from every output unit whose
window covers it; when ``k`` is not a multiple of ``s`` that number alternates from pixel to pixel
(for ``k = 3, s = 2``: one unit for even pixels, two for odd ones), so the backward pass, a
transposed convolution, delivers uneven amounts of gradient with period ``s`` (Odena, Dumoulin &
Olah, *Deconvolution and Checkerboard Artifacts*, Distill 2016). A ``1x1`` stride-2 shortcut reads
only every other pixel. Stacked strided layers repeat this at the total stride. Max-pooling
routes each window's gradient to the one input that won it; where that winner sits at the same
corner in every window (a flat region), the map repeats with the pool's stride too.

Three numbers test for a period ``s`` (all per map, maps ``[B, H, W]``):

* :func:`phase_means`: the map's mean over the pixels of each phase ``(row mod s, col mod s)``,
  divided by the mean over all pixels (``[B, s, s]``; all ones when no phase is favoured);
* :func:`phase_share`: the share of the map's variance that the phase explains, the one-way
  ANOVA ``eta^2 = SS_between / SS_total`` with the ``K = s^2`` phases as groups. If the pixels'
  values were shuffled at random its expected value is ``(K - 1) / (N - 1)`` for ``N`` pixels
  (:func:`phase_share_chance`), so ``eta^2 / chance`` is about 1 without a period and large with
  one. Smooth maps score *below* 1: neighbouring pixels, which sit in different phases, agree;
* :func:`spectral_peak_ratio`: the power of the 1-D Fourier transform along rows and along
  columns at the frequency ``1/s`` divided by the mean power of the two neighbouring frequencies
  (about 1 without a period).

And :func:`boundary_regions` / :func:`region_density` measure whether a map sits on an object's
outline or inside it: the mean map value in a band around the mask's boundary, in the interior and
outside, relative to the map's mean over the image (1 = what a uniform map scores: the chance level).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
from torch import Tensor

from .evaluation.localisation import dilate


def _check_maps(maps: Tensor, period: int | None = None) -> Tensor:
    if not isinstance(maps, Tensor) or maps.dim() != 3:
        shape = tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__
        raise ValueError(f"maps must be a tensor [B, H, W], got {shape}")
    if not maps.is_floating_point():
        raise TypeError(f"maps must be a floating-point tensor, got {maps.dtype}")
    if not torch.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinite values")
    if period is not None:
        if isinstance(period, bool) or not isinstance(period, int) or period < 2:
            raise ValueError(f"period must be an int >= 2 (a stride in pixels), got {period!r}")
        h, w = maps.shape[-2:]
        if h % period or w % period:
            raise ValueError(f"the map size {h}x{w} must be a multiple of the period {period} "
                             "(crop the maps to a multiple of it)")
    return maps.detach().double()


def _check_mask(mask: Tensor | None, maps: Tensor) -> Tensor:
    if mask is None:
        return torch.ones_like(maps, dtype=torch.bool)
    if not isinstance(mask, Tensor) or tuple(mask.shape) != tuple(maps.shape):
        shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(f"mask must have the maps' shape {tuple(maps.shape)}, got {shape}")
    if mask.dtype != torch.bool:
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError("mask must be boolean (or 0/1)")
        mask = mask.bool()
    return mask.to(maps.device)


def _phase_index(height: int, width: int, period: int, device) -> Tensor:
    rows = torch.arange(height, device=device).view(-1, 1) % period
    cols = torch.arange(width, device=device).view(1, -1) % period
    return (rows * period + cols).expand(height, width)          # [H, W], values 0 .. s^2 - 1


def phase_means(maps: Tensor, period: int) -> Tensor:
    """Mean of each map over the pixels of each phase ``(row mod s, col mod s)``, relative to its mean.

    ``P[b, p, q] = mean_{i = p mod s, j = q mod s} M[b, i, j] / mean_{i, j} M[b, i, j]`` for
    ``s = period``; ``[B, s, s]``, float64. Without a preferred phase every entry is near 1. The
    map size must be a multiple of ``period``. A map whose mean is 0 (e.g. all zero) gives ones
    (it favours no phase); signed maps should be passed as ``|M|``.
    """
    values = _check_maps(maps, period)
    b, h, w = values.shape
    s = period
    means = values.reshape(b, h // s, s, w // s, s).mean(dim=(1, 3))    # [B, s, s]
    overall = values.mean(dim=(1, 2)).view(b, 1, 1)
    safe = torch.where(overall == 0, 1.0, overall)
    return torch.where(overall == 0, torch.ones_like(means), means / safe)


def phase_share(maps: Tensor, period: int, mask: Tensor | None = None) -> Tensor:
    """Share of each map's variance explained by the phase ``(row mod s, col mod s)``: ``eta^2``, ``[B]``.

    One-way analysis of variance with the ``K = s^2`` phases as groups, over the pixels where
    ``mask`` is True (all pixels by default): ``eta^2 = sum_k n_k (m_k - m)^2 / sum_i (v_i - m)^2``
    with ``m_k`` the mean of the ``n_k`` pixels of phase ``k`` and ``m`` the mean of all of them.
    In [0, 1]: 1 for a map that is constant on each phase and differs between phases. A map that
    is constant over the pixels used has no variance to explain and gives 0. Compare with
    :func:`phase_share_chance`. Phases without a pixel in the mask drop out of the sum.
    """
    values = _check_maps(maps, period)
    keep = _check_mask(mask, values)
    b, h, w = values.shape
    k = period * period
    phase = _phase_index(h, w, period, values.device).reshape(1, -1).expand(b, -1)
    v = values.reshape(b, -1)
    weight = keep.reshape(b, -1).double()
    n_k = torch.zeros(b, k, dtype=torch.float64, device=v.device).scatter_add_(1, phase, weight)
    sum_k = torch.zeros(b, k, dtype=torch.float64, device=v.device).scatter_add_(1, phase, v * weight)
    n = n_k.sum(1)
    empty = (n == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"the masks of maps {empty[:10]} select no pixel")
    mean = sum_k.sum(1) / n
    group_mean = sum_k / n_k.clamp(min=1)
    between = (n_k * (group_mean - mean[:, None]) ** 2).sum(1)
    total = (weight * (v - mean[:, None]) ** 2).sum(1)
    scale = (weight * v.abs()).sum(1) / n                       # round-off floor for "constant"
    constant = total <= (1e-24 * n * scale ** 2)
    return torch.where(constant, torch.zeros_like(total), between / torch.where(constant, 1.0, total)).clamp(0, 1)


def phase_share_chance(n_pixels: int | Tensor, period: int) -> Tensor:
    """Expected :func:`phase_share` of ``n_pixels`` values assigned to the phases at random.

    Under a random permutation of the pixels (every pixel's phase fixed, values shuffled), the
    expected between-group share of a one-way ANOVA with ``K`` groups and ``N`` values is exactly
    ``(K - 1) / (N - 1)``, whatever the values; ``K = period^2``.
    """
    if isinstance(period, bool) or not isinstance(period, int) or period < 2:
        raise ValueError(f"period must be an int >= 2, got {period!r}")
    n = torch.as_tensor(n_pixels, dtype=torch.float64)
    if (n <= period * period).any():
        raise ValueError(f"need more than period^2 = {period * period} pixels, got {n_pixels}")
    return (period * period - 1) / (n - 1)


def spectral_peak_ratio(maps: Tensor, period: int) -> Tensor:
    """Fourier power at the frequency ``1/period`` over that of its two neighbours, ``[B]``.

    Each row (and each column) of the mean-subtracted map is Fourier transformed; ``P(f)`` is the
    power ``|F(f)|^2`` averaged over the rows and over the columns (the two directions added). With
    ``f0 = W / period`` (in cycles per image) the ratio is ``P(f0) / ((P(f0 - 1) + P(f0 + 1)) / 2)``:
    about 1 for a map without the period, large for a lattice. The map must be square, its side a
    multiple of ``period`` and at least ``2 * period``. A map whose neighbouring frequencies carry
    no power gives ``inf`` if ``P(f0) > 0`` and 1 if the map is constant.
    """
    values = _check_maps(maps, period)
    b, h, w = values.shape
    if h != w:
        raise ValueError(f"maps must be square for spectral_peak_ratio, got {h}x{w}")
    if w < 2 * period:
        raise ValueError(f"maps of side {w} are too small for the period {period} (need >= {2 * period})")
    centred = values - values.mean(dim=(1, 2), keepdim=True)
    power = ((torch.fft.fft(centred, dim=2).abs() ** 2).mean(1)           # along rows: [B, W]
             + (torch.fft.fft(centred, dim=1).abs() ** 2).mean(2))        # along columns: [B, H]
    f0 = w // period
    peak = power[:, f0]
    neighbours = (power[:, f0 - 1] + power[:, (f0 + 1) % w]) / 2
    scale = power.sum(1).clamp(min=1e-300)
    flat_peak, flat_neighbours = peak <= 1e-24 * scale, neighbours <= 1e-24 * scale
    ratio = peak / torch.where(flat_neighbours, 1.0, neighbours)
    ratio = torch.where(flat_neighbours, torch.where(flat_peak, 1.0, float("inf")), ratio)
    return ratio


# --------------------------------------------------------------------------- outline vs inside
class Regions(NamedTuple):
    """Three disjoint bool masks ``[B, H, W]`` that cover the image (see :func:`boundary_regions`)."""

    band: Tensor      #: pixels within ``width`` px of the object's boundary, inside or outside
    interior: Tensor  #: object pixels farther than ``width`` px from the boundary
    outside: Tensor   #: background pixels farther than ``width`` px from the object


def boundary_regions(masks: Tensor, width: float = 2.0) -> Regions:
    """Split each image into a band around the object's boundary, its interior and the outside.

    ``masks`` ``[B, H, W]`` (bool or 0/1) mark the object. ``interior`` = mask pixels whose every
    pixel within Euclidean distance ``width`` is in the mask (the mask eroded by a disk),
    ``outside`` = pixels farther than ``width`` from every mask pixel (the complement of the mask
    dilated by the disk), ``band`` = the rest: a ring about ``2 * width + 1`` px wide on the outline.
    """
    if not isinstance(masks, Tensor) or masks.dim() != 3:
        shape = tuple(masks.shape) if isinstance(masks, Tensor) else type(masks).__name__
        raise ValueError(f"masks must be a tensor [B, H, W], got {shape}")
    if masks.dtype != torch.bool:
        if not ((masks == 0) | (masks == 1)).all():
            raise ValueError("masks must be boolean (or 0/1)")
        masks = masks.bool()
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width >= 1:
        raise ValueError(f"width must be a number >= 1 (pixels), got {width!r}")
    empty = (~masks.flatten(1).any(1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"masks of images {empty[:10]} are empty: there is no object")
    grown = dilate(masks, width)
    interior = ~dilate(~masks, width)
    return Regions(band=grown & ~interior, interior=interior, outside=~grown)


def region_density(maps: Tensor, regions: Regions) -> dict[str, Tensor]:
    """Mean map value in each region relative to the map's mean over the image, per map.

    ``D_r[b] = mean_{r} M[b] / mean M[b]`` for ``r`` in band, interior and outside (``[B]`` each,
    float64): 1 is the chance level (a uniform map), 2 means the region holds twice its area's
    share of the map's mass. Maps must be non-negative (pass ``|M|`` for signed maps). A region
    with no pixel in some image (a thin object has no interior) gives NaN there, with a warning:
    average over images with ``nanmean``. A map that is zero everywhere is an error (it has no
    mass to place).
    """
    values = _check_maps(maps)
    if (values < 0).any():
        raise ValueError(f"maps have negative values (min {values.min().item():.3g}); pass |maps|")
    overall = values.mean(dim=(1, 2))
    zero = (overall == 0).nonzero().flatten().tolist()
    if zero:
        raise ValueError(f"maps {zero[:10]} are zero everywhere: they have no mass to place")
    out = {}
    for name, region in regions._asdict().items():
        region = _check_mask(region, values)
        count = region.flatten(1).sum(1)
        mean = (values * region).flatten(1).sum(1) / count.clamp(min=1)
        out[name] = torch.where(count == 0, float("nan"), mean / overall)
        if (count == 0).any():
            warnings.warn(f"{int((count == 0).sum())} image(s) have no {name} pixels: their {name} density is NaN",
                          RuntimeWarning, stacklevel=2)
    return out


__all__ = ["Regions", "boundary_regions", "phase_means", "phase_share", "phase_share_chance", "region_density",
           "spectral_peak_ratio"]
