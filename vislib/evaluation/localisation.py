"""Localisation against ground-truth object masks: the pointing game and the energy share.

Our course images come with the exact mask of the drawn object, so "does the map point at the
object?" is measured, not eyeballed. Both scores need their **chance level** next to them: a
big object is easy to hit.

* **Pointing game** (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV
  2016): a hit when the map's maximum lies inside the mask, optionally within ``tolerance``
  pixels of it (the mask dilated by a disk of that radius; the original uses 15 px at ImageNet
  size, ~2 px at 32 px). Tie rule, stated because flat maps (ReLU'd CAMs, constant maps) have
  many equal maxima:

  - ``'random'`` (default): one of the tied maxima drawn with a seeded generator;
  - ``'fraction'``: the fraction of the tied maxima that lie in the mask (the expected hit
    under ``'random'``);
  - ``'any'``: a hit if any tied maximum is in the mask (Quantus' rule; permissive: a
    constant map always hits).

  Chance level: the hit rate of a point drawn uniformly over the image, i.e. the area
  fraction of the (dilated) mask. Under ``'random'`` and ``'fraction'`` a constant map scores
  exactly that on average; under ``'any'`` it scores 1, so chance is no fair floor there.
* **Energy share** (the energy-based pointing game of Score-CAM, Wang et al. 2020):
  ``sum_{mask} L / sum L`` for a non-negative map L, the fraction of the map's mass on the
  object. Chance level: the mask's area fraction (what a uniform map scores). Maps must be
  non-negative (CAMs are ReLU'd; for signed gradients pass ``abs=True`` to use ``|L|``).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

TIE_RULES = ("random", "fraction", "any")


def _check_masks(maps: Tensor, masks: Tensor) -> Tensor:
    if not isinstance(maps, Tensor) or maps.dim() != 3:
        shape = tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__
        raise ValueError(f"maps must be a tensor [B, H, W], got {shape}")
    if not isinstance(masks, Tensor) or tuple(masks.shape) != tuple(maps.shape):
        shape = tuple(masks.shape) if isinstance(masks, Tensor) else type(masks).__name__
        raise ValueError(f"masks must have the maps' shape {tuple(maps.shape)}, got {shape} "
                         "(upsample the maps to the image size, not the masks)")
    if not torch.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinite values")
    if masks.dtype != torch.bool:
        if not ((masks == 0) | (masks == 1)).all():
            raise ValueError("masks must be boolean (or 0/1)")
        masks = masks.bool()
    empty = (~masks.flatten(1).any(1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"masks of images {empty[:10]}{'...' if len(empty) > 10 else ''} are empty: "
                         "there is nothing to point at")
    return masks.to(maps.device)


def dilate(masks: Tensor, radius: float) -> Tensor:
    """Bool masks ``[B, H, W]`` grown by a disk: every pixel within Euclidean distance
    ``radius`` (in pixels) of a mask pixel."""
    if radius < 0:
        raise ValueError(f"tolerance must be non-negative, got {radius}")
    r = int(math.floor(radius))
    if r == 0:
        return masks.bool()
    offsets = torch.arange(-r, r + 1, dtype=torch.float32)
    disk = (offsets.view(-1, 1) ** 2 + offsets.view(1, -1) ** 2 <= radius ** 2 + 1e-9).float()
    grown = F.conv2d(masks.float().unsqueeze(1), disk.view(1, 1, 2 * r + 1, 2 * r + 1).to(masks.device), padding=r)
    return grown.squeeze(1) > 0.5


@dataclass
class PointingResult:
    """Pointing-game outcome per image: ``hits`` (1/0, or a fraction for ``tie='fraction'``),
    ``points`` ``[B, 2]`` (row, column) of the chosen maximum (for ``'random'``; otherwise the
    first tied maximum in raster order), ``n_ties`` (number of tied maxima) and ``chance`` (the
    dilated mask's area fraction)."""

    hits: Tensor
    points: Tensor
    n_ties: Tensor
    chance: Tensor
    tie: str
    tolerance: float

    def accuracy(self, labels: Tensor | None = None) -> float:
        """Mean hit rate; with ``labels``, per class first and then averaged (Zhang et al.)."""
        return _mean(self.hits, labels)

    def chance_level(self, labels: Tensor | None = None) -> float:
        """The chance hit rate, averaged in the same way as :meth:`accuracy`."""
        return _mean(self.chance, labels)


@dataclass
class EnergyResult:
    """Energy share per image (NaN for a map without mass) and its chance level (mask area)."""

    share: Tensor
    chance: Tensor

    def mean(self, labels: Tensor | None = None) -> float:
        return _mean(self.share, labels)

    def chance_level(self, labels: Tensor | None = None) -> float:
        return _mean(self.chance, labels)


def _mean(values: Tensor, labels: Tensor | None) -> float:
    values = values.double().cpu()
    if labels is None:
        return values.nanmean().item()
    labels = torch.as_tensor(labels).cpu().flatten()
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels for {len(values)} images")
    return torch.stack([values[labels == c].nanmean() for c in labels.unique()]).nanmean().item()


def pointing_game(maps: Tensor, masks: Tensor, *, tolerance: float = 0, tie: str = "random",
                  seed: int = 0) -> PointingResult:
    """The pointing game of ``maps`` ``[B, H, W]`` against bool ``masks`` ``[B, H, W]``.

    A hit when the map's maximum lies in the mask dilated by ``tolerance`` pixels (a disk).
    Tied maxima (exactly equal values) are resolved by ``tie``: ``'random'`` (one drawn with a
    generator seeded by ``seed``), ``'fraction'`` (the share of tied maxima in the mask) or
    ``'any'`` (a hit if any is in the mask). See the module docstring for the chance level.
    """
    if tie not in TIE_RULES:
        raise ValueError(f"unknown tie rule {tie!r}; valid: {list(TIE_RULES)}")
    masks = dilate(_check_masks(maps, masks), tolerance)
    b, h, w = maps.shape
    flat = maps.detach().reshape(b, -1)
    is_max = flat == flat.max(dim=1, keepdim=True).values
    inside = masks.reshape(b, -1)
    n_ties = is_max.sum(1)
    if tie == "random":
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.rand(b, h * w, generator=gen).to(maps.device)
        chosen = torch.where(is_max, noise, -1.0).argmax(1)
    else:
        chosen = is_max.float().argmax(1)  # first tied maximum in raster order
    if tie == "random":
        hits = inside.gather(1, chosen.view(-1, 1)).squeeze(1).float()
    elif tie == "fraction":
        hits = (is_max & inside).sum(1).float() / n_ties.float()
    else:
        hits = (is_max & inside).any(1).float()
    points = torch.stack([chosen // w, chosen % w], dim=1)
    chance = inside.float().mean(1)
    return PointingResult(hits=hits.cpu(), points=points.cpu(), n_ties=n_ties.cpu(), chance=chance.cpu(),
                          tie=tie, tolerance=float(tolerance))


def energy_share(maps: Tensor, masks: Tensor, *, abs: bool = False) -> EnergyResult:
    """Fraction of each map's mass inside its mask: ``sum_{mask} L / sum L``, per image.

    Maps must be non-negative; with ``abs=True`` ``|L|`` is used instead (say so in a figure).
    A map with zero mass gives NaN (with a warning). Chance level: the mask's area fraction.
    """
    masks = _check_masks(maps, masks)
    values = maps.detach().double()
    if abs:
        values = values.abs()
    elif (values < 0).any():
        raise ValueError(f"maps have negative values (min {values.min().item():.3g}); the energy share needs "
                         "non-negative maps: ReLU them, or pass abs=True to use |map|")
    b = values.shape[0]
    total = values.reshape(b, -1).sum(1)
    inside = (values * masks).reshape(b, -1).sum(1)
    empty = total <= 0
    if empty.any():
        warnings.warn(f"{int(empty.sum())} map(s) are zero everywhere: their energy share is undefined (NaN)",
                      RuntimeWarning, stacklevel=2)
    share = torch.where(empty, torch.nan, inside / torch.where(empty, 1.0, total))
    chance = masks.reshape(b, -1).double().mean(1)
    return EnergyResult(share=share.cpu(), chance=chance.cpu())
