"""More of the CAM family, each a short function on :mod:`vislib.attribution.core`.

For the feature maps ``A^k`` of one layer (``[B, K, h, w]``) and ``g = dS/dA`` (pre-softmax
score S of the target class); every map is ReLU'd and upsampled bilinearly
(``align_corners=False``) to the input size, not normalised:

==============  ==============================================================================
``score_cam``   ``w_k`` = the score of the image masked by channel k's normalised map
                (Wang et al. 2020); no gradients, ``K`` extra forward passes per image
``xgradcam``    ``w_k = sum_ij (A^k_ij / sum_ab A^k_ab) g^k_ij`` (Fu et al. 2020)
``layercam``    ``L = ReLU(sum_k ReLU(g^k) * A^k)``, weights per position (Jiang et al. 2021)
``hirescam``    ``L = ReLU(sum_k g^k * A^k)``, weights per position (Draelos & Carin 2020)
``eigencam``    projection of ``A`` on its first principal component (Muhammad & Yeasin 2020),
                class-agnostic
==============  ==============================================================================

Identities (tested): where ``g`` is constant over space (a GAP + linear head, read at the pooled
layer, ``g^k = W_fc[c, k] / (h w)``) HiResCAM equals Grad-CAM (and CAM / ``h w``), and LayerCAM
equals CAM with the negative class weights dropped, ``ReLU(sum_k ReLU(W_fc[c, k]) A^k) / (h w)``:
CAM itself (/ ``h w``) when the class weights are positive (Jiang et al. 2021, sec. III).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..checks import TargetSpec
from ..hooks import LayerSpec, frozen
from ..maps import upsample
from ._base import check_batch_size, finish
from .core import layer_pass, score_variants, weighted_map

#: Score-CAM's channel weights: see :func:`score_cam`.
SCORE_CAM_WEIGHTS = ("increase", "softmax")


def xgradcam(model: nn.Module, images: Tensor, target: TargetSpec = None, *, layer: LayerSpec | None = None,
             eps: float = 1e-7) -> Tensor:
    """XGrad-CAM (Fu et al., BMVC 2020, arXiv 2008.02312, "Axiom-based Grad-CAM").

    ``w_k = sum_ij A^k_ij / (sum_ab A^k_ab + eps) * dS/dA^k_ij``, ``L = ReLU(sum_k w_k A^k)``.
    ``eps`` (1e-7, as pytorch-grad-cam) keeps a channel that is zero everywhere at weight 0.
    """
    p = layer_pass(model, images, target, layer)
    a = p.activations
    weights = (a * p.gradients).sum(dim=(2, 3)) / (a.sum(dim=(2, 3)) + eps)
    return finish(weighted_map(a, weights, images.shape[-2:]), images)


def layercam(model: nn.Module, images: Tensor, target: TargetSpec = None, *,
             layer: LayerSpec | None = None) -> Tensor:
    """LayerCAM (Jiang et al., IEEE TIP 2021, "LayerCAM: Exploring Hierarchical Class Activation
    Maps for Localization").

    One weight per position: ``L = ReLU(sum_k ReLU(dS/dA^k_ij) * A^k_ij)``. Works on early layers
    too, where Grad-CAM's averaged weights wash out. (The paper fuses several layers after
    scaling each by ``tanh(2 L / max L)``; that fusion is left to the caller.)
    """
    p = layer_pass(model, images, target, layer)
    return finish(weighted_map(p.activations, p.gradients.clamp(min=0), images.shape[-2:]), images)


def hirescam(model: nn.Module, images: Tensor, target: TargetSpec = None, *,
             layer: LayerSpec | None = None) -> Tensor:
    """HiResCAM (Draelos & Carin 2020, arXiv 2011.08891).

    ``L = ReLU(sum_k dS/dA^k_ij * A^k_ij)``: the gradient times the activation, summed over
    channels, without Grad-CAM's spatial averaging of the gradient. Where the gradient is
    constant over space (a GAP + linear head read at the pooled layer) it equals Grad-CAM (and
    CAM / ``h w``); elsewhere it shows the positions the score really depends on.
    """
    p = layer_pass(model, images, target, layer)
    return finish(weighted_map(p.activations, p.gradients, images.shape[-2:]), images)


def eigencam(model: nn.Module, images: Tensor, target: TargetSpec = None, *, layer: LayerSpec | None = None,
             relu: bool = True) -> Tensor:
    """EigenCAM (Muhammad & Yeasin, IJCNN 2020, arXiv 2008.00299): the first principal component.

    For each image, the ``h w`` positions are points in ``R^K`` (their K activations); after
    centring them (subtracting the mean over positions), the map is each position's projection on
    the first right-singular vector ``v``: ``L_ij = (A_ij - mean A) . v``, ReLU'd (``relu=False``
    keeps the sign) and upsampled. The sign of a singular vector is arbitrary; vislib fixes it so
    that ``sum_k v_k >= 0`` (the component points to more activation), which makes the map
    deterministic (pytorch-grad-cam takes LAPACK's sign). **Class-agnostic**: ``target`` is
    resolved and checked like every method's, but it does not change the map; no gradients.
    """
    p = layer_pass(model, images, target, layer, gradients=False)
    a = p.activations
    b, k, h, w = a.shape
    points = a.flatten(2).transpose(1, 2)                      # [B, hw, K]
    centred = points - points.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    v = vh[:, 0, :]                                            # [B, K]
    v = torch.where(v.sum(dim=1, keepdim=True) < 0, -v, v)
    projection = (centred @ v[:, :, None]).view(b, h, w)
    if relu:
        projection = projection.clamp(min=0)
    return finish(upsample(projection, images.shape[-2:]), images)


def score_cam(model: nn.Module, images: Tensor, target: TargetSpec = None, *, layer: LayerSpec | None = None,
              weights: str = "increase", align_corners: bool = False, batch_size: int = 64,
              progress: bool | None = None) -> Tensor:
    """Score-CAM (Wang et al., CVPR-W 2020, arXiv 1910.01279): channel weights from masked inputs.

    Each channel's map, upsampled to the input (bilinear; ``align_corners``) and min-max
    normalised to [0, 1] (``H^k``; a constant channel gives 0), masks the image
    (``x * H^k``, pixel space). The weights, from the target logits of the masked images:

    * ``"increase"`` (default, the paper's "channel-wise increase of confidence"):
      ``w_k = S(x * H^k) - S(x_b)`` with the black image ``x_b = 0`` as baseline;
    * ``"softmax"``: ``w_k = softmax_k(S(x * H^k))``, a softmax **over channels**, as
      pytorch-grad-cam does; with ``align_corners=True`` the maps are pytorch-grad-cam's.

    ``L = ReLU(sum_k w_k A^k)``, upsampled. Cost: one forward pass for ``A``, one for the black
    image, then one per channel and image **whose mask is not zero** (a constant channel masks
    the image to black, whose score is known), under ``no_grad`` in chunks of ``batch_size``
    masked images (:func:`vislib.attribution.core.score_variants`).
    """
    if weights not in SCORE_CAM_WEIGHTS:
        raise ValueError(f"weights must be one of {SCORE_CAM_WEIGHTS}, got {weights!r}")
    check_batch_size(batch_size)
    p = layer_pass(model, images, target, layer, gradients=False)
    a, x = p.activations, p.inputs
    k = a.shape[1]

    def masked_images(b: Tensor, v: Tensor) -> Tensor:   # built per chunk: memory stays bounded
        up = upsample(a[b, v][:, None], x.shape[-2:], align_corners=align_corners)   # [q, 1, H, W]
        lo = up.amin(dim=(2, 3), keepdim=True)
        span = up.amax(dim=(2, 3), keepdim=True) - lo
        return x[b] * ((up - lo) / torch.where(span > 0, span, torch.ones_like(span)))

    live = a.flatten(2).amax(dim=2) > a.flatten(2).amin(dim=2)    # constant channels mask to black
    with frozen(model), torch.no_grad():                              # one black image serves every class
        black = model(torch.zeros_like(x[:1]))[0, p.classes]
    masked = score_variants(model, x, p.classes, k, masked_images, select=live, batch_size=batch_size,
                            progress=progress, desc="Score-CAM")
    scores = torch.where(torch.isnan(masked), black[:, None], masked)
    w = scores - black[:, None] if weights == "increase" else scores.softmax(dim=1)
    return finish(weighted_map(a, w, images.shape[-2:]), images)


__all__ = ["SCORE_CAM_WEIGHTS", "eigencam", "hirescam", "layercam", "score_cam", "xgradcam"]
