"""The notebooks' sliders: each widget is a thin ``ipywidgets`` layer over a plain function.

The functions that draw (:func:`occlusion_view`, :func:`cam_view`) take ordinary arguments and
return a matplotlib figure, so they are tested on their own and usable without Jupyter; the
explorers (:func:`occlusion_explorer`, :func:`cam_explorer`) only wire sliders and drop-downs to
them. An explorer draws every update into one figure, which it reuses (or, under the inline
backend, whose ``plt.show()`` closes it, replaces), so moving a slider never piles up figures.
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
from .style import layer_name

#: Method names the Grad-CAM explorer offers, with their display names: every method of the
#: catalogue that takes ``layer=`` (:data:`vislib.attribution.CATALOGUE`).
CAM_METHODS = {r.name: r.display for r in attribution.CATALOGUE if r.takes_layer}
FILLS = ("mean", "black", "blur")


#: Size of the explorers' figures (image and map side by side), in inches.
VIEW_FIGSIZE = (6.4, 3.0)


def _two_panels(fig: plt.Figure | None) -> tuple[plt.Figure, plt.Axes, plt.Axes]:
    """A figure with an image panel and a map panel: a new one, or ``fig`` cleared and redrawn.

    Reusing one figure is what keeps an explorer from piling up figures under a backend whose
    ``plt.show()`` does not close them (Agg, a GUI backend, ipympl).
    """
    if fig is None:
        fig = plt.figure(figsize=VIEW_FIGSIZE, layout="constrained")
    else:
        fig.clear()
    ax_img, ax_map = fig.subplots(1, 2)
    return fig, ax_img, ax_map


class _FigureSlot:
    """The one figure an explorer draws into, reused across updates while it is still open.

    Under the inline backend ``plt.show()`` displays and closes the figure, so the next update
    makes a new one; under every other backend the same figure is cleared and redrawn, so an
    explorer never holds more than one figure, however often its sliders move.
    """

    def __init__(self) -> None:
        self.fig: plt.Figure | None = None

    def get(self) -> plt.Figure | None:
        if self.fig is not None and not plt.fignum_exists(self.fig.number):
            self.fig = None                          # closed by plt.show() (inline) or by the user
        return self.fig

    def show(self, fig: plt.Figure) -> None:
        self.fig = fig
        plt.show()


def _class_name(classes: Sequence[str] | None, c: int) -> str:
    return f"'{classes[c]}'" if classes is not None else str(c)


def _image_title(probs: Tensor, c: int, classes: Sequence[str] | None) -> str:
    """The image panel's title: the model's probability of the explained class, ``image · $p_c$ = 0.97``."""
    return f"image · $p_c$ = {probs[c]:.2f}\nclass {_class_name(classes, c)}"


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
                   classes: Sequence[str] | None = None,
                   fig: plt.Figure | None = None) -> tuple[plt.Figure, Tensor]:
    """Occlusion map of one image ``[3, H, W]`` drawn beside the image; returns ``(fig, map)``.

    The map is the raw score drop (pre-softmax logit) averaged over the windows covering each
    pixel; it is drawn with a symmetric colour scale, so red means "covering this lowers the
    class score" and blue "covering this raises it". ``target=None`` explains the predicted class.
    ``fig``: a figure to clear and draw into (the explorer reuses one); ``None`` makes a new one.
    """
    probs = _probabilities(model, image)
    c = int(probs.argmax()) if target is None else int(target)
    m = attribution.occlusion(model, image.unsqueeze(0), c, patch=patch, stride=stride, fill=fill)[0].cpu()
    fig, ax_img, ax_map = _two_panels(fig)
    show_image(ax_img, image, _image_title(probs, c, classes))
    lim = max(m.abs().max().item(), 1e-8)
    overlay(ax_map, image, m, cmap="RdBu_r", vmin=-lim, vmax=lim, alpha=0.7, colorbar=True,
            label="drop of the class logit", title=f"Occlusion · class {_class_name(classes, c)}\n"
            f"patch {patch} px, stride {stride} px, fill {fill}")
    return fig, m


def cam_view(model: nn.Module, image: Tensor, *, method: str = "gradcam", layer: str | None = None,
             target: int | None = None, classes: Sequence[str] | None = None,
             fig: plt.Figure | None = None) -> tuple[plt.Figure, Tensor]:
    """A CAM-family map (``method`` in :data:`CAM_METHODS`) of one image; returns ``(fig, map)``.

    ``fig``: a figure to clear and draw into (the explorer reuses one); ``None`` makes a new one.
    """
    if method not in CAM_METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {sorted(CAM_METHODS)}")
    probs = _probabilities(model, image)
    c = int(probs.argmax()) if target is None else int(target)
    fn = attribution.METHODS[method]
    m = fn(model, image.unsqueeze(0), c, layer=layer)[0].cpu()
    shown_layer = layer if layer is not None else default_layer(model)
    fig, ax_img, ax_map = _two_panels(fig)
    show_image(ax_img, image, _image_title(probs, c, classes))
    overlay(ax_map, image, normalize(m[None])[0], colorbar=True, label="saliency (min-max)",
            title=f"{CAM_METHODS[method]} · {layer_name(model, shown_layer)}\nclass {_class_name(classes, c)}")
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

    slot = _FigureSlot()

    def draw(patch, stride, fill, target):
        fig, _ = occlusion_view(model, image, patch=patch, stride=min(stride, patch), fill=fill,
                                target=target, classes=classes, fig=slot.get())
        slot.show(fig)

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
        "layer": W.Dropdown(options=[(layer_name(model, name), name) for name in layers], value=layers[-1],
                            description="layer"),
        "target": W.Dropdown(options=_class_options(classes, _num_classes(model, image)), value=None,
                             description="class"),
    }

    slot = _FigureSlot()

    def draw(method, layer, target):
        fig, _ = cam_view(model, image, method=method, layer=layer, target=target, classes=classes,
                          fig=slot.get())
        slot.show(fig)

    return W.interactive(draw, **controls)
