"""Operations on saliency maps ``[B, H, W]``: per-image rescaling and upsampling."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import check_number, check_size, check_tensor


def normalize(maps: Tensor, eps: float = 1e-12) -> Tensor:
    """Rescale each map of a batch ``[B, ...]`` to [0, 1] by its own min and max.

    ``(m - min) / (max - min)`` per image; a constant map becomes all zeros (never NaN).
    Normalising is a separate, explicit step: methods return raw maps.
    """
    check_tensor(maps, "maps", "[B, H, W]")
    check_number(eps, "eps", low=0)
    if maps.dim() < 2:
        raise ValueError(f"maps must have a batch dimension, got shape {tuple(maps.shape)}")
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    span = hi - lo
    out = torch.where(span > eps, (flat - lo) / span.clamp_min(eps), torch.zeros_like(flat))
    return out.reshape(maps.shape)


def upsample(maps: Tensor, size: tuple[int, int], *, align_corners: bool = False) -> Tensor:
    """Bilinear upsampling of ``[B, h, w]`` or ``[B, C, h, w]`` maps to ``size`` = (H, W).

    ``size`` is a pair of positive ints (or one int for a square); ``size=0`` is an error.
    """
    check_tensor(maps, "maps", "[B, h, w] or [B, C, h, w]")
    size = check_size(size)
    if maps.dim() not in (3, 4):
        raise ValueError(f"maps must have shape [B, h, w] or [B, C, h, w], got {tuple(maps.shape)}")
    squeeze = maps.dim() == 3
    x = maps.unsqueeze(1) if squeeze else maps
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)
    return x.squeeze(1) if squeeze else x
