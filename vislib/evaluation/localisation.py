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
* **Segmentation for free** (:func:`segmentation_iou`; the FACT-AI reproduction of FullGrad
  called it so): threshold the map into a binary mask (Otsu's threshold by default) and score
  its intersection over union with the object mask, ``IoU = |A ∩ M| / |A ∪ M|``; optionally refine
  the thresholded mask with GrabCut (Rother, Kolmogorov & Blake, SIGGRAPH 2004; OpenCV's
  ``cv2.grabCut``), which fits colour models to the marked fore- and background and cuts along
  image edges. Chance level: a set of ``|A|`` pixels drawn uniformly at random hits
  ``|A| |M| / HW`` object pixels on average, so its IoU is about ``a m / (a + m - a m)`` with
  ``a``, ``m`` the area fractions of A and M (expected intersection over expected union).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_number, check_tensor

TIE_RULES = ("random", "fraction", "any")


def _check_masks(maps: Tensor, masks: Tensor) -> Tensor:
    check_tensor(maps, "maps", "[B, H, W]")
    check_tensor(masks, "masks", "[B, H, W]")
    if maps.dim() != 3:
        raise ValueError(f"maps must be a tensor [B, H, W], got {tuple(maps.shape)}")
    if tuple(masks.shape) != tuple(maps.shape):
        shape = tuple(masks.shape)
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
    ``radius`` (in pixels) of a mask pixel.

    ``radius`` is a number >= 0 (no NaN); a radius beyond the image diagonal ``sqrt(H^2 + W^2)``
    (``inf`` included) reaches every pixel from any mask pixel, so it is capped there: the
    kernel, and the cost, stay bounded by the image size.
    """
    check_tensor(masks, "masks", "[B, H, W]")
    radius = check_number(radius, "radius (the tolerance in pixels)", low=0, allow_inf=True)
    radius = min(radius, diagonal(masks))
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


def diagonal(maps: Tensor) -> float:
    """The diagonal ``sqrt(H^2 + W^2)`` of ``[..., H, W]`` maps, in pixels: the largest useful tolerance."""
    return math.hypot(maps.shape[-2], maps.shape[-1])


def pointing_game(maps: Tensor, masks: Tensor, *, tolerance: float = 0, tie: str = "random",
                  seed: int = 0) -> PointingResult:
    """The pointing game of ``maps`` ``[B, H, W]`` against bool ``masks`` ``[B, H, W]``.

    A hit when the map's maximum lies in the mask dilated by ``tolerance`` pixels (a disk).
    ``tolerance`` is a number >= 0 (NaN is an error); it is **capped at the image diagonal**
    :func:`diagonal` (``inf`` allowed): a larger disk grows any mask pixel over the whole image
    already, and the cap keeps the cost of the dilation bounded. The result records the tolerance
    used (after the cap).
    Tied maxima (exactly equal values) are resolved by ``tie``: ``'random'`` (one drawn with a
    generator seeded by ``seed``), ``'fraction'`` (the share of tied maxima in the mask) or
    ``'any'`` (a hit if any is in the mask). See the module docstring for the chance level.
    """
    if tie not in TIE_RULES:
        raise ValueError(f"unknown tie rule {tie!r}; valid: {list(TIE_RULES)}")
    masks = _check_masks(maps, masks)
    tolerance = min(check_number(tolerance, "tolerance", low=0, allow_inf=True), diagonal(maps))
    masks = dilate(masks, tolerance)
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


# --------------------------------------------------------------------------- segmentation for free
THRESHOLDS = ("otsu", "mean")


def _check_threshold(threshold: str | float) -> None:
    if isinstance(threshold, str):
        if threshold not in THRESHOLDS:
            raise ValueError(f"unknown threshold {threshold!r}; valid: {list(THRESHOLDS)} or a number in [0, 1] "
                             "(a fraction of each map's range)")
    elif isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be {list(THRESHOLDS)} or a number in [0, 1], got {threshold!r}")


def threshold_maps(maps: Tensor, threshold: str | float = "otsu") -> Tensor:
    """Bool masks ``[B, H, W]``: where each map is above its threshold.

    ``threshold``: ``'otsu'`` (Otsu's threshold of the map's values, the cut that maximises the
    between-class variance; ``skimage.filters.threshold_otsu``), ``'mean'`` (the map's mean) or a
    number t in [0, 1] (pixels with ``(M - min M) / (max M - min M) >= t``). A constant map gives
    an empty mask (nothing stands out), except for a number t = 0.
    """
    _check_threshold(threshold)
    if not isinstance(maps, Tensor) or maps.dim() != 3:
        raise ValueError(f"maps must be a tensor [B, H, W], got {getattr(maps, 'shape', type(maps).__name__)}")
    if not torch.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinite values")
    values = maps.detach().double().cpu()
    out = torch.zeros(values.shape, dtype=torch.bool)
    for i, m in enumerate(values):
        low, high = m.min(), m.max()
        if isinstance(threshold, str):
            if high == low:
                continue
            if threshold == "otsu":
                from skimage.filters import threshold_otsu

                cut = float(threshold_otsu(m.numpy()))
            else:
                cut = m.mean().item()
            out[i] = m > cut
        else:
            span = (high - low).item()
            scaled = (m - low) / span if span > 0 else torch.zeros_like(m)
            out[i] = scaled >= threshold
    return out.to(maps.device)


def iou(pred: Tensor, masks: Tensor) -> Tensor:
    """Intersection over union ``|A ∩ M| / |A ∪ M|`` of bool masks ``[B, H, W]``, per image
    (float64). The object masks must be non-empty, so the union is never empty."""
    if not isinstance(pred, Tensor) or not isinstance(masks, Tensor) or pred.shape != masks.shape or pred.dim() != 3:
        raise ValueError(f"pred and masks must be bool tensors of the same shape [B, H, W], got "
                         f"{getattr(pred, 'shape', None)} and {getattr(masks, 'shape', None)}")
    masks = _check_masks(pred.double(), masks)
    a, m = pred.bool().to(masks.device), masks
    inter = (a & m).flatten(1).sum(1).double()
    union = (a | m).flatten(1).sum(1).double()
    return (inter / union).cpu()


def chance_iou(pred: Tensor, masks: Tensor) -> Tensor:
    """The IoU a random set of as many pixels as ``pred`` marks would have with ``masks``, per
    image: ``a m / (a + m - a m)`` with ``a``, ``m`` the area fractions of ``pred`` and the mask
    (the expected intersection ``a m HW`` over the expected union)."""
    a = pred.bool().flatten(1).double().mean(1).cpu()
    m = masks.bool().flatten(1).double().mean(1).cpu()
    return a * m / (a + m - a * m)


def grabcut_refine(images: Tensor, pred: Tensor, *, iterations: int = 5, seed: int = 0,
                   min_pixels: int = 8) -> Tensor:
    """Refine bool masks ``pred`` ``[B, H, W]`` with GrabCut on ``images`` ``[B, 3, H, W]`` in [0, 1].

    Pixels of ``pred`` start as *probable foreground*, the others as *probable background*
    (``cv2.GC_INIT_WITH_MASK``); ``iterations`` rounds of GrabCut (Gaussian-mixture colour models
    of both, then a graph cut along colour edges) give the refined mask: the pixels that end as
    (probable) foreground. A mask with fewer than ``min_pixels`` pixels inside or outside is
    returned unchanged (GrabCut needs samples of both). OpenCV's k-means seeding is fixed by
    ``seed`` (``cv2.setRNGSeed``), so the result is deterministic.
    """
    import cv2

    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be a tensor [B, 3, H, W], got {getattr(images, 'shape', type(images).__name__)}")
    if not isinstance(pred, Tensor) or tuple(pred.shape) != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"pred must be a bool tensor [B, H, W] = {(images.shape[0], *images.shape[2:])}, "
                         f"got {getattr(pred, 'shape', type(pred).__name__)}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")
    pixels = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    marked = pred.bool().cpu()
    out = marked.clone()
    n = marked[0].numel()
    for i in range(len(marked)):
        inside = int(marked[i].sum())
        if inside < min_pixels or n - inside < min_pixels:
            continue
        gc_mask = np.where(marked[i].numpy(), cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(int(seed))
        cv2.grabCut(np.ascontiguousarray(pixels[i][..., ::-1]), gc_mask, None, bgd, fgd, iterations,
                    cv2.GC_INIT_WITH_MASK)
        out[i] = torch.from_numpy((gc_mask == cv2.GC_FGD) | (gc_mask == cv2.GC_PR_FGD))
    return out.to(pred.device)


@dataclass
class SegmentationResult:
    """Segmentation of the object from the maps, per image: ``iou`` with the object mask, its
    ``chance`` level (a random set of the same size), ``area`` (fraction of the image marked),
    the ``threshold`` rule and whether GrabCut refined the masks (``masks`` holds them)."""

    iou: Tensor
    chance: Tensor
    area: Tensor
    masks: Tensor
    threshold: str | float
    grabcut: bool

    def mean(self, labels: Tensor | None = None) -> float:
        return _mean(self.iou, labels)

    def chance_level(self, labels: Tensor | None = None) -> float:
        return _mean(self.chance, labels)


def segmentation_iou(maps: Tensor, masks: Tensor, *, threshold: str | float = "otsu", images: Tensor | None = None,
                     grabcut: bool = False, iterations: int = 5, seed: int = 0) -> SegmentationResult:
    """"Segmentation for free": threshold ``maps`` ``[B, H, W]`` (:func:`threshold_maps`), refine
    with GrabCut on ``images`` if ``grabcut=True`` (:func:`grabcut_refine`), and score the IoU with
    the object ``masks`` next to its chance level (:func:`chance_iou`)."""
    masks = _check_masks(maps, masks)
    pred = threshold_maps(maps, threshold).to(masks.device)
    if grabcut:
        if images is None:
            raise ValueError("grabcut=True needs the images (images=[B, 3, H, W]) to fit its colour models")
        pred = grabcut_refine(images, pred, iterations=iterations, seed=seed).to(masks.device)
    return SegmentationResult(iou=iou(pred, masks), chance=chance_iou(pred, masks),
                              area=pred.flatten(1).double().mean(1).cpu(), masks=pred.cpu(),
                              threshold=threshold, grabcut=grabcut)
