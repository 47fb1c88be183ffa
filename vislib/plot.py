"""Figures for people: one house style, labelled maps with colour bars, and ``savefig``.

Every figure of the course goes through :func:`savefig`, which writes ``figs/<name>.png`` (for
slides and the README) and ``figs/<name>.pdf`` (vector, for reports).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from torch import Tensor

from . import config
from .attribution.catalogue import CATALOGUE
from .maps import normalize

#: The house style: readable at report size, no top/right spines, tight layout.
HOUSE_STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.interpolation": "nearest",
    "pdf.fonttype": 42,
}
#: Colour map for non-negative saliency, and for signed maps.
CMAP = "inferno"
CMAP_SIGNED = "RdBu_r"

#: One colour per attribution method, the same in every curve of the course (pixel perturbation,
#: ROAR, sanity checks), so a reader can compare figures: derived from the method catalogue
#: (:data:`vislib.attribution.CATALOGUE`, colour-blind-safe palettes), all distinct; grey belongs
#: to the random baseline alone.
METHOD_COLOURS = {r.name: r.colour for r in CATALOGUE}
#: Colours for methods outside the table: tab10 without its grey, darker extras, then tab20's
#: light shades (no grey among them). Cycles only after 23 unknown names in one plot.
OTHER_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
                 "#17becf", "#000080", "#8b0000", "#006400", "#ff1493", "#4b0082", "#aec7e8", "#ffbb78",
                 "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5")


def method_styles(methods: Sequence[str]) -> dict[str, dict]:
    """Line style of each method in one curve plot: ``{method: {"color", "linestyle"}}``.

    Methods of :data:`METHOD_COLOURS` keep their colour (also when written as an absolute value,
    ``'|input_x_gradient|'``); any other name takes the next colour of :data:`OTHER_COLOURS` that
    no method of this plot uses yet. Only ``'random'`` is grey and dashed.
    """
    known = {m: METHOD_COLOURS[m.strip("| ")] for m in methods if m.strip("| ") in METHOD_COLOURS}
    taken = {mpl.colors.to_hex(c) for c in known.values()}
    spare = iter([c for c in OTHER_COLOURS if c not in taken] * (len(methods) + 1))
    styles = {}
    for method in methods:
        colour = known[method] if method in known else next(spare)
        styles[method] = {"color": colour, "linestyle": "--" if method == "random" else "-"}
    return styles


def use_style() -> None:
    """Apply the house style to matplotlib globally (the notebooks call it once)."""
    mpl.rcParams.update(HOUSE_STYLE)


def _np_image(image: Tensor | np.ndarray) -> np.ndarray:
    """``[3, H, W]`` tensor (or HWC array) in [0, 1] → ``[H, W, 3]`` float numpy array."""
    if isinstance(image, Tensor):
        image = image.detach().float().cpu()
        if image.dim() == 4 and image.shape[0] == 1:
            image = image[0]
        if image.dim() == 3 and image.shape[0] in (1, 3):
            image = image.permute(1, 2, 0)
        image = image.numpy()
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    return np.clip(image, 0, 1)


def _np_map(m: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(m, Tensor):
        m = m.detach().float().cpu().numpy()
    return np.asarray(m, dtype=np.float32)


def show_image(ax: plt.Axes, image: Tensor | np.ndarray, title: str | None = None) -> None:
    """Draw an image in [0, 1] without axes ticks."""
    ax.imshow(_np_image(image), interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


def overlay(ax: plt.Axes, image: Tensor | np.ndarray | None, saliency: Tensor | np.ndarray, *,
            alpha: float = 0.55, cmap: str = CMAP, vmin: float | None = 0.0, vmax: float | None = 1.0,
            title: str | None = None, colorbar: bool = False, label: str = "saliency"):
    """Lay a saliency map ``[H, W]`` over ``image`` (grey-scaled underneath) and return the mappable.

    The map is drawn as it is: normalise it first (:func:`vislib.normalize`) for a [0, 1] scale.
    With ``image=None`` only the map is drawn.
    """
    if image is not None:
        img = _np_image(image)
        grey = img.mean(axis=2) if img.ndim == 3 else img
        ax.imshow(grey, cmap="gray", vmin=0, vmax=1, interpolation="bilinear")
    m = ax.imshow(_np_map(saliency), cmap=cmap, alpha=alpha if image is not None else 1.0,
                  vmin=vmin, vmax=vmax, interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    if colorbar:
        cb = ax.figure.colorbar(m, ax=ax, fraction=0.046, pad=0.03)
        cb.set_label(label)
    return m


def map_grid(
    images: Tensor,
    maps: Mapping[str, Tensor],
    *,
    row_labels: Sequence[str] | None = None,
    suptitle: str | None = None,
    normalize_maps: bool = True,
    overlay_image: bool = True,
    cmap: str = CMAP,
    cell: float = 1.6,
) -> plt.Figure:
    """A grid: one row per image, the image first and then one column per method.

    ``maps`` maps a column title (say ``"Grad-CAM (features.16)"``) to a ``[B, H, W]`` tensor.
    Maps are rescaled per image to [0, 1] unless ``normalize_maps=False``; one colour bar on the
    right gives the scale. ``row_labels`` (e.g. ``"true: star / pred: star"``) go on the left.
    """
    n = images.shape[0]
    cols = 1 + len(maps)
    fig, axes = plt.subplots(n, cols, figsize=(cell * cols + 0.8, cell * n + (0.4 if suptitle else 0)),
                             squeeze=False, layout="constrained")
    mappable = None
    for i in range(n):
        show_image(axes[i, 0], images[i], "image" if i == 0 else None)
        if row_labels is not None:
            axes[i, 0].set_ylabel(row_labels[i])
        for j, (name, m) in enumerate(maps.items(), start=1):
            mi = m[i:i + 1]
            mi = normalize(mi)[0] if normalize_maps else mi[0]
            vmin, vmax = (0.0, 1.0) if normalize_maps else (None, None)
            mappable = overlay(axes[i, j], images[i] if overlay_image else None, mi, cmap=cmap,
                               vmin=vmin, vmax=vmax, title=name if i == 0 else None)
    if mappable is not None:
        cb = fig.colorbar(mappable, ax=axes[:, -1], fraction=0.05, pad=0.02, shrink=0.9)
        cb.set_label("saliency (per-image min-max)" if normalize_maps else "saliency")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def image_grid(images: Tensor, titles: Sequence[str] | None = None, *, ncols: int = 8,
               suptitle: str | None = None, cell: float = 1.3) -> plt.Figure:
    """A grid of images ``[N, 3, H, W]`` with optional per-image titles."""
    n = images.shape[0]
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, cell * nrows + 0.3),
                             squeeze=False, layout="constrained")
    for k, ax in enumerate(axes.flat):
        if k < n:
            show_image(ax, images[k], titles[k] if titles is not None else None)
        else:
            ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def filter_grid(weights: Tensor, *, ncols: int = 8, suptitle: str | None = None,
                cell: float = 0.9) -> plt.Figure:
    """First-layer filters ``[C_out, 3, k, k]`` as small RGB images, or ``[C_out, 1, k, k]`` in grey.

    Each RGB filter is rescaled on its own to [0, 1] (so mid-grey is zero weight only when the
    filter is symmetric around zero); grey filters share one symmetric colour scale with a bar.
    """
    w = weights.detach().float().cpu()
    n = w.shape[0]
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols + 0.6, cell * nrows + 0.4),
                             squeeze=False, layout="constrained")
    rgb = w.shape[1] == 3
    lim = w.abs().max().item() or 1.0
    mappable = None
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.axis("off")
            continue
        f = w[k]
        if rgb:
            f = (f - f.min()) / (f.max() - f.min() + 1e-12)
            ax.imshow(f.permute(1, 2, 0).numpy())
        else:
            mappable = ax.imshow(f[0].numpy(), cmap=CMAP_SIGNED, vmin=-lim, vmax=lim)
        ax.set_title(str(k), fontsize=7, pad=2)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, fraction=0.04, pad=0.02).set_label("weight")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def feature_maps(activations: Tensor, *, n: int = 16, ncols: int = 8, suptitle: str | None = None,
                 cell: float = 1.0, channels: Sequence[int] | None = None) -> plt.Figure:
    """The first ``n`` channels (or ``channels``) of one image's activations ``[C, h, w]``.

    All channels share one colour scale (0 to the largest shown value) and one colour bar, so a
    dark map means a weak response, not a rescaled one.
    """
    a = activations.detach().float().cpu()
    idx = list(channels) if channels is not None else list(range(min(n, a.shape[0])))
    ncols = min(ncols, len(idx))
    nrows = math.ceil(len(idx) / ncols)
    vmax = max(a[idx].max().item(), 1e-12)
    vmin = min(a[idx].min().item(), 0.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols + 0.8, cell * nrows + 0.4),
                             squeeze=False, layout="constrained")
    mappable = None
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= len(idx):
            ax.axis("off")
            continue
        mappable = ax.imshow(a[idx[k]].numpy(), cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(f"ch {idx[k]}", fontsize=7, pad=2)
    fig.colorbar(mappable, ax=axes, fraction=0.04, pad=0.02).set_label("activation")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


#: Extensions a figure name may carry; :func:`savefig` drops them (any case) and writes PNG and PDF.
_OWN_EXTENSIONS = {".png", ".pdf"}
#: Image extensions :func:`savefig` does not write: a name ending in one is an error, not ``x.jpg.png``.
_OTHER_EXTENSIONS = {".jpg", ".jpeg", ".svg", ".svgz", ".eps", ".ps", ".tif", ".tiff", ".gif", ".webp", ".bmp",
                     ".pgf", ".raw", ".rgba"}


def _figure_stem(name: str) -> str:
    """The file stem of a figure name: ``"x.PNG"`` -> ``"x"``; refuses folders and foreign formats."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as '03_saliency', got {type(name).__name__}")
    if "/" in name or "\\" in name:
        raise ValueError(f"name must be a file name without a folder, like '03_saliency', got {name!r}; "
                         "use folder= to choose the folder")
    suffix = name[name.rindex("."):].lower() if "." in name else ""   # also for ".png" (Path calls that a stem)
    if suffix in _OWN_EXTENSIONS:
        name = name[: -len(suffix)]
    elif suffix in _OTHER_EXTENSIONS:
        raise ValueError(f"savefig writes PNG and PDF only; got the name {name!r} (a {suffix} file). "
                         "Give a stem like '03_saliency' (or '03_saliency.png')")
    if not name.strip() or name in {".", ".."}:
        raise ValueError(f"name must be a file stem like '03_saliency', got {name!r}")
    return name


def savefig(fig: plt.Figure, name: str, *, folder: str | Path | None = None, close: bool = False) -> list[Path]:
    """Write ``fig`` to ``<folder>/<name>.png`` and ``<folder>/<name>.pdf``; return the two paths.

    ``name`` is a file stem such as ``"03_saliency_methods"``; a ``.png`` or ``.pdf`` extension, in
    any case, is dropped (``"x.PNG"`` writes ``x.png`` and ``x.pdf``), another image extension
    (``.jpg``, ``.svg``, ...) is an error, and so is a folder in the name. ``folder`` defaults to
    :data:`vislib.config.FIGS_DIR` (the checkout's ``figs/``; ``./figs`` for an installed vislib;
    ``$VISLIB_FIGS`` when set) and is created if needed. Existing files of the same name are
    **overwritten** without asking: re-running a notebook refreshes its figures. ``close=True``
    closes the figure after writing.
    """
    stem = _figure_stem(name)
    out = Path(folder) if folder is not None else config.FIGS_DIR
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    with mpl.rc_context(HOUSE_STYLE):
        for p in paths:
            fig.savefig(p)
    if close:
        plt.close(fig)
    return paths


def class_title(method: str, classes: Sequence[str] | None, target: int | Tensor,
                layer: str | None = None) -> str:
    """A figure title that says method, layer and class: ``"Grad-CAM · layer3 · class 'star'"``."""
    c = int(target)
    cls = f"'{classes[c]}'" if classes is not None else str(c)
    parts = [method] + ([f"layer {layer}"] if layer else []) + [f"class {cls}"]
    return " · ".join(parts)


__all__ = ["HOUSE_STYLE", "use_style", "show_image", "overlay", "map_grid", "image_grid",
           "filter_grid", "feature_maps", "savefig", "class_title"]
