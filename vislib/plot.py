"""Figures for people: one house style, labelled maps with colour bars, and ``savefig``.

Every figure of the course goes through :func:`savefig`, which writes ``figs/<name>.png`` (for
slides and the README) and ``figs/<name>.pdf`` (vector, for reports).
"""
from __future__ import annotations

import io
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from torch import Tensor, nn

from . import config
from .attribution.catalogue import CATALOGUE
from .maps import normalize
from .style import (COLUMN_WIDTH, FULL_WIDTH, HOUSE_STYLE, MAX_HEIGHT, MIN_FONT_PT, SIZE_SLACK_IN,
                    figure, image_axes, layer_name, legend_below, legend_right, mean_band, method_name,
                    method_style, method_styles, metric_label, panel_letters, use_style, width_inches)

#: Colour maps for non-negative saliency, and for signed maps.
CMAP = "inferno"
CMAP_SIGNED = "RdBu_r"

#: One colour per attribution method, the same in every curve of the course (pixel perturbation,
#: ROAR, sanity checks), so a reader can compare figures: from the method catalogue
#: (:data:`vislib.attribution.CATALOGUE`, colour-blind-safe palettes), all distinct; grey belongs
#: to the random baseline alone. Markers and line styles: :func:`vislib.style.method_styles`.
METHOD_COLOURS = {r.name: r.colour for r in CATALOGUE}


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
    image_axes(ax)
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
    image_axes(ax)
    if title:
        ax.set_title(title)
    if colorbar:
        cb = ax.figure.colorbar(m, ax=ax, fraction=0.046, pad=0.03)
        cb.set_label(label)
    return m


def _cell(width: str | float, cols: int, extra: float, largest: float) -> float:
    """The side of one square panel when ``cols`` of them and ``extra`` inches share ``width``."""
    return min(largest, (width_inches(width) - extra) / cols)


def map_grid(
    images: Tensor,
    maps: Mapping[str, Tensor],
    *,
    row_labels: Sequence[str] | None = None,
    suptitle: str | None = None,
    normalize_maps: bool = True,
    overlay_image: bool = True,
    cmap: str = CMAP,
    width: str | float = "full",
    cell: float | None = None,
) -> plt.Figure:
    """A grid: one row per image, the image first and then one column per method.

    ``maps`` maps a column title (say ``"Grad-CAM, conv 5 (features.16)"``) to a ``[B, H, W]``
    tensor. Maps are rescaled per image to [0, 1] unless ``normalize_maps=False``; one colour bar on
    the right gives the scale. ``row_labels`` (e.g. ``"true star, pred star"``) go on the left. The
    figure is ``width`` wide (``"full"`` = 7 in, ``"column"`` = 3.4 in, or inches); ``cell`` fixes
    the panel size instead.
    """
    n = images.shape[0]
    cols = 1 + len(maps)
    side = cell if cell is not None else _cell(width, cols, 0.75 + (0.2 if row_labels is not None else 0), 1.3)
    fig, axes = plt.subplots(n, cols, figsize=(side * cols + 0.75 + (0.2 if row_labels is not None else 0),
                                               side * n + 0.25 + (0.25 if suptitle else 0)),
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
               suptitle: str | None = None, width: str | float = "full", cell: float | None = None) -> plt.Figure:
    """A grid of images ``[N, 3, H, W]`` with optional per-image titles, ``width`` wide."""
    n = images.shape[0]
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    side = cell if cell is not None else _cell(width, ncols, 0.05, 1.2)
    height = (side + (0.15 if titles is not None else 0)) * nrows + (0.25 if suptitle else 0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(side * ncols + 0.05, height), squeeze=False, layout="constrained")
    for k, ax in enumerate(axes.flat):
        if k < n:
            show_image(ax, images[k], titles[k] if titles is not None else None)
        else:
            ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def filter_grid(weights: Tensor, *, ncols: int = 8, suptitle: str | None = None, width: str | float = "full",
                cell: float | None = None, numbers: bool = True) -> plt.Figure:
    """First-layer filters ``[C_out, 3, k, k]`` as small RGB images, or ``[C_out, 1, k, k]`` in grey.

    Each RGB filter is rescaled on its own to [0, 1] (so mid-grey is zero weight only when the
    filter is symmetric around zero); grey filters share one symmetric colour scale with a bar.
    ``numbers`` writes each filter's index above it.
    """
    w = weights.detach().float().cpu()
    n = w.shape[0]
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    rgb = w.shape[1] == 3
    side = cell if cell is not None else _cell(width, ncols, 0.05 if rgb else 0.7, 0.9)
    height = (side + (0.13 if numbers else 0)) * nrows + (0.25 if suptitle else 0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(side * ncols + (0.05 if rgb else 0.7), height), squeeze=False,
                             layout="constrained")
    lim = w.abs().max().item() or 1.0
    mappable = None
    for k, ax in enumerate(axes.flat):
        image_axes(ax)
        if k >= n:
            ax.axis("off")
            continue
        f = w[k]
        if rgb:
            f = (f - f.min()) / (f.max() - f.min() + 1e-12)
            ax.imshow(f.permute(1, 2, 0).numpy())
        else:
            mappable = ax.imshow(f[0].numpy(), cmap=CMAP_SIGNED, vmin=-lim, vmax=lim)
        if numbers:
            ax.set_title(str(k), fontsize=MIN_FONT_PT, pad=1)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, fraction=0.04, pad=0.02).set_label("weight")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def feature_maps(activations: Tensor, *, n: int = 16, ncols: int = 8, suptitle: str | None = None,
                 width: str | float = "full", cell: float | None = None,
                 channels: Sequence[int] | None = None) -> plt.Figure:
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
    side = cell if cell is not None else _cell(width, ncols, 0.75, 1.1)
    height = (side + 0.13) * nrows + (0.25 if suptitle else 0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(side * ncols + 0.75, height), squeeze=False, layout="constrained")
    mappable = None
    for k, ax in enumerate(axes.flat):
        image_axes(ax)
        if k >= len(idx):
            ax.axis("off")
            continue
        mappable = ax.imshow(a[idx[k]].numpy(), cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(f"ch {idx[k]}", fontsize=MIN_FONT_PT, pad=1)
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


class FigureStandardError(ValueError):
    """A figure that breaks the figure standard (:mod:`vislib.style`); the message says what to change."""


@dataclass(frozen=True)
class FigureCheck:
    """What :func:`check_figure` measured on a figure at its saved size."""

    width_in: float                                 #: saved width (inches, tight bounding box)
    height_in: float                                #: saved height (inches)
    min_font_pt: float                              #: the smallest text drawn (points); inf without text
    small_texts: tuple[tuple[str, float], ...]      #: texts below :data:`MIN_FONT_PT`, with their sizes
    stray_spines: tuple[str, ...]                   #: image panels drawn with a frame (their titles)
    code_names: tuple[str, ...] = ()                #: texts that show an identifier or a bare module path

    def problems(self) -> list[str]:
        """What breaks the standard, one sentence each, with what to change (empty: it passes)."""
        out = []
        if self.width_in > FULL_WIDTH + SIZE_SLACK_IN:
            out.append(f"it is {self.width_in:.2f} in wide; a report page is {FULL_WIDTH} in wide (one column "
                       f"{COLUMN_WIDTH} in), so it would be shrunk and every text with it: make it with "
                       "vislib.style.figure('full' or 'column') or a smaller figsize")
        if self.height_in > MAX_HEIGHT + SIZE_SLACK_IN:
            out.append(f"it is {self.height_in:.2f} in tall; at most {MAX_HEIGHT} in fits a page with its caption: "
                       "fewer rows, or split it into two figures")
        if self.small_texts:
            shown = ", ".join(f"{t!r} {pt:g} pt" for t, pt in self.small_texts[:6])
            more = f" and {len(self.small_texts) - 6} more" if len(self.small_texts) > 6 else ""
            out.append(f"{len(self.small_texts)} texts are smaller than {MIN_FONT_PT:g} pt: {shown}{more}; "
                       "use fontsize >= 7 (the house style, vislib.style.use_style(), starts at 7)")
        if self.stray_spines:
            out.append(f"image panels {list(self.stray_spines)} have a frame: call vislib.style.image_axes(ax)")
        if self.code_names:
            out.append(f"texts {list(self.code_names)[:6]} show code names: name methods, metrics and layers for "
                       "people with vislib.style.method_name, metric_label and layer_name ('conv 3 (features.8)': a module "
                       "path only in parentheses after the human name), and write symbols as $maths$")
        return out


#: A snake_case identifier (``gradcam_pp``, ``spearman_abs``) outside ``$maths$`` and file paths.
_IDENTIFIER = re.compile(r"(?<![\w.(/\\])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w(])")
#: A module path that is not in parentheses after a human name (``features.4``, ``net.layer3``).
_BARE_PATH = re.compile(r"(?<![\w.(])(?:net\.)?(?:(?:features|classifier)(?:\.\d+)+|layer\d(?:\.\d+)*)(?![\w.)])")


def code_names(texts) -> tuple[str, ...]:
    """The texts that show a code identifier or a bare module path where a reader wants a name.

    ``"gradcam_pp"``, ``"spearman_abs"``, ``"features.4"`` and ``"layer net.layer3"`` are caught;
    ``"Grad-CAM++"``, ``"conv 3 (features.8)"``, ``"stage 3 (net.layer3)"`` and ``"$s_c$"``
    (mathtext) are not.
    """
    found = []
    for text in texts:
        plain = re.sub(r"\$[^$]*\$", " ", text)                    # mathtext is maths, not a name
        if _IDENTIFIER.search(plain) or _BARE_PATH.search(plain):
            found.append(text)
    return tuple(sorted(set(found)))


def _record_texts(fig: plt.Figure, render) -> tuple[object, list[tuple[str, float]]]:
    """Run ``render()`` while recording every text the Agg renderer draws, with its size in points."""
    from matplotlib.backends.backend_agg import RendererAgg

    drawn: list[tuple[str, float]] = []
    original = RendererAgg.draw_text

    def recording_draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if s and str(s).strip():
            drawn.append((str(s), float(prop.get_size_in_points())))
        return original(self, gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    RendererAgg.draw_text = recording_draw_text
    try:
        result = render()
    finally:
        RendererAgg.draw_text = original
    return result, drawn


def _stray_spines(fig: plt.Figure) -> tuple[str, ...]:
    """Titles of the panels that show an image without ticks but still with visible spines."""
    out = []
    for k, ax in enumerate(fig.axes):
        if not ax.images or not ax.axison or len(ax.get_xticks()) or len(ax.get_yticks()):
            continue
        if any(sp.get_visible() for sp in ax.spines.values()):
            out.append(ax.get_title() or f"panel {k}")
    return tuple(out)


def _render_png(fig: plt.Figure, metadata: dict) -> tuple[bytes, FigureCheck]:
    """The figure's PNG (house style, tight box) and what it measures at that size."""
    buffer = io.BytesIO()
    with mpl.rc_context(HOUSE_STYLE):
        _, drawn = _record_texts(fig, lambda: fig.savefig(buffer, format="png", metadata=metadata))
        dpi = mpl.rcParams["savefig.dpi"]
    data = buffer.getvalue()
    width_px, height_px = struct.unpack(">II", data[16:24])          # the PNG header's IHDR chunk
    sizes = [pt for _, pt in drawn]
    small = tuple(sorted({(t, round(pt, 2)) for t, pt in drawn if pt < MIN_FONT_PT - 1e-6}, key=lambda x: (x[1], x[0])))
    check = FigureCheck(width_px / dpi, height_px / dpi, min(sizes, default=math.inf), small, _stray_spines(fig),
                        code_names(t for t, _ in drawn))
    return data, check


def check_figure(fig: plt.Figure) -> FigureCheck:
    """Measure ``fig`` as :func:`savefig` would save it: size, smallest text, framed image panels."""
    return _render_png(fig, {})[1]


def savefig(fig: plt.Figure, name: str, *, caption: str | None = None, folder: str | Path | None = None,
            close: bool = False, check: bool = True) -> list[Path]:
    """Check ``fig`` against the figure standard, then write ``<folder>/<name>.png`` and ``.pdf``.

    **The standard** (:mod:`vislib.style`): at most :data:`FULL_WIDTH` (7 in) wide and
    :data:`MAX_HEIGHT` (9 in) tall at the saved size, no text below :data:`MIN_FONT_PT` (7 pt),
    image panels without a frame, no code names in the figure (:func:`code_names`), and a
    ``caption``: one or two sentences that name the method, model, layer and class and give the
    run's key number (an f-string). A figure that breaks it
    raises :class:`FigureStandardError` saying what to change, and nothing is written.
    ``check=False`` saves without checking or caption (for a quick look; the course never does).

    The caption goes into both files' metadata and, with the figure's size, notebook and mode
    (quick/full), into ``<folder>/figures.json``, from which ``<folder>/README.md`` (the contact
    sheet: every figure as a thumbnail with its caption) is rewritten (:mod:`vislib.report`).

    ``name`` is a file stem such as ``"03_saliency_methods"``; a ``.png`` or ``.pdf`` extension, in
    any case, is dropped (``"x.PNG"`` writes ``x.png`` and ``x.pdf``), another image extension
    (``.jpg``, ``.svg``, ...) is an error, and so is a folder in the name. ``folder`` defaults to
    :data:`vislib.config.FIGS_DIR` (the checkout's ``figs/``; ``./figs`` for an installed vislib;
    ``$VISLIB_FIGS`` when set) and is created if needed. Existing files of the same name are
    **overwritten** without asking: re-running a notebook refreshes its figures. ``close=True``
    closes the figure after writing.
    """
    from . import report

    stem = _figure_stem(name)
    if caption is not None and (not isinstance(caption, str) or not caption.strip()):
        raise FigureStandardError(f"caption must be a non-empty string, got {caption!r}")
    if check and caption is None:
        raise FigureStandardError(
            f"savefig({stem!r}) needs caption=: one or two sentences naming the method, model, layer and class, "
            "with the run's key number, e.g. caption=f'Grad-CAM of the course VGG at conv 5 for class star; "
            "pointing game {score:.2f}.' (check=False saves a quick look without it)")
    caption = " ".join(caption.split()) if caption else ""
    data, measured = _render_png(fig, {"Title": stem, "Description": caption, "Software": "vislib"})
    problems = measured.problems() if check else []
    if problems:
        raise FigureStandardError(f"figure {stem!r} breaks the figure standard, nothing was written:\n- "
                                  + "\n- ".join(problems))
    out = Path(folder) if folder is not None else config.FIGS_DIR
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    paths[0].write_bytes(data)
    with mpl.rc_context(HOUSE_STYLE):
        fig.savefig(paths[1], metadata={"Title": stem, "Subject": caption, "Creator": "vislib"})
    report.register_figure(out, stem, caption=caption, width_in=measured.width_in, height_in=measured.height_in,
                           min_font_pt=measured.min_font_pt, checked=check)
    if close:
        plt.close(fig)
    return paths


def class_title(method: str, classes: Sequence[str] | None, target: int | Tensor,
                layer: str | None = None, *, model: nn.Module | None = None) -> str:
    """A figure title that says method, layer and class: ``"Grad-CAM · stage 3 (net.layer3) · class 'star'"``.

    ``method`` is a catalogue name or a display name (:func:`vislib.style.method_name`); with
    ``model`` the layer gets its name for people (:func:`vislib.style.layer_name`), without it
    ``"layer (net.layer3)"``.
    """
    c = int(target)
    cls = f"'{classes[c]}'" if classes is not None else str(c)
    parts = [method_name(method)]
    if layer:
        parts.append(layer_name(model, layer) if model is not None else f"layer ({layer})")
    return " · ".join(parts + [f"class {cls}"])


__all__ = ["HOUSE_STYLE", "use_style", "show_image", "overlay", "map_grid", "image_grid", "filter_grid",
           "feature_maps", "savefig", "check_figure", "FigureCheck", "FigureStandardError", "class_title",
           "figure", "method_styles", "method_style", "method_name", "metric_label", "layer_name", "panel_letters",
           "image_axes", "legend_below", "legend_right", "mean_band", "COLUMN_WIDTH", "FULL_WIDTH"]
