"""Baselines every evaluation needs: random noise and an edge map (no model involved).

* ``random``: a method no better than chance. Pixel-perturbation and ROAR curves of a real
  method mean something only next to it.
* ``sobel``: an edge detector. The sanity-check literature (Adebayo et al. 2018) shows that
  some saliency methods (guided backprop, gradient x input) look much like it and barely depend
  on the model's weights; it is the control for that.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import TargetSpec, check_images
from .core import image_generator


def random(model: nn.Module | None, images: Tensor, target: TargetSpec = None, *, seed: int = 0) -> Tensor:
    """Uniform noise in [0, 1), ``Tensor[B, H, W]``; the model and the target are ignored.

    Each image's noise is drawn from a generator seeded by ``seed`` and the image's pixel values
    (:func:`vislib.attribution.core.image_generator`),
    so the same seed gives the same maps, a batch gives the same maps as its images one by one,
    and different images get different noise. Change ``seed`` for another draw.
    """
    check_images(images)
    b, _, h, w = images.shape
    maps = torch.empty(b, h, w, dtype=torch.float64)
    for i in range(b):
        generator = image_generator(images[i], seed)
        maps[i] = torch.rand(h, w, generator=generator, dtype=torch.float64)
    return maps.to(device=images.device, dtype=images.dtype)


#: The Sobel kernel for the horizontal derivative (its transpose gives the vertical one).
SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
#: Luma weights (ITU-R BT.601) that turn RGB into grey.
GREY = (0.299, 0.587, 0.114)


def sobel(model: nn.Module | None, images: Tensor, target: TargetSpec = None) -> Tensor:
    """Edge map: ``sqrt(Gx^2 + Gy^2)`` of the grey image (Sobel filters, replicate padding).

    The grey image is ``0.299 R + 0.587 G + 0.114 B``. The model and the target are ignored (they
    are accepted so that the method fits the registry).
    """
    images = check_images(images).detach()
    grey = torch.einsum("bchw,c->bhw", images, images.new_tensor(GREY))[:, None]
    kx = images.new_tensor(SOBEL_X)
    kernels = torch.stack([kx, kx.t()])[:, None]  # [2, 1, 3, 3]
    g = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)
    return g.pow(2).sum(dim=1).sqrt()
