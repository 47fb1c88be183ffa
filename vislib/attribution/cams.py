"""The CAM family: a weighted sum of one layer's feature maps, ReLU'd and upsampled.

Every method here computes, for the feature maps ``A^k`` (``k = 1..K``, size ``h x w``) of one
layer and the pre-softmax score ``S`` of the target class,

    ``L = ReLU( sum_k w_k A^k )``, upsampled bilinearly (align_corners=False) to ``H x W``,

and differs only in the channel weights ``w_k`` (:func:`weighted_map` is the shared core):

==================  ==========================================================================
``cam``             ``w_k = W_fc[c, k]``, the class weights of the final linear layer
``gradcam``         ``w_k = mean_ij dS/dA^k_ij`` (:func:`gradcam_weights`)
``gradcam_pp``      ``w_k = sum_ij alpha^k_ij ReLU(dS/dA^k_ij)`` (:func:`gradcam_pp_weights`)
``ablation_cam``    ``w_k = (S - S_{A^k = 0}) / S``
==================  ==========================================================================

``layer`` is a module or a dotted name; the default is :func:`vislib.hooks.default_layer` (the
last layer with a spatial output, e.g. ``layer3`` of the course ResNet, ``net.layer4`` of a
torchvision ResNet, the last ReLU of a VGG's features).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..checks import TargetSpec, check_number
from ..hooks import LayerSpec
from ._base import check_batch_size, check_spatial, explaining, finish, spatial_layer
from .core import layer_pass, score_variants, weighted_map
from .gradients import guided_backprop


def gradcam_weights(gradients: Tensor) -> Tensor:
    """Grad-CAM's channel weights ``[B, K]``: the spatial mean of ``gradients`` = ``dS/dA``, ``[B, K, h, w]``."""
    return gradients.mean(dim=(2, 3))


def gradcam_pp_weights(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM++'s channel weights ``[B, K]`` from a layer's ``A`` and ``g = dS/dA`` (both ``[B, K, h, w]``).

    ``alpha_ij = g_ij^2 / (2 g_ij^2 + sum_ab A_ab g_ij^3)``, 0 where ``g_ij = 0`` or the
    denominator is 0; ``w_k = sum_ij alpha_ij ReLU(g_ij)`` (see :func:`gradcam_pp`).
    """
    g = gradients
    denominator = 2 * g**2 + activations.sum(dim=(2, 3), keepdim=True) * g**3
    defined = (g != 0) & (denominator != 0)
    alpha = torch.where(defined, g**2 / torch.where(defined, denominator, torch.ones_like(g)),
                        torch.zeros_like(g))
    return (alpha * g.clamp(min=0)).sum(dim=(2, 3))


def _activations_and_gradients(model, images, target, layer) -> tuple[Tensor, Tensor]:
    """``A`` and ``dS/dA`` of ``layer`` (:func:`vislib.attribution.core.layer_pass`)."""
    p = layer_pass(model, images, target, layer)
    return p.activations, p.gradients


def gradcam(model: nn.Module, images: Tensor, target: TargetSpec = None, *, layer: LayerSpec | None = None) -> Tensor:
    """Grad-CAM (Selvaraju et al., ICCV 2017, arXiv 1610.02391).

    ``alpha_k = (1/hw) sum_ij dS/dA^k_ij``, ``L = ReLU(sum_k alpha_k A^k)``, bilinear upsampling.
    """
    act, g = _activations_and_gradients(model, images, target, layer)
    return finish(weighted_map(act, gradcam_weights(g), images.shape[-2:]), images)


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
    return finish(weighted_map(act, gradcam_pp_weights(act, g), images.shape[-2:]), images)


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
        act = check_spatial(p.output(name), name, model, p.inputs)
        classes, logits = p.classes, p.logits
    if not calls:
        raise ValueError("cam needs a network that ends in global average pooling + one nn.Linear; "
                         "this model has no nn.Linear. Use gradcam instead.")
    fc, fc_in, fc_out = calls[-1]
    pooled = act.mean(dim=(2, 3))
    tol = 1e-4 * (pooled.abs().max().item() + 1e-6)
    if len(calls) > 1 and calls[-2][2].shape[1:] == fc_in.shape[1:]:
        raise ValueError(
            f"cam needs global average pooling followed by one linear layer, but this network ends in "
            f"{len(calls)} linear layers (like a VGG), so it has no class activation map: use gradcam, "
            "which works on any network.")
    if fc_in.shape != pooled.shape:
        raise ValueError(
            f"cam needs global average pooling of layer {name!r} followed by one linear layer, but the "
            f"last nn.Linear reads {fc_in.shape[1]} features, not the {pooled.shape[1]} channel means of "
            f"{name!r}. Choose the layer that is pooled (the last convolutional stage, with "
            f"{fc_in.shape[1]} channels), or use gradcam, which works on any layer.")
    if not torch.allclose(fc_in, pooled, rtol=1e-4, atol=tol):
        raise ValueError(
            f"cam needs global average pooling of layer {name!r} followed by one linear layer, but the "
            f"last nn.Linear's input is not the spatial mean of {name!r}. Choose the layer that is pooled "
            "(the last convolutional stage), or use gradcam, which works on any layer.")
    if fc_out.shape != logits.shape or not torch.allclose(fc_out, logits):
        raise ValueError("cam needs the last nn.Linear to output the logits, but the model changes them "
                         "afterwards; use gradcam instead.")
    weights = fc.weight[classes].to(act.dtype)
    return finish(weighted_map(act, weights, images.shape[-2:], relu=relu), images)


# --------------------------------------------------------------------------- Ablation-CAM
#: With ``batch_size=None`` one Ablation-CAM pass holds as many ablated copies of the activation
#: as stay under this many values (32 MB in float32). Larger passes stop paying on a CPU: on the
#: course VGG (16 images, 48 channels of 16 x 16) 512-copy passes beat 48-copy passes by 1.3-2 x,
#: 1024-copy passes are slower again (cache).
ABLATION_VALUES = 2**23


def ablation_cam(model: nn.Module, images: Tensor, target: TargetSpec = None, *, layer: LayerSpec | None = None,
                 batch_size: int | None = None, eps: float = 1e-6, progress: bool | None = None) -> Tensor:
    """Ablation-CAM (Desai & Ramaswamy, WACV 2020).

    ``w_k = (S - S_k) / S``: the relative drop of the class score when channel k of the layer is
    set to zero, ``L = ReLU(sum_k w_k A^k)``, bilinear upsampling. Where ``|S| < eps`` the
    denominator is ``eps`` (the map is then large but finite); a negative score flips the sign of
    every weight, as the formula says (explain a class with a positive logit).

    Cost, under ``no_grad``: one forward pass for ``A`` and ``S``; then passes in which a
    forward hook replaces the layer's output by ablated copies of ``A``, so that only the layers
    after the target layer run at the copies' batch size. ``batch_size`` is the number of
    ablated copies per pass (default: as many as keep them under :data:`ABLATION_VALUES`
    values). When all K channels of an image fit, a pass takes several images at once; a network
    in which activations from before the layer join after it (a residual connection around it)
    is then run image by image, the prefix at batch 1.
    """
    check_number(eps, "eps", positive=True)
    if batch_size is not None:
        check_batch_size(batch_size)
    p = layer_pass(model, images, target, layer, gradients=False)
    act, scores = p.activations, p.scores
    k = act.shape[1]
    budget = check_batch_size(batch_size) if batch_size is not None else max(1, ABLATION_VALUES // act[0].numel())

    def ablated(b: Tensor, channel: Tensor) -> Tensor:
        copies = act[b].clone()
        copies[torch.arange(len(b), device=act.device), channel] = 0
        return copies

    ablated_scores = score_variants(model, p.inputs, p.classes, k, ablated, layer=p.name, calls=p.calls,
                                    batch_size=budget, progress=progress, desc="Ablation-CAM")
    denominators = torch.where(scores.abs() >= eps, scores, scores.new_tensor(eps))
    weights = (scores[:, None] - ablated_scores) / denominators[:, None]
    return finish(weighted_map(act, weights, images.shape[-2:]), images)
