"""Input checks shared by every method: clear errors that say what was wrong and what is valid."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch
from torch import Tensor, nn

TargetSpec = Union[None, int, Sequence[int], Tensor]


def check_images(images: Tensor, name: str = "images") -> Tensor:
    """Check that ``images`` is a float tensor ``[B, 3, H, W]``; return it unchanged.

    Raises ``TypeError`` for non-tensors and integer dtypes, ``ValueError`` for a wrong rank, a
    wrong number of channels (grayscale) or non-finite values.
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape [B, 3, H, W], got {type(images).__name__}")
    if not torch.is_floating_point(images):
        raise TypeError(
            f"{name} must be a floating-point tensor with values in [0, 1], got dtype {images.dtype}; "
            "convert uint8 images with images.float() / 255"
        )
    if images.dim() != 4:
        hint = " (add a batch dimension with images.unsqueeze(0))" if images.dim() == 3 else ""
        raise ValueError(f"{name} must have shape [B, 3, H, W], got {tuple(images.shape)}{hint}")
    if images.shape[1] != 3:
        hint = " (grayscale? repeat it: images.expand(-1, 3, -1, -1))" if images.shape[1] == 1 else ""
        raise ValueError(f"{name} must have 3 colour channels, got shape {tuple(images.shape)}{hint}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return images


def check_maps(maps: Tensor, images: Tensor, name: str = "maps") -> Tensor:
    """Check that ``maps`` is ``[B, H, W]`` matching ``images`` ``[B, 3, H, W]``; return it."""
    if not isinstance(maps, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape [B, H, W], got {type(maps).__name__}")
    b, _, h, w = images.shape
    if maps.shape != (b, h, w):
        raise ValueError(f"{name} must have shape [B, H, W] = {(b, h, w)} to match the images "
                         f"{tuple(images.shape)}, got {tuple(maps.shape)}")
    if not torch.isfinite(maps).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return maps


def resolve_target(target: TargetSpec, logits: Tensor) -> Tensor:
    """Turn a target spec into a ``LongTensor[B]`` of class indices on the logits' device.

    ``None``: each image's predicted class; an ``int``: that class for every image; a sequence or
    tensor of ``B`` ints: one class per image. Out-of-range classes raise ``ValueError``.
    """
    batch, num_classes = logits.shape
    if target is None:
        return logits.detach().argmax(dim=1)
    if isinstance(target, bool):
        raise TypeError("target must be None, an int or B ints, not a bool")
    if isinstance(target, int):
        classes = torch.full((batch,), target, dtype=torch.long, device=logits.device)
    else:
        classes = torch.as_tensor(target, device=logits.device)
        if classes.dtype.is_floating_point or classes.dtype == torch.bool:
            raise TypeError(f"target must hold integer class indices, got dtype {classes.dtype}")
        classes = classes.long().flatten()
        if classes.numel() == 1:
            classes = classes.expand(batch).clone()
        if classes.numel() != batch:
            raise ValueError(f"target has {classes.numel()} classes for a batch of {batch} images; "
                             "give None, one int, or one class per image")
    bad = (classes < 0) | (classes >= num_classes)
    if bad.any():
        raise ValueError(f"target class {classes[bad][0].item()} is out of range: the model has "
                         f"{num_classes} classes (valid: 0 to {num_classes - 1})")
    return classes


def check_logits(logits: Tensor) -> Tensor:
    """Check that a model returned logits of shape ``[B, num_classes]``."""
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"the model must return logits of shape [B, num_classes], got {shape}")
    return logits


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a parameter-free model).

    With :func:`model_dtype` the one place that says where and in what precision a model runs;
    every vislib function that moves images to a model asks these two.
    """
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    """The floating dtype of the model's first floating parameter or buffer (float32 if none)."""
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.float32
