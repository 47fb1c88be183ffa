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

from ..checks import check_images, resolve_target
from ..hooks import LayerNotFoundError, get_layer, preserve_state
from ..maps import normalize
from ..progress import progress_bar
from ._common import Method, batched_logits, compute_maps, format_rows, resolve_method, t_interval

SIMILARITIES = ("spearman_abs", "spearman", "ssim")
SIMILARITY_LABELS = {
    "spearman_abs": "Spearman rank correlation of |maps|",
    "spearman": "Spearman rank correlation (signed)",
    "ssim": "SSIM of normalised maps",
}
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


# --------------------------------------------------------------------------- similarities
def _same_shape(a: Tensor, b: Tensor) -> None:
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
    items = _method_items(methods)
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


def plot_sanity(result: SanityResult, metrics: Sequence[str] = SIMILARITIES, *, axes=None):
    """One panel per similarity: mean over images (95 % CI band) against the randomisation
    step, one line per method; returns the figure."""
    import matplotlib.pyplot as plt

    from ..plot import method_styles

    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    own_figure = axes is None
    if own_figure:
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.8), squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(axes)
        fig = axes[0].figure
    x = np.arange(len(result.steps))
    for ax, metric in zip(axes, metrics):
        styles = method_styles(result.methods)
        for method in result.methods:
            mean, low, high = t_interval(result.similarity[metric][method], 0.95, dim=1)
            (line,) = ax.plot(x, mean.numpy(), marker="o", markersize=3, label=method, **styles[method])
            ax.fill_between(x, low.numpy(), high.numpy(), color=line.get_color(), alpha=0.15, linewidth=0)
        ax.axhline(0, color="0.6", linewidth=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(result.steps, rotation=60, ha="right", fontsize=7)
        ax.set_xlabel("randomised " + ("down to layer" if result.mode == "cascading" else "layer"))
        ax.set_ylabel(SIMILARITY_LABELS[metric])
        ax.set_title(f"{result.mode} randomisation: {metric}", fontsize=10)
        ax.grid(alpha=0.3)
    if own_figure:                                   # one legend, outside the curves
        fig.tight_layout(rect=(0, 0, 0.86, 1))
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.86, 0.5), fontsize=8, title="method")
    else:
        axes[0].legend(fontsize=8)
    return fig
