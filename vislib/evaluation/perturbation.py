"""Pixel perturbation: remove the k % least (or most) salient pixels and watch the output move.

FullGrad (Srinivas & Fleuret, NeurIPS 2019, Sec. 5) removes the k % **least** salient pixels:
a good map puts no saliency on pixels the model does not use, so removing them should change
the output little (lower is better). Removing the **most** salient pixels instead (a faster
drop is better) is the other reading; it suffers more from the artefacts the removal itself
creates. Both are here (``mode='least' | 'most'``).

For each image x with clean logits s(x), probabilities p(x) = softmax(s(x)) and target class c
fixed from the **clean** image (its predicted class unless given), and x~ = x with the
``round(k·H·W)`` chosen pixel locations (all channels) filled:

* AFOC, absolute fractional output change, on probabilities:
  ``|p_c(x~) - p_c(x)| / p_c(x)``  (``afoc_logit``: the same on logits, ``|s_c(x~) - s_c(x)| / |s_c(x)|``)
* KL divergence ``KL(p(x) || p(x~)) = sum_j p_j(x) (log p_j(x) - log p_j(x~))`` (from log-softmax;
  note ``F.kl_div(input, target)`` wants ``input`` = log p(x~), ``target`` = p(x): an easy
  argument-order slip this code avoids by writing the sum out)
* PCUO, percentage change of the un-normalised (pre-softmax) score, signed:
  ``100 · (s_c(x~) - s_c(x)) / |s_c(x)|``; undefined (NaN, with a warning) when ``|s_c(x)| < 1e-6``.

The FACT-AI reproduction of FullGrad (UvA, 2020) defined three more, kept here as it defined them:

* ``kl_reverse``, the KL divergence the other way round, ``KL(p(x~) || p(x)) =
  sum_j p_j(x~) (log p_j(x~) - log p_j(x))``: the reproduction's KL is ``D_KL(P_k || P)``
  with ``P_k`` the distribution after removing k % of the pixels (the perturbed one) in the
  first slot (its code passes the perturbed probabilities first), so the sum is weighted by the
  perturbed distribution. ``kl`` above is ``D_KL(P || P_k)``, weighted by the clean one. The
  two differ (KL is not symmetric): ``kl_reverse`` punishes classes the perturbed image makes
  probable that were improbable before, ``kl`` classes it makes improbable.
* ``pcuo_abs``, its PCUO, absolute: ``100 · |s_c(x~) - s_c(x)| / |s_c(x)|`` (= 100 · ``afoc_logit``).
* ``pcuo_others``, the same absolute percentage change averaged over the ``top_others`` most
  probable *other* classes of the clean image (the reproduction used the 10 most probable of
  ImageNet's 1000, excluding c): ``mean_{j in T} 100 · |s_j(x~) - s_j(x)| / |s_j(x)|``, ``T``
  the ``min(top_others, C - 1)`` classes j != c with the largest clean logits (all other classes
  when there are fewer). A class whose clean logit is below ``eps`` in magnitude is left out of
  the mean (a percentage of ~0 is undefined); NaN if all are. Other classes' logits sit near 0
  far more often than the winner's, so this mean is dominated by its smallest denominators:
  report its median over images too.

All metrics are computed in float64 and kept per image, indexed ``[k, image]``. The random
baseline removes pixels sampled without replacement and averages each image's metrics over
``n_seeds`` (default 5) seeds. :meth:`PerturbationResult.summary` gives the mean and a 95 %
Student-t confidence interval over images; :func:`plot_curves` draws the curves with their bands.

Cost: one clean forward pass of the N images plus N·K perturbed ones, all under ``no_grad`` in
chunks of ``batch_size`` images (the perturbed images of a chunk are built just before it runs,
so memory stays bounded); ``benchmarks/bench_perturbation.py`` measures the overhead.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import (check_images, check_maps, check_number, check_positive_int, check_target, check_tensor,
                      resolve_target)
from ..hooks import preserve_state
from ..progress import progress_bar
from ._common import Method, batched_logits, compute_maps, format_rows, resolve_method, t_interval
from .removal import (check_fill, check_fractions, check_mode, dataset_mean, fill_pixels,
                      mask_from_rank, pixel_count, random_rank, saliency_rank)

#: FullGrad's least-salient grid is 0.1-10 % at 224 px; on 32-64 px images 0.1 % is a pixel or
#: two, so the default is the coarser grid of the course notes (evaluation.md, section 9).
DEFAULT_FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5)
METRICS = ("afoc", "kl", "pcuo", "afoc_logit")
#: The FACT-AI reproduction's metrics (module docstring); every result carries them too.
FACT_METRICS = ("kl_reverse", "pcuo_abs", "pcuo_others")
ALL_METRICS = METRICS + FACT_METRICS
#: The reproduction's choice: the 10 most probable other classes (of ImageNet's 1000).
TOP_OTHERS = 10
METRIC_LABELS = {
    "afoc": r"AFOC of $p_c$",
    "kl": r"$\mathrm{KL}(p \,\|\, \tilde{p})$",
    "pcuo": r"change of $s_c$ in %",
    "afoc_logit": r"AFOC of $s_c$",
    "kl_reverse": r"$\mathrm{KL}(\tilde{p} \,\|\, p)$",
    "pcuo_abs": r"PCUO of $s_c$ in %",
    "pcuo_others": r"PCUO of the other $s_j$ in %",
}
#: Panel titles: what each metric computes (mathtext; :data:`METRIC_LABELS` is the short axis label).
METRIC_TITLES = {
    "afoc": r"$\mathrm{AFOC} = |p_c(\tilde{x}) - p_c(x)| \,/\, p_c(x)$",
    "kl": r"$\mathrm{KL}(p \,\|\, \tilde{p})$, clean $p$ first",
    "pcuo": r"logit change $100\,\Delta s_c / |s_c(x)|$",
    "afoc_logit": r"$|\Delta s_c| \,/\, |s_c(x)|$",
    "kl_reverse": r"$\mathrm{KL}(\tilde{p} \,\|\, p)$, the FACT-AI report's",
    "pcuo_abs": r"$\mathrm{PCUO} = 100\,|\Delta s_c| \,/\, s_c(x)$",
    "pcuo_others": r"PCUO over the other classes $j \neq c$",
}


def metric_direction(metric: str, mode: str) -> str:
    """Which way is better for ``metric`` when the ``mode`` (``"least"``/``"most"``) salient pixels
    are removed: ``"lower"``, ``"higher"`` or ``"zero"`` (:func:`vislib.style.metric_label`).

    Removing the least salient pixels should leave the output as it is: the changes are best at 0
    (the PCUO variants say "0 is best"; AFOC and the KL divergences cannot go below 0, so "lower").
    Removing the most salient pixels should change it as much as possible: higher AFOC, KL and
    absolute PCUO, and a more negative signed logit change.
    """
    check_mode(mode)
    if mode == "least":
        return "zero" if metric.startswith("pcuo") else "lower"
    return "lower" if metric == "pcuo" else "higher"


def metric_axis_label(metric: str, mode: str) -> str:
    """The axis label of ``metric`` with its direction for ``mode`` removal: ``"AFOC of $p_c$ (↓ better)"``."""
    from ..style import metric_label

    return metric_label(METRIC_LABELS.get(metric, metric), metric_direction(metric, mode))


#: Pass this instead of maps for the random-removal baseline.
RANDOM = "random"
MapsSpec = Union[Tensor, Method]


@dataclass
class PerturbationResult:
    """Per-image pixel-perturbation metrics of one method, each a ``Tensor[K, N]`` (float64).

    ``fractions[k]`` and ``counts[k]`` (pixels removed per image) index the first axis, the
    images the second. For the random baseline the metrics are averaged over ``n_seeds`` seeds
    and ``per_seed[metric]`` keeps the ``[S, K, N]`` values.
    """

    method: str
    mode: str
    fill: str
    fractions: Tensor
    counts: Tensor
    target: Tensor
    afoc: Tensor
    kl: Tensor
    pcuo: Tensor
    afoc_logit: Tensor
    n_seeds: int = 1
    per_seed: dict[str, Tensor] | None = None
    forward_passes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    kl_reverse: Tensor | None = None
    pcuo_abs: Tensor | None = None
    pcuo_others: Tensor | None = None

    def values(self, metric: str) -> Tensor:
        """The ``[K, N]`` tensor of ``metric`` (one of :data:`ALL_METRICS`)."""
        if metric not in ALL_METRICS:
            raise ValueError(f"unknown metric {metric!r}; valid: {list(ALL_METRICS)}")
        return getattr(self, metric)

    def summary(self, metrics: Sequence[str] = METRICS, confidence: float = 0.95) -> list[dict]:
        """One row per (metric, k): mean over images and its Student-t confidence interval."""
        rows = []
        for metric in metrics:
            mean, low, high = t_interval(self.values(metric), confidence, dim=1)
            n = (~torch.isnan(self.values(metric))).sum(1)
            for i, k in enumerate(self.fractions.tolist()):
                rows.append({"method": self.method, "mode": self.mode, "fill": self.fill, "metric": metric,
                             "k": k, "pixels": int(self.counts[i]), "mean": mean[i].item(),
                             "ci_low": low[i].item(), "ci_high": high[i].item(), "n": int(n[i])})
        return rows

    def records(self) -> list[dict]:
        """One row per (k, image) with every metric: a tidy table for a notebook."""
        rows = []
        for i, k in enumerate(self.fractions.tolist()):
            for j in range(self.afoc.shape[1]):
                row = {"method": self.method, "mode": self.mode, "fill": self.fill, "k": k, "image": j,
                       "target": int(self.target[j])}
                row.update({m: self.values(m)[i, j].item() for m in ALL_METRICS})
                rows.append(row)
        return rows


def perturbation_metrics(clean_logits: Tensor, perturbed_logits: Tensor, target: Tensor,
                         eps: float = 1e-6, top_others: int = TOP_OTHERS) -> dict[str, Tensor]:
    """Every metric of :data:`ALL_METRICS` for perturbed logits ``[..., N, C]`` against clean ``[N, C]``.

    Returns float64 tensors of shape ``[..., N]`` (see the module docstring for the formulas).
    PCUO and logit-AFOC are NaN where ``|s_c(x)| < eps``; ``pcuo_others`` averages over the
    ``min(top_others, C - 1)`` most probable other classes whose ``|s_j(x)| >= eps``.
    """
    if isinstance(top_others, bool) or not isinstance(top_others, int) or top_others < 1:
        raise ValueError(f"top_others must be a positive int (the number of other classes), got {top_others!r}")
    s0 = clean_logits.double()
    s1 = perturbed_logits.double()
    logp0 = F.log_softmax(s0, dim=-1)
    logp1 = F.log_softmax(s1, dim=-1)
    idx = target.long().view(-1, 1)
    idx1 = idx.expand(*s1.shape[:-1], 1)
    s0c = s0.gather(-1, idx).squeeze(-1)
    s1c = s1.gather(-1, idx1).squeeze(-1)
    logp0c = logp0.gather(-1, idx).squeeze(-1)
    logp1c = logp1.gather(-1, idx1).squeeze(-1)
    p0c, p1c = logp0c.exp(), logp1c.exp()
    afoc = (p1c - p0c).abs() / p0c
    kl = (logp0.exp() * (logp0 - logp1)).sum(-1)
    kl_reverse = (logp1.exp() * (logp1 - logp0)).sum(-1)
    tiny = s0c.abs() < eps
    denom = torch.where(tiny, torch.nan, s0c.abs())
    # The most probable other classes of the clean image: rank by clean logit with c pushed last.
    n_classes = s0.shape[-1]
    m = min(top_others, n_classes - 1)
    if m >= 1:
        others = s0.scatter(-1, idx, -torch.inf).topk(m, dim=-1).indices          # [N, m]
        o0 = s0.gather(-1, others)
        o1 = s1.gather(-1, others.expand(*s1.shape[:-1], m))
        change = 100.0 * (o1 - o0).abs() / torch.where(o0.abs() < eps, torch.nan, o0.abs())
        pcuo_others = change.nanmean(-1)
    else:
        pcuo_others = torch.full(s1c.shape, torch.nan, dtype=torch.float64)
    return {"afoc": afoc, "kl": kl, "pcuo": 100.0 * (s1c - s0c) / denom, "afoc_logit": (s1c - s0c).abs() / denom,
            "kl_reverse": kl_reverse, "pcuo_abs": 100.0 * (s1c - s0c).abs() / denom, "pcuo_others": pcuo_others}


def pixel_perturbation(
    model: nn.Module,
    images: Tensor,
    maps: MapsSpec,
    fractions: float | Sequence[float] = DEFAULT_FRACTIONS,
    *,
    mode: str = "least",
    fill: str = "black",
    mean: Sequence[float] | Tensor | None = None,
    target: Any = None,
    seed: int = 0,
    n_seeds: int = 5,
    noise: float = 0.01,
    batch_size: int = 256,
    map_batch_size: int = 64,
    method_options: dict | None = None,
    name: str | None = None,
    progress: bool = False,
) -> PerturbationResult:
    """Remove the ``round(k·H·W)`` least (``mode='least'``) or most (``'most'``) salient pixel
    locations of every image for every k in ``fractions``; return the per-image metrics.

    ``maps``: a ``Tensor[N, H, W]`` of saliency maps, a method (a callable
    ``fn(model, images, target=None, **options)`` or a name in ``vislib.attribution.METHODS``,
    computed here for the clean target classes with ``method_options``), or ``'random'`` for
    the random baseline (pixels drawn without replacement; metrics averaged over ``n_seeds``
    seeds ``seed, seed+1, ...``). Ties in the maps are broken by a permutation seeded by ``seed``.
    ``fill``: ``'black'`` (0), ``'mean'`` (``mean=(r, g, b)`` or the model's Normalize mean) or
    ``'road'`` (noisy linear imputation with ``noise``). ``target`` (None = clean prediction,
    an int or N classes) is fixed from the clean images. The model runs in eval mode under
    ``no_grad`` in chunks of ``batch_size`` images and is left as it was found.
    """
    check_images(images)
    ks = check_fractions(fractions)
    check_mode(mode)
    check_fill(fill)
    check_positive_int(batch_size, "batch_size")
    check_positive_int(map_batch_size, "map_batch_size")
    check_number(noise, "noise", low=0)
    check_target(target)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string (the method's name in the results), got {type(name).__name__}")
    colour = dataset_mean(model, mean) if fill == "mean" else mean
    is_random = isinstance(maps, str) and maps == RANDOM
    if isinstance(maps, Tensor):
        check_maps(maps, images)
        method = name or "maps"
    elif is_random:
        check_positive_int(n_seeds, "n_seeds")
        method = name or RANDOM
    elif not isinstance(maps, str) and not callable(maps):
        try:
            check_tensor(maps, "maps", "[N, H, W]")
        except TypeError as error:
            raise TypeError(f"{error}; maps must be a Tensor [N, H, W] of saliency maps, a method (a name (str) "
                            f"or a callable fn(model, images, target=None)) or {RANDOM!r}") from None
    else:
        method = name or resolve_method(maps)[0]
    n, _, h, w = images.shape
    device = next((p.device for p in model.parameters()), images.device)

    with preserve_state(model):
        model.eval()
        clean = batched_logits(model, images, batch_size)
    classes = resolve_target(target, clean)
    if not isinstance(maps, Tensor) and not is_random:
        maps = compute_maps(model, images, maps, classes, batch_size=map_batch_size,
                            options=method_options, progress=progress)
    ranks = ([random_rank(n, h, w, seed + s) for s in range(n_seeds)] if is_random
             else [saliency_rank(maps, seed, check=False)])
    counts = torch.tensor([pixel_count(k, h, w) for k in ks])
    total = len(ks) * n
    chunks = range(0, total, batch_size)
    bar = progress_bar(total=len(ranks) * len(chunks), progress=progress, desc=f"pixel perturbation: {method}")
    # Perturbed images are built chunk by chunk into one reusable buffer: a chunk is a run of
    # the flattened (k, image) grid, i.e. at most a few contiguous image ranges per fraction,
    # so images and ranks are sliced (views), never gathered.
    if fill == "black":
        value = torch.zeros(1, 3, 1, 1, dtype=images.dtype, device=images.device)
    elif fill == "mean":
        value = colour.to(images.device, images.dtype).view(1, 3, 1, 1)
    buffer = torch.empty(min(batch_size, total), *images.shape[1:], dtype=images.dtype, device=images.device)
    per_rank = []
    with preserve_state(model), torch.no_grad():
        model.eval()
        for r, rank in enumerate(ranks):
            rank = rank.to(images.device)
            logits = torch.empty(total, clean.shape[1])
            for start in chunks:
                end = min(start + batch_size, total)
                pos = start
                while pos < end:  # one contiguous image range of one fraction at a time
                    ki, n0 = divmod(pos, n)
                    n1 = min(n, n0 + end - pos)
                    out = buffer[pos - start:pos - start + n1 - n0]
                    mask = mask_from_rank(rank[n0:n1], int(counts[ki]), mode, (h, w))
                    if fill == "road":
                        out.copy_(fill_pixels(images[n0:n1], mask, fill, mean=colour, model=model, noise=noise,
                                              seed=(seed + r) * 1_000_003 + pos))
                    else:
                        torch.where(mask.unsqueeze(1), value, images[n0:n1], out=out)
                    pos += n1 - n0
                logits[start:end] = model(buffer[:end - start].to(device)).float().cpu()
                bar.update()
            per_rank.append(perturbation_metrics(clean, logits.view(len(ks), n, -1), classes))
    bar.close()
    stacked = {m: torch.stack([pr[m] for pr in per_rank]) for m in ALL_METRICS}
    averaged = {m: v.mean(0) for m, v in stacked.items()}
    tiny = torch.isnan(averaged["pcuo"][0]).sum().item()
    if tiny:
        warnings.warn(f"{tiny} image(s) have |s_c(x)| < 1e-6: their logit change (pcuo, afoc_logit) "
                      "is undefined and set to NaN", RuntimeWarning, stacklevel=2)
    return PerturbationResult(
        method=method, mode=mode, fill=fill, fractions=torch.tensor(ks, dtype=torch.float64), counts=counts,
        target=classes.cpu(), n_seeds=len(ranks), per_seed=stacked if is_random else None,
        forward_passes=n + len(ranks) * total, **averaged,
    )


def compare_methods(
    model: nn.Module,
    images: Tensor,
    methods: Sequence[Method] | Mapping[str, MapsSpec],
    fractions: float | Sequence[float] = DEFAULT_FRACTIONS,
    *,
    random_baseline: bool = True,
    progress: bool = True,
    **options: Any,
) -> dict[str, PerturbationResult]:
    """:func:`pixel_perturbation` for several methods (and the random baseline) with the same
    settings; returns ``{name: result}``. ``methods`` is a list of names/callables or a dict
    ``{name: maps tensor or method}``; ``options`` are passed to :func:`pixel_perturbation`."""
    items = list(methods.items()) if isinstance(methods, Mapping) else \
        [(m if isinstance(m, str) else resolve_method(m)[0], m) for m in methods]
    if random_baseline and RANDOM not in dict(items):
        items.append((RANDOM, RANDOM))
    results = {}
    for name, spec in progress_bar(items, progress=progress, desc="pixel perturbation", leave=True):
        results[name] = pixel_perturbation(model, images, spec, fractions, name=name, progress=False, **options)
    return results


def summarize(results: Mapping[str, PerturbationResult] | Sequence[PerturbationResult],
              metrics: Sequence[str] = METRICS, confidence: float = 0.95) -> list[dict]:
    """The summary rows (mean and confidence interval per method, metric and k) of many results."""
    values = results.values() if isinstance(results, Mapping) else results
    return [row for result in values for row in result.summary(metrics, confidence)]


def format_summary(rows: Sequence[dict]) -> str:
    """The summary rows as a plain-text table."""
    return format_rows(rows, ["method", "mode", "fill", "metric", "k", "pixels", "mean", "ci_low", "ci_high", "n"])


def plot_curves(
    results: Mapping[str, PerturbationResult] | Sequence[PerturbationResult],
    metric: str = "afoc",
    *,
    confidence: float = 0.95,
    ax=None,
    logx: bool = False,
    title: str | None = None,
    legend: bool | None = None,
):
    """Draw mean ``metric`` against the removed fraction (in %) per method, with its
    confidence band over images (Student-t, ``confidence``); return the figure.

    Each method takes its house style (colour, marker, line style and name for people,
    :func:`vislib.style.method_styles`); the y label says which way is better for the results'
    removal mode (:func:`metric_axis_label`). Without ``ax`` a one-column figure is made with the
    legend below the panel; with ``ax`` no legend is drawn unless ``legend=True`` (a figure of
    several panels takes one legend, :func:`vislib.style.legend_below`). ``title`` replaces the
    default title (metric, mode and fill).
    """
    from ..style import figure, legend_below, mean_band, method_styles

    values = list(results.values() if isinstance(results, Mapping) else results)
    if not values:
        raise ValueError("no results to plot")
    own_figure = ax is None
    if own_figure:
        fig, ax = figure("column", 2.4)
    else:
        fig = ax.figure
    styles = method_styles([result.method for result in values])
    for result in values:
        mean, low, high = t_interval(result.values(metric), confidence, dim=1)
        x = (100 * result.fractions).numpy()
        style = dict(styles[result.method])
        if result.per_seed is not None:
            style["label"] += f" ({result.n_seeds} seeds)"
        mean_band(ax, x, mean.numpy(), low.numpy(), high.numpy(), alpha=0.12, **style)
    modes = sorted({r.mode for r in values})
    fills = sorted({r.fill for r in values})
    ax.set_xlabel(f"{'/'.join(modes)} salient pixels removed (%)")
    ax.set_ylabel(metric_axis_label(metric, modes[0]) if len(modes) == 1 else METRIC_LABELS.get(metric, metric))
    if logx:
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))   # 0.1, 1, 10 rather than 10^-1
    ax.set_title(title if title is not None else
                 f"{METRIC_LABELS.get(metric, metric)}: {'/'.join(modes)} salient removed, {'/'.join(fills)} fill")
    ax.grid(alpha=0.3)
    if legend if legend is not None else own_figure:
        legend_below(fig, [ax], ncol=2)
    return fig
