"""The method catalogue: one record per attribution method, the single source of every list.

:data:`CATALOGUE` holds, per method, its function, display name, whether it takes ``layer=``, its
plot colour, its paper and its cost. From it come :data:`vislib.attribution.METHODS`,
:data:`vislib.attribution.LAYER_METHODS`, the widgets' method choices
(:data:`vislib.widgets.CAM_METHODS`), :data:`vislib.plot.METHOD_COLOURS` and the registry tests.
**Adding a method = one function + one record here.**

Colours: chosen from the Okabe-Ito palette (Okabe & Ito 2008) and Paul Tol's bright, high-contrast, vibrant,
muted, dark and light palettes (Tol 2021, "Colour schemes", SRON/EPS/TN/09-002), none too light
for a line on white, to be far apart for everyone: any two of them differ by CIELAB
Delta E >= 8 with normal vision and under simulated protanopia, deuteranopia and tritanopia
(Machado et al. 2009, severity 1; ``tests/test_plot.py`` checks it). Grey is the random
baseline's alone. Families share a hue range where that allows: blues for input gradients,
oranges and reds for the gradient CAMs, purples for the perturbation CAMs, greens for FullGrad.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from .averaged import integrated_gradients, smoothgrad
from .baselines import random, sobel
from .cam_variants import eigencam, hirescam, layercam, score_cam, xgradcam
from .cams import ablation_cam, cam, gradcam, gradcam_pp, guided_gradcam
from .fullgrad import fullgrad, simple_fullgrad
from .gradients import deconvnet, gradient, guided_backprop, input_x_gradient
from .occlusion import occlusion


@dataclass(frozen=True)
class MethodRecord:
    """One attribution method: ``fn(model, images, target=None, **options) -> Tensor[B, H, W]``."""

    name: str                     #: the registry key (``METHODS[name]``)
    fn: Callable[..., Tensor]     #: the method
    display: str                  #: its name for people (figure titles, drop-downs)
    takes_layer: bool             #: reads one layer and takes ``layer=``
    colour: str                   #: its line colour in every curve of the course (hex)
    paper: str                    #: where it comes from ("" for the controls)
    cost: str                     #: what one call costs, in passes of the batch
    uses_model: bool = True       #: False for the model-free controls (random, sobel)
    class_specific: bool = True   #: False where the target does not change the map (EigenCAM)
    marker: str = "o"             #: its marker in every curve (no two methods share marker and line style)
    linestyle: str = "-"          #: its line style in every curve


CATALOGUE: tuple[MethodRecord, ...] = (
    MethodRecord("gradient", gradient, "Gradient", False, "#4477AA",
                 "Simonyan, Vedaldi & Zisserman 2014, arXiv 1312.6034", "1 forward + 1 backward",
                 marker="o", linestyle="-"),
    MethodRecord("input_x_gradient", input_x_gradient, "Gradient × input", False, "#33BBEE",
                 "Shrikumar et al. 2016, arXiv 1605.01713", "1 forward + 1 backward", marker="s", linestyle="-"),
    MethodRecord("guided_backprop", guided_backprop, "Guided backprop", False, "#CC79A7",
                 "Springenberg et al. 2015, arXiv 1412.6806", "1 forward + 1 backward", marker="^", linestyle="-."),
    MethodRecord("deconvnet", deconvnet, "Deconvnet", False, "#004488",
                 "Zeiler & Fergus 2014, arXiv 1311.2901", "1 forward + 1 backward", marker="v", linestyle="-."),
    MethodRecord("smoothgrad", smoothgrad, "SmoothGrad", False, "#332288",
                 "Smilkov et al. 2017, arXiv 1706.03825", "n forward + n backward (n = 25)",
                 marker="1", linestyle=":"),
    MethodRecord("integrated_gradients", integrated_gradients, "Integrated gradients", False, "#222255",
                 "Sundararajan, Taly & Yan 2017, arXiv 1703.01365", "steps forward + backward (steps = 32)",
                 marker="P", linestyle=":"),
    MethodRecord("occlusion", occlusion, "Occlusion", False, "#000000",
                 "Zeiler & Fergus 2014, arXiv 1311.2901", "1 + windows forwards per image",
                 marker="X", linestyle="-"),
    MethodRecord("cam", cam, "CAM", True, "#CCBB44",
                 "Zhou et al. 2016, arXiv 1512.04150", "1 forward", marker="<", linestyle="--"),
    MethodRecord("gradcam", gradcam, "Grad-CAM", True, "#E69F00",
                 "Selvaraju et al. 2017, arXiv 1610.02391", "1 forward + backward to the layer",
                 marker=">", linestyle="-"),
    MethodRecord("guided_gradcam", guided_gradcam, "Guided Grad-CAM", True, "#EE8866",
                 "Selvaraju et al. 2017, arXiv 1610.02391", "guided backprop + Grad-CAM", marker="p", linestyle="-."),
    MethodRecord("gradcam_pp", gradcam_pp, "Grad-CAM++", True, "#D55E00",
                 "Chattopadhyay et al. 2018, arXiv 1710.11063", "1 forward + backward to the layer",
                 marker="h", linestyle="--"),
    MethodRecord("xgradcam", xgradcam, "XGrad-CAM", True, "#EE7733",
                 "Fu et al. 2020, arXiv 2008.02312", "1 forward + backward to the layer", marker="H", linestyle=":"),
    MethodRecord("layercam", layercam, "LayerCAM", True, "#CC3311",
                 "Jiang et al. 2021, IEEE TIP 30:5875", "1 forward + backward to the layer",
                 marker="*", linestyle="-."),
    MethodRecord("hirescam", hirescam, "HiResCAM", True, "#663333",
                 "Draelos & Carin 2020, arXiv 2011.08891", "1 forward + backward to the layer",
                 marker="8", linestyle="--"),
    MethodRecord("ablation_cam", ablation_cam, "Ablation-CAM", True, "#882255",
                 "Desai & Ramaswamy 2020, WACV", "1 forward + K ablations after the layer",
                 marker="2", linestyle="--"),
    MethodRecord("score_cam", score_cam, "Score-CAM", True, "#AA4499",
                 "Wang et al. 2020, arXiv 1910.01279", "2 forwards + K masked forwards per image",
                 marker="x", linestyle=":"),
    MethodRecord("eigencam", eigencam, "EigenCAM", True, "#225522",
                 "Muhammad & Yeasin 2020, arXiv 2008.00299", "1 forward + an SVD per image",
                 class_specific=False, marker="+", linestyle="-."),
    MethodRecord("fullgrad", fullgrad, "FullGrad", False, "#009E73",
                 "Srinivas & Fleuret 2019, arXiv 1905.00780", "1 forward + 1 backward", marker="D", linestyle="-"),
    MethodRecord("simple_fullgrad", simple_fullgrad, "Simple FullGrad", False, "#44BB99",
                 "Srinivas & Fleuret 2019, arXiv 1905.00780", "1 forward + 1 backward", marker="d", linestyle="--"),
    MethodRecord("random", random, "Random", False, "#666666",
                 "", "none (seeded noise)", uses_model=False, class_specific=False, marker="", linestyle="--"),
    MethodRecord("sobel", sobel, "Sobel edges", False, "#117733",
                 "", "none (edge map)", uses_model=False, class_specific=False, marker="3", linestyle=":"),
)

#: Records by name.
RECORDS: dict[str, MethodRecord] = {r.name: r for r in CATALOGUE}


def method_table() -> str:
    """The catalogue as a markdown table (name, method, paper, layer?, cost): for the README."""
    lines = ["| name | method | paper | `layer=` | cost |", "|---|---|---|---|---|"]
    for r in CATALOGUE:
        lines.append(f"| `{r.name}` | {r.display} | {r.paper or 'control'} | {'yes' if r.takes_layer else ''} "
                     f"| {r.cost} |")
    return "\n".join(lines)


__all__ = ["CATALOGUE", "MethodRecord", "RECORDS", "method_table"]
