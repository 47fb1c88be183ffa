"""vislib against captum, pytorch-grad-cam and torch-cam: same answers? as fast? how far from the floor?

For every method vislib shares with a peer, both run on the same model, images and target
classes, and the script prints one row per (method, peer):

* **agreement** of the maps: the Pearson correlation (the smallest over the images of the batch)
  and the largest absolute difference of the per-image min-max normalised maps, and whether the
  maps are **exactly** equal (``torch.allclose``, rtol 1e-4, atol 1e-4 x the map's peak; raw
  maps where the peer returns raw maps, normalised ones where it only returns those). ``exact``
  reads ``yes``, ``no`` (the definitions differ: the notes say how) or ``NO (!)`` where the
  definitions coincide and the maps still differ: a bug on one side;
* **speed**: the median time of vislib and of the peer over ``n`` rounds after one warm-up (at
  least 5; short calls get more, see :func:`measure`); each round runs vislib, the floor and every
  peer of the method in turn, so that a drift of the machine's load hits all of them; and the
  ratio vislib / peer (below 1: vislib is faster);
* **cost floor**: vislib's time over the least work the method needs, in plain torch on the same
  model and batch (parameters frozen): ``fwd+bwd`` one forward and one backward pass to the
  input; ``fwd+bwd@layer`` one forward and a backward pass that stops at the CAM layer (Grad-CAM,
  Grad-CAM++); ``fwd`` one forward pass (CAM, Ablation-CAM, whose ablation passes come on top);
  ``occl fwds`` the forward passes occlusion needs (the clean batch plus one per window and
  image, in chunks of the same size as vislib's); ``fwd+bwd x n`` / ``fwd+bwd x steps``: n
  (SmoothGrad's copies) or m (integrated gradients' steps) forward and backward passes of the
  batch, in chunks of the same number of rows as vislib's (``GRAD_BATCH``).

After the tables, a **targets** table checks the issue's speed targets (Grad-CAM within 1.1 x
its floor and not slower than torch-cam; FullGrad within 1.5 x one forward + backward;
Ablation-CAM at least 10 x faster than pytorch-grad-cam's; occlusion at least 0.9 x captum's
speed; SmoothGrad with n copies and integrated gradients with m steps within 1.1 x n or m forward +
backward passes batched the same way; Score-CAM at least 3 x faster than pytorch-grad-cam's at
identical maps). Rows named ``... (peer def.)`` are agreement checks only (not timed): they rebuild the
peer's own definition from vislib's gradients (pytorch-grad-cam's FullGrad from vislib's
decomposition; both peers' Grad-CAM++ weights from the recorded layer and its gradient), so that a
disagreement the notes explain is shown to be that difference and nothing else.

Usage (the timings use the machine's default thread count; the header says which)::

    python benchmarks/compare.py                                    # all four models, ~10 min on 2 busy cores
    python benchmarks/compare.py --models resnet18 --repeats 7
    python benchmarks/compare.py --models course-resnet --methods gradcam cam --batch 32
    python benchmarks/compare.py --out benchmarks/last_run.md       # also write the tables (markdown)

Models: torchvision ``resnet18`` and ``vgg16_bn`` with random weights at 224 px (batch 2), and the
course ResNet and VGG (trained checkpoints from ``data/models``) at 64 px (batch 16).
pytorch-grad-cam's Ablation-CAM recomputes every layer before the target layer for each ablated
channel (512 full forward passes per image on resnet18/vgg16_bn); it is timed with
``--slow-repeats`` runs (default 1: its first call, made after vislib's warm-up) and skipped on
vgg16_bn unless ``--slow``. Score-CAM (both libraries) runs one full forward pass per channel and
image (512 per image at 224 px): it is skipped on resnet18 and vgg16_bn unless ``--slow``.

The peers install with ``make peers`` (``pip install -e '.[peers]'``); ``tests/test_peers.py``
runs :func:`agreement_rows` on a tiny model so that this comparison cannot rot.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__":  # before tqdm is imported: pytorch-grad-cam's Ablation-CAM draws a bar per image
    os.environ.setdefault("TQDM_DISABLE", "1")

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vislib import attribution as A  # noqa: E402
from vislib.hooks import Recorder, frozen, get_layer  # noqa: E402
from vislib.maps import normalize  # noqa: E402
from vislib.models import Normalize  # noqa: E402

PEERS = ("captum", "grad-cam", "torch-cam")

# ------------------------------------------------------------------------------------ notes
#: Why a pair's maps differ (or how they were made comparable); shown in the notes column.
NOTES = {
    "sal": "captum Saliency(abs) per channel, reduced by max over colour like vislib",
    "gbp": "captum GuidedBackprop per channel, reduced by max abs over colour",
    "deconv": "captum Deconvolution per channel, reduced by max abs over colour",
    "ggc": "captum GuidedGradCam(interpolate_mode='bilinear'), reduced by max abs over colour",
    "lgc": "captum LayerGradCam(relu_attributions=True), upsampled bilinearly like vislib",
    "occ": "captum Occlusion, baseline = the Normalize mean colour (vislib fill='mean')",
    "gc-gc": "grad-cam returns maps min-max normalised at layer resolution, then cv2.resize: compared normalised",
    "gc-gcpp": "as Grad-CAM, and eps=1e-6 in alpha's denominator, which vislib does not add (matters when "
               "g^2 is near 1e-6, as with these models' layer gradients)",
    "gc-gcpp'": "Grad-CAM++ with grad-cam's eps=1e-6, computed from vislib's recorded A and dS/dA "
                "(agreement only): confirms the note above",
    "gc-abl": "grad-cam returns normalised maps (as Grad-CAM); it would ablate with min-1e7 instead of 0 "
              "if the layer had no exact zero; it recomputes the layers before the target for every channel",
    "gc-fg": "grad-cam FullGrad differs on purpose: min-max per channel (vislib/reference: per layer "
             "over all channels), cv2 resizing (reference: align_corners=True), no Normalize bias term",
    "gc-fg'": "grad-cam's FullGrad definition rebuilt from vislib's fullgrad_decomposition (per-channel "
              "min-max, Conv2d/BatchNorm2d terms only): same gradients, the difference above is post-processing",
    "tc-cam": "torch-cam CAM has no ReLU (its docstring says ReLU): compared with vislib cam(relu=False); "
              "raw layer map upsampled bilinearly",
    "tc-gc": "torch-cam raw layer map (normalized=False) upsampled bilinearly",
    "tc-gcpp": "torch-cam differs by a bug: alpha[idx][mask].div_() divides a copy, so its alpha = g^2; "
               "its denominator would also sum A*g^3 over space (vislib, paper eq. 19, "
               "grad-cam: (sum A)*g^3)",
    "ig": "captum IntegratedGradients(method='gausslegendre', same n_steps, black baseline, internal_batch_size "
          "= vislib's batch_size), summed over colour like vislib",
    "ig-trap'": "captum's riemann_trapezoid weights are 1/m halved at the ends (they sum to 1 - 1/m), vislib's "
                "trapezoid 1/(m-1) (sum 1); vislib with captum's (nodes, weights) as rule (its nodes from a float32 "
                "linspace) rebuilds captum's map (agreement only)",
    "sg": "captum NoiseTunnel(Saliency(abs=False), nt_type='smoothgrad') with the noise it draws after "
          "torch.manual_seed(0), passed to vislib as noise=; reduced by max abs over colour",
    "gc-score": "vislib score_cam(weights='softmax', align_corners=True) is grad-cam's definition (softmax over "
                "channels of the masked images' logits; vislib's default is the paper's increase over a black "
                "image); grad-cam normalises (compared normalised); vislib skips the passes of constant channels",
    "gc-xgc": "same definition (eps 1e-7 in both); grad-cam normalises: compared normalised",
    "tc-xgc": "same definition (torch-cam's eps 1e-8, vislib's 1e-7: no channel sum is that small here); "
              "torch-cam raw layer map (normalized=False) upsampled bilinearly",
    "tc-lc": "same definition; torch-cam raw layer map (normalized=False) upsampled bilinearly",
    "gc-lc": "same definition; grad-cam normalises: compared normalised",
    "gc-hr": "same definition; grad-cam normalises: compared normalised",
    "gc-eig": "differs on purpose in the sign of the principal component: vislib makes sum(v) >= 0, grad-cam "
              "takes LAPACK's (arbitrary) sign; where the signs agree the maps are equal",
    "gc-eig'": "EigenCAM with numpy's SVD sign, as grad-cam, from vislib's recorded layer (agreement only)",
    "tc-gcpp'": "Grad-CAM++ with torch-cam's alpha = g^2, computed from vislib's recorded A and dS/dA "
                "(agreement only): confirms the note above",
}


# ------------------------------------------------------------------------------------ models
@dataclass
class ModelSpec:
    """A model of the comparison and its settings."""

    make: Callable[[], nn.Module]
    size: int                         #: input side in pixels
    batch: int                        #: default batch size
    layer: str                        #: the CAM layer (all libraries get the same module)
    fc: str | None                    #: the final linear layer for CAM (None: CAM does not apply)
    patch: int                        #: occlusion window
    stride: int                       #: occlusion stride (large, so that it finishes)
    images: Callable[[int, int], Tensor]  #: (n, size) -> images in [0, 1]


def _shapes(n: int, size: int) -> Tensor:
    from vislib.data import make_shapes
    return make_shapes(n, size=size, seed=0).images


def _course_images(n: int, size: int) -> Tensor:
    from vislib.data import course_split
    return course_split("test", size=size, n=n).images


def _course(name: str) -> nn.Module:
    from vislib.models import course_model, load_course_model
    try:
        return load_course_model(name)
    except (FileNotFoundError, KeyError):
        print(f"(no course checkpoint for {name!r}: using an untrained course model)")
        return course_model(name)


def _imagenet(name: str) -> nn.Module:
    from vislib.models import imagenet
    return imagenet(name, pretrained=False)


MODELS: dict[str, ModelSpec] = {
    "resnet18": ModelSpec(lambda: _imagenet("resnet18"), 224, 2, "net.layer4", "net.fc", 56, 56, _shapes),
    "vgg16_bn": ModelSpec(lambda: _imagenet("vgg16_bn"), 224, 2, "net.features.42", None, 112, 112, _shapes),
    "course-resnet": ModelSpec(lambda: _course("resnet"), 64, 16, "net.layer3", "net.fc", 8, 8, _course_images),
    "course-vgg": ModelSpec(lambda: _course("vgg"), 64, 16, "net.features.19", None, 8, 8, _course_images),
}


# ------------------------------------------------------------------------------------ pairs
@dataclass
class Pair:
    """One vislib method and its counterpart in one peer library, ready to run."""

    method: str
    peer: str
    vislib: Callable[[], Tensor]      #: vislib's raw map [B, H, W]
    other: Callable[[], Tensor]       #: the peer's map [B, H, W] (raw or normalised, see ``raw``)
    raw: bool                         #: the peer's map is raw (same scale as vislib's)
    exact: bool                       #: the definitions coincide: the maps must be equal
    floor: str                        #: key of the cost floor (see ``floors``)
    note: str                         #: key into NOTES
    slow: bool = False                #: the peer takes minutes: fewer repeats
    timed: bool = True                #: False: an agreement check only (no timing)


def _up(maps: Tensor, size) -> Tensor:
    """Layer-resolution maps [B, h, w] upsampled like vislib (bilinear, align_corners=False)."""
    return F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def _normalize_layer(model: nn.Module) -> Normalize:
    """The model's pixel-space Normalize layer (its mean colour is vislib's fill='mean')."""
    return next(m for m in model.modules() if isinstance(m, Normalize))


def _np_maps(maps, like: Tensor) -> Tensor:
    return torch.as_tensor(maps).to(like.device, torch.float32)


#: SmoothGrad's copies and noise (pixel units), integrated gradients' steps, and the chunk size
#: (rows of copies / steps per pass) of both, in vislib, captum and the floors.
N_NOISE, NOISE_STD, N_STEPS, GRAD_BATCH = 25, 0.1, 32, 64


def pairs(model: nn.Module, images: Tensor, classes: Tensor, layer_name: str, fc: str | None,
          patch: int, stride: int, peers=PEERS, methods=None, occlusion_batch: int = 64,
          n_noise: int = N_NOISE, noise_std: float = NOISE_STD, n_steps: int = N_STEPS,
          grad_batch: int = GRAD_BATCH) -> list[Pair]:
    """Every (method, peer) pair that applies to this model, as closures over the same inputs."""
    x, size = images, tuple(images.shape[-2:])
    cls = classes.tolist()
    layer = get_layer(model, layer_name)[1]
    out: list[Pair] = []

    def add(pair: Pair) -> None:
        if pair.peer in peers and (methods is None or pair.method.split()[0] in methods):
            out.append(pair)

    if "captum" in peers:
        from captum.attr import Deconvolution, GuidedBackprop, GuidedGradCam, LayerGradCam, Occlusion, Saliency

        def captum_occlusion():
            mean = _normalize_layer(model).mean.view(1, 3, 1, 1).expand(1, 3, *size).to(x)
            per_eval = max(1, occlusion_batch // len(x))
            a = Occlusion(model).attribute(x, sliding_window_shapes=(3, patch, patch), strides=(3, stride, stride),
                                           target=classes, baselines=mean, perturbations_per_eval=per_eval)
            return a[:, 0]

        add(Pair("gradient", "captum", lambda: A.gradient(model, x, classes),
                 lambda: Saliency(model).attribute(x, target=classes, abs=True).amax(1),
                 raw=True, exact=True, floor="fwd+bwd", note="sal"))
        add(Pair("guided_backprop", "captum", lambda: A.guided_backprop(model, x, classes),
                 lambda: GuidedBackprop(model).attribute(x, target=classes).abs().amax(1),
                 raw=True, exact=True, floor="fwd+bwd", note="gbp"))
        add(Pair("deconvnet", "captum", lambda: A.deconvnet(model, x, classes),
                 lambda: Deconvolution(model).attribute(x, target=classes).abs().amax(1),
                 raw=True, exact=True, floor="fwd+bwd", note="deconv"))
        add(Pair("occlusion", "captum",
                 lambda: A.occlusion(model, x, classes, patch=patch, stride=stride, fill="mean",
                                     batch_size=occlusion_batch, progress=False),
                 captum_occlusion, raw=True, exact=True, floor="occl fwds", note="occ"))
        from captum.attr import IntegratedGradients, NoiseTunnel

        def captum_ig(method):
            def run():
                return IntegratedGradients(model).attribute(
                    x, baselines=torch.zeros_like(x), target=classes, n_steps=n_steps, method=method,
                    internal_batch_size=grad_batch).sum(1)
            return run

        # captum's draw, made once outside the timed call: torch.normal(0, stdev repeated to [B * n, 3, H, W])
        torch.manual_seed(0)
        captum_noise = torch.normal(0, torch.tensor(noise_std, device=x.device).repeat((len(x) * n_noise, *x.shape[1:])))
        captum_noise = captum_noise.view(len(x), n_noise, *x.shape[1:])

        def vislib_smoothgrad():
            return A.smoothgrad(model, x, classes, noise=captum_noise, batch_size=grad_batch)

        def captum_smoothgrad():
            torch.manual_seed(0)
            return NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=n_noise,
                                                          stdevs=noise_std, target=classes, abs=False).abs().amax(1)

        add(Pair("integrated_gradients", "captum",
                 lambda: A.integrated_gradients(model, x, classes, steps=n_steps, rule="gauss_legendre",
                                                batch_size=grad_batch),
                 captum_ig("gausslegendre"), raw=True, exact=True, floor="fwd+bwd x steps", note="ig"))
        captum_trapezoid = (torch.linspace(0, 1, n_steps).double(),      # captum's float32 nodes, its weights
                            torch.tensor([0.5] + [1.0] * (n_steps - 2) + [0.5], dtype=torch.float64) / n_steps)
        add(Pair("integrated_gradients (trapezoid, captum def.)", "captum",
                 lambda: A.integrated_gradients(model, x, classes, rule=captum_trapezoid, batch_size=grad_batch),
                 captum_ig("riemann_trapezoid"), raw=True, exact=True, floor="fwd+bwd x steps", note="ig-trap'",
                 timed=False))
        add(Pair("smoothgrad", "captum", vislib_smoothgrad, captum_smoothgrad, raw=True, exact=True,
                 floor="fwd+bwd x n", note="sg"))
        add(Pair("gradcam", "captum", lambda: A.gradcam(model, x, classes, layer=layer),
                 lambda: _up(LayerGradCam(model, layer).attribute(x, target=classes, relu_attributions=True)[:, 0],
                             size),
                 raw=True, exact=True, floor="fwd+bwd@layer", note="lgc"))
        add(Pair("guided_gradcam", "captum", lambda: A.guided_gradcam(model, x, classes, layer=layer),
                 lambda: GuidedGradCam(model, layer).attribute(x, target=classes,
                                                              interpolate_mode="bilinear").abs().amax(1),
                 raw=True, exact=True, floor="fwd+bwd", note="ggc"))

    if "grad-cam" in peers:
        from pytorch_grad_cam import (AblationCAM, EigenCAM, FullGrad, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM,
                                      ScoreCAM, XGradCAM)
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        def gc(cls_):
            def run():
                with cls_(model=model, target_layers=[] if cls_ is FullGrad else [layer]) as cam:
                    return _np_maps(cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in cls]), x)
            return run

        add(Pair("gradcam", "grad-cam", lambda: A.gradcam(model, x, classes, layer=layer), gc(GradCAM),
                 raw=False, exact=False, floor="fwd+bwd@layer", note="gc-gc"))
        add(Pair("gradcam_pp", "grad-cam", lambda: A.gradcam_pp(model, x, classes, layer=layer), gc(GradCAMPlusPlus),
                 raw=False, exact=False, floor="fwd+bwd@layer", note="gc-gcpp"))
        add(Pair("gradcam_pp (grad-cam def.)", "grad-cam",
                 lambda: gradcam_pp_as("grad-cam", model, x, classes, layer_name), gc(GradCAMPlusPlus),
                 raw=False, exact=True, floor="fwd+bwd@layer", note="gc-gcpp'", timed=False))
        add(Pair("ablation_cam", "grad-cam",
                 lambda: A.ablation_cam(model, x, classes, layer=layer, progress=False), gc(AblationCAM),
                 raw=False, exact=False, floor="fwd", note="gc-abl", slow=True))
        add(Pair("fullgrad", "grad-cam", lambda: A.fullgrad(model, x, classes), gc(FullGrad),
                 raw=False, exact=False, floor="fwd+bwd", note="gc-fg"))
        add(Pair("score_cam", "grad-cam",
                 lambda: A.score_cam(model, x, classes, layer=layer, weights="softmax", align_corners=True,
                                     progress=False), gc(ScoreCAM),
                 raw=False, exact=False, floor="fwd", note="gc-score"))
        add(Pair("xgradcam", "grad-cam", lambda: A.xgradcam(model, x, classes, layer=layer), gc(XGradCAM),
                 raw=False, exact=False, floor="fwd+bwd@layer", note="gc-xgc"))
        add(Pair("layercam", "grad-cam", lambda: A.layercam(model, x, classes, layer=layer), gc(LayerCAM),
                 raw=False, exact=False, floor="fwd+bwd@layer", note="gc-lc"))
        add(Pair("hirescam", "grad-cam", lambda: A.hirescam(model, x, classes, layer=layer), gc(HiResCAM),
                 raw=False, exact=False, floor="fwd+bwd@layer", note="gc-hr"))
        add(Pair("eigencam", "grad-cam", lambda: A.eigencam(model, x, classes, layer=layer), gc(EigenCAM),
                 raw=False, exact=False, floor="fwd", note="gc-eig"))
        add(Pair("eigencam (grad-cam def.)", "grad-cam", lambda: eigencam_as_gradcam(model, x, layer_name),
                 gc(EigenCAM), raw=False, exact=False, floor="fwd", note="gc-eig'", timed=False))
        add(Pair("fullgrad (grad-cam def.)", "grad-cam", lambda: gradcam_style_fullgrad(model, x, classes), gc(FullGrad),
                 raw=False, exact=True, floor="fwd+bwd", note="gc-fg'", timed=False))

    if "torch-cam" in peers:
        from torchcam.methods import CAM as TCAM
        from torchcam.methods import GradCAM as TGradCAM
        from torchcam.methods import GradCAMpp as TGradCAMpp
        from torchcam.methods import LayerCAM as TLayerCAM
        from torchcam.methods import XGradCAM as TXGradCAM

        def tc(cls_):
            def run():
                with cls_(model, target_layer=layer) as ext:
                    scores = model(x)
                    return _up(ext(class_idx=cls, scores=scores, normalized=False)[0], size)
            return run

        def tc_cam():
            with TCAM(model, target_layer=layer, fc_layer=fc) as ext, torch.no_grad():
                model(x)
                return _up(ext(class_idx=cls, normalized=False)[0], size)

        if fc is not None:
            add(Pair("cam", "torch-cam", lambda: A.cam(model, x, classes, layer=layer, relu=False), tc_cam,
                     raw=True, exact=True, floor="fwd", note="tc-cam"))
        add(Pair("gradcam", "torch-cam", lambda: A.gradcam(model, x, classes, layer=layer), tc(TGradCAM),
                 raw=True, exact=True, floor="fwd+bwd@layer", note="tc-gc"))
        add(Pair("gradcam_pp", "torch-cam", lambda: A.gradcam_pp(model, x, classes, layer=layer), tc(TGradCAMpp),
                 raw=True, exact=False, floor="fwd+bwd@layer", note="tc-gcpp"))
        add(Pair("xgradcam", "torch-cam", lambda: A.xgradcam(model, x, classes, layer=layer), tc(TXGradCAM),
                 raw=True, exact=True, floor="fwd+bwd@layer", note="tc-xgc"))
        add(Pair("layercam", "torch-cam", lambda: A.layercam(model, x, classes, layer=layer), tc(TLayerCAM),
                 raw=True, exact=True, floor="fwd+bwd@layer", note="tc-lc"))
        add(Pair("gradcam_pp (torch-cam def.)", "torch-cam",
                 lambda: gradcam_pp_as("torch-cam", model, x, classes, layer_name), tc(TGradCAMpp),
                 raw=True, exact=True, floor="fwd+bwd@layer", note="tc-gcpp'", timed=False))
    return out


def gradcam_style_fullgrad(model: nn.Module, images: Tensor, classes: Tensor) -> Tensor:
    """pytorch-grad-cam's FullGrad, rebuilt from :func:`vislib.attribution.fullgrad_decomposition`.

    Its definition (``pytorch_grad_cam/fullgrad_cam.py``): the input term and every Conv2d /
    BatchNorm2d bias term ``|b * dS/dz|``, each **channel** min-max normalised on its own
    (``(t - min) / (max - min + 1e-7)``) and resized to the input (bilinear, half-pixel centres),
    summed, and the sum min-max normalised per image. Equal maps show that vislib's gradients are
    the peer's and that the FullGrad disagreement is the post-processing alone.
    """
    dec = A.fullgrad_decomposition(model, images, classes)
    kinds = {name: type(m) for name, m in model.named_modules()}
    size = tuple(images.shape[-2:])

    def per_channel(t: Tensor) -> Tensor:
        t = t.abs()
        t = t - t.amin(dim=(2, 3), keepdim=True)
        t = t / (t.amax(dim=(2, 3), keepdim=True) + 1e-7)
        return F.interpolate(t.sum(1, keepdim=True), size=size, mode="bilinear", align_corners=False)[:, 0]

    total = per_channel(dec.input_term)
    for key, term in dec.bias_terms.items():
        if kinds.get(key.split("[")[0]) in (nn.Conv2d, nn.BatchNorm2d) and term.dim() == 4:
            total = total + per_channel(term)
    return normalize(total)


def eigencam_as_gradcam(model: nn.Module, images: Tensor, layer: str) -> Tensor:
    """EigenCAM with pytorch-grad-cam's sign: numpy's SVD of the centred float32 activations
    (``pytorch_grad_cam/utils/svd_on_activations.py``), ReLU, upsampled like vislib."""
    import numpy as np

    act = A.core.layer_pass(model, images, None, layer, gradients=False).activations.float().cpu().numpy()
    maps = []
    for a in act:
        points = a.reshape(a.shape[0], -1).T
        points = points - points.mean(axis=0)
        maps.append((points @ np.linalg.svd(points, full_matrices=True)[2][0]).reshape(a.shape[1:]))
    return _up(torch.as_tensor(np.float32(maps)).clamp(min=0), tuple(images.shape[-2:])).to(images.device)


def gradcam_pp_as(peer: str, model: nn.Module, images: Tensor, classes: Tensor, layer: str) -> Tensor:
    """Grad-CAM++ with the channel weights of ``peer``'s code, from ``A`` and ``dS/dA`` recorded with
    :class:`vislib.hooks.Recorder`; ReLU and bilinear upsampling as vislib.

    ``"grad-cam"``: ``alpha = g^2 / (2 g^2 + (sum_ab A) g^3 + 1e-6)`` where ``g != 0``
    (``pytorch_grad_cam/grad_cam_plusplus.py``); ``"torch-cam"``: ``alpha = g^2``, because
    ``alpha[idx][mask].div_(...)`` in ``torchcam/methods/gradient.py`` divides a copy made by
    boolean indexing. Equal maps confirm the notes on why the peers differ from vislib.
    """
    with frozen(model), Recorder(model, [layer]) as rec:
        x = images.detach().clone().requires_grad_()
        logits = model(x)
        act = rec.output(layer)
        (g,) = torch.autograd.grad(logits.gather(1, classes[:, None]).sum(), act)
    act = act.detach()
    if peer == "grad-cam":
        den = 2 * g**2 + act.sum(dim=(2, 3), keepdim=True) * g**3 + 1e-6
        alpha = torch.where(g != 0, g**2 / den, torch.zeros_like(g))
    elif peer == "torch-cam":
        alpha = g**2
    else:
        raise ValueError(f"unknown peer {peer!r}")
    weights = (alpha * g.clamp(min=0)).sum(dim=(2, 3))
    return _up(torch.einsum("bk,bkhw->bhw", weights, act).clamp(min=0), tuple(images.shape[-2:]))


# ------------------------------------------------------------------------------------ agreement
@dataclass
class Agreement:
    pearson: float        #: smallest per-image Pearson correlation of the normalised maps
    max_diff: float       #: largest |difference| of the normalised maps
    exact: bool           #: allclose (raw maps if the peer gives raw maps, else normalised)


def pearson_per_image(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation of each image's maps ``[B, H, W]``; 1 where both maps are constant and
    equal, 0 where only one is constant."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    na, nb = a.norm(dim=1), b.norm(dim=1)
    r = (a * b).sum(1) / (na * nb).clamp_min(1e-300)
    both_flat = (na == 0) & (nb == 0)
    return torch.where(both_flat, torch.ones_like(r), r)


def agree(ours: Tensor, theirs: Tensor, raw: bool) -> Agreement:
    """Compare vislib's raw maps with a peer's maps (raw or normalised) of the same shape."""
    ours, theirs = ours.detach().float().cpu(), theirs.detach().float().cpu()
    if ours.shape != theirs.shape:
        raise ValueError(f"map shapes differ: vislib {tuple(ours.shape)}, peer {tuple(theirs.shape)}")
    a, b = normalize(ours), normalize(theirs)
    if raw:
        scale = theirs.abs().amax().item()
        exact = torch.allclose(ours, theirs, rtol=1e-4, atol=1e-4 * scale + 1e-12)
    else:
        exact = torch.allclose(a, b, rtol=1e-4, atol=1e-4)
    return Agreement(pearson_per_image(a, b).min().item(), (a - b).abs().max().item(), exact)


def agreement_rows(model: nn.Module, images: Tensor, classes: Tensor, layer: str, fc: str | None,
                   patch: int, stride: int, peers=PEERS, methods=None) -> list[tuple[Pair, Agreement]]:
    """Run every pair once and compare the maps (no timing): what tests/test_peers.py checks."""
    rows = []
    for pair in pairs(model, images, classes, layer, fc, patch, stride, peers, methods):
        rows.append((pair, agree(pair.vislib(), pair.other(), pair.raw)))
    return rows


# ------------------------------------------------------------------------------------ floors
def floors(model: nn.Module, x: Tensor, classes: Tensor, layer: str, patch: int, stride: int,
           occlusion_batch: int = 64, n_noise: int = N_NOISE, n_steps: int = N_STEPS,
           grad_batch: int = GRAD_BATCH) -> dict[str, Callable[[], object]]:
    """The least work each method needs, in plain torch (parameters frozen, eval mode)."""
    module = get_layer(model, layer)[1]
    n_windows = ((x.shape[-2] - patch + stride - 1) // stride + 1) * ((x.shape[-1] - patch + stride - 1) // stride + 1)
    n_occl = len(x) * n_windows
    chunk = x[torch.arange(min(occlusion_batch, n_occl)) % len(x)].clone()

    def fwd_bwd():
        with frozen(model):
            xr = x.detach().clone().requires_grad_()
            torch.autograd.grad(model(xr).gather(1, classes[:, None]).sum(), xr)

    def fwd_bwd_layer():
        kept = []

        def start(mod, inputs, output):
            kept.append(output.detach().requires_grad_())
            return kept[-1]

        with frozen(model):
            handle = module.register_forward_hook(start)
            try:
                logits = model(x)
            finally:
                handle.remove()
            torch.autograd.grad(logits.gather(1, classes[:, None]).sum(), kept[-1])

    def fwd():
        with frozen(model), torch.no_grad():
            model(x)

    def occl_fwds():
        with frozen(model), torch.no_grad():
            model(x)
            for start in range(0, n_occl, occlusion_batch):
                model(chunk[:min(occlusion_batch, n_occl - start)])

    def fwd_bwd_times(n: int):
        """n forward + backward passes of the batch, as chunks of ``grad_batch`` rows (image, copy)."""
        rows = torch.arange(len(x) * n) // n

        def run():
            with frozen(model):
                for start in range(0, len(rows), grad_batch):
                    b = rows[start:start + grad_batch].to(x.device)
                    xr = x[b].detach().clone().requires_grad_()
                    torch.autograd.grad(model(xr).gather(1, classes[b, None]).sum(), xr)
        return run

    return {"fwd+bwd": fwd_bwd, "fwd+bwd@layer": fwd_bwd_layer, "fwd": fwd, "occl fwds": occl_fwds,
            "fwd+bwd x n": fwd_bwd_times(n_noise), "fwd+bwd x steps": fwd_bwd_times(n_steps)}


# ------------------------------------------------------------------------------------ timing
def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def clock(fn: Callable[[], object]) -> tuple[float, object]:
    sync()
    start = time.perf_counter()
    result = fn()
    sync()
    return time.perf_counter() - start, result


@dataclass
class Row:
    model: str
    pair: Pair
    batch: int
    agreement: Agreement
    t_vislib: float
    t_peer: float
    t_floor: float
    repeats: int
    peer_repeats: int


def measure(name: str, group: list[Pair], floor_fn, batch: int, repeats: int = 5, slow_repeats: int = 1,
            min_time: float = 1.0, max_repeats: int = 30) -> list[Row]:
    """Time one vislib method against every peer in ``group`` (pairs of the same method).

    One warm-up call of each (its maps are compared), then rounds of vislib, floor and each
    peer in turn, so that a drift of the machine's load hits all of them. At least ``repeats``
    rounds, more (up to ``max_repeats``) until vislib's calls add up to ``min_time`` seconds:
    short calls get more samples. A ``slow`` peer runs ``slow_repeats`` times (1: its warm-up
    call, made after vislib's, is its time). The times are medians.
    """
    run_vislib = group[0].vislib
    _, ours = clock(run_vislib)
    clock(floor_fn)
    agreements, peer_times = [], []
    for pair in group:
        t_first, theirs = clock(pair.other)
        agreements.append(agree(ours if pair.vislib is run_vislib else pair.vislib(), theirs, pair.raw))
        peer_times.append([t_first] if pair.slow and slow_repeats <= 1 else [])
    timed = [i for i, pair in enumerate(group) if pair.timed]
    tv, tf = [], []
    while timed and (len(tv) < repeats or (sum(tv) < min_time and len(tv) < max_repeats)):
        tv.append(clock(run_vislib)[0])
        tf.append(clock(floor_fn)[0])
        for i in timed:
            wanted = max(1, slow_repeats) if group[i].slow else math.inf
            if len(peer_times[i]) < wanted:
                peer_times[i].append(clock(group[i].other)[0])
    rows = []
    for pair, agreement, tp in zip(group, agreements, peer_times):
        if not pair.timed:
            rows.append(Row(name, pair, batch, agreement, math.nan, math.nan, math.nan, 0, 0))
        else:
            rows.append(Row(name, pair, batch, agreement, statistics.median(tv), statistics.median(tp),
                            statistics.median(tf), len(tv), len(tp)))
    return rows


# ------------------------------------------------------------------------------------ output
HEADER = ("method", "peer", "batch", "pearson", "max abs diff", "exact?", "n", "t vislib (s)", "t peer (s)",
          "vislib/peer", "floor", "vislib/floor", "notes")


def row_cells(row: Row) -> list[str]:
    p, a = row.pair, row.agreement
    exact = "yes" if a.exact else ("NO (!)" if p.exact else "no")
    cells = [p.method, p.peer, str(row.batch), f"{a.pearson:.4f}", f"{a.max_diff:.2e}", exact]
    if not p.timed:
        return cells + ["", "", "", "", "", "", NOTES[p.note]]
    peer_t = f"{row.t_peer:.3f}" + (f" (n={row.peer_repeats})" if row.peer_repeats != row.repeats else "")
    return cells + [str(row.repeats), f"{row.t_vislib:.3f}", peer_t, f"{row.t_vislib / row.t_peer:.2f}", p.floor,
                    f"{row.t_vislib / row.t_floor:.2f}", NOTES[p.note]]


#: The issue's speed targets: (method, peer, what is measured, the bound, how to read it).
TARGETS = [
    ("gradcam", "torch-cam", "vislib/floor", 1.1, "Grad-CAM within 1.1 x its floor (fwd+bwd@layer)"),
    ("gradcam", "torch-cam", "vislib/peer", 1.0, "Grad-CAM not slower than torch-cam"),
    ("fullgrad", "grad-cam", "vislib/floor", 1.5, "FullGrad within 1.5 x one fwd+bwd"),
    ("fullgrad", "grad-cam", "peer/floor", None, "pytorch-grad-cam's FullGrad / one fwd+bwd (context)"),
    ("ablation_cam", "grad-cam", "vislib/peer", 0.1, "Ablation-CAM at least 10 x faster than pytorch-grad-cam"),
    ("occlusion", "captum", "vislib/peer", 1 / 0.9, "occlusion at least 0.9 x captum's speed (time ratio <= 1.11)"),
    ("smoothgrad", "captum", "vislib/floor", 1.1, f"SmoothGrad within 1.1 x {N_NOISE} fwd+bwd (same chunks)"),
    ("integrated_gradients", "captum", "vislib/floor", 1.1, f"IG within 1.1 x {N_STEPS} fwd+bwd (same chunks)"),
    ("score_cam", "grad-cam", "vislib/peer", 1 / 3, "Score-CAM at least 3 x faster than pytorch-grad-cam"),
]


def target_lines(rows: list[Row]) -> list[str]:
    """One markdown row per target and model: the measured ratio and whether the bound holds."""
    lines = []
    for method, peer, what, bound, text in TARGETS:
        for row in rows:
            if row.pair.method != method or row.pair.peer != peer or not row.pair.timed:
                continue
            value = {"vislib/floor": row.t_vislib / row.t_floor, "vislib/peer": row.t_vislib / row.t_peer,
                     "peer/floor": row.t_peer / row.t_floor}[what]
            verdict = "" if bound is None else ("met" if value <= bound else f"MISSED by {value / bound:.2f} x")
            lines.append(f"| {row.model} | {text} | {what} = {value:.2f} | {verdict} |")
    return lines


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    model_name = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model_name}, {os.cpu_count()} logical CPUs"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version
    parts = [f"torch {torch.__version__}"]
    for dist in ("torchvision", "captum", "grad-cam", "torchcam"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} (not installed)")
    return ", ".join(parts)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: per model, see MODELS)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats after one warm-up (median)")
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="repeat short calls until vislib's add up to this many seconds (at most 30 repeats)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's default for this machine)")
    parser.add_argument("--slow-repeats", type=int, default=1,
                        help="repeats for pytorch-grad-cam's Ablation-CAM (1: its first call is timed)")
    parser.add_argument("--slow", action="store_true", help="also run pytorch-grad-cam's Ablation-CAM on vgg16_bn")
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--methods", nargs="+", default=None, help="only these vislib methods")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=None, help="also write the report (markdown) here")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\.")  # "required_grads has been set"
    if args.repeats < 5:
        print(f"note: {args.repeats} repeats (the results page uses at least 5)")

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    head = [f"machine: {machine()}; device: {device}"
            + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
            f"threads: torch.get_num_threads() = {torch.get_num_threads()}"
            f" (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})",
            f"versions: {versions()}",
            f"load average before: {loadavg()}",
            f"timing: median of n >= {args.repeats} rounds after one warm-up (short calls: more rounds, until "
            f"vislib's add up to {args.min_time:g} s, at most 30); vislib, floor and the method's peers interleaved"]
    print("\n".join(head), flush=True)
    report = ["\n".join(f"* {h}" for h in head)]
    start = time.perf_counter()
    all_rows: list[Row] = []
    for name in args.models:
        spec = MODELS[name]
        torch.manual_seed(0)
        model = spec.make().to(device).eval()
        batch = args.batch or spec.batch
        x = spec.images(batch, spec.size).to(device)
        with torch.no_grad():
            classes = model(x).argmax(1)
        fl = floors(model, x, classes, spec.layer, spec.patch, spec.stride)
        groups: dict[str, list[Pair]] = {}
        for pair in pairs(model, x, classes, spec.layer, spec.fc, spec.patch, spec.stride, args.peers, args.methods):
            if not args.slow and ((pair.slow and name == "vgg16_bn")
                                  or (pair.method == "score_cam" and name in ("resnet18", "vgg16_bn"))):
                print(f"  {name}: {pair.method} vs {pair.peer} skipped (minutes per call; --slow runs it)")
                continue
            groups.setdefault(pair.method, []).append(pair)
        rows = []
        for group in groups.values():
            for row in measure(name, group, fl[group[0].floor], batch, args.repeats, args.slow_repeats,
                               args.min_time):
                rows.append(row)
                print(f"  {name}: " + " | ".join(row_cells(row)[:12]), flush=True)
        all_rows += rows
        n_win = (math.ceil((spec.size - spec.patch) / spec.stride) + 1) ** 2
        title = (f"### {name} ({spec.size} px, batch {batch}, layer `{spec.layer}`, "
                 f"occlusion patch {spec.patch} stride {spec.stride} = {n_win} windows)")
        table = markdown_table(rows)
        print(f"\n{title}\n\n{table}\n", flush=True)
        report.append(f"{title}\n\n{table}")
    targets = "\n".join(["| model | target | measured | verdict |", "|---|---|---|---|"] + target_lines(all_rows))
    print(f"### targets\n\n{targets}\n")
    report.append(f"### targets\n\n{targets}")
    tail = f"load average after: {loadavg()}; total time {time.perf_counter() - start:.0f} s"
    print(tail)
    report[0] += f"\n* {tail}"
    if args.out is not None:
        args.out.write_text("\n\n".join(report) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
