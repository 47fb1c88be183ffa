"""ROAR, remove and retrain (Hooker, Erhan, Kindermans & Kim, NeurIPS 2019, arXiv 1806.10758).

Pixel perturbation asks the *trained* model about images it never saw (holes, black patches):
an output change may come from the distribution shift, not from lost information. ROAR
removes that doubt by retraining:

1. compute the maps of every training **and** test image with the original trained model;
2. fill the k % most salient pixel locations of each image (all channels; ties broken by a
   seeded permutation) with an uninformative value;
3. train a **fresh** model from scratch, with identical settings, on the filled training set
   and measure its accuracy on the filled test set;
4. repeat for every method and every k, with a **random-removal control** (k % of the pixels
   drawn without replacement) and over several seeds; k = 0 (unmodified) is the reference.

A map that finds the informative pixels makes the accuracy fall faster than the random
control. Fills: ``'mean'`` (the dataset's mean colour, as Hooker et al.) and ``'road'``
(noisy linear imputation). On our shapes the *shape* of a mean-filled hole is the object's
silhouette, so a retrained model can read the class from the hole itself (ROAD's "class
information leakage", Rong et al. 2022): compare the two fills. And keep the caveat in mind:
ROAR (and ROAD) tend to favour blurry maps (arXiv 2304.13836); neither is ground truth.

Differences from the official code, on purpose: we rank **pixel locations** of a 2-D map
(Hooker's code ranks each of the H·W·3 values), and the random control removes exactly
``round(k·H·W)`` pixels per image (Hooker's drops each value with probability k).

Cost: ``len(seeds) · (1 + (methods + 1) · len(fractions))`` trainings. :func:`default_settings`
gives quick (CI) and full sizes through :func:`vislib.config.quick`.
"""
from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import torch
from torch import Tensor, nn

from ..checks import check_images, check_number, check_positive_int, check_tensor
from ..config import quick
from ..progress import progress_bar
from ._common import Method, check_options, compute_maps, format_rows, resolve_method
from .removal import (check_fill, check_fractions, dataset_mean, fill_pixels, find_normalize,
                      mask_from_rank, pixel_count, random_rank, saliency_rank)

RANDOM = "random"
DataSpec = Union[tuple[Tensor, Tensor], Any]
MethodSpec = Union[Method, tuple[Tensor, Tensor]]


def default_settings() -> dict:
    """Sizes of the course's ROAR experiment, quick (``VISLIB_QUICK=1``) or full.

    ``n_train``/``n_test`` images at ``image_size`` px, the width and dropout of the course VGG,
    the fractions, the seeds and the training settings of every retraining. Quick mode must run
    well under a minute on a 2-core CPU; full mode in about ten minutes (3 methods + random).
    Batch 32 at lr 5e-3 without dropout: the width-8 VGG reaches a much higher k = 0 accuracy on
    2000 images this way than at batch 64, lr 3e-3 and dropout 0.3, and a weak reference model
    makes every ROAR curve flat.
    """
    return {
        "image_size": 32,
        "n_train": quick(600, 2000),
        "n_test": quick(300, 500),
        "width": 8,
        "dropout": 0.0,
        "fractions": quick((0.3, 0.7), (0.1, 0.3, 0.5, 0.7, 0.9)),
        "seeds": quick((0,), (0, 1)),
        "train_kwargs": {"epochs": quick(3, 6), "batch_size": 32, "lr": 5e-3},
    }


def fresh_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every layer re-initialised (``reset_parameters()``):
    the same architecture (and Normalize statistics), untrained. The default ``model_fn``."""
    fresh = copy.deepcopy(model)
    for module in fresh.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return fresh.train()


@dataclass
class RoarResult:
    """Test accuracies of the retrained models: ``accuracy[method]`` is ``Tensor[K+1, S]``,
    row 0 the unmodified data (k = 0, shared by all methods), then one row per fraction, one
    column per seed."""

    methods: list[str]
    fractions: Tensor
    seeds: list[int]
    fill: str
    accuracy: dict[str, Tensor]
    chance: float
    seconds: dict[str, float] = field(default_factory=dict)

    def table(self) -> list[dict]:
        """One row per (method, k): mean and standard deviation of the accuracy over seeds."""
        rows = []
        for method in self.methods:
            acc = self.accuracy[method]
            for i, k in enumerate(self.fractions.tolist()):
                sd = acc[i].std().item() if acc.shape[1] > 1 else float("nan")
                rows.append({"method": method, "fill": self.fill, "k": k, "mean": acc[i].mean().item(),
                             "sd": sd, "n_seeds": acc.shape[1], "accuracies": acc[i].tolist()})
        return rows

    def format_table(self) -> str:
        """Methods as rows, k as columns, cells ``mean ± sd`` of the test accuracy."""
        rows = []
        for method in self.methods:
            acc = self.accuracy[method]
            row = {"method": method}
            for i, k in enumerate(self.fractions.tolist()):
                mean = acc[i].mean().item()
                row[f"k={100 * k:g}%"] = (f"{mean:.3f} ± {acc[i].std().item():.3f}" if acc.shape[1] > 1
                                          else f"{mean:.3f}")
            rows.append(row)
        columns = ["method"] + [f"k={100 * k:g}%" for k in self.fractions.tolist()]
        return (f"ROAR test accuracy, fill {self.fill!r}, {len(self.seeds)} seed(s), chance {self.chance:.3f}\n"
                + format_rows(rows, columns))


def _as_data(data: DataSpec, name: str) -> tuple[Tensor, Tensor]:
    if isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = data
    elif hasattr(data, "images") and hasattr(data, "labels"):
        images, labels = data.images, data.labels
    else:
        raise TypeError(f"{name} must be (images, labels) or a dataset with .images and .labels")
    check_images(images, name=f"{name} images")
    labels = torch.as_tensor(labels).long().flatten()
    if len(labels) != len(images):
        raise ValueError(f"{name} has {len(images)} images but {len(labels)} labels")
    return images, labels


def _is_maps_pair(spec: Any) -> bool:
    """A ``(train_maps, test_maps)`` pair given instead of a method (tensors, or arrays by mistake)."""
    return (isinstance(spec, (tuple, list)) and len(spec) == 2
            and any(isinstance(t, (Tensor, np.ndarray)) for t in spec))


def _check_map_shapes(name: str, maps_train: Tensor, maps_test: Tensor, n_train: int, n_test: int,
                      h: int, w: int) -> None:
    check_tensor(maps_train, f"the train maps of {name!r}", "[N_train, H, W]")
    check_tensor(maps_test, f"the test maps of {name!r}", "[N_test, H, W]")
    if tuple(maps_train.shape) != (n_train, h, w) or tuple(maps_test.shape) != (n_test, h, w):
        raise ValueError(f"maps of {name!r} must have shapes {(n_train, h, w)} and "
                         f"{(n_test, h, w)}, got {tuple(maps_train.shape)} and {tuple(maps_test.shape)}")
    for split, maps in (("train", maps_train), ("test", maps_test)):
        if not torch.isfinite(maps).all():
            raise ValueError(f"the {split} maps of {name!r} contain NaN or infinite values")


def _check_before_training(items: list[tuple[str, Any]], x_train: Tensor, x_test: Tensor,
                           method_options: Mapping[str, dict] | None, train_kwargs: dict, train: Callable) -> None:
    """Everything about the methods that can be checked without computing maps or training:
    names resolve, given map pairs are tensors of the right shape, options name real methods,
    training options are arguments of :func:`vislib.train.train`."""
    names = [name for name, _ in items]
    for name, spec in items:
        if name == RANDOM and isinstance(spec, str):
            continue
        if _is_maps_pair(spec):
            _check_map_shapes(name, spec[0], spec[1], len(x_train), len(x_test), *x_train.shape[-2:])
        else:
            resolve_method(spec)              # an unknown name lists the valid ones
    if method_options is not None:
        if not isinstance(method_options, Mapping):
            raise TypeError(f"method_options must be a dict {{method name: {{option: value}}}}, got "
                            f"{type(method_options).__name__}")
        unknown = sorted(set(method_options) - set(names))
        if unknown:
            raise ValueError(f"method_options names {unknown}, which are not among the methods {names}")
        for name, options in method_options.items():
            check_options(options, name)
    params = inspect.signature(train).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        own = {"model", "images", "labels", "seed"}             # ROAR sets these itself
        bad = sorted((set(train_kwargs) - set(params)) | (set(train_kwargs) & own))
        if bad:
            raise ValueError(f"train_kwargs {bad} are not options ROAR can pass to vislib.train.train; valid: "
                             f"{sorted(k for k in params if k not in own)} (the seeds come from seeds=)")


def _methods(methods: Sequence[MethodSpec] | Mapping[str, MethodSpec]) -> list[tuple[str, Any]]:
    if isinstance(methods, Mapping):
        items = list(methods.items())
    elif isinstance(methods, (str, Callable)):
        items = [(resolve_method(methods)[0], methods)]
    else:
        items = [(m if isinstance(m, str) else resolve_method(m)[0], m) for m in methods]
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"method names must be unique, got {names}; pass a dict {{name: method}}")
    return items


def roar(
    model: nn.Module,
    train_set: DataSpec,
    test_set: DataSpec,
    methods: Sequence[MethodSpec] | Mapping[str, MethodSpec],
    *,
    fractions: Sequence[float] | None = None,
    fill: str = "mean",
    seeds: Sequence[int] | None = None,
    model_fn: Callable[[], nn.Module] | None = None,
    train_kwargs: dict | None = None,
    mean: Sequence[float] | Tensor | None = None,
    noise: float = 0.01,
    target: str | None = None,
    random_control: bool = True,
    method_options: dict[str, dict] | None = None,
    map_batch_size: int = 64,
    tie_seed: int = 0,
    progress: bool = True,
) -> RoarResult:
    """Remove-and-retrain for each method and fraction (and the random control), over seeds.

    ``model``: the trained original, used only to compute the maps (and, by default, as the
    template of the fresh models and the source of the mean colour). ``train_set``,
    ``test_set``: ``(images, labels)`` or datasets with ``.images``/``.labels``.
    ``methods``: names of ``vislib.attribution.METHODS``, callables, or a dict
    ``{name: method or (train_maps, test_maps)}``; ``'random'`` (the control) is added unless
    ``random_control=False``. ``fractions`` (default from :func:`default_settings`) are the k
    in [0, 1]; k = 0 is always added. ``fill``: ``'mean'`` or ``'road'`` (or ``'black'``).
    ``seeds``: one retraining per seed (it seeds the fresh model's initialisation, the
    training order and the random control). ``model_fn()`` builds a fresh model (default:
    :func:`fresh_copy` of ``model``); ``train_kwargs`` go to :func:`vislib.train.train`.
    ``target``: None = the original model's predicted class, ``'label'`` = the true label.
    ``method_options`` maps a method name to its keyword options. The maps of each method are
    computed once (in batches of ``map_batch_size``) and reused for every k and seed.

    Nothing is trained before everything that can fail has been checked: method names (an
    unknown one lists the valid names), given map pairs (tensors of the right shape, finite),
    ``method_options`` names, ``train_kwargs`` (options of :func:`vislib.train.train`), numbers;
    and every method's maps are computed before the first retraining.
    """
    from ..train import accuracy, train

    settings = default_settings()
    x_train, y_train = _as_data(train_set, "train_set")
    x_test, y_test = _as_data(test_set, "test_set")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"train images {tuple(x_train.shape[1:])} and test images {tuple(x_test.shape[1:])} differ in size")
    ks = check_fractions(settings["fractions"] if fractions is None else fractions)
    ks = sorted(set(k for k in ks if k > 0))
    check_fill(fill)
    seeds = list(settings["seeds"] if seeds is None else seeds)
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed")
    kwargs = {**settings["train_kwargs"], **(train_kwargs or {})}
    kwargs["progress"] = False
    if target not in (None, "label"):
        raise ValueError(f"target must be None (predicted class) or 'label', got {target!r}")
    items = _methods(methods)
    if random_control and RANDOM not in dict(items):
        items.append((RANDOM, RANDOM))
    _check_before_training(items, x_train, x_test, method_options, kwargs, train)
    check_positive_int(map_batch_size, "map_batch_size")
    check_positive_int(tie_seed, "tie_seed", least=0)
    check_number(noise, "noise", low=0)
    # The fill colour ('mean', and the fallback of 'road'): the given mean, else the model's
    # Normalize mean (the training-set mean), else the mean colour of the training images.
    if mean is not None or find_normalize(model) is not None:
        colour = dataset_mean(model, mean)
    else:
        colour = x_train.mean(dim=(0, 2, 3)).float().cpu()
    build = model_fn if model_fn is not None else (lambda: fresh_copy(model))
    _, _, h, w = x_train.shape
    num_classes = int(max(y_train.max(), y_test.max()).item()) + 1
    seconds = {"maps": 0.0, "fill": 0.0, "train": 0.0}
    start_all = time.perf_counter()
    bar = progress_bar(total=len(seeds) * (1 + len(items) * len(ks)), progress=progress, desc=f"ROAR ({fill})", leave=True)

    def retrain(train_images: Tensor, test_images: Tensor, seed: int) -> float:
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        fresh = build()
        train(fresh, train_images, y_train, seed=seed, **kwargs)
        acc = accuracy(fresh, test_images, y_test)
        seconds["train"] += time.perf_counter() - t0
        bar.update()
        return acc

    def filled(images: Tensor, rank: Tensor, k: float, noise_seed: int) -> Tensor:
        t0 = time.perf_counter()
        mask = mask_from_rank(rank, pixel_count(k, h, w), "most", (h, w))
        out = fill_pixels(images, mask, fill, mean=colour, noise=noise, seed=noise_seed)
        seconds["fill"] += time.perf_counter() - t0
        return out

    # Every method's maps first, before the first retraining: a method that fails does so in
    # seconds, not after several trainings. The maps come from the original model and do not
    # depend on the order.
    ranks: dict[str, tuple[Tensor, Tensor]] = {}
    for name, spec in items:
        if name == RANDOM and isinstance(spec, str):
            continue
        t0 = time.perf_counter()
        if isinstance(spec, (tuple, list)) and len(spec) == 2 and all(isinstance(t, Tensor) for t in spec):
            maps_train, maps_test = spec
        else:
            bar.set_postfix_str(f"{name}: maps")
            t_train = y_train if target == "label" else None
            t_test = y_test if target == "label" else None
            opts = (method_options or {}).get(name)
            maps_train = compute_maps(model, x_train, spec, t_train, batch_size=map_batch_size, options=opts)
            maps_test = compute_maps(model, x_test, spec, t_test, batch_size=map_batch_size, options=opts)
        _check_map_shapes(name, maps_train, maps_test, len(x_train), len(x_test), h, w)
        ranks[name] = saliency_rank(maps_train, tie_seed), saliency_rank(maps_test, tie_seed + 1)
        seconds["maps"] += time.perf_counter() - t0

    reference = []
    for seed in seeds:
        bar.set_postfix_str(f"k=0, seed {seed}")
        reference.append(retrain(x_train, x_test, seed))
    accuracies: dict[str, Tensor] = {}
    for name, spec in items:
        acc = torch.full((len(ks) + 1, len(seeds)), float("nan"))
        acc[0] = torch.tensor(reference)
        if name == RANDOM and isinstance(spec, str):
            for i, k in enumerate(ks, start=1):
                for j, seed in enumerate(seeds):
                    bar.set_postfix_str(f"{name}, k={k:g}, seed {seed}")
                    tr = filled(x_train, random_rank(len(x_train), h, w, seed=2 * seed), k, 3 * seed + i)
                    te = filled(x_test, random_rank(len(x_test), h, w, seed=2 * seed + 1), k, 3 * seed + i + 1)
                    acc[i, j] = retrain(tr, te, seed)
        else:
            rank_train, rank_test = ranks[name]
            for i, k in enumerate(ks, start=1):
                tr = filled(x_train, rank_train, k, 2 * i)
                te = filled(x_test, rank_test, k, 2 * i + 1)
                for j, seed in enumerate(seeds):
                    bar.set_postfix_str(f"{name}, k={k:g}, seed {seed}")
                    acc[i, j] = retrain(tr, te, seed)
        accuracies[name] = acc
    bar.close()
    seconds["total"] = time.perf_counter() - start_all
    return RoarResult(methods=[n for n, _ in items], fractions=torch.tensor([0.0] + ks, dtype=torch.float64),
                      seeds=seeds, fill=fill, accuracy=accuracies, chance=1.0 / num_classes, seconds=seconds)


def plot_roar(result: RoarResult, *, ax=None, title: str | None = None, legend: bool | None = None):
    """Test accuracy of the retrained models against the removed fraction, per method (house
    style: colour, marker, line style, name for people), with a band of ±1 standard deviation over
    seeds; the random control dashed grey, chance dotted. Lower accuracy is better: the map found
    what the model needs. Without ``ax`` a one-column figure with the legend below; with ``ax``
    no legend unless ``legend=True``."""
    from ..style import figure, legend_below, mean_band, method_styles, metric_label

    own_figure = ax is None
    if own_figure:
        fig, ax = figure("column", 2.4)
    else:
        fig = ax.figure
    x = (100 * result.fractions).numpy()
    styles = method_styles(result.methods)
    for method in result.methods:
        acc = result.accuracy[method]
        mean = acc.mean(1).numpy()
        if acc.shape[1] > 1:
            sd = acc.std(1).numpy()
            mean_band(ax, x, mean, mean - sd, mean + sd, alpha=0.15, **styles[method])
        else:
            mean_band(ax, x, mean, **styles[method])
    ax.axhline(result.chance, color="0.6", linestyle=":", linewidth=1, label="chance")
    low, high = ax.get_ylim()
    ax.set_ylim(min(low, result.chance - 0.03), high)          # chance stays in view
    ax.set_xlabel("most salient pixels removed (%)")
    ax.set_ylabel(metric_label("test accuracy after retraining", "lower"))
    n = len(result.seeds)
    band = ", band ±1 sd" if n > 1 else ""
    ax.set_title(title if title is not None else f"ROAR, {result.fill} fill ({n} seed{'s' if n > 1 else ''}{band})")
    ax.grid(alpha=0.3)
    if legend if legend is not None else own_figure:
        legend_below(fig, [ax], ncol=3)
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """Run the course's ROAR experiment at :func:`default_settings` sizes and print the table
    and the wall times (``VISLIB_QUICK=1`` for the quick sizes)::

        python -m vislib.evaluation --methods gradient gradcam fullgrad --fill mean
    """
    import argparse

    from .. import data, models
    from ..train import accuracy, train

    parser = argparse.ArgumentParser(description="ROAR on the course shapes (trains its own original model).")
    parser.add_argument("--methods", nargs="+", default=["gradient", "gradcam", "fullgrad"])
    parser.add_argument("--fill", default="mean", choices=["mean", "road", "black"])
    args = parser.parse_args(argv)
    s = default_settings()
    train_ds = data.course_split("train", size=s["image_size"], n=s["n_train"])
    test_ds = data.course_split("test", size=s["image_size"], n=s["n_test"])
    t0 = time.perf_counter()
    torch.manual_seed(0)
    original = models.course_model("vgg", width=s["width"], dropout=s["dropout"])
    train(original, train_ds.images, train_ds.labels, seed=0, **{**s["train_kwargs"], "progress": False})
    print(f"original model: test accuracy {accuracy(original, test_ds.images, test_ds.labels):.3f}, "
          f"trained in {time.perf_counter() - t0:.1f} s")
    result = roar(original, train_ds, test_ds, args.methods, fill=args.fill)
    print(result.format_table())
    print("wall time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))
    return 0
