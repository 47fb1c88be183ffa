"""Small helpers shared by the evaluation modules: methods by name, maps in batches, statistics."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Union

import torch
from torch import Tensor, nn

from ..checks import check_images, check_maps, check_positive_int, check_target, explain_forward_error
from ..progress import progress_bar

Method = Union[str, Callable[..., Tensor]]


def resolve_method(method: Method) -> tuple[str, Callable[..., Tensor]]:
    """``(name, fn)`` for a method given as a callable or as a name of
    ``vislib.attribution.METHODS`` (imported only when a name is given)."""
    if isinstance(method, str):
        try:
            from ..attribution import METHODS
        except ImportError as err:  # pragma: no cover - the package ships with vislib
            raise ImportError(f"method {method!r} given by name, but vislib.attribution cannot be "
                              f"imported ({err}); pass the method as a callable") from err
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; valid names: {sorted(METHODS)}, "
                             "or pass a callable fn(model, images, target=None, **options)")
        return method, METHODS[method]
    if callable(method):
        name = getattr(method, "__name__", None) or type(method).__name__
        return name, method
    raise TypeError(f"a method must be a name (str) or a callable fn(model, images, target=None), "
                    f"got {type(method).__name__}")


def method_name(method: Method) -> str:
    return resolve_method(method)[0] if not isinstance(method, str) else method


def compute_maps(
    model: nn.Module,
    images: Tensor,
    method: Method,
    target: Any = None,
    *,
    batch_size: int = 64,
    options: dict | None = None,
    progress: bool = False,
    desc: str | None = None,
) -> Tensor:
    """Maps ``[N, H, W]`` (float32, CPU) of ``method`` for ``images``, computed ``batch_size``
    images at a time on the model's device. ``target`` is None, an int, or N classes."""
    name, fn = resolve_method(method)
    check_images(images)
    check_target(target)
    check_positive_int(batch_size, "batch_size")
    check_options(options, name)
    device = next((p.device for p in model.parameters()), images.device)
    n = len(images)
    if isinstance(target, (Tensor, Sequence)) and not isinstance(target, str):
        target = torch.as_tensor(target).flatten()
        if target.numel() == 1:
            target = int(target.item())
        elif target.numel() != n:
            raise ValueError(f"target has {target.numel()} classes for {n} images")
    outs = []
    starts = range(0, n, batch_size)
    for start in progress_bar(starts, progress=progress, desc=desc or f"maps: {name}"):
        batch = images[start:start + batch_size].to(device)
        t = target[start:start + batch_size].to(device) if isinstance(target, Tensor) else target
        maps = fn(model, batch, target=t, **(options or {}))
        check_maps(maps, batch, name=f"maps of method {name!r}")
        outs.append(maps.detach().float().cpu())
    return torch.cat(outs)


def check_options(options: dict | None, method: str) -> dict:
    """A method's keyword options: None or a dict with string keys."""
    if options is None:
        return {}
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise TypeError(f"the options of method {method!r} must be a dict {{option name: value}}, got {options!r}")
    return options


def batched_logits(model: nn.Module, images: Tensor, batch_size: int) -> Tensor:
    """Logits of ``images`` in chunks, under ``no_grad``, on the CPU (call with the model in eval).

    A forward pass that fails because the images are too small for the network says so
    (:func:`vislib.checks.explain_forward_error`).
    """
    check_positive_int(batch_size, "batch_size")
    device = next((p.device for p in model.parameters()), images.device)
    outs = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            chunk = images[i:i + batch_size].to(device)
            try:
                outs.append(model(chunk).float().cpu())
            except RuntimeError as error:
                failure = error
                break
        else:
            return torch.cat(outs)
    explained = explain_forward_error(model, chunk, failure)
    if explained is failure:
        raise failure
    raise explained from failure


def t_interval(values: Tensor, confidence: float = 0.95, dim: int = -1) -> tuple[Tensor, Tensor, Tensor]:
    """Mean and the two-sided Student-t confidence interval of the mean along ``dim``.

    ``mean ± t_{(1+c)/2, n-1} · sd / sqrt(n)`` with the sample standard deviation (``n - 1``).
    NaN values are left out (each slice its own ``n``); with fewer than 2 values the interval is NaN.
    Returns ``(mean, low, high)``.
    """
    from scipy import stats

    values = values.double()
    valid = ~torch.isnan(values)
    n = valid.sum(dim)
    mean = torch.where(valid, values, 0.0).sum(dim) / n.clamp_min(1)
    mean = torch.where(n > 0, mean, torch.nan)
    centred = torch.where(valid, values - mean.unsqueeze(dim), 0.0)
    sd = (centred.pow(2).sum(dim) / (n - 1).clamp_min(1)).sqrt()
    t = torch.tensor(stats.t.ppf(0.5 + confidence / 2, (n - 1).clamp_min(1).numpy()), dtype=torch.float64)
    half = torch.where(n > 1, t * sd / n.clamp_min(1).double().sqrt(), torch.nan)   # an integer sqrt is float32
    return mean, mean - half, mean + half


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of all ``values`` (any shape, a tensor or a sequence; NaN left out) and its two-sided
    Student-t confidence interval, as floats ``(mean, low, high)``: the error bar of a figure or
    the interval of :func:`vislib.report.interval`. See :func:`t_interval`."""
    flat = torch.as_tensor(values, dtype=torch.float64).detach().cpu().flatten()
    mean, low, high = t_interval(flat, confidence, dim=0)
    return mean.item(), low.item(), high.item()


def wilson_interval(hits, confidence: float = 0.95) -> tuple[float, float, float]:
    """Hit rate of 0/1 outcomes (a pointing game's ``hits``; NaN left out) and its Wilson score interval.

    With ``n`` outcomes, ``k`` hits, ``p = k / n`` and ``z`` the ``(1 + c) / 2`` normal quantile,

        ``(p + z²/2n ± z · sqrt(p (1 - p) / n + z²/4n²)) / (1 + z²/n)``

    (Wilson 1927, JASA 22:209). Unlike the Student-t interval of :func:`mean_ci` it stays inside
    [0, 1] and is not zero-wide at 0 or ``n`` hits, where a t-interval of binary outcomes fails.
    Returns floats ``(p, low, high)``; raises ``ValueError`` for values other than 0 and 1 (a
    ``tie='fraction'`` pointing game: use :func:`mean_ci`) or for no outcomes at all.
    """
    from scipy import stats

    flat = torch.as_tensor(hits, dtype=torch.float64).detach().cpu().flatten()
    flat = flat[~torch.isnan(flat)]
    if flat.numel() == 0:
        raise ValueError("wilson_interval needs at least one 0/1 outcome, got none")
    if not torch.all((flat == 0) | (flat == 1)):
        odd = flat[(flat != 0) & (flat != 1)][:3].tolist()
        raise ValueError(f"wilson_interval is for 0/1 outcomes (hits), got values such as {odd}; "
                         "for fractions use mean_ci")
    n, p = flat.numel(), flat.mean().item()
    z = stats.norm.ppf(0.5 + confidence / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if p == 0.0 else float(centre - half)     # exactly 0 and 1 at the ends (rounding would miss them)
    high = 1.0 if p == 1.0 else float(centre + half)
    return p, low, high


def format_rows(rows: Sequence[dict], columns: Sequence[str], floatfmt: str = ".4g") -> str:
    """A plain-text table of ``rows`` (dicts) with the given columns (no pandas needed)."""
    def cell(v):
        if isinstance(v, float):
            return "nan" if math.isnan(v) else format(v, floatfmt)
        return str(v)

    table = [[str(c) for c in columns]] + [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
