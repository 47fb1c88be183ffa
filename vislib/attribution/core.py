"""The public core the methods stand on: a new CAM variant or perturbation method fits in one screen.

* :func:`layer_pass`: one forward pass that records a layer's activations ``A`` and (optionally)
  the gradient ``dS/dA`` of each image's target score, the backward pass stopping at the layer;
* :func:`weighted_map`: ``ReLU(sum_k w_k A^k)`` with per-channel weights ``[B, K]`` or
  per-position weights ``[B, K, h, w]``, upsampled bilinearly to the input size;
* :func:`score_variants`: the target scores of many perturbed versions of each image, under
  ``no_grad`` in bounded chunks, with a progress bar: the variants are either **inputs** (occlusion's
  patched images, Score-CAM's masked images) or **replacements of a layer's output**
  (Ablation-CAM's ablated activations, only the layers after it run at the variants' batch size);
* :func:`inference_copy`: a private copy of the model for many ``no_grad`` passes (eval mode,
  convolution and batch norm folded, channels-last memory), behind :func:`score_variants`' input
  variants;
* :func:`accumulate_gradients`: the same for input gradients (SmoothGrad's noisy copies,
  integrated gradients' path), one forward and one backward pass per bounded chunk;
* :func:`fill_images` and :func:`gaussian_blur`: what "black", "mean" and "blur" mean in pixel space
  (occlusion's fills, integrated gradients' baselines);
* :func:`image_generator`: a random generator seeded by a seed and an image's pixels, so that a
  seeded method gives a batch the maps of its images one by one.

A Grad-CAM-like method is then::

    p = layer_pass(model, images, target, layer)
    weights = p.gradients.mean(dim=(2, 3))
    return finish(weighted_map(p.activations, weights, images.shape[-2:]), images)

The plumbing below the core has one home each: the model's device and dtype
(:func:`vislib.checks.model_device`, :func:`vislib.checks.model_dtype`), the probe forward pass
(:func:`vislib.hooks.trial_forward`), the progress bar (:func:`vislib.progress.progress_bar`), the
shared prologue of a method (:mod:`vislib.attribution._base`).
"""
from __future__ import annotations

import copy
import hashlib
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import TargetSpec, check_number
from ..hooks import LayerSpec, frozen, get_layer
from ..maps import upsample
from ..models import Normalize
from ..progress import progress_bar
from ._base import check_batch_size, check_spatial, class_scores, explaining, grad, registered, spatial_layer

Fill = Union[str, float, Tensor]


# --------------------------------------------------------------------------- one layer, one pass
@dataclass
class LayerPass:
    """What :func:`layer_pass` records (tensors on the model's device, in its dtype)."""

    name: str                    #: dotted name of the layer
    activations: Tensor          #: ``A``, the layer's (last) output ``[B, K, h, w]``, detached
    gradients: Tensor | None     #: ``dS/dA`` ``[B, K, h, w]`` (None with ``gradients=False``)
    inputs: Tensor               #: the images on the model's device and dtype (a copy)
    classes: Tensor              #: each image's target class ``[B]``
    scores: Tensor               #: each image's target logit ``S`` ``[B]``, detached
    calls: int                   #: how often the layer ran in the pass (its output is the last call)


def layer_pass(model: nn.Module, images: Tensor, target: TargetSpec = None, layer: LayerSpec | None = None, *,
               gradients: bool = True) -> LayerPass:
    """Activations of ``layer`` and, with ``gradients``, ``dS/dA`` of each image's target score.

    One forward pass (the shared prologue: images checked and copied, model frozen in eval mode,
    target resolved, hooks removed whatever happens); the backward pass starts at the summed
    target scores and stops at the layer (the layer's output is made a leaf of the graph). The
    layer must output feature maps ``[B, K, h, w]``; ``layer=None`` is
    :func:`vislib.hooks.default_layer`. With ``gradients=False`` the pass runs under ``no_grad``.
    """
    name = spatial_layer(model, layer)
    with explaining(model, images, target, layers=[name], gradients=gradients) as p:
        act = check_spatial(p.output(name), name, model, p.inputs)
        calls = len(p.recorder.outputs[name])
        g = grad(p.score(), [act])[0] if gradients else None
        scores = p.scores().detach()
    return LayerPass(name, act.detach(), g, p.inputs.detach(), p.classes, scores, calls)


def weighted_map(activations: Tensor, weights: Tensor, size: tuple[int, int], *, relu: bool = True) -> Tensor:
    """``ReLU(sum_k weights[b, k] * activations[b, k])`` upsampled to ``size``: ``[B, H, W]``.

    ``weights`` is ``[B, K]`` (one weight per channel: CAM, Grad-CAM, ...) or ``[B, K, h, w]``
    (one weight per position: HiResCAM, LayerCAM). ``relu=False`` keeps the signed sum.
    Upsampling is bilinear with ``align_corners=False`` (:func:`vislib.upsample`).
    """
    if weights.dim() == 2:
        cam = torch.einsum("bk,bkhw->bhw", weights, activations)
    elif weights.shape == activations.shape:
        cam = (weights * activations).sum(dim=1)
    else:
        raise ValueError(f"weights must be [B, K] or shaped like the activations {tuple(activations.shape)}, "
                         f"got {tuple(weights.shape)}")
    if relu:
        cam = cam.clamp(min=0)
    return upsample(cam, size)


# --------------------------------------------------------------------------- perturbed variants
def _replaced_logits(model, module, calls, images, make_batch, broadcast) -> tuple[Tensor | None, bool]:
    """Logits of ``images`` (g of them) with the ``calls``-th output of ``module`` replaced by
    ``make_batch()``, a batch of ``q`` variants; ``None`` if the network cannot run that way.

    Only the layers after ``module`` run at batch ``q``. Activations from before it (e.g. a
    residual path around it) keep batch g: with g = 1 they broadcast; with g > 1 a network in
    which they join the replaced path cannot run (``None`` comes back, the caller goes image by
    image). With g = 1, where broadcasting fails, ``broadcast`` comes back False (the caller
    passes it on) and the image is repeated q times instead.
    """
    seen = [0]
    batch = make_batch()
    n = batch.shape[0]

    def replace(mod, inputs, output):
        seen[0] += 1
        return batch if seen[0] == calls else None

    with registered([(module, replace)]):
        logits = None
        if broadcast or len(images) > 1:
            try:
                logits = model(images)
            except RuntimeError:
                logits = None
            ok = logits is not None and logits.dim() == 2 and logits.shape[0] == n
            if len(images) > 1:
                return (logits if ok else None), broadcast
            broadcast = ok
        if not broadcast:
            seen[0] = 0
            batch = make_batch()  # afresh: in-place layers may have changed the first one
            logits = model(images.expand(n, *images.shape[1:]).contiguous())
    return logits, broadcast


def score_variants(
    model: nn.Module,
    images: Tensor,
    classes: Tensor,
    n: int,
    make: Callable[[Tensor, Tensor], Tensor],
    *,
    layer: LayerSpec | None = None,
    calls: int = 1,
    select: Tensor | None = None,
    batch_size: int = 64,
    progress: bool | None = None,
    desc: str = "variants",
    fast_from: int = 4,
) -> Tensor:
    """Target scores of ``n`` perturbed variants of each image: ``Tensor[B, n]``.

    ``make(b, v)`` receives two index tensors of equal length q (image ``b[i]``, variant ``v[i]``)
    and returns the q variants as one batch. Without ``layer`` a variant is an **input** of the
    model (an image ``[q, 3, H, W]``); with ``layer`` it **replaces** that layer's output
    (its ``calls``-th output in the pass, see :class:`LayerPass`), so that only the layers after
    it run on the variants, the layers before it once per image (residual paths around the layer
    broadcast from batch 1; a network that cannot run that way is run image by image).
    The score of a variant is the logit of its image's class ``classes[b]``.

    Runs under ``no_grad`` with the model frozen in eval mode, at most ``batch_size`` variants
    per forward pass: input variants in consecutive chunks of the flattened (image, variant)
    order, through :func:`inference_copy` of the model when there are at least ``fast_from``
    passes (the copy is made once per call; the scores agree with the model's to float rounding); layer variants image-aligned (several whole images per pass when ``n <= batch_size``,
    else chunks of one image's variants). ``select`` (bool ``[B, n]``, input variants only)
    skips the variants marked False; their score is NaN. A progress bar (``progress``, see
    :func:`vislib.progress.progress_bar`) counts the passes.
    """
    check_batch_size(batch_size)
    b_total = images.shape[0]
    device = images.device
    out = torch.full((b_total, n), math.nan, dtype=images.dtype, device=device)
    with frozen(model), torch.no_grad():
        if layer is None:
            if select is None:
                flat = torch.arange(b_total * n, device=device)
            else:
                if select.shape != (b_total, n):
                    raise ValueError(f"select must be [B, n] = {(b_total, n)}, got {tuple(select.shape)}")
                flat = select.to(device).flatten().nonzero().squeeze(1)
            starts = range(0, len(flat), batch_size)
            fast = len(starts) >= fast_from
            net = inference_copy(model) if fast else model
            memory_format = torch.channels_last if fast else torch.contiguous_format
            with progress_bar(total=len(starts), progress=progress, desc=desc) as bar:
                for start in starts:
                    q = flat[start:start + batch_size]
                    b, v = q // n, q % n
                    logits = net(make(b, v).contiguous(memory_format=memory_format))
                    out.view(-1)[q] = class_scores(logits, classes[b]).to(out.dtype)
                    bar.update()
            return out
        if select is not None:
            raise ValueError("select applies to input variants only")
        module = get_layer(model, layer)[1]
        chunk = min(n, batch_size)                   # variants per pass
        group = max(1, batch_size // n)              # images per pass (> 1 only when all variants fit)
        starts = range(0, n, chunk)
        broadcast = True
        with progress_bar(total=b_total * len(starts), progress=progress, desc=desc) as bar:
            i = 0
            while i < b_total:
                g = min(group, b_total - i)
                done = True
                for start in starts:
                    v = torch.arange(start, min(start + chunk, n), device=device)
                    b = torch.arange(i, i + g, device=device).repeat_interleave(len(v))
                    vv = v.repeat(g)
                    logits, broadcast = _replaced_logits(model, module, calls, images[i:i + g],
                                                         lambda: make(b, vv), broadcast)
                    if logits is None:               # cannot batch images here: go one by one
                        group, done = 1, False
                        break
                    out[i:i + g, start:start + len(v)] = class_scores(logits, classes[b]).view(g, len(v)).to(out.dtype)
                    bar.update(g)
                if done:
                    i += g
    return out


def inference_copy(model: nn.Module) -> nn.Module:
    """A private copy of ``model`` for many forward passes under ``no_grad``; ``model`` is not touched.

    The copy is in eval mode with frozen parameters, each ``Conv2d`` followed by a ``BatchNorm2d``
    folded into one convolution (``W' = W gamma / sigma``, ``b' = (b - mu) gamma / sigma + beta``,
    ``sigma = sqrt(var + eps)``; through ``torch.fx``, skipped for a model it cannot trace), and its
    weights in channels-last memory, which the CPU's convolution kernels prefer. Its logits equal
    the model's in eval mode up to float rounding (about 1e-6 relative in float32). On the course
    VGG this halves the time of a forward pass on the CPU (measured in ``benchmarks/compare.py``'s
    Score-CAM rows). A model that cannot be copied is returned as it is, in eval mode through
    :func:`vislib.hooks.frozen` by the caller.
    """
    try:
        net = copy.deepcopy(model)
    except Exception:                                # e.g. a module holding an open file
        return model
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    try:
        from torch.fx.experimental.optimization import fuse
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = fuse(net, inplace=True)
    except Exception:                                # not traceable by torch.fx: keep it unfused
        pass
    return net.to(memory_format=torch.channels_last)


def accumulate_gradients(
    model: nn.Module,
    images: Tensor,
    classes: Tensor,
    n: int,
    make: Callable[[Tensor, Tensor], Tensor],
    *,
    weights: Tensor | None = None,
    transform: Callable[[Tensor], Tensor] | None = None,
    batch_size: int = 64,
    progress: bool | None = None,
    desc: str = "gradients",
) -> Tensor:
    """``sum_v weights[v] * transform(dS/dx at variant v)`` for each image: ``Tensor[B, 3, H, W]``.

    The gradient counterpart of :func:`score_variants`, behind SmoothGrad (noisy copies) and
    integrated gradients (points on a path): ``make(b, v)`` returns q input variants (images
    ``b[i]``, variants ``v[i]``) and each one's input gradient of its image's target logit
    ``classes[b]`` is taken, transformed (e.g. ``abs``; default identity), weighted
    (``weights[v]``, default 1) and summed into its image. One forward and one backward pass per
    chunk of at most ``batch_size`` variants (consecutive in the flattened (image, variant)
    order), the model frozen in eval mode; nothing is kept between chunks.
    """
    check_batch_size(batch_size)
    b_total = images.shape[0]
    device = images.device
    total = torch.zeros_like(images)
    flat = torch.arange(b_total * n, device=device)
    starts = range(0, len(flat), batch_size)
    with frozen(model), torch.enable_grad(), progress_bar(total=len(starts), progress=progress, desc=desc) as bar:
        for start in starts:
            q = flat[start:start + batch_size]
            b, v = q // n, q % n
            inputs = make(b, v).detach().requires_grad_(True)
            (g,) = grad(class_scores(model(inputs), classes[b]).sum(), [inputs])
            if transform is not None:
                g = transform(g)
            if weights is not None:
                g = g * weights[v].to(g.dtype).view(-1, 1, 1, 1)
            total.index_add_(0, b, g.detach())
            bar.update()
    return total


# --------------------------------------------------------------------------- fills and baselines
def gaussian_blur(images: Tensor, sigma: float, *, padding: str = "replicate") -> Tensor:
    """A separable Gaussian blur of ``[B, C, H, W]`` images (radius ``ceil(3 sigma)``, at least 1).

    ``padding``: how the edges are extended, ``"replicate"`` (occlusion's and integrated gradients'
    blur) or ``"reflect"`` (:func:`vislib.robustness.blur`, as ImageNet-C).
    """
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    x = F.pad(images, (radius, radius, 0, 0), mode=padding)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.pad(x, (0, 0, radius, radius), mode=padding)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def input_normalize(model: nn.Module) -> Normalize | None:
    """The model's first leaf module if it is a :class:`vislib.models.Normalize`, else None."""
    first = next((m for m in model.modules() if not list(m.children())), None)
    return first if isinstance(first, Normalize) else None


def fill_images(model: nn.Module, x: Tensor, fill: Fill, sigma: float, *, name: str = "fill") -> Tensor:
    """What replaces the images ``x`` ``[B, 3, H, W]``: a tensor that broadcasts to ``x``.

    ``"black"``: 0; ``"mean"``: the training-set mean colour when the model starts with a
    :class:`vislib.models.Normalize` layer (its ``mean``), else each image's own mean colour;
    ``"blur"``: ``x`` blurred by :func:`gaussian_blur` with ``sigma``; a number; or a tensor that
    broadcasts to ``x`` (a colour ``[3]`` is one). ``name`` names the option in error messages.
    """
    if isinstance(fill, str):
        if fill == "black":
            return torch.zeros_like(x[:1])
        if fill == "mean":
            normalize = input_normalize(model)
            if normalize is not None:
                return normalize.mean.to(x).view(1, -1, 1, 1)
            return x.mean(dim=(2, 3), keepdim=True)
        if fill in ("blur", "blurred"):
            return gaussian_blur(x, sigma)
        raise ValueError(f"unknown {name} {fill!r}; valid: 'mean', 'black', 'blur', a number or a tensor")
    if isinstance(fill, (int, float)) and not isinstance(fill, bool):
        return torch.full_like(x[:1], check_number(fill, name))
    if isinstance(fill, Tensor):
        value = fill.detach().to(x)
        if not torch.isfinite(value).all():
            raise ValueError(f"the {name} tensor contains NaN or infinite values")
        if value.dim() == 1:
            value = value.view(1, -1, 1, 1)
        try:
            torch.broadcast_shapes(value.shape, x.shape)
        except RuntimeError:
            raise ValueError(f"a {name} tensor of shape {tuple(fill.shape)} does not broadcast to the "
                             f"images {tuple(x.shape)}") from None
        return value
    raise TypeError(f"{name} must be a string, a number or a tensor, got {type(fill).__name__}")


# --------------------------------------------------------------------------- seeded randomness
def image_seed(image: Tensor, seed: int) -> int:
    """A 63-bit seed from ``seed`` and the bytes of one image (as float32, so that the same
    picture gives the same noise in either float dtype)."""
    digest = hashlib.sha256(image.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    digest.update(int(seed).to_bytes(8, "little", signed=True))
    return int.from_bytes(digest.digest()[:8], "little") >> 1


def image_generator(image: Tensor, seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded by :func:`image_seed`: the same image and seed give the
    same draws, in a batch or alone; different images get different draws."""
    return torch.Generator().manual_seed(image_seed(image, seed))


__all__ = ["Fill", "LayerPass", "accumulate_gradients", "fill_images", "gaussian_blur", "image_generator", "image_seed",
           "inference_copy", "input_normalize", "layer_pass", "score_variants", "weighted_map"]
