"""The CAM family: a weighted sum of one layer's feature maps, ReLU'd and upsampled.

Every method here computes, for the feature maps ``A^k`` (``k = 1..K``, size ``h x w``) of one
layer and the pre-softmax score ``S`` of the target class,

    ``L = ReLU( sum_k w_k A^k )``, upsampled bilinearly (align_corners=False) to ``H x W``,

and differs only in the channel weights ``w_k`` (:func:`weighted_map` is the shared core):

==================  ==========================================================================
``cam``             ``w_k = W_fc[c, k]``, the class weights of the final linear layer
``gradcam``         ``w_k = mean_ij dS/dA^k_ij``
``gradcam_pp``      ``w_k = sum_ij alpha^k_ij ReLU(dS/dA^k_ij)`` (see :func:`gradcam_pp`)
``ablation_cam``    ``w_k = (S - S_{A^k = 0}) / S``
==================  ==========================================================================

``layer`` is a module or a dotted name; the default is :func:`vislib.hooks.default_layer` (the
last layer with a spatial output, e.g. ``layer3`` of the course ResNet, ``net.layer4`` of a
torchvision ResNet, the last ReLU of a VGG's features).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..checks import TargetSpec
from ..hooks import LayerSpec, frozen, get_layer
from ..maps import upsample
from ._base import (check_batch_size, check_spatial, explaining, finish, grad, progress_bar,
                    registered, spatial_layer)
from .gradients import guided_backprop


def weighted_map(activations: Tensor, weights: Tensor, size: tuple[int, int], *, relu: bool = True) -> Tensor:
    """``ReLU(sum_k weights[b, k] * activations[b, k])`` upsampled to ``size``: ``[B, H, W]``."""
    cam = torch.einsum("bk,bkhw->bhw", weights, activations)
    if relu:
        cam = cam.clamp(min=0)
    return upsample(cam, size)


def _activations_and_gradients(model, images, target, layer) -> tuple[Tensor, Tensor]:
    """``A`` and ``dS/dA`` of ``layer``; the backward pass stops at the layer."""
    name = spatial_layer(model, layer)
    with explaining(model, images, target, layers=[name]) as p:
        act = check_spatial(p.output(name), name)
        (g,) = grad(p.score(), [act])
    return act.detach(), g


def gradcam(model: nn.Module, images: Tensor, target: TargetSpec = None, *, layer: LayerSpec | None = None) -> Tensor:
    """Grad-CAM (Selvaraju et al., ICCV 2017, arXiv 1610.02391).

    ``alpha_k = (1/hw) sum_ij dS/dA^k_ij``, ``L = ReLU(sum_k alpha_k A^k)``, bilinear upsampling.
    """
    act, g = _activations_and_gradients(model, images, target, layer)
    return finish(weighted_map(act, g.mean(dim=(2, 3)), images.shape[-2:]), images)


def guided_gradcam(model: nn.Module, images: Tensor, target: TargetSpec = None, *,
                   layer: LayerSpec | None = None) -> Tensor:
    """Guided Grad-CAM (Selvaraju et al. 2017): :func:`guided_backprop` times upsampled :func:`gradcam`.

    Both maps are ``[B, H, W]`` (guided backprop reduced by ``max |.|`` over colour channels).
    Two passes, because guided ReLUs would change the gradient Grad-CAM needs.
    """
    return guided_backprop(model, images, target) * gradcam(model, images, target, layer=layer)


def gradcam_pp(model: nn.Module, images: Tensor, target: TargetSpec = None, *, layer: LayerSpec | None = None) -> Tensor:
    """Grad-CAM++ (Chattopadhyay et al., WACV 2018, arXiv 1710.11063), in its cancelled form.

    With ``g = dS/dA^k`` (pre-softmax score S; the paper's ``exp(S)`` cancels for ReLU nets)::

        alpha^k_ij = g_ij^2 / (2 g_ij^2 + sum_ab A^k_ab g_ij^3)     (0 where g_ij = 0
                                                                     or the denominator is 0)
        w_k        = sum_ij alpha^k_ij ReLU(g_ij)
        L          = ReLU(sum_k w_k A^k), bilinear upsampling
    """
    act, g = _activations_and_gradients(model, images, target, layer)
    denominator = 2 * g**2 + act.sum(dim=(2, 3), keepdim=True) * g**3
    defined = (g != 0) & (denominator != 0)
    alpha = torch.where(defined, g**2 / torch.where(defined, denominator, torch.ones_like(g)),
                        torch.zeros_like(g))
    weights = (alpha * g.clamp(min=0)).sum(dim=(2, 3))
    return finish(weighted_map(act, weights, images.shape[-2:]), images)


def _last_linear_call(model: nn.Module):
    """Forward hooks recording ``(module, input, output)`` of every ``nn.Linear`` call."""
    calls: list[tuple[nn.Module, Tensor, Tensor]] = []

    def hook(module, inputs, output):
        calls.append((module, inputs[0], output))

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return calls, [(m, hook) for m in linears]


def cam(model: nn.Module, images: Tensor, target: TargetSpec = None, *, layer: LayerSpec | None = None,
        relu: bool = True) -> Tensor:
    """Class activation map (Zhou et al., CVPR 2016, arXiv 1512.04150) for GAP + linear networks.

    ``M_c = sum_k W_fc[c, k] A^k``, ReLU'd (``relu=True``, the default, as Grad-CAM; the paper
    shows the signed map min-max normalised) and upsampled bilinearly. The network must end in
    global average pooling of ``layer``'s output followed by one linear layer: this is checked
    numerically (the input of the last ``nn.Linear`` must equal ``A.mean((2, 3))`` and its
    output must be the logits), else a ``ValueError`` says why.

    On such a network ``dS/dA^k_ij = W_fc[c, k] / (h w)``, so Grad-CAM's weights are
    ``W_fc[c, k] / (h w)`` and ``cam == h * w * gradcam`` exactly (with ``relu=True``).
    """
    name = spatial_layer(model, layer)
    calls, hooks = _last_linear_call(model)
    with explaining(model, images, target, layers=[name], hooks=hooks, gradients=False) as p:
        act = check_spatial(p.output(name), name)
        classes, logits = p.classes, p.logits
    if not calls:
        raise ValueError("cam needs a network that ends in global average pooling + one nn.Linear; "
                         "this model has no nn.Linear. Use gradcam instead.")
    fc, fc_in, fc_out = calls[-1]
    pooled = act.mean(dim=(2, 3))
    tol = 1e-4 * (pooled.abs().max().item() + 1e-6)
    if fc_in.shape != pooled.shape or not torch.allclose(fc_in, pooled, rtol=1e-4, atol=tol):
        raise ValueError(
            f"cam needs global average pooling of layer {name!r} followed by one linear layer, but the "
            f"last nn.Linear gets input of shape {tuple(fc_in.shape)} that is not the spatial mean of "
            f"{name!r} (shape {tuple(pooled.shape)}). Choose the last convolutional stage as layer, "
            "or use gradcam, which works on any network.")
    if fc_out.shape != logits.shape or not torch.allclose(fc_out, logits):
        raise ValueError("cam needs the last nn.Linear to output the logits, but the model changes them "
                         "afterwards; use gradcam instead.")
    weights = fc.weight[classes].to(act.dtype)
    return finish(weighted_map(act, weights, images.shape[-2:], relu=relu), images)


# --------------------------------------------------------------------------- Ablation-CAM
#: With ``batch_size=None`` Ablation-CAM ablates as many channels at once as keep the ablated
#: copies of the activation under this many values (64 MB in float32).
ABLATION_VALUES = 2**24


def _ablated_copies(activation: Tensor, channels: Tensor) -> Tensor:
    """``len(channels)`` copies of one image's activation ``[K, h, w]``, copy n with channel
    ``channels[n]`` set to zero."""
    copies = activation.expand(len(channels), *activation.shape).clone()
    copies[torch.arange(len(channels)), channels] = 0
    return copies


def _scores_with_replaced_output(model, module, calls, image, make_batch, cls, broadcast) -> tuple[Tensor, bool]:
    """Run ``image`` (batch 1) with the ``calls``-th output of ``module`` replaced by ``make_batch()``.

    The layers after ``module`` run at the batch's size n; activations from before it (e.g. a
    residual path around it) have batch 1 and broadcast. Where that fails, ``broadcast`` comes
    back False (the caller passes it on) and the image is repeated n times instead.
    """
    seen = [0]
    batch = make_batch()

    def replace(mod, inputs, output):
        seen[0] += 1
        return batch if seen[0] == calls else None

    n = batch.shape[0]
    with registered([(module, replace)]):
        logits = None
        if broadcast:
            try:
                logits = model(image)
            except RuntimeError:
                logits = None
            broadcast = logits is not None and logits.dim() == 2 and logits.shape[0] == n
        if not broadcast:
            seen[0] = 0
            batch = make_batch()  # afresh: in-place layers may have changed the first one
            logits = model(image.expand(n, *image.shape[1:]).contiguous())
    return logits[:, cls], broadcast


def ablation_cam(model: nn.Module, images: Tensor, target: TargetSpec = None, *, layer: LayerSpec | None = None,
                 batch_size: int | None = None, eps: float = 1e-6, progress: bool | None = None) -> Tensor:
    """Ablation-CAM (Desai & Ramaswamy, WACV 2020).

    ``w_k = (S - S_k) / S``: the relative drop of the class score when channel k of the layer is
    set to zero, ``L = ReLU(sum_k w_k A^k)``, bilinear upsampling. Where ``|S| < eps`` the
    denominator is ``eps`` (the map is then large but finite); a negative score flips the sign of
    every weight, as the formula says (explain a class with a positive logit).

    Cost, under ``no_grad``: one forward pass for ``A`` and ``S``; then, per image and chunk of
    ``batch_size`` channels, one pass of the image (batch 1) in which a forward hook replaces the
    layer's output by the chunk's ablated copies of ``A``, so that only the layers after the
    target layer run at the chunk's batch size. ``batch_size=None`` takes as many channels per
    chunk as keep the copies under :data:`ABLATION_VALUES` values (often all of them).
    """
    name = spatial_layer(model, layer)
    with explaining(model, images, target, layers=[name], gradients=False) as p:
        act = check_spatial(p.output(name), name)
        calls = len(p.recorder.outputs[name])
        x, classes, scores = p.inputs, p.classes, p.scores()
    module = get_layer(model, name)[1]
    b, k = act.shape[:2]
    if batch_size is None:
        batch_size = max(1, min(k, ABLATION_VALUES // act[0].numel()))
    check_batch_size(batch_size)
    weights = torch.empty(b, k, dtype=act.dtype, device=act.device)
    n_chunks = b * math.ceil(k / batch_size)
    broadcast = True
    with frozen(model), torch.no_grad(), progress_bar(n_chunks, progress, "Ablation-CAM") as bar:
        for i in range(b):
            denominator = scores[i] if scores[i].abs() >= eps else scores.new_tensor(eps)
            for start in range(0, k, batch_size):
                channels = torch.arange(start, min(start + batch_size, k), device=act.device)
                ablated_scores, broadcast = _scores_with_replaced_output(
                    model, module, calls, x[i:i + 1], lambda: _ablated_copies(act[i], channels),
                    classes[i], broadcast)
                weights[i, channels] = (scores[i] - ablated_scores) / denominator
                bar.update()
    return finish(weighted_map(act, weights, images.shape[-2:]), images)
