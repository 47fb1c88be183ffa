"""Input checks shared by every method: clear errors that say what was wrong and what is valid.

**Pixel range.** vislib's images are pixel-space float tensors in [0, 1]: every model vislib hands
out normalises inside (its first module is :class:`vislib.models.Normalize`), so 0-255 images or
images already normalised to [-1, 1] (or by a mean and std) would be normalised twice and give
other predictions without any error. :func:`check_images`, the one check every method and every
evaluation runs on the images the caller passes, therefore rejects values outside [0, 1] (up to
the rounding of the image's dtype, :func:`pixel_tolerance`) with a hint. A model that really
takes another range is explained inside :func:`any_pixel_range`::

    with vislib.checks.any_pixel_range():
        maps = gradcam(my_model, normalised_images)

(``check_images(x, pixel_range=False)`` skips the range check of one call.) Only what the caller
passes is checked: the perturbed copies a method makes (SmoothGrad's noisy images, integrated
gradients' path) are not.

**Arguments.** :func:`check_target` (types of a target, before any forward pass),
:func:`check_positive_int` (batch sizes, counts), :func:`check_number` (tolerances, noise levels:
no NaN), :func:`check_tensor` (a NumPy array where a tensor is expected gets the conversion as a
hint), :func:`check_size` (output sizes), :func:`explain_forward_error` (a forward pass that fails
because the images are too small for the network).
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
from collections.abc import Iterator, Sequence
from typing import Union

import numpy as np
import torch
from torch import Tensor, nn

TargetSpec = Union[None, int, Sequence[int], Tensor]

#: Values this far outside [0, 1] still pass the pixel-range check (at least: the tolerance grows
#: with the rounding of low-precision dtypes, see :func:`pixel_tolerance`), so that clamped,
#: resized or interpolated images, whose values may round a hair past 0 or 1, are accepted.
PIXEL_TOLERANCE = 1e-6

_ANY_RANGE: contextvars.ContextVar[bool] = contextvars.ContextVar("vislib_any_pixel_range", default=False)


@contextlib.contextmanager
def any_pixel_range() -> Iterator[None]:
    """Accept images outside [0, 1] in every vislib method and evaluation inside the ``with`` block.

    For models that take another input range (e.g. images normalised outside the model). The
    setting is restored on exit, also after an exception; it is local to the thread (a
    :mod:`contextvars` variable). Also usable as a decorator.
    """
    token = _ANY_RANGE.set(True)
    try:
        yield
    finally:
        _ANY_RANGE.reset(token)


def pixel_range_checked() -> bool:
    """False inside :func:`any_pixel_range`, True otherwise."""
    return not _ANY_RANGE.get()


def pixel_tolerance(dtype: torch.dtype) -> float:
    """How far outside [0, 1] a value of ``dtype`` may lie: ``max(PIXEL_TOLERANCE, 4 eps(dtype))``
    (1e-6 for float32 and float64, about 4e-3 for float16, 3e-2 for bfloat16)."""
    return max(PIXEL_TOLERANCE, 4 * torch.finfo(dtype).eps)


def _range_error(name: str, lo: float, hi: float, tol: float) -> str:
    found = f"{name} has values in [{lo:.4g}, {hi:.4g}], outside [0, 1]"
    pixel_space = ("vislib takes pixel-space images in [0, 1]: the course models (and every model "
                   "vislib hands out) take pixel-space input and normalise inside (their first module is "
                   "vislib.models.Normalize)")
    if lo >= -tol and hi > 1.5:
        hint = f"they look like 0-255 pixel values: divide by 255 ({name} / 255)"
    elif lo < -tol:
        hint = ("they look normalised ([-1, 1], or (x - mean) / std as torchvision's transforms.Normalize "
                "gives): pass the images before normalising, e.g. (x + 1) / 2 for [-1, 1] or x * std + mean")
    else:
        hint = f"clamp them ({name}.clamp(0, 1)) if they should be pixels"
    return (f"{found}; {hint}. {pixel_space}. If your model really takes this range, run the call inside "
            "`with vislib.checks.any_pixel_range():`")


def check_pixel_range(images: Tensor, name: str = "images") -> Tensor:
    """Reject values outside [0, 1] (beyond :func:`pixel_tolerance`) with a hint; return ``images``.

    Skipped inside :func:`any_pixel_range`. Images in [0, 255] get "divide by 255", negative
    values "pass the images before normalising".
    """
    if not pixel_range_checked() or images.numel() == 0:
        return images
    lo, hi = torch.aminmax(images.detach())
    lo, hi = lo.item(), hi.item()
    tol = pixel_tolerance(images.dtype)
    if lo < -tol or hi > 1 + tol:
        raise ValueError(_range_error(name, lo, hi, tol))
    return images


def check_images(images: Tensor, name: str = "images", *, pixel_range: bool = True) -> Tensor:
    """Check that ``images`` is a float tensor ``[B, 3, H, W]`` in [0, 1]; return it unchanged.

    Raises ``TypeError`` for non-tensors (a NumPy array gets the conversion as a hint) and integer
    dtypes, ``ValueError`` for a wrong rank, a wrong number of channels (grayscale), an empty batch
    or image, non-finite values, and values outside [0, 1] (:func:`check_pixel_range`; skipped with
    ``pixel_range=False`` or inside :func:`any_pixel_range`).
    """
    if not isinstance(images, Tensor):
        hint = (f" (a NumPy array: convert it with torch.from_numpy({name}).permute(0, 3, 1, 2).float() / 255 "
                "for [B, H, W, 3] uint8 pictures)") if isinstance(images, np.ndarray) else ""
        raise TypeError(f"{name} must be a torch.Tensor of shape [B, 3, H, W], got {type(images).__name__}{hint}")
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
    if images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"{name} has no pixels: shape {tuple(images.shape)}")
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if pixel_range:
        check_pixel_range(images, name)
    return images


def check_maps(maps: Tensor, images: Tensor, name: str = "maps") -> Tensor:
    """Check that ``maps`` is ``[B, H, W]`` matching ``images`` ``[B, 3, H, W]``; return it."""
    check_tensor(maps, name, "[B, H, W]")
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
    check_target(target)
    if target is None:
        return logits.detach().argmax(dim=1)
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


# --------------------------------------------------------------------------- arguments
_TARGET_RULE = ("target must be None (each image's predicted class), a class index (int), or one class index "
                "per image (a sequence, NumPy array or integer tensor of B ints)")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_target(target: TargetSpec) -> TargetSpec:
    """Check the *type* of a target spec before any work is done; return it unchanged.

    Valid: None, an int, a sequence of ints, an integer NumPy array or tensor. A string (a class
    name), a float, a bool or a float tensor raise ``TypeError`` naming what was given. Whether
    the classes are in range and match the batch is checked by :func:`resolve_target`, which
    needs the logits.
    """
    if target is None or _is_int(target):
        return target
    if isinstance(target, str):
        raise TypeError(f"{_TARGET_RULE}; got the string {target!r}: class names are not accepted, look the "
                        f"class index up (e.g. model.classes.index({target!r}))")
    if isinstance(target, (bool, np.bool_)):
        raise TypeError(f"{_TARGET_RULE}; got the bool {target!r}")
    if isinstance(target, numbers.Real):
        hint = f" (use int({target!r}))" if math.isfinite(target) and float(target).is_integer() else ""
        raise TypeError(f"{_TARGET_RULE}; got the float {target!r}{hint}")
    if isinstance(target, Tensor):
        if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
            raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}; {_TARGET_RULE}")
        return target
    if isinstance(target, np.ndarray):
        if not np.issubdtype(target.dtype, np.integer):
            raise TypeError(f"target must hold integer class indices, got a NumPy array of dtype {target.dtype}; "
                            f"{_TARGET_RULE}")
        return target
    if isinstance(target, Sequence):
        for i, element in enumerate(target):
            ok = _is_int(element) or (isinstance(element, Tensor) and element.numel() == 1
                                      and not element.dtype.is_floating_point and element.dtype != torch.bool)
            if not ok:
                raise TypeError(f"{_TARGET_RULE}; element {i} of the target is {element!r} "
                                f"({type(element).__name__}), not an int")
        return target
    raise TypeError(f"{_TARGET_RULE}; got {type(target).__name__}")


def check_positive_int(value: int, name: str, least: int = 1) -> int:
    """``value`` as an int ``>= least``; ``TypeError`` for a float, bool or string, ``ValueError`` below ``least``."""
    if not _is_int(value):
        hint = ""
        if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value) \
                and float(value).is_integer():
            hint = f" (use int({value!r}))"
        raise TypeError(f"{name} must be an int >= {least}, got {type(value).__name__} {value!r}{hint}")
    if value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    return int(value)


def check_number(value: float, name: str, *, low: float | None = None, high: float | None = None,
                 positive: bool = False, allow_inf: bool = False) -> float:
    """``value`` as a float; no NaN (and no infinity unless ``allow_inf``), within ``[low, high]``
    (``positive``: strictly above 0).

    ``TypeError`` for a non-number (a bool, a string, a tensor of several values), ``ValueError``
    naming the valid range otherwise. A one-element tensor counts as its value.
    """
    if isinstance(value, Tensor) and value.numel() == 1 and not value.dtype == torch.bool:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    bounds = ["> 0"] if positive else []
    if low is not None:
        bounds.append(f">= {low:g}" + (" (non-negative)" if low == 0 else ""))
    if high is not None:
        bounds.append(f"<= {high:g}")

    valid = "a number" + (" " + " and ".join(bounds) if bounds else "")
    if math.isnan(v):
        raise ValueError(f"{name} is NaN; it must be {valid}")
    if math.isinf(v) and not allow_inf:
        raise ValueError(f"{name} must be finite ({valid}), got {v}")
    if (positive and not v > 0) or (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"{name} must be {valid}, got {v:g}")
    return v


def check_tensor(value: Tensor, name: str, shape: str = "") -> Tensor:
    """``value`` if it is a ``torch.Tensor``; else ``TypeError`` (a NumPy array gets the conversion as a hint).

    ``shape`` describes the expected shape in the message, e.g. ``"[B, H, W]"``.
    """
    if isinstance(value, Tensor):
        return value
    what = f"a torch.Tensor{' of shape ' + shape if shape else ''}"
    if isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be {what}, got a NumPy array of shape {value.shape}: convert it with "
                        f"torch.from_numpy({name})")
    raise TypeError(f"{name} must be {what}, got {type(value).__name__}")


def check_size(size: int | Sequence[int], name: str = "size") -> tuple[int, int]:
    """An output size ``(H, W)`` from an int or a pair of positive ints; clear errors for 0, floats, triples."""
    pair = (size, size) if _is_int(size) else size
    ok = isinstance(pair, (tuple, list, torch.Size)) and len(pair) == 2 and all(_is_int(v) and v >= 1 for v in pair)
    if not ok:
        raise ValueError(f"{name} must be a positive int or a pair (H, W) of positive ints, got {size!r}")
    return int(pair[0]), int(pair[1])


# --------------------------------------------------------------------------- forward passes
def _runs(model: nn.Module, height: int, width: int) -> bool:
    """Does ``model`` run on one zero image of ``height x width`` px (eval mode, ``no_grad``)?"""
    from .hooks import preserve_state

    try:
        with torch.no_grad(), preserve_state(model):
            model.eval()
            model(torch.zeros(1, 3, height, width, device=model_device(model), dtype=model_dtype(model)))
    except Exception:      # noqa: BLE001 - any failure means "does not run at this size"
        return False
    return True


def explain_forward_error(model: nn.Module, images: Tensor, error: BaseException) -> BaseException:
    """The exception to raise when ``model(images)`` raised ``error``: a clearer one where it can tell.

    Called only after a forward pass failed (it runs a few probe passes on zero images, in eval
    mode under ``no_grad``, the model's state restored):

    * the model runs on a zero image of the same size: the failure is not about the size, and
      ``error`` comes back unchanged;
    * it fails at that size but runs at its reference size (``model.vislib_input_size``, else
      224 px) and the images are smaller: a ``ValueError`` saying the images are too small and
      giving the smallest square size the model runs on (found by bisection, assuming that a
      model that runs at ``s`` px runs at every larger size);
    * otherwise a ``RuntimeError`` with the torch message and the images' shape.

    Only ``RuntimeError`` (what torch raises for shape mismatches) is explained; out-of-memory
    errors and other exceptions come back unchanged.
    """
    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    if not isinstance(error, RuntimeError) or (oom and isinstance(error, oom)):
        return error
    height, width = images.shape[-2:]
    if _runs(model, height, width):
        return error
    reference = getattr(model, "vislib_input_size", 224)
    reference = reference if _is_int(reference) and reference > 0 else 224
    if min(height, width) < reference and _runs(model, reference, reference):
        lo, hi = 0, reference                      # the model fails at lo px (or lo = 0), runs at hi px
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if _runs(model, mid, mid) else (mid, hi)
        return ValueError(
            f"images of {height}x{width} px are too small for this model: its forward pass fails ({error}). "
            f"The smallest square input it runs on is {hi}x{hi} px; resize or pad the images to at least that "
            "size (e.g. torch.nn.functional.interpolate)")
    return RuntimeError(f"the model's forward pass failed on images of shape {tuple(images.shape)} "
                        f"({height}x{width} px): {error}")
