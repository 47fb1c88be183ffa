"""The figure standard: sizes, fonts, names and line styles every figure of the course follows.

A report page has two widths a figure can take: one column (:data:`COLUMN_WIDTH`, 3.4 in) and the
full text width (:data:`FULL_WIDTH`, 7 in). A figure is made at the size it will be printed, so
its fonts are what the reader sees: nothing below :data:`MIN_FONT_PT` (7 pt, the smallest size
journals accept in figures). :func:`vislib.plot.savefig` measures every saved figure against
these numbers and refuses one that breaks them (:mod:`vislib.plot`).

What this module gives a notebook:

- :func:`figure`: ``plt.subplots`` at one of the two widths, constrained layout;
- :func:`method_style` / :func:`method_styles`: each method's colour, marker, line style and name
  for people, the same in every curve of the course (from :data:`vislib.attribution.CATALOGUE`);
- :func:`method_name`, :func:`layer_name`, :func:`metric_label`: names for people
  (``"Gradient × input"``, ``"conv 3 (features.8)"``, ``"SSIM (higher = more similar)"``);
- :func:`panel_letters`: **a**, **b**, ... on the panels of a multi-panel figure;
- :func:`image_axes`: an image panel without spines or ticks;
- :func:`legend_below` / :func:`legend_right`: a legend off the data;
- :func:`mean_band`: a mean curve with its confidence band (more than one image or seed).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from torch import nn

from .attribution.catalogue import CATALOGUE, RECORDS

#: One column of a two-column report page, and the full text width (inches).
COLUMN_WIDTH = 3.4
FULL_WIDTH = 7.0
#: The tallest figure that fits a page with its caption (inches).
MAX_HEIGHT = 9.0
#: The smallest text a saved figure may hold (points, at the saved size).
MIN_FONT_PT = 7.0
#: Slack on the size limits (inches): a tight bounding box rounds to whole pixels.
SIZE_SLACK_IN = 0.03
Width = Literal["column", "full"]
WIDTHS = {"column": COLUMN_WIDTH, "full": FULL_WIDTH}

#: The house style: sizes for a figure printed at its own size, mathtext for symbols, no top/right
#: spines, nearest-neighbour images (a 64 px map shows its pixels), TrueType in PDFs.
HOUSE_STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "figure.titlesize": 9,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlepad": 3.0,
    "legend.frameon": False,
    "mathtext.fontset": "dejavusans",
    "image.interpolation": "nearest",
    "pdf.fonttype": 42,
    "figure.constrained_layout.h_pad": 0.02,
    "figure.constrained_layout.w_pad": 0.02,
}


def use_style() -> None:
    """Apply the house style to matplotlib globally (every notebook calls it once)."""
    mpl.rcParams.update(HOUSE_STYLE)


def width_inches(width: Width | float) -> float:
    """``"column"`` -> 3.4, ``"full"`` -> 7.0, inches as they are; wider than the full width is an error."""
    if isinstance(width, str):
        if width not in WIDTHS:
            raise ValueError(f"width must be 'column', 'full' or inches, got {width!r}")
        return WIDTHS[width]
    w = float(width)
    if not 0 < w <= FULL_WIDTH + 1e-9:
        raise ValueError(f"a figure may be at most the full text width, {FULL_WIDTH} in, and wider than 0; got {w} in")
    return w


def figure(width: Width | float = "full", height: float | None = None, *, nrows: int = 1, ncols: int = 1,
           aspect: float = 0.75, **subplots_kw):
    """``plt.subplots`` at a report width: ``"column"`` (3.4 in), ``"full"`` (7 in) or inches.

    ``height`` defaults to ``aspect`` x the width of one panel x ``nrows``; the layout is
    constrained, so titles, labels and colour bars stay inside the figure. Returns ``(fig, axes)``
    as ``plt.subplots`` does (``squeeze`` as given, default True).
    """
    w = width_inches(width)
    h = height if height is not None else min(MAX_HEIGHT, aspect * w / ncols * nrows)
    subplots_kw.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(w, h), **subplots_kw)


# ----------------------------------------------------------------------------------- names
def method_name(method: str) -> str:
    """A method's name for people: ``"input_x_gradient"`` -> ``"Gradient × input"``.

    Absolute-value variants keep their bars (``"|input_x_gradient|"`` -> ``"|Gradient × input|"``);
    names outside the catalogue are returned as they are.
    """
    core = method.strip("| ")
    if core in RECORDS:
        name = RECORDS[core].display
        return f"|{name}|" if method.startswith("|") else name
    return method


def _marker_cycle() -> Iterable[tuple[str, str]]:
    """(marker, line style) pairs no catalogue method uses, for names outside the catalogue."""
    used = {(r.marker, r.linestyle) for r in CATALOGUE}
    for linestyle in ("-", "--", "-.", ":"):
        for marker in ("o", "s", "^", "v", "D", "P", "X", "<", ">", "p", "h", "*"):
            if (marker, linestyle) not in used:
                yield marker, linestyle


#: Colours for methods outside the catalogue: Okabe-Ito and Tol colours the catalogue does not
#: use first, then tab10 without its grey. Cycles only after 14 unknown names in one plot.
OTHER_COLOURS = ("#0072B2", "#56B4E9", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                 "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#000080", "#8b0000", "#006400")


def method_styles(methods: Sequence[str]) -> dict[str, dict]:
    """Line style of each method of one plot: ``{method: {"color", "marker", "linestyle", "label"}}``.

    Catalogue methods keep their colour, marker and line style in every figure of the course (also
    when written as an absolute value, ``"|input_x_gradient|"``, which is dotted); other names take
    colours and (marker, line style) pairs that no method of the catalogue has. Only ``"random"``
    is grey. ``label`` is the name for people (:func:`method_name`). Pass a style to ``ax.plot``
    as ``**style``.
    """
    taken = {r.colour.upper() for r in CATALOGUE}
    colours = iter([c for c in OTHER_COLOURS if c.upper() not in taken] * (len(methods) + 1))
    pairs = iter(list(_marker_cycle()) * (len(methods) + 1))
    styles = {}
    for method in methods:
        core = method.strip("| ")
        if core in RECORDS:
            r = RECORDS[core]
            style = {"color": r.colour, "marker": r.marker, "linestyle": r.linestyle}
            if method != core:
                style["linestyle"] = ":"
        else:
            marker, linestyle = next(pairs)
            style = {"color": next(colours), "marker": marker, "linestyle": linestyle}
        style["label"] = method_name(method)
        styles[method] = style
    return styles


def method_style(method: str) -> dict:
    """:func:`method_styles` of one method."""
    return method_styles([method])[method]


#: Which way is better, said on every metric axis (see :func:`metric_label`).
DIRECTIONS = {"higher": "↑ better", "lower": "↓ better", "zero": "0 is best", "none": ""}


def metric_label(label: str, better: Literal["higher", "lower", "zero", "none"]) -> str:
    """An axis label that says which direction is better: ``"IoU (↑ better)"``.

    ``better`` is ``"higher"``, ``"lower"``, ``"zero"`` (a signed quantity whose best value is 0)
    or ``"none"`` (a description, not a score).
    """
    if better not in DIRECTIONS:
        raise ValueError(f"better must be one of {list(DIRECTIONS)}, got {better!r}")
    note = DIRECTIONS[better]
    return f"{label} ({note})" if note else label


def layer_name(model: nn.Module, layer: str) -> str:
    """A layer's name for people, with its module path: ``"conv 3 (features.8)"``.

    Convolutions and fully connected layers are counted in the order the model registers them; a
    ReLU, pooling, batch-norm, dropout or flatten layer is named after the layer before it (``"conv 3
    ReLU (features.9)"``, ``"pool after conv 4 (features.13)"``, ``"fc 2 dropout (classifier.6)"``);
    a ResNet stage or block by its number (``"stage 3 (layer3)"``, ``"stage 3 block 2 (layer3.1)"``);
    anything else keeps its path.
    Raises ``ValueError`` listing the valid names for an unknown layer.
    """
    modules = dict(model.named_modules())
    if layer not in modules:
        valid = [n for n in modules if n]
        raise ValueError(f"unknown layer {layer!r}; valid layers: {valid}")
    counts = {"conv": 0, "fc": 0}
    last = ""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            counts["conv"] += 1
            last = f"conv {counts['conv']}"
        elif isinstance(module, nn.Linear):
            counts["fc"] += 1
            last = f"fc {counts['fc']}"
        if name != layer:
            continue
        parts = name.split(".")
        stage = next((k for k, p in enumerate(parts) if p.startswith("layer") and p[5:].isdigit()), None)
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            human = last
        elif isinstance(module, (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU)) and last:
            human = f"{last} ReLU"
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)) and last:
            human = f"pool after {last}"
        elif isinstance(module, nn.BatchNorm2d) and last:
            human = f"{last} BN"
        elif isinstance(module, nn.Dropout) and last:
            human = f"{last} dropout"
        elif isinstance(module, nn.Flatten) and last:
            human = f"flattened after {last}"
        elif stage is not None and stage == len(parts) - 1:
            human = f"stage {parts[stage][5:]}"
        elif stage is not None and stage == len(parts) - 2 and parts[-1].isdigit():
            human = f"stage {parts[stage][5:]} block {int(parts[-1]) + 1}"
        else:
            return name
        return f"{human} ({name})"
    return layer  # pragma: no cover (the layer was found above)


# ---------------------------------------------------------------------------------- panels
def image_axes(ax: plt.Axes) -> plt.Axes:
    """An image panel: no ticks, no spines (a y label, such as a row label, stays visible)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return ax


def panel_letters(axes: Sequence[plt.Axes] | np.ndarray, *, start: str = "a", x: float = -0.02,
                  y: float = 1.02, size: float = 9.0) -> None:
    """Write **a**, **b**, ... at the top left, just outside, of each panel (in the given order)."""
    axs = list(np.ravel(np.asarray(axes, dtype=object)))
    for k, ax in enumerate(axs):
        ax.text(x, y, chr(ord(start) + k), transform=ax.transAxes, fontsize=size, fontweight="bold",
                ha="right", va="bottom")


def legend_below(fig: plt.Figure, axes=None, *, ncol: int | None = None, title: str | None = None, **kw):
    """One legend for the figure, centred below the panels (handles from ``axes`` or every panel)."""
    handles, labels = _handles(fig, axes)
    ncol = ncol or min(len(labels), 4)
    return fig.legend(handles, labels, loc="outside lower center", ncol=ncol, title=title, **kw)


def legend_right(fig: plt.Figure, axes=None, *, title: str | None = None, **kw):
    """One legend for the figure, to the right of the panels."""
    handles, labels = _handles(fig, axes)
    return fig.legend(handles, labels, loc="outside right center", title=title, **kw)


def _handles(fig: plt.Figure, axes) -> tuple[list, list[str]]:
    axs = fig.axes if axes is None else list(np.ravel(np.asarray(axes, dtype=object)))
    seen: dict[str, object] = {}
    for ax in axs:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if not label.startswith("_"):
                seen.setdefault(label, h)
    return list(seen.values()), list(seen)


def mean_band(ax: plt.Axes, x, mean, low=None, high=None, *, method: str | None = None, alpha: float = 0.18,
              **plot_kw):
    """Plot ``mean`` against ``x`` with a band from ``low`` to ``high`` (a confidence interval or
    +- one sd); with ``method`` the line takes that method's style. Returns the line."""
    style = method_style(method) if method is not None else {}
    style.update(plot_kw)
    (line,) = ax.plot(np.asarray(x), np.asarray(mean), **style)
    if low is not None and high is not None:
        ax.fill_between(np.asarray(x), np.asarray(low), np.asarray(high), color=line.get_color(), alpha=alpha,
                        linewidth=0)
    return line


__all__ = ["COLUMN_WIDTH", "FULL_WIDTH", "MAX_HEIGHT", "MIN_FONT_PT", "HOUSE_STYLE", "use_style", "figure",
           "width_inches",
           "method_name", "method_style", "method_styles", "metric_label", "layer_name", "image_axes",
           "panel_letters", "legend_below", "legend_right", "mean_band"]
