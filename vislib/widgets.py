"""The notebooks' sliders: each widget is a thin ``ipywidgets`` layer over a plain function.

The functions that draw (:func:`occlusion_view`, :func:`cam_view`) take ordinary arguments and
return a matplotlib figure, so they are tested on their own and usable without Jupyter; the
explorers (:func:`occlusion_explorer`, :func:`cam_explorer`) only wire sliders and drop-downs to
them.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from torch import Tensor, nn

from . import attribution
from .checks import model_device
from .hooks import default_layer
from .maps import normalize
from .plot import overlay, show_image

#: Method names the Grad-CAM explorer offers, with their display names: every method of the
#: catalogue that takes ``layer=`` (:data:`vislib.attribution.CATALOGUE`).
CAM_METHODS = {r.name: r.display for r in attribution.CATALOGUE if r.takes_layer}
FILLS = ("mean", "black", "blur")


def _class_name(classes: Sequence[str] | None, c: int) -> str:
    return f"'{classes[c]}'" if classes is not None else str(c)


def _probabilities(model: nn.Module, image: Tensor) -> Tensor:
    device = model_device(model)
    with torch.no_grad():
        was = model.training
        model.eval()
        try:
            return model(image.unsqueeze(0).to(device)).softmax(1)[0].cpu()
        finally:
            model.train(was)


def occlusion_view(model: nn.Module, image: Tensor, *, patch: int = 8, stride: int = 4,
                   fill: str | float = "mean", target: int | None = None,
                   classes: Sequence[str] | None = None) -> tuple[plt.Figure, Tensor]:
    """Occlusion map of one image ``[3, H, W]`` drawn beside the image; returns ``(fig, map)``.

    The map is the raw score drop (pre-softmax logit) averaged over the windows covering each
    pixel; it is drawn with a symmetric colour scale, so red means "covering this lowers the
    class score" and blue "covering this raises it". ``target=None`` explains the predicted class.
    """
    probs = _probabilities(model, image)
    c = int(probs.argmax()) if target is None else int(target)
    m = attribution.occlusion(model, image.unsqueeze(0), c, patch=patch, stride=stride, fill=fill)[0].cpu()
    fig, (ax_img, ax_map) = plt.subplots(1, 2, figsize=(6.4, 3.0), layout="constrained")
    show_image(ax_img, image, f"image · p({_class_name(classes, c)}) = {probs[c]:.2f}")
    lim = max(m.abs().max().item(), 1e-8)
    overlay(ax_map, image, m, cmap="RdBu_r", vmin=-lim, vmax=lim, alpha=0.7, colorbar=True,
            label="drop of the class logit", title=f"Occlusion · class {_class_name(classes, c)}\n"
            f"patch {patch} px, stride {stride} px, fill {fill}")
    return fig, m


def cam_view(model: nn.Module, image: Tensor, *, method: str = "gradcam", layer: str | None = None,
             target: int | None = None, classes: Sequence[str] | None = None) -> tuple[plt.Figure, Tensor]:
    """A CAM-family map (``method`` in :data:`CAM_METHODS`) of one image; returns ``(fig, map)``."""
    if method not in CAM_METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {sorted(CAM_METHODS)}")
    probs = _probabilities(model, image)
    c = int(probs.argmax()) if target is None else int(target)
    fn = attribution.METHODS[method]
    m = fn(model, image.unsqueeze(0), c, layer=layer)[0].cpu()
    shown_layer = layer if layer is not None else default_layer(model)
    fig, (ax_img, ax_map) = plt.subplots(1, 2, figsize=(6.4, 3.0), layout="constrained")
    show_image(ax_img, image, f"image · p({_class_name(classes, c)}) = {probs[c]:.2f}")
    overlay(ax_map, image, normalize(m[None])[0], colorbar=True, label="saliency (min-max)",
            title=f"{CAM_METHODS[method]} · layer {shown_layer}\nclass {_class_name(classes, c)}")
    return fig, m


def _class_options(classes: Sequence[str] | None, num_classes: int) -> list[tuple[str, int | None]]:
    names = classes if classes is not None else [str(i) for i in range(num_classes)]
    return [("predicted class", None)] + [(f"{i}: {n}", i) for i, n in enumerate(names)]


def _num_classes(model: nn.Module, image: Tensor) -> int:
    return int(_probabilities(model, image).numel())


def occlusion_explorer(model: nn.Module, image: Tensor, classes: Sequence[str] | None = None, *,
                       max_patch: int | None = None):
    """Sliders for :func:`occlusion_view`: patch size, stride, fill value and target class."""
    import ipywidgets as W

    side = min(image.shape[-2:])
    max_patch = max_patch or side // 2
    controls = {
        "patch": W.IntSlider(value=min(8, max_patch), min=2, max=max_patch, step=1, description="patch (px)"),
        "stride": W.IntSlider(value=4, min=1, max=max_patch, step=1, description="stride (px)"),
        "fill": W.Dropdown(options=list(FILLS), value="mean", description="fill"),
        "target": W.Dropdown(options=_class_options(classes, _num_classes(model, image)), value=None,
                             description="class"),
    }

    def draw(patch, stride, fill, target):
        fig, _ = occlusion_view(model, image, patch=patch, stride=min(stride, patch), fill=fill,
                                target=target, classes=classes)
        plt.show()

    return W.interactive(draw, **controls)


def cam_explorer(model: nn.Module, image: Tensor, layers: Sequence[str], classes: Sequence[str] | None = None,
                 methods: Sequence[str] | None = None):
    """Drop-downs for :func:`cam_view`: layer, class and method (default: every layer method of the
    catalogue but CAM, which needs a GAP network; Grad-CAM first)."""
    import ipywidgets as W

    if methods is None:
        methods = ["gradcam"] + [m for m in CAM_METHODS if m not in ("gradcam", "cam")]
    controls = {
        "method": W.Dropdown(options=[(CAM_METHODS[m], m) for m in methods], value=methods[0], description="method"),
        "layer": W.Dropdown(options=list(layers), value=layers[-1], description="layer"),
        "target": W.Dropdown(options=_class_options(classes, _num_classes(model, image)), value=None,
                             description="class"),
    }

    def draw(method, layer, target):
        cam_view(model, image, method=method, layer=layer, target=target, classes=classes)
        plt.show()

    return W.interactive(draw, **controls)
