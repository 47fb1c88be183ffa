"""Sanity checks for saliency maps (Adebayo et al., NeurIPS 2018, arXiv 1810.03292).

If a map explains the *model*, destroying the model must change the map. The
**model-parameter randomisation test** re-initialises the trained model's layers and compares
each method's maps before and after:

* **cascading**: from the output down, one layer more at every step (the last linear layer,
  then the one before, ... down to the first convolution), cumulatively;
* **independent**: one layer at a time, all others trained.

A "step" is a layer with weights (convolution or linear) together with the normalisation
layers (BatchNorm, ...) that follow it before the next such layer; re-initialising calls the
layers' own ``reset_parameters()`` (BatchNorm back to weight 1, bias 0, running mean 0,
variance 1) under a seeded generator, on a **deep copy** (the caller's model is never touched).
The target class of every image is fixed from the trained model's prediction.

Similarity of the trained model's map ``m`` and the randomised model's map ``m'``, per image:

* Spearman rank correlation of ``|m|`` and ``|m'|`` (``spearman_abs``) and of the signed maps
  (``spearman``; ``abs`` can hide sign flips, so the paper reports both). Ties get average
  ranks; a constant map has no defined correlation (NaN, left out of the means with a warning);
* SSIM (``skimage.metrics.structural_similarity``, ``data_range=1``) of the maps min-max
  normalised per image to [0, 1].

Methods whose maps stay similar while the model is destroyed (guided backprop and guided
Grad-CAM in the paper) behave like edge detectors of the input; gradient and Grad-CAM pass.

The **data randomisation test** (the paper's Sec. 4) destroys the *data* instead: the same
architecture is trained on the training images with their labels permuted
(:func:`permuted_labels`, :func:`random_label_model`) until it memorises them, and
:func:`data_randomization` compares each method's maps for the true-label model and the
random-label model (same three similarities, target fixed from the true-label model).
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..checks import check_images, check_positive_int, check_target, check_tensor, resolve_target
from ..hooks import LayerNotFoundError, get_layer, preserve_state
from ..maps import normalize
from ..progress import progress_bar
from ._common import Method, batched_logits, compute_maps, format_rows, resolve_method, t_interval

SIMILARITIES = ("spearman_abs", "spearman", "ssim")
SIMILARITY_LABELS = {
    "spearman_abs": r"Spearman $\rho$ of |maps|",
    "spearman": r"Spearman $\rho$ of signed maps",
    "ssim": "SSIM of normalised maps",
}
#: What a *low* similarity to the original maps means in each test: the map depends on what the
#: test destroyed (a faithful method's maps must change, so lower is what it should show).
SIMILARITY_DIRECTIONS = {
    "cascading": "↓ = map depends on the weights",
    "independent": "↓ = map depends on the layer",
    "data": "↓ = map depends on the labels learned",
}


def similarity_axis_label(test: str) -> str:
    """The y label of a sanity-check plot, with its direction: ``"similarity to the trained model's
    maps (↓ = map depends on the weights)"`` for ``test`` in :data:`SIMILARITY_DIRECTIONS`."""
    if test not in SIMILARITY_DIRECTIONS:
        raise ValueError(f"test must be one of {list(SIMILARITY_DIRECTIONS)}, got {test!r}")
    return f"similarity to the trained model's maps\n({SIMILARITY_DIRECTIONS[test]})"


def _similarities(metrics: str | Sequence[str]) -> list[str]:
    """``metrics`` as a list of names of :data:`SIMILARITIES`; an unknown one is an error that lists them."""
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    for metric in metrics:
        if metric not in SIMILARITIES:
            raise ValueError(f"unknown similarity {metric!r}; valid: {list(SIMILARITIES)}")
    return metrics


def _similarity_ylim(lowest: float) -> tuple[float, float]:
    """The y range of a similarity panel: up to 1, down past the lowest mean (at least to -0.3, at most to -1)."""
    return max(-1.05, min(-0.3, lowest - 0.1)), 1.05


def step_labels(result: "SanityResult", model: nn.Module | None = None) -> list[str]:
    """Names for people of a randomisation result's steps: ``"trained"``, then the layers as
    :func:`vislib.style.layer_name` gives them (``"fc 3 (net.classifier.7)"``) when ``model`` is
    given, else their module paths."""
    from ..style import layer_name

    out = []
    for step in result.steps:
        if step == "original":
            out.append("trained")
        elif model is not None:
            out.append(layer_name(model, step))
        else:
            out.append(step)
    return out


_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


# --------------------------------------------------------------------------- similarities
def _same_shape(a: Tensor, b: Tensor) -> None:
    check_tensor(a, "maps", "[B, ...]")
    check_tensor(b, "maps", "[B, ...]")
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"maps to compare must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def spearman_similarity(a: Tensor, b: Tensor, *, abs: bool = False) -> Tensor:
    """Spearman rank correlation of each pair of maps ``[B, ...]`` (NaN where one is constant)."""
    from scipy.stats import rankdata

    _same_shape(a, b)
    x = a.detach().reshape(a.shape[0], -1).double().cpu().numpy()
    y = b.detach().reshape(b.shape[0], -1).double().cpu().numpy()
    if abs:
        x, y = np.abs(x), np.abs(y)
    rx = rankdata(x, axis=1)
    ry = rankdata(y, axis=1)
    rx -= rx.mean(1, keepdims=True)
    ry -= ry.mean(1, keepdims=True)
    denom = np.sqrt((rx ** 2).sum(1) * (ry ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denom > 0, (rx * ry).sum(1) / np.where(denom > 0, denom, 1.0), np.nan)
    return torch.from_numpy(rho)


def ssim_similarity(a: Tensor, b: Tensor) -> Tensor:
    """SSIM of each pair of maps ``[B, H, W]`` after per-image min-max normalisation to [0, 1]."""
    from skimage.metrics import structural_similarity

    _same_shape(a, b)
    if a.dim() != 3:
        raise ValueError(f"SSIM needs maps [B, H, W], got {tuple(a.shape)}")
    x = normalize(a.detach().double().cpu()).numpy()
    y = normalize(b.detach().double().cpu()).numpy()
    side = min(x.shape[-2:])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        raise ValueError(f"maps of {x.shape[-2:]} pixels are too small for SSIM (at least 3x3)")
    return torch.tensor([structural_similarity(x[i], y[i], data_range=1.0, win_size=win) for i in range(len(x))],
                        dtype=torch.float64)


# --------------------------------------------------------------------------- randomisation
def randomization_steps(model: nn.Module) -> list[tuple[str, list[str]]]:
    """The layers randomised step by step, input to output: ``[(step_name, [module names])]``.

    Each step is a module with its own weights that is not a normalisation layer (conv,
    linear, ...), plus the normalisation layers that follow it in ``named_modules()`` order.
    """
    steps: list[tuple[str, list[str]]] = []
    for name, module in model.named_modules():
        own = any(True for _ in module.parameters(recurse=False))
        if isinstance(module, _NORMS):
            if steps:
                steps[-1][1].append(name)
            else:
                steps.append((name, [name]))
        elif own:
            steps.append((name or type(module).__name__, [name]))
    if not steps:
        raise ValueError("the model has no layers with parameters to randomise")
    return steps


def _reinitialise(model: nn.Module, names: Sequence[str], seed: int) -> None:
    modules = dict(model.named_modules())
    cuda = sorted({p.device.index or 0 for p in model.parameters() if p.is_cuda})
    with torch.random.fork_rng(devices=cuda), torch.no_grad():
        torch.manual_seed(seed)
        for name in names:
            module = modules[name]
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            else:  # a custom layer: redraw its parameters with their own scale
                for p in module.parameters(recurse=False):
                    p.normal_(0.0, max(p.std().item() if p.numel() > 1 else 0.0, 1e-2))


def randomized_copy(model: nn.Module, names: str | Sequence[str], seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` in which the modules ``names`` are re-initialised; ``model`` is unchanged.

    Each module gets fresh parameters from its own ``reset_parameters()`` (BatchNorm: weight 1,
    bias 0, running mean 0, variance 1) after ``torch.manual_seed(seed)``, so the result is the
    same as ``copy.deepcopy(model)`` followed by ``torch.manual_seed(seed)`` and
    ``module.reset_parameters()``; the global random state is left as it was. This is one step of
    the model-parameter randomisation test done by hand.
    """
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        try:
            get_layer(model, name)
        except LayerNotFoundError as error:     # say which name, and list the valid ones
            raise LayerNotFoundError(f"no module named {name!r} in the model ({error})") from None
    clone = copy.deepcopy(model)
    _reinitialise(clone, names, seed)
    return clone


@dataclass
class SanityResult:
    """Similarities between the trained model's maps and the randomised models' maps.

    ``steps[0]`` is ``'original'`` (the trained model compared with itself); for cascading
    randomisation ``steps[i]`` names the layer randomised in addition to all before it, for
    independent randomisation the only layer randomised. ``similarity[metric][method]`` is a
    ``Tensor[S, B]`` (step, image).
    """

    mode: str
    steps: list[str]
    methods: list[str]
    similarity: dict[str, dict[str, Tensor]]
    target: Tensor

    def mean(self, metric: str, method: str) -> Tensor:
        """``Tensor[S]``: the similarity averaged over images (NaN left out) at every step."""
        if metric not in SIMILARITIES:
            raise ValueError(f"unknown similarity {metric!r}; valid: {list(SIMILARITIES)}")
        return self.similarity[metric][method].nanmean(1)

    def summary(self) -> list[dict]:
        rows = []
        for metric in SIMILARITIES:
            for method in self.methods:
                values = self.similarity[metric][method]
                mean, low, high = t_interval(values, 0.95, dim=1)
                for i, step in enumerate(self.steps):
                    rows.append({"mode": self.mode, "method": method, "step": i, "layer": step, "metric": metric,
                                 "mean": mean[i].item(), "ci_low": low[i].item(), "ci_high": high[i].item(),
                                 "n": int((~torch.isnan(values[i])).sum())})
        return rows

    def format_table(self, metric: str = "spearman_abs") -> str:
        """Methods as rows, steps as columns: the mean similarity."""
        rows = [{"method": m, **{s: self.mean(metric, m)[i].item() for i, s in enumerate(self.steps)}}
                for m in self.methods]
        return f"{self.mode} randomisation, {metric}\n" + format_rows(rows, ["method"] + self.steps, ".3f")


def _method_items(methods: Sequence[Method] | Mapping[str, Method] | Method) -> list[tuple[str, Method]]:
    if isinstance(methods, Mapping):
        return list(methods.items())
    if isinstance(methods, str) or callable(methods):
        methods = [methods]
    return [(resolve_method(m)[0], m) for m in methods]


def _run(model: nn.Module, images: Tensor, methods, target, seed: int, mode: str, progress: bool,
         method_options: dict | None, batch_size: int) -> SanityResult:
    check_images(images)
    check_target(target)
    check_positive_int(batch_size, "batch_size")
    items = _method_items(methods)
    names = [name for name, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"method names must be unique, got {names}; pass a dict {{name: method}}")
    unknown = sorted(set(method_options or {}) - set(names))
    if unknown:
        raise ValueError(f"method_options names {unknown}, which are not among the methods {names}")
    trained = copy.deepcopy(model).eval()
    with preserve_state(trained):
        classes = resolve_target(target, batched_logits(trained, images, batch_size))
    steps = randomization_steps(trained)
    order = list(reversed(steps))  # from the output down
    options = method_options or {}

    def maps_of(net: nn.Module) -> dict[str, Tensor]:
        return {name: compute_maps(net, images, m, classes, batch_size=batch_size, options=options.get(name))
                for name, m in items}

    reference = maps_of(trained)
    sims: dict[str, dict[str, list[Tensor]]] = {s: {name: [] for name, _ in items} for s in SIMILARITIES}

    def record(maps: dict[str, Tensor]) -> None:
        for name, _ in items:
            sims["spearman_abs"][name].append(spearman_similarity(reference[name], maps[name], abs=True))
            sims["spearman"][name].append(spearman_similarity(reference[name], maps[name]))
            sims["ssim"][name].append(ssim_similarity(reference[name], maps[name]))

    record(reference)
    randomised = copy.deepcopy(trained)
    for i, (step, names) in enumerate(progress_bar(order, progress=progress, desc=f"{mode} randomisation", leave=True)):
        if mode == "independent":
            randomised = copy.deepcopy(trained)
        _reinitialise(randomised, names, seed * 100_003 + i)
        record(maps_of(randomised))
    similarity = {s: {name: torch.stack(v) for name, v in per.items()} for s, per in sims.items()}
    undefined = sum(int(torch.isnan(t).sum()) for t in similarity["spearman"].values())
    if undefined:
        warnings.warn(f"{undefined} rank correlation(s) are undefined because a map is constant; they are NaN "
                      "and left out of the means", RuntimeWarning, stacklevel=3)
    return SanityResult(mode=mode, steps=["original"] + [s for s, _ in order], methods=[n for n, _ in items],
                        similarity=similarity, target=classes.cpu())


def cascading_randomization(
    model: nn.Module,
    images: Tensor,
    methods: Sequence[Method] | Mapping[str, Method] | Method,
    target: Any = None,
    *,
    seed: int = 0,
    progress: bool = True,
    method_options: dict[str, dict] | None = None,
    batch_size: int = 64,
) -> SanityResult:
    """Cascading model-parameter randomisation: re-initialise the layers of a copy of ``model``
    from the output down, cumulatively, and compare each method's maps with the trained
    model's at every step (Spearman of |maps|, signed Spearman, SSIM; per image).

    ``methods``: names of ``vislib.attribution.METHODS``, callables, or ``{name: method}``;
    ``method_options`` maps a method name to its keyword options. ``target`` (None = the
    trained model's predictions) is fixed for all steps. ``seed`` seeds the re-initialisation.
    """
    return _run(model, images, methods, target, seed, "cascading", progress, method_options, batch_size)


def independent_randomization(
    model: nn.Module,
    images: Tensor,
    methods: Sequence[Method] | Mapping[str, Method] | Method,
    target: Any = None,
    *,
    seed: int = 0,
    progress: bool = True,
    method_options: dict[str, dict] | None = None,
    batch_size: int = 64,
) -> SanityResult:
    """Independent (layer-wise) randomisation: re-initialise one layer at a time, the others
    trained, in the same top-down order as :func:`cascading_randomization`."""
    return _run(model, images, methods, target, seed, "independent", progress, method_options, batch_size)


def plot_sanity(result: SanityResult, metrics: Sequence[str] = SIMILARITIES, *, axes=None,
                model: nn.Module | None = None, width: str | float = "full", height: float | None = None):
    """One panel per similarity: the mean over images with its 95 % Student-t band against the
    randomisation step, one line per method (each in its :func:`vislib.style.method_style`);
    returns the figure.

    The panels share the y axis, titled by the similarity's name for people
    (:data:`SIMILARITY_LABELS`); the y label says that a *lower* similarity means the map depends
    on what was randomised (what a faithful method shows). With ``model`` (the trained model) the
    step ticks are human layer names (:func:`step_labels`). A new figure is ``width`` wide
    (``"full"``, ``"column"`` or inches) with panel letters and one legend below; with ``axes``
    the panels are drawn there (each with its own legend-free curves).
    """
    from ..style import figure, legend_below, mean_band, method_styles, panel_letters

    metrics = _similarities(metrics)
    own_figure = axes is None
    if own_figure:
        fig, axes = figure(width, height if height is not None else 3.4, ncols=len(metrics), squeeze=False,
                           sharey=True)
        axes = axes[0]
    else:
        axes = np.atleast_1d(axes)
        fig = axes[0].figure
    x = np.arange(len(result.steps))
    ticks = step_labels(result, model)
    styles = method_styles(result.methods)
    xlabel = "randomised " + ("down to layer (cumulative)" if result.mode == "cascading" else "layer (only this one)")
    lowest = 0.0
    for k, (ax, metric) in enumerate(zip(axes, metrics)):
        for method in result.methods:
            mean, low, high = t_interval(result.similarity[metric][method], 0.95, dim=1)
            lowest = min(lowest, float(np.nanmin(mean.numpy())))
            # a similarity lies in [-1, 1]: the band (few images make it wide) is cut there
            mean_band(ax, x, mean.numpy(), np.clip(low.numpy(), -1, 1), np.clip(high.numpy(), -1, 1), alpha=0.15,
                      **styles[method])
        ax.axhline(0, color="0.6", linewidth=0.6, zorder=0)
        ax.set_xticks(x)
        ax.set_xticklabels(ticks, rotation=90)
        if not own_figure or len(metrics) < 3 or k == len(metrics) // 2:   # one x label under a row of 3+
            ax.set_xlabel(xlabel)
        if k == 0 or not own_figure:
            ax.set_ylabel(similarity_axis_label(result.mode))
        ax.set_title(SIMILARITY_LABELS[metric])
        ax.grid(alpha=0.3)
    for ax in axes:
        ax.set_ylim(*_similarity_ylim(lowest))
    if own_figure:
        if len(metrics) > 1:
            panel_letters(axes)
        legend_below(fig, axes, ncol=min(len(result.methods), 5))
    return fig


# --------------------------------------------------------------------------- data randomisation
def permuted_labels(labels: Tensor, seed: int = 0) -> Tensor:
    """The training labels shuffled among the images by a seeded random permutation.

    ``labels[π]`` with ``π = torch.randperm(N, generator=torch.Generator().manual_seed(seed))``:
    every class keeps exactly its number of images, but which image carries which label is
    random, so no rule from image to label is left to learn. ``π`` is a plain random permutation,
    not a derangement: an image keeps a label of its own class with probability about
    ``Σ_c p_c²`` (1/8 for eight balanced classes), the chance level, which is what independence
    of image and label means. The data-randomisation test of Adebayo et al. (NeurIPS 2018,
    Sec. 4) trains a model on such labels. The global random state is not touched.
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 1:
        raise ValueError(f"labels must be a 1-D tensor of class indices, got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(int(seed)))
    return labels[order.to(labels.device)].clone()


def random_label_model(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    *,
    seed: int = 0,
    epochs: int = 20,
    lr: float = 3e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    dropout: float | None = 0.0,
    progress: bool = True,
) -> tuple[nn.Module, Tensor, Any]:
    """Train a fresh copy of ``model``'s architecture on permuted labels; ``model`` is unchanged.

    The copy is ``copy.deepcopy(model)`` with every layer re-initialised by its
    ``reset_parameters()`` after ``torch.manual_seed(seed)`` (same architecture and
    normalisation, untrained), trained by :func:`vislib.train.train` on ``images`` with
    :func:`permuted_labels` ``(labels, seed)``. No weight decay and, with ``dropout=0.0``, dropout
    switched off during training (the ``p`` of every ``nn.Dropout`` is restored afterwards, so the
    returned network is the same architecture): both only make memorising faster. Returns
    ``(trained copy in eval mode, the permuted labels, the training History)``.
    """
    from ..train import train

    check_images(images)
    shuffled = permuted_labels(labels, seed)
    fresh = copy.deepcopy(model)
    _reinitialise(fresh, [n for n, m in fresh.named_modules() if hasattr(m, "reset_parameters")], seed)
    saved = {}
    if dropout is not None:
        for module in fresh.modules():
            if isinstance(module, nn.modules.dropout._DropoutNd):
                saved[module] = module.p
                module.p = float(dropout)
    try:
        history = train(fresh, images, shuffled, epochs=epochs, lr=lr, batch_size=batch_size,
                        weight_decay=weight_decay, seed=seed, progress=progress, desc="training on permuted labels")
    finally:
        for module, p in saved.items():
            module.p = p
    return fresh.eval(), shuffled, history


def map_similarities(a: Tensor, b: Tensor) -> dict[str, Tensor]:
    """Per pair of maps ``[B, H, W]``: ``{'spearman_abs', 'spearman', 'ssim'}``, each ``Tensor[B]``.

    The three similarities of the randomisation tests (:func:`spearman_similarity` of ``|a|`` and
    ``|b|``, of the signed maps, and :func:`ssim_similarity` of the min-max normalised maps).
    """
    return {"spearman_abs": spearman_similarity(a, b, abs=True), "spearman": spearman_similarity(a, b),
            "ssim": ssim_similarity(a, b)}


@dataclass
class DataRandomizationResult:
    """Similarity of each method's maps for a model trained on true labels and one trained on
    permuted labels: ``similarity[metric][method]`` is ``Tensor[B]`` (one value per image);
    ``maps[method]`` is the pair ``(true-label maps, permuted-label maps)`` ``[B, H, W]``."""

    methods: list[str]
    similarity: dict[str, dict[str, Tensor]]
    target: Tensor
    maps: dict[str, tuple[Tensor, Tensor]]

    def mean(self, metric: str, method: str) -> tuple[float, float, float]:
        """``(mean, low, high)``: the mean over images and its 95 % Student-t interval (NaN left out)."""
        if metric not in SIMILARITIES:
            raise ValueError(f"unknown similarity {metric!r}; valid: {list(SIMILARITIES)}")
        if method not in self.methods:
            raise ValueError(f"unknown method {method!r}; valid: {self.methods}")
        mean, low, high = t_interval(self.similarity[metric][method], 0.95, dim=0)
        return mean.item(), low.item(), high.item()

    def format_table(self) -> str:
        """Methods as rows, the three similarities as columns: mean [95 % CI]."""
        rows = []
        for m in self.methods:
            row = {"method": m}
            for metric in SIMILARITIES:
                mean, low, high = self.mean(metric, m)
                row[metric] = f"{mean:.3f} [{low:.3f}, {high:.3f}]"
            rows.append(row)
        return ("data randomisation: true-label model vs permuted-label model, mean [95% CI] over "
                f"{len(self.target)} images\n" + format_rows(rows, ["method", *SIMILARITIES]))


def data_randomization(
    model: nn.Module,
    random_label_model: nn.Module,
    images: Tensor,
    methods: Sequence[Method] | Mapping[str, Method] | Method,
    target: Any = None,
    *,
    method_options: dict[str, dict] | None = None,
    batch_size: int = 64,
) -> DataRandomizationResult:
    """The data-randomisation test (Adebayo et al., NeurIPS 2018, Sec. 4): compare each method's
    maps for ``model`` (trained on the true labels) with its maps for ``random_label_model``
    (the same architecture trained on permuted labels, :func:`random_label_model`).

    The target of every image is fixed from ``model`` (``None``: its predicted class; or an int
    or ``B`` classes) and used for both models. Per image, :func:`map_similarities`: Spearman of
    ``|maps|``, signed Spearman, SSIM. A map that explains what the model learned from the labels
    must change when the labels carried no information; one that stays similar is driven by the
    input and the architecture. Neither model is changed.
    """
    check_images(images)
    items = _method_items(methods)
    options = method_options or {}
    trained = copy.deepcopy(model).eval()
    shuffled = copy.deepcopy(random_label_model).eval()
    classes = resolve_target(target, batched_logits(trained, images, batch_size))
    similarity: dict[str, dict[str, Tensor]] = {s: {} for s in SIMILARITIES}
    maps: dict[str, tuple[Tensor, Tensor]] = {}
    for name, method in items:
        a = compute_maps(trained, images, method, classes, batch_size=batch_size, options=options.get(name))
        b = compute_maps(shuffled, images, method, classes, batch_size=batch_size, options=options.get(name))
        for metric, values in map_similarities(a, b).items():
            similarity[metric][name] = values
        maps[name] = (a, b)
    undefined = sum(int(torch.isnan(t).sum()) for t in similarity["spearman"].values())
    if undefined:
        warnings.warn(f"{undefined} rank correlation(s) are undefined because a map is constant; they are NaN "
                      "and left out of the means", RuntimeWarning, stacklevel=2)
    return DataRandomizationResult(methods=[n for n, _ in items], similarity=similarity, target=classes.cpu(),
                                   maps=maps)


def plot_data_randomization(result: DataRandomizationResult, metrics: Sequence[str] = SIMILARITIES, *,
                            reference: SanityResult | None = None, title: str | None = None,
                            width: str | float = "full", height: float | None = None):
    """One panel per similarity: a bar per method (mean over images, 95 % Student-t interval),
    true-label vs permuted-label model, in the method's colour and with its name for people. With
    ``reference`` (a cascading :class:`SanityResult` of the same methods) a black diamond marks
    each method's similarity to a fully randomised network (the cascade's last step), for scale.
    The panels share the y axis; its label says that a lower similarity means the map depends on
    the labels the model learned. ``title`` (optional) is a short figure title. Returns the figure,
    ``width`` wide, with panel letters and the legend below."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from ..style import figure, method_styles, panel_letters

    metrics = _similarities(metrics)
    styles = method_styles(result.methods)
    fig, axes = figure(width, height if height is not None else 3.0, ncols=len(metrics), squeeze=False,
                       sharey=True)
    x = np.arange(len(result.methods))
    lowest = 0.0
    for k, (ax, metric) in enumerate(zip(axes[0], metrics)):
        stats = [result.mean(metric, m) for m in result.methods]
        means = np.array([s[0] for s in stats])
        # the interval, cut to [-1, 1] where few images make it wider than a similarity can be
        low = np.clip([s[1] for s in stats], -1, 1)
        high = np.clip([s[2] for s in stats], -1, 1)
        err = np.nan_to_num(np.array([means - low, high - means]).clip(min=0))
        ax.bar(x, means, yerr=err, capsize=2, color=[styles[m]["color"] for m in result.methods],
               error_kw={"linewidth": 0.8})
        lowest = min(lowest, float(np.nanmin(means)))
        if reference is not None:
            ends = [reference.mean(metric, m)[-1].item() if m in reference.methods else np.nan
                    for m in result.methods]
            ax.scatter(x, ends, marker="D", s=16, color="k", edgecolors="w", linewidths=0.5, zorder=3)
        ax.axhline(0, color="0.6", linewidth=0.6)
        ax.set_xticks(x)
        ax.set_xticklabels([styles[m]["label"] for m in result.methods], rotation=90)
        if k == 0:
            ax.set_ylabel(similarity_axis_label("data"))
        ax.set_title(SIMILARITY_LABELS[metric])
        ax.grid(alpha=0.3, axis="y")
    axes[0, 0].set_ylim(*_similarity_ylim(lowest))
    if len(metrics) > 1:
        panel_letters(axes[0])
    handles = [Patch(facecolor="0.65", label="real vs permuted-label model (bar: mean, whisker: 95 % CI)")]
    if reference is not None:
        handles.append(Line2D([], [], linestyle="", marker="D", markersize=4, color="k",
                              label="real vs fully random network (cascade's last step)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
    if title:
        fig.suptitle(title)
    return fig
