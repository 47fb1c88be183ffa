"""Operations on saliency maps ``[B, H, W]``: per-image rescaling and upsampling."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def normalize(maps: Tensor, eps: float = 1e-12) -> Tensor:
    """Rescale each map of a batch ``[B, ...]`` to [0, 1] by its own min and max.

    ``(m - min) / (max - min)`` per image; a constant map becomes all zeros (never NaN).
    Normalising is a separate, explicit step: methods return raw maps.
    """
    if maps.dim() < 2:
        raise ValueError(f"maps must have a batch dimension, got shape {tuple(maps.shape)}")
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    span = hi - lo
    out = torch.where(span > eps, (flat - lo) / span.clamp_min(eps), torch.zeros_like(flat))
    return out.reshape(maps.shape)


def upsample(maps: Tensor, size: tuple[int, int], *, align_corners: bool = False) -> Tensor:
    """Bilinear upsampling of ``[B, h, w]`` or ``[B, C, h, w]`` maps to ``size`` = (H, W)."""
    squeeze = maps.dim() == 3
    x = maps.unsqueeze(1) if squeeze else maps
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)
    return x.squeeze(1) if squeeze else x
