"""What a network computes inside: activations over a dataset, dead channels, linear templates, t-SNE.

The first two notebooks of the course look at a trained network without any saliency method:

* :func:`collect_activations` runs a model over many images in batches (no gradients, eval mode,
  a progress bar) and keeps the outputs of chosen layers, optionally average-pooled to a small
  grid so that 2000 images of an early layer still fit in memory;
* :func:`channel_stats` counts, per channel of a ReLU layer, on how many images the channel is
  never active (all zeros: "dead" on that image) or always active (the ReLU never clips);
* :func:`filter_colour_share` measures how much of a first-layer filter only sees colour;
* :func:`linear_templates` rewrites a linear classifier on normalised pixels as one image-shaped
  template per class in pixel space (CS231n's "template" view of a linear classifier);
* :func:`penultimate_layer` names the layer whose output is the input of the last linear layer
  (the "CNN code" of CS231n's t-SNE figure);
* :func:`tsne_embedding`, :func:`knn_same_class`, :func:`spread_subset` and
  :func:`thumbnail_scatter` embed features in 2-D, measure how well classes are separated, and
  draw the embedding with image thumbnails;
* :func:`neighbour_probabilities` and :func:`perplexity_bandwidths` compute t-SNE's neighbour
  probabilities ``p_{j|i}`` and the Gaussian widths that give each point a chosen perplexity.
* :func:`top_activating_patches` finds, per channel of a conv layer, the images and positions that
  excite it most and cuts out the units' receptive fields (:func:`layer_receptive_field`,
  :func:`plot_top_patches`; Zeiler & Fergus 2014);
* :func:`nearest_neighbours` lists the nearest images in a feature space or in pixel space
  (:func:`neighbour_grid` draws them; Krizhevsky et al. 2012, Fig. 4).

References: Karpathy et al., CS231n notes "Visualizing what ConvNets learn"
(``understanding-cnn.md``); van der Maaten & Hinton, "Visualizing Data using t-SNE", JMLR 2008;
Wattenberg, Viégas & Johnson, "How to Use t-SNE Effectively", Distill 2016; Zeiler & Fergus,
"Visualizing and Understanding Convolutional Networks", ECCV 2014; Krizhevsky, Sutskever & Hinton,
"ImageNet Classification with Deep Convolutional Neural Networks", NeurIPS 2012.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import model_device
from .hooks import LayerSpec, Recorder, get_layer, preserve_state, trial_forward
from .models import _MIXES_POSITIONS, Normalize, ReceptiveField, receptive_field
from .progress import progress_bar


# --------------------------------------------------------------------------- collecting activations
def _as_list(layers: LayerSpec | Sequence[LayerSpec]) -> list[LayerSpec]:
    return [layers] if isinstance(layers, (str, nn.Module)) else list(layers)


def _batched_outputs(model: nn.Module, images: Tensor, layers: list[LayerSpec], *, batch_size: int,
                     progress: bool, desc: str) -> Iterator[dict[str, Tensor]]:
    """Yield ``{layer name: output of this batch}`` for consecutive batches of ``images``.

    Eval mode and ``no_grad``; the model's flags are restored afterwards. A module that runs
    several times in one forward pass (a shared ReLU) gives its last output.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [N, 3, H, W], got shape {tuple(images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    device = model_device(model)
    starts = range(0, len(images), batch_size)
    with torch.no_grad(), preserve_state(model), Recorder(model, layers, detach=True) as rec:
        model.eval()
        for start in progress_bar(starts, progress=progress, desc=desc):
            rec.clear()
            model(images[start:start + batch_size].to(device))
            yield {name: rec.output(name) for name in rec.names}


def collect_activations(
    model: nn.Module,
    images: Tensor,
    layers: LayerSpec | Sequence[LayerSpec],
    *,
    batch_size: int = 128,
    pool: int | None = None,
    progress: bool = True,
    desc: str = "activations",
) -> dict[str, Tensor]:
    """Outputs of ``layers`` for every image, as ``{layer name: Tensor[N, ...]}`` on the CPU.

    The model runs in eval mode under ``no_grad`` in batches of ``batch_size`` on its own device;
    a :class:`~vislib.hooks.Recorder` with ``detach=True`` keeps each batch's outputs. With
    ``pool=p`` a 4-D output ``[B, C, h, w]`` is average-pooled to ``[B, C, p, p]`` before it is
    kept (``F.adaptive_avg_pool2d``), which shrinks an early layer's activations of thousands of
    images to a size t-SNE can work with. Outputs are returned as float32.
    """
    layers = _as_list(layers)
    kept: dict[str, list[Tensor]] = {}
    for outputs in _batched_outputs(model, images, layers, batch_size=batch_size, progress=progress, desc=desc):
        for name, out in outputs.items():
            if pool is not None and out.dim() == 4:
                out = F.adaptive_avg_pool2d(out, pool)
            kept.setdefault(name, []).append(out.float().cpu())
    if not kept:  # no images
        return {get_layer(model, layer)[0]: torch.empty(0) for layer in layers}
    return {name: torch.cat(chunks) for name, chunks in kept.items()}


def penultimate_layer(model: nn.Module) -> str:
    """Name of the layer whose output is the input of the model's last ``nn.Linear`` layer.

    Found by one probe forward pass (:func:`vislib.hooks.trial_forward`, a zero image of size
    ``model.vislib_input_size`` or 64): the
    last linear layer to run, and the last module to run before it whose output is exactly the
    tensor that layer receives. For the course VGG that is ``'net.classifier.6'`` (the dropout,
    an identity in eval mode), for the course ResNet ``'net.flatten'``.
    """
    calls = trial_forward(model, default_size=64)
    linear_inputs = [(c.name, c.inputs[0]) for c in calls if isinstance(c.module, nn.Linear)]
    calls = [(c.name, c.module, c.output) for c in calls]
    if not linear_inputs:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer that runs in its forward pass")
    last_linear, x = linear_inputs[-1]
    position = max(i for i, (name, _, _) in enumerate(calls) if name == last_linear)
    # Modules run before the linear layer; a container that holds it finishes after it.
    for name, _, output in reversed(calls[:position]):
        if output is x:
            return name
    raise ValueError(f"no module outputs the input of the last linear layer {last_linear!r} "
                     "(is it computed by a functional call?); pass the layer explicitly")


# --------------------------------------------------------------------------- dead channels
@dataclass
class ChannelStats:
    """Per-channel activity of one layer over a set of images (all tensors ``[C]``).

    * ``never_active``: fraction of images on which the channel is ``<= threshold`` at every
      position (for a ReLU layer: all zeros, the channel is *dead on that image*);
    * ``always_active``: fraction of images on which it is ``> threshold`` at every position (the
      ReLU never clips it: on those images the unit is just linear);
    * ``active_fraction``: mean over images of the fraction of positions where it is active;
    * ``mean``: mean activation over images and positions.
    """

    layer: str
    never_active: Tensor
    always_active: Tensor
    active_fraction: Tensor
    mean: Tensor
    n_images: int

    def dead(self, fraction: float = 1.0) -> Tensor:
        """Indices of channels never active on at least ``fraction`` of the images (1.0: all)."""
        return torch.nonzero(self.never_active >= fraction - 1e-12).flatten()

    def __len__(self) -> int:
        return len(self.never_active)


def channel_stats(
    model: nn.Module,
    images: Tensor,
    layers: LayerSpec | Sequence[LayerSpec],
    *,
    threshold: float = 0.0,
    batch_size: int = 128,
    progress: bool = True,
    desc: str = "channel statistics",
) -> dict[str, ChannelStats]:
    """Count, for every channel of ``layers``, on how many images it is never / always active.

    A channel is *active* at a position when its output there is ``> threshold`` (0 for a ReLU).
    Outputs ``[B, C, h, w]`` are judged over the ``h x w`` positions, outputs ``[B, C]`` (a
    hidden linear layer) per unit. Counts are accumulated batch by batch, so no activation of the
    whole dataset is kept. Returns ``{layer name: ChannelStats}``.
    """
    layers = _as_list(layers)
    sums: dict[str, dict[str, Tensor]] = {}
    n = 0
    for outputs in _batched_outputs(model, images, layers, batch_size=batch_size, progress=progress, desc=desc):
        for name, out in outputs.items():
            out = out.double()
            flat = out.flatten(2) if out.dim() > 2 else out.unsqueeze(2)  # [B, C, positions]
            active = flat > threshold
            acc = sums.setdefault(name, {})
            for key, value in (("never", (~active).all(2)), ("always", active.all(2)),
                               ("rate", active.double().mean(2)), ("mean", flat.mean(2))):
                value = value.double().sum(0).cpu()
                acc[key] = acc[key] + value if key in acc else value
        n += len(next(iter(outputs.values())))
    if n == 0:
        raise ValueError("channel_stats needs at least one image")
    return {name: ChannelStats(name, acc["never"] / n, acc["always"] / n, acc["rate"] / n, acc["mean"] / n, n)
            for name, acc in sums.items()}


# --------------------------------------------------------------------------- first-layer filters
def filter_colour_share(weights: Tensor) -> Tensor:
    """Per filter, the share of its squared norm in its colour (spatial-mean) part.

    A filter ``w [C_in, k, k]`` splits into its spatial mean per input channel ``m_c`` (the part
    that only sees the patch's mean colour) and the rest (edges, spots). The share is

        ``k² · Σ_c m_c² / Σ_{c,u,v} w[c, u, v]²``,

    1 for a filter that is constant over positions, 0 for one whose every channel sums to zero,
    about ``1 / k²`` for random weights. ``weights``: ``[C_out, C_in, k, k]``; returns ``[C_out]``.
    """
    if weights.dim() != 4:
        raise ValueError(f"weights must be a conv weight [C_out, C_in, k, k], got shape {tuple(weights.shape)}")
    spatial_mean = weights.mean(dim=(2, 3), keepdim=True)
    colour = spatial_mean.expand_as(weights).pow(2).flatten(1).sum(1)
    return colour / weights.pow(2).flatten(1).sum(1)


# --------------------------------------------------------------------------- linear templates
def linear_templates(model: nn.Module, image_shape: Sequence[int] | None = None) -> tuple[Tensor, Tensor]:
    """A linear classifier on normalised pixels as per-class templates in pixel space.

    ``model`` is ``with_normalization(nn.Sequential(nn.Flatten(), nn.Linear(3*H*W, K)), mean, std)``
    (any model whose only parametrised layers are one :class:`~vislib.models.Normalize` and one
    ``nn.Linear``). Its logits are ``W ((x - m) / s) + b``, which is ``W' x + b'`` with

        ``W'[k, c, i, j] = W[k, c, i, j] / s_c``  and  ``b'_k = b_k - sum_{c,i,j} W[k, c, i, j] m_c / s_c``.

    Returns ``(W' [K, 3, H, W], b' [K])``: ``W'[k]`` is the image that class ``k`` scores by a dot
    product (CS231n's "template matching" view). ``image_shape`` is ``(3, H, W)``; by default a
    square image with 3 channels is assumed.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    norms = [m for m in model.modules() if isinstance(m, Normalize)]
    if len(linears) != 1:
        raise ValueError(f"expected exactly one nn.Linear layer, found {len(linears)}")
    if len(norms) > 1:
        raise ValueError(f"expected at most one Normalize layer, found {len(norms)}")
    linear = linears[0]
    weight = linear.weight.detach()
    bias = linear.bias.detach() if linear.bias is not None else torch.zeros(len(weight), dtype=weight.dtype,
                                                                             device=weight.device)
    if image_shape is None:
        side = math.isqrt(linear.in_features // 3)
        image_shape = (3, side, side)
    c, h, w = image_shape
    if c * h * w != linear.in_features:
        raise ValueError(f"image_shape {tuple(image_shape)} has {c * h * w} values but the linear layer "
                         f"takes {linear.in_features}")
    templates = weight.reshape(len(weight), c, h, w)
    if norms:
        mean = norms[0].mean.to(weight).reshape(1, c, 1, 1)
        std = norms[0].std.to(weight).reshape(1, c, 1, 1)
        templates = templates / std
        bias = bias - (templates * mean).flatten(1).sum(1)
    return templates.clone(), bias.clone()


# --------------------------------------------------------------------------- t-SNE and neighbours
def _numpy(x: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def tsne_embedding(features: Tensor | np.ndarray, *, perplexity: float = 30.0, random_state: int = 0,
                   pca_components: int | None = 50, max_iter: int = 1000, threads: int | None = 1) -> np.ndarray:
    """Embed ``features`` ``[N, ...]`` in 2-D with t-SNE (van der Maaten & Hinton, JMLR 2008).

    Features are flattened to ``[N, D]``; when ``D > pca_components`` they are first reduced by
    PCA to ``pca_components`` dimensions (the usual preprocessing: it removes noise and makes
    the neighbour search fast). Then ``sklearn.manifold.TSNE(n_components=2, perplexity=...,
    init='pca', learning_rate='auto', random_state=...)``. The same inputs and ``random_state``
    give the same picture. Returns a float array ``[N, 2]``.

    ``threads`` limits the OpenMP threads of scikit-learn's Barnes-Hut gradient (default 1; None:
    all cores). On a CPU shared with other work, several OpenMP threads spin while they wait for
    each other and t-SNE becomes many times slower; one thread is never much slower on a laptop.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = _numpy(features).reshape(len(features), -1).astype(np.float64)
    if not 0 < perplexity < len(x):
        raise ValueError(f"perplexity must be between 0 and the number of points ({len(x)}), got {perplexity}")
    if pca_components is not None and x.shape[1] > pca_components and len(x) > pca_components:
        x = PCA(n_components=pca_components, random_state=random_state).fit_transform(x)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=random_state, max_iter=max_iter)
    with threadpool_limits(limits=threads, user_api="openmp"):
        return tsne.fit_transform(x)


def neighbour_probabilities(features: Tensor | np.ndarray, sigma: Tensor | np.ndarray | float) -> Tensor:
    """t-SNE's conditional neighbour probabilities ``P[i, j] = p_{j|i}``, a float64 tensor ``[N, N]``.

    ``p_{j|i} = exp(-|x_i - x_j|² / 2σ_i²) / Σ_{l≠i} exp(-|x_i - x_l|² / 2σ_i²)`` and ``p_{i|i} = 0``
    (van der Maaten & Hinton 2008, eq. 1): a Gaussian around point ``i`` with its own width
    ``sigma[i]`` (``sigma``: ``[N]`` or one number). Each row sums to 1. Computed as a softmax over
    each row with the diagonal at ``-inf``, so it stays exact where ``exp`` alone underflows (far
    apart points, small ``σ``). Features ``[N, ...]`` are flattened.
    """
    x = torch.as_tensor(_numpy(features)).reshape(len(features), -1).double()
    n = len(x)
    if n < 2:
        raise ValueError(f"need at least 2 points, got {n}")
    s = torch.as_tensor(_numpy(sigma) if not isinstance(sigma, (int, float)) else sigma, dtype=torch.float64)
    s = s.expand(n) if s.dim() == 0 else s.reshape(-1)
    if len(s) != n:
        raise ValueError(f"sigma must be one number or one per point ({n}), got {len(s)}")
    if not (s > 0).all():
        raise ValueError("sigma must be positive")
    logits = -torch.cdist(x, x).pow(2) / (2 * s[:, None] ** 2)
    logits.fill_diagonal_(float("-inf"))  # a point is not its own neighbour
    return logits.softmax(dim=1)


def perplexity_bandwidths(features: Tensor | np.ndarray, perplexity: float = 30.0, *,
                          iterations: int = 50) -> Tensor:
    """Per point, the width ``σ_i`` for which its row of :func:`neighbour_probabilities` has ``perplexity``.

    The perplexity of row ``i`` is ``2^{H(P_i)}`` with ``H(P_i) = -Σ_j p_{j|i} log₂ p_{j|i}``, an
    effective number of neighbours between 1 (``σ → 0``) and ``N - 1`` (``σ → ∞``); it grows with
    ``σ_i``. Like t-SNE itself, this bisects every ``σ_i``: all rows at once, on ``log σ`` in a
    bracket of ``e^{±30}`` around the median distance, for ``iterations`` steps (relative error of
    ``σ`` about ``30 / 2^iterations``). It costs ``iterations`` passes over an ``[N, N]`` matrix.
    Returns ``[N]`` float64. Features ``[N, ...]`` are flattened; ``perplexity`` must lie in
    ``(1, N - 1)``.
    """
    x = torch.as_tensor(_numpy(features)).reshape(len(features), -1).double()
    n = len(x)
    if not 1 < perplexity < n - 1:
        raise ValueError(f"perplexity must be between 1 and N - 1 = {n - 1}, got {perplexity}")
    sq = torch.cdist(x, x).pow(2)
    sq.fill_diagonal_(float("inf"))
    scale = sq[torch.isfinite(sq)].median().clamp_min(1e-12).sqrt()
    lo = torch.full((n,), math.log(float(scale)) - 30.0, dtype=torch.float64)
    hi = torch.full((n,), math.log(float(scale)) + 30.0, dtype=torch.float64)
    target = math.log(perplexity)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        p = (-sq / (2 * torch.exp(2 * mid)[:, None])).softmax(dim=1)
        entropy = torch.special.entr(p).sum(1)                 # -Σ p ln p, in nats: perplexity = e^H
        too_wide = entropy > target
        hi = torch.where(too_wide, mid, hi)
        lo = torch.where(too_wide, lo, mid)
    return torch.exp((lo + hi) / 2)


def knn_same_class(features: Tensor | np.ndarray, labels: Tensor | np.ndarray, k: int = 10,
                   chunk: int = 512) -> Tensor:
    """Per point, the fraction of its ``k`` nearest neighbours (Euclidean, itself excluded) of its class.

    Features ``[N, ...]`` are flattened; distances come from ``torch.cdist`` in chunks of rows.
    The mean of the result is the leave-one-out k-NN "purity" of the representation: 1 when every
    neighbourhood is one class, about the class frequency when the classes are mixed.
    """
    x = torch.as_tensor(_numpy(features)).reshape(len(features), -1).double()
    y = torch.as_tensor(_numpy(labels)).long()
    n = len(x)
    if len(y) != n:
        raise ValueError(f"{n} feature rows but {len(y)} labels")
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and N - 1 = {n - 1}, got {k}")
    same = torch.empty(n, dtype=torch.float64)
    for start in range(0, n, chunk):
        d = torch.cdist(x[start:start + chunk], x)
        rows = torch.arange(start, min(start + chunk, n))
        d[rows - start, rows] = float("inf")  # a point is not its own neighbour
        idx = d.topk(k, dim=1, largest=False).indices
        same[start:start + chunk] = (y[idx] == y[rows, None]).double().mean(1)
    return same


def spread_subset(xy: Tensor | np.ndarray, max_points: int, min_distance: float | None = None,
                  seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_points`` points of ``xy`` ``[N, 2]``, pairwise ``>= min_distance`` apart.

    Points are visited in a seeded random order and kept when they are far enough from every
    point kept so far (greedy; the idea of scikit-learn's digits-embedding example). By default
    ``min_distance`` is 4 % of the larger side of the bounding box. Used to place image
    thumbnails on a scatter plot without piling them on top of each other.
    """
    xy = _numpy(xy).astype(np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"xy must be [N, 2], got shape {xy.shape}")
    if min_distance is None:
        span = xy.max(0) - xy.min(0) if len(xy) else np.zeros(2)
        min_distance = 0.04 * float(span.max())
    order = np.random.default_rng(seed).permutation(len(xy))
    kept: list[int] = []
    for i in order:
        if len(kept) >= max_points:
            break
        if not kept or np.min(np.linalg.norm(xy[kept] - xy[i], axis=1)) >= min_distance:
            kept.append(int(i))
    return np.asarray(kept, dtype=np.int64)


#: Okabe & Ito's colour-blind-safe palette (black moved last: it is the colour of text and axes).
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
#: One marker per class, so classes stay apart in black and white too.
CLASS_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "p", "h")


def class_colours(n: int) -> list:
    """``n`` distinct colours for class scatter plots: Okabe-Ito (colour-blind safe) up to 8, then tab20."""
    if n <= len(OKABE_ITO):
        return list(OKABE_ITO[:n])
    cmap = plt.get_cmap("tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def class_markers(n: int) -> list[str]:
    """``n`` markers for class scatter plots (they repeat after 12 classes)."""
    return [CLASS_MARKERS[i % len(CLASS_MARKERS)] for i in range(n)]


def thumbnail_scatter(
    xy: Tensor | np.ndarray,
    labels: Tensor | np.ndarray,
    classes: Sequence[str],
    images: Tensor | None = None,
    *,
    ax: plt.Axes | None = None,
    n_thumbnails: int = 60,
    min_distance: float | None = None,
    zoom: float = 0.3,
    point_size: float = 8.0,
    title: str | None = None,
    seed: int = 0,
    legend: bool = True,
) -> plt.Axes:
    """A 2-D embedding coloured by class, with image thumbnails on a spread-out subset of points.

    Every point is drawn in its class's colour *and* marker (:func:`class_colours`,
    :func:`class_markers`: colour-blind safe, and distinct in black and white); ``legend=True``
    puts the class names to the right of the axes, off the data (``False`` for a figure legend,
    e.g. :func:`vislib.style.legend_below`). With ``images`` ``[N, 3, H,
    W]``, up to ``n_thumbnails`` points chosen by :func:`spread_subset` also show their image
    (matplotlib ``OffsetImage`` in an ``AnnotationBbox``) framed in the class colour. The axes
    carry no ticks: t-SNE coordinates have no units. Returns the axes.
    """
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    xy = _numpy(xy)
    labels = _numpy(labels).astype(int)
    if len(xy) != len(labels):
        raise ValueError(f"{len(xy)} points but {len(labels)} labels")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 6), layout="constrained")
    colours = class_colours(len(classes))
    markers = class_markers(len(classes))
    for c, name in enumerate(classes):
        sel = labels == c
        if sel.any():
            size = point_size * (1.8 if markers[c] == "*" else 1.0)        # a star looks smaller at equal area
            ax.scatter(xy[sel, 0], xy[sel, 1], s=size, color=colours[c], marker=markers[c], label=name,
                       alpha=0.8, linewidths=0)
    if images is not None and n_thumbnails > 0:
        if len(images) != len(xy):
            raise ValueError(f"{len(xy)} points but {len(images)} images")
        for i in spread_subset(xy, n_thumbnails, min_distance, seed=seed):
            thumb = images[i].detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
            box = AnnotationBbox(OffsetImage(thumb, zoom=zoom, interpolation="bilinear"), tuple(xy[i]),
                                 frameon=True, pad=0.1,
                                 bboxprops={"edgecolor": colours[labels[i]], "linewidth": 1.5})
            ax.add_artist(box)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("t-SNE dimension 1 (no units)")
    ax.set_ylabel("t-SNE dimension 2 (no units)")
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=1.5, frameon=False,
                  title="class", handletextpad=0.2)
    return ax


# --------------------------------------------------------------------------- top-activating patches
def layer_chain(model: nn.Module, layer: LayerSpec, *, size: int = 64) -> list[tuple[str, nn.Module]]:
    """The modules, input to ``layer``, that compute ``layer``'s output, if they form a plain chain.

    One probe forward pass (a zero image ``[1, 3, size, size]``, eval mode, ``no_grad``, hooks
    removed afterwards) lists the leaf modules (modules without children) in the order they run.
    The chain is the leaves that finish before ``layer`` does (``layer`` itself when it is a
    leaf), and it is *plain* when every leaf receives exactly the tensor the previous leaf
    returned, unchanged: same object and same version counter, so an in-place ``out += identity``
    between two modules counts as a branch while an in-place ReLU does not. A branch (the
    shortcut of a residual block, a concatenation) or a functional call between two modules is an
    error: :func:`vislib.models.receptive_field` only follows chains. Returns ``[(name, module)]``.
    """
    from .checks import model_dtype

    name, _ = get_layer(model, layer)
    seen: list[tuple[str, nn.Module, object, int, object, int]] = []   # name, module, input, version, output, version
    finished: list[str] = []
    pending: dict[int, tuple[object, int]] = {}

    def pre(module_name):
        def hook(module, inputs):
            x = inputs[0] if inputs else None
            pending[id(module)] = (x, x._version if isinstance(x, Tensor) else -1)
        return hook

    def post(module_name, leaf):
        def hook(module, inputs, output):
            finished.append(module_name)
            if leaf:
                x, version = pending.pop(id(module), (None, -1))
                seen.append((module_name, module, x, version, output,
                             output._version if isinstance(output, Tensor) else -1))
            if module_name == name:
                seen.append(("", module, None, -1, None, -1))             # marks where the layer finished
        return hook

    handles = []
    try:
        for module_name, module in model.named_modules():
            if not module_name:
                continue
            leaf = not any(True for _ in module.children())
            if leaf:
                handles.append(module.register_forward_pre_hook(pre(module_name)))
            handles.append(module.register_forward_hook(post(module_name, leaf)))
        with torch.no_grad(), preserve_state(model):
            model.eval()
            model(torch.zeros(1, 3, size, size, device=model_device(model), dtype=model_dtype(model)))
    finally:
        for h in handles:
            h.remove()
    runs = finished.count(name)
    if runs == 0:
        raise ValueError(f"layer {name!r} does not run in the model's forward pass")
    if runs > 1:
        raise ValueError(f"layer {name!r} runs {runs} times in one forward pass (a shared module); "
                         "pick a layer that runs once")
    leaves = seen[:[i for i, entry in enumerate(seen) if entry[0] == ""][0]]
    if not leaves:
        raise ValueError(f"no module runs before {name!r} finishes")
    first = leaves[0][2]
    if not isinstance(first, Tensor) or tuple(first.shape) != (1, 3, size, size):
        raise ValueError(f"the first module that runs, {leaves[0][0]!r}, does not receive the image; "
                         f"{name!r} is not at the end of a plain chain of modules")
    for before, after in zip(leaves, leaves[1:]):
        if after[2] is not before[4] or after[3] != before[5]:
            raise ValueError(
                f"{name!r} is not at the end of a plain chain of modules: {after[0]!r} does not receive the "
                f"output of {before[0]!r} unchanged (a branch such as a residual shortcut, or a functional call, "
                "lies between them), so its receptive field cannot be computed layer by layer")
    return [(entry[0], entry[1]) for entry in leaves]


def layer_receptive_field(model: nn.Module, layer: LayerSpec, *, size: int = 64) -> ReceptiveField:
    """Receptive field (size, jump, start) of the units of ``layer``, in input pixels.

    :func:`vislib.models.receptive_field` applied to :func:`layer_chain`: only for a layer at the
    end of a plain chain of modules (the course VGG's ``net.features.*``; an error for layers
    after a residual block, and after adaptive pooling, flattening or a linear layer).
    """
    chain = layer_chain(model, layer, size=size)
    for name, module in chain:
        if isinstance(module, _MIXES_POSITIONS):
            raise ValueError(f"{chain[-1][0]!r} comes after {name!r} ({type(module).__name__}), which mixes all "
                             "positions: it is not a conv layer with a receptive field of its own")
    return receptive_field([m for _, m in chain])


def describe_layer(model: nn.Module, layer: LayerSpec, *, size: int = 64) -> str:
    """A human name for a layer of a plain chain, e.g. ``'block 2, conv 4 (ReLU), net.features.12'``.

    Counts the convolutions (``conv k``: the k-th convolution of the network) and the pooling
    layers before the layer (``block b``: after ``b - 1`` poolings) on :func:`layer_chain`, and
    names the kind of module the layer is. For a layer that is not at the end of a plain chain it
    returns the dotted name alone.
    """
    name, module = get_layer(model, layer)
    try:
        chain = layer_chain(model, name, size=size)
    except ValueError:
        return name
    convs = sum(isinstance(m, nn.Conv2d) for _, m in chain)
    pools = sum(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for _, m in chain[:-1])
    kind = {nn.ReLU: "ReLU", nn.Conv2d: "conv output", nn.BatchNorm2d: "BatchNorm",
            nn.MaxPool2d: "max-pool", nn.AvgPool2d: "average pool"}.get(type(module), type(module).__name__)
    if convs == 0:
        return f"{kind}, {name}"
    return f"block {pools + 1}, conv {convs} ({kind}), {name}"


@dataclass
class TopPatches:
    """The images and positions at which chosen channels of one layer respond most.

    For channel ``channels[c]`` and rank ``r`` (0 = strongest): ``values[c, r]`` is the channel's
    largest activation in image ``image_index[c, r]``, reached at ``position[c, r] = (row, col)``
    of the layer's ``h x w`` map; ``boxes[c, r] = (top, left, bottom, right)`` are that unit's
    receptive field in input pixels, ``bottom``/``right`` exclusive, **not** clipped to the image
    (a unit near the border also "sees" the zero padding); :meth:`crops` cuts them out.
    """

    layer: str
    channels: list[int]
    values: Tensor
    image_index: Tensor
    position: Tensor
    boxes: Tensor
    field: ReceptiveField
    n_images: int

    def subset(self, channels: Sequence[int]) -> TopPatches:
        """The same result for some of its channels only (channel numbers of the layer, in that order)."""
        missing = [c for c in channels if c not in self.channels]
        if missing:
            raise ValueError(f"channels {missing} were not ranked; ranked channels: {self.channels}")
        rows = torch.tensor([self.channels.index(c) for c in channels], dtype=torch.long)
        return TopPatches(self.layer, list(channels), self.values[rows], self.image_index[rows], self.position[rows],
                          self.boxes[rows], self.field, self.n_images)

    def clipped_boxes(self, height: int, width: int) -> Tensor:
        """``boxes`` clipped to an image of ``height x width`` pixels (the pixels that exist)."""
        b = self.boxes.clone()
        b[..., 0::2] = b[..., 0::2].clamp(0, height)
        b[..., 1::2] = b[..., 1::2].clamp(0, width)
        return b

    def crops(self, images: Tensor, fill: float = 0.5) -> Tensor:
        """The receptive-field patches ``[C, k, 3, s, s]`` (``s = field.size``) cut out of ``images``.

        ``images`` are the images the patches were found in (indexed by ``image_index``). Parts
        of a box outside the image (padding) are filled with ``fill`` (mid-grey by default), so
        every patch keeps its scale and the unit's centre stays at the patch's centre.
        """
        if len(images) != self.n_images:
            raise ValueError(f"the patches were found in {self.n_images} images, got {len(images)}")
        c, k = self.image_index.shape
        s = self.field.size
        h, w = images.shape[-2:]
        out = torch.full((c, k, images.shape[1], s, s), float(fill), dtype=images.dtype)
        for i in range(c):
            for r in range(k):
                top, left, bottom, right = self.boxes[i, r].tolist()
                t, l, b, rr = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
                if b > t and rr > l:
                    source = images[int(self.image_index[i, r]), :, t:b, l:rr]
                    out[i, r, :, t - top:b - top, l - left:rr - left] = source.cpu()
        return out


def top_activating_patches(
    model: nn.Module,
    images: Tensor,
    layer: LayerSpec,
    channels: Sequence[int] | None = None,
    k: int = 9,
    *,
    batch_size: int = 128,
    progress: bool = True,
    desc: str = "top patches",
) -> TopPatches:
    """For each channel of ``layer``, the ``k`` images that excite it most, and where (Zeiler & Fergus 2014).

    For image ``n`` and channel ``c`` the score is the channel's strongest unit,
    ``a_c(n) = max_{i,j} A[n, c, i, j]``, at ``(i*, j*) = argmax`` (the first maximum in row-major
    order when several are equal). The ``k`` images with the largest ``a_c`` are kept (one patch
    per image, as in the paper's figure 2; ties go to the earlier image), batch by batch, so the
    activations of the whole set are never held. The patch that explains ``a_c(n)`` is the unit's
    receptive field (:func:`layer_receptive_field`): the unit at ``(i, j)`` sees the input pixels

        ``rows  start + i·jump ± (size - 1) / 2``,  ``columns  start + j·jump ± (size - 1) / 2``,

    nothing else, so the patch alone determines the activation. Zeiler & Fergus project the
    activation back to pixels with a deconvnet; the receptive-field crop is the model-free part of
    that picture (CS231n's "images that maximally activate a neuron").

    ``layer`` must output ``[B, C, h, w]`` and sit at the end of a plain chain of modules (the
    course VGG's ``net.features.*``). ``channels``: the channels to rank (default: all). The
    model runs in eval mode under ``no_grad`` in batches and is left as it was.

    Reference: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014
    (arXiv 1311.2901), Sec. 4 and Fig. 2.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [N, 3, H, W], got shape {tuple(images.shape)}")
    n = len(images)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of images ({n}), got {k}")
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"top_activating_patches needs square images, got {tuple(images.shape[-2:])}")
    name, _ = get_layer(model, layer)
    field = layer_receptive_field(model, name, size=images.shape[-1])
    chosen: Tensor | None = None
    best_v = best_n = best_p = None
    width = None
    start_batch = 0
    for outputs in _batched_outputs(model, images, [name], batch_size=batch_size, progress=progress, desc=desc):
        out = outputs[name]
        if out.dim() != 4:
            raise ValueError(f"layer {name!r} outputs shape {tuple(out.shape)}; top patches need a conv layer "
                             "with output [B, C, h, w]")
        if chosen is None:
            n_channels, width = out.shape[1], out.shape[3]
            chosen = torch.arange(n_channels) if channels is None else torch.as_tensor(list(channels), dtype=torch.long)
            if chosen.numel() == 0 or chosen.min() < 0 or chosen.max() >= n_channels:
                raise ValueError(f"channels must be indices between 0 and {n_channels - 1} of layer {name!r}, "
                                 f"got {chosen.tolist()}")
        flat = out[:, chosen.to(out.device)].flatten(2).float().cpu()      # [B, C, h*w]
        value, pos = flat.max(dim=2)                                        # first maximum per image
        index = torch.arange(start_batch, start_batch + len(out)).expand(len(chosen), -1)
        value, pos = value.T, pos.T                                         # [C, B]
        if best_v is not None:                                              # earlier images first: ties keep them
            value, pos, index = (torch.cat([best_v, value], 1), torch.cat([best_p, pos], 1),
                                 torch.cat([best_n, index], 1))
        order = value.sort(dim=1, descending=True, stable=True).indices[:, :k]
        best_v, best_p, best_n = value.gather(1, order), pos.gather(1, order), index.gather(1, order)
        start_batch += len(out)
    rows, cols = best_p // width, best_p % width
    centre_r = field.start + rows.double() * field.jump
    centre_c = field.start + cols.double() * field.jump
    half = (field.size - 1) / 2
    top = torch.round(centre_r - half).long()
    left = torch.round(centre_c - half).long()
    boxes = torch.stack([top, left, top + field.size, left + field.size], dim=-1)
    return TopPatches(layer=name, channels=chosen.tolist(), values=best_v, image_index=best_n,
                      position=torch.stack([rows, cols], dim=-1), boxes=boxes, field=field, n_images=n)


def class_purity(image_labels: Tensor) -> Tensor:
    """Per row of labels ``[C, k]``, the share of the ``k`` labels that are the row's most common one.

    Applied to the labels of a channel's top-``k`` images: 1 when they are all one class, about
    the largest class frequency plus sampling noise when the channel ignores the class.
    """
    labels = torch.as_tensor(image_labels).long()
    if labels.dim() != 2:
        raise ValueError(f"labels must be [channels, k], got shape {tuple(labels.shape)}")
    counts = F.one_hot(labels, int(labels.max()) + 1).sum(1)                # [C, classes]
    return counts.max(1).values.double() / labels.shape[1]


def plot_top_patches(top: TopPatches, images: Tensor, *, labels: Tensor | None = None,
                     classes: Sequence[str] | None = None, title: str | None = None,
                     width: str | float = "full", cell: float | None = None, fill: float = 0.5) -> plt.Figure:
    """One row per channel: its ``k`` top receptive-field patches, strongest first.

    Each patch is titled with its activation (and, above it, the image's class when ``labels`` and
    ``classes`` are given); the row label names the channel. Grey areas are padding outside the
    image. The figure is ``width`` wide (``"full"`` = 7 in, ``"column"`` = 3.4 in, or inches);
    ``cell`` fixes the side of one patch instead. Returns the figure.
    """
    from .style import MIN_FONT_PT, image_axes, width_inches

    crops = top.crops(images, fill=fill)
    c, k = crops.shape[:2]
    two_lines = labels is not None and classes is not None
    label_w = 0.55                                                  # the row labels, "channel 12"
    if cell is None:
        cell = min(0.9, (width_inches(width) - label_w) / k - 0.03)
    title_h = 0.25 if two_lines else 0.14
    fig, axes = plt.subplots(c, k, figsize=(label_w + k * (cell + 0.03), c * (cell + title_h) + 0.35),
                             squeeze=False, layout="constrained")
    for i in range(c):
        for r in range(k):
            ax = axes[i, r]
            ax.imshow(crops[i, r].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            image_axes(ax)
            text = f"{top.values[i, r].item():.1f}"
            if two_lines:
                text = f"{classes[int(labels[int(top.image_index[i, r])])]}\n{text}"
            ax.set_title(text, fontsize=MIN_FONT_PT, pad=1.5, linespacing=1.0)
        axes[i, 0].set_ylabel(f"channel {top.channels[i]}", fontsize=MIN_FONT_PT)
    fig.suptitle(title or f"{top.layer}: top-{k} patches per channel ({top.field.size}×{top.field.size} px "
                 f"receptive field, {top.n_images} images)")
    return fig


# --------------------------------------------------------------------------- nearest neighbours
def nearest_neighbours(features: Tensor | np.ndarray, k: int = 5, *, queries: Sequence[int] | Tensor | None = None,
                       chunk: int = 256) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest neighbours (Euclidean) of query points among all points, the query excluded.

    ``features`` ``[N, ...]`` are flattened to ``[N, D]``; ``queries`` are indices of the points
    to query (default: every point). For query ``q`` the distances ``d(q, j) = |x_q - x_j|`` to
    all ``j ≠ q`` are sorted (a stable sort: equal distances keep the smaller index first) and the
    first ``k`` kept. Distances come from ``torch.cdist`` in chunks of ``chunk`` queries, in the
    features' own floating dtype (float32 for activations; pass float64 for exact ties). Returns
    ``(distances [Q, k], indices [Q, k])``.

    Used for Krizhevsky et al.'s (NeurIPS 2012, Fig. 4) comparison: neighbours in a network's
    feature space share the class, neighbours in pixel space share colours and layout.
    """
    x = torch.as_tensor(_numpy(features))
    x = x.reshape(len(x), -1)
    if not x.is_floating_point():
        x = x.double()
    n = len(x)
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and N - 1 = {n - 1}, got {k}")
    q = torch.arange(n) if queries is None else torch.as_tensor(queries, dtype=torch.long).flatten()
    if q.numel() and (q.min() < 0 or q.max() >= n):
        raise ValueError(f"queries must be indices between 0 and {n - 1}, got {q.tolist()[:10]}")
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    dist, idx = [], []
    for start in range(0, len(q), chunk):
        rows = q[start:start + chunk]
        d = torch.cdist(x[rows], x)
        d[torch.arange(len(rows)), rows] = float("inf")          # a point is not its own neighbour
        order = d.sort(dim=1, stable=True).indices[:, :k]
        dist.append(d.gather(1, order))
        idx.append(order)
    if not dist:
        return torch.empty(0, k, dtype=x.dtype), torch.empty(0, k, dtype=torch.long)
    return torch.cat(dist), torch.cat(idx)


#: Frames of :func:`neighbour_grid`: same class as the query (blue, solid, ✓) or not (vermillion, dashed, ✗);
#: Okabe-Ito colours, and told apart by line style and sign in black and white too.
SAME_CLASS_STYLE = {"color": "#0072B2", "linestyle": "-", "sign": "✓"}
OTHER_CLASS_STYLE = {"color": "#D55E00", "linestyle": (0, (2.0, 1.2)), "sign": "✗"}


def neighbour_grid(images: Tensor, queries: Sequence[int], neighbours: dict[str, Tensor], *,
                   labels: Tensor | None = None, classes: Sequence[str] | None = None,
                   width: str | float = "full", cell: float | None = None, title: str | None = None) -> plt.Figure:
    """Query images and their nearest neighbours in several spaces, one row per (query, space).

    ``neighbours[space]`` is ``[Q, k]`` indices into ``images`` (from :func:`nearest_neighbours`,
    in the order of ``queries``); the keys label the rows. The first column shows the query; with
    ``labels`` each neighbour gets a frame drawn around its panel (not the axes' spines): solid
    blue and a ✓ when it has the query's class, dashed vermillion and a ✗ when not, and is titled
    with its class when ``classes`` are given. The figure is ``width`` wide (``"full"``,
    ``"column"`` or inches); ``cell`` fixes the side of one image instead. Returns the figure.
    """
    from matplotlib.patches import Rectangle

    from .style import MIN_FONT_PT, image_axes, width_inches

    spaces = list(neighbours)
    k = neighbours[spaces[0]].shape[1]
    rows = len(queries) * len(spaces)
    label_w = 1.0                                                     # the row labels (space names)
    if cell is None:
        cell = min(1.1, (width_inches(width) - label_w) / (k + 1) - 0.04)
    fig, axes = plt.subplots(rows, k + 1, figsize=(label_w + (k + 1) * (cell + 0.04), rows * (cell + 0.17) + 0.3),
                             squeeze=False, layout="constrained")
    for qi, q in enumerate(queries):
        for si, space in enumerate(spaces):
            r = qi * len(spaces) + si
            for c in range(k + 1):
                ax = axes[r, c]
                image_axes(ax)
                if c == 0:
                    if si == 0:
                        ax.imshow(images[q].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
                        name = f": {classes[int(labels[q])]}" if labels is not None and classes is not None else ""
                        ax.set_title(f"query {q}{name}", fontsize=MIN_FONT_PT, pad=1.5)
                    ax.set_ylabel(space, fontsize=MIN_FONT_PT, rotation=0, ha="right", va="center")
                    continue
                j = int(neighbours[space][qi, c - 1])
                ax.imshow(images[j].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
                if labels is not None:
                    style = SAME_CLASS_STYLE if int(labels[j]) == int(labels[q]) else OTHER_CLASS_STYLE
                    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False, clip_on=False,
                                           edgecolor=style["color"], linestyle=style["linestyle"], linewidth=1.6))
                    name = classes[int(labels[j])] if classes is not None else ""
                    ax.set_title(f"{style['sign']} {name}".strip(), fontsize=MIN_FONT_PT, pad=2.0,
                                 color=style["color"])
    if title:
        fig.suptitle(title)
    return fig


__all__ = ["collect_activations", "penultimate_layer", "ChannelStats", "channel_stats", "filter_colour_share",
           "linear_templates",
           "tsne_embedding", "neighbour_probabilities", "perplexity_bandwidths", "knn_same_class", "spread_subset",
           "class_colours", "class_markers", "thumbnail_scatter", "OKABE_ITO",
           "layer_chain", "layer_receptive_field", "describe_layer", "TopPatches", "top_activating_patches",
           "class_purity", "plot_top_patches", "nearest_neighbours", "neighbour_grid"]
