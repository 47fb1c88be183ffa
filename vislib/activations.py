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

References: Karpathy et al., CS231n notes "Visualizing what ConvNets learn"
(``understanding-cnn.md``); van der Maaten & Hinton, "Visualizing Data using t-SNE", JMLR 2008;
Wattenberg, Viégas & Johnson, "How to Use t-SNE Effectively", Distill 2016.
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
from .models import Normalize
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


def class_colours(n: int) -> list:
    """``n`` distinct colours (tab10, then tab20) for class scatter plots."""
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


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

    Every point is a dot in its class colour (legend: class names). With ``images`` ``[N, 3, H,
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
    for c, name in enumerate(classes):
        sel = labels == c
        if sel.any():
            ax.scatter(xy[sel, 0], xy[sel, 1], s=point_size, color=colours[c], label=name,
                       alpha=0.75, linewidths=0)
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
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=2.0, frameon=False,
                  title="class")
    return ax


__all__ = ["collect_activations", "penultimate_layer", "ChannelStats", "channel_stats", "filter_colour_share",
           "linear_templates",
           "tsne_embedding", "neighbour_probabilities", "perplexity_bandwidths", "knn_same_class", "spread_subset",
           "class_colours", "thumbnail_scatter"]
