"""Gradients averaged over many inputs: SmoothGrad (noisy copies) and integrated gradients (a path).

Both call :func:`vislib.attribution.core.accumulate_gradients`: one forward and one backward pass
per chunk of at most ``batch_size`` copies (image, copy) of the batch, so ``n`` copies or ``m``
steps cost about ``n`` (``m``) forward + backward passes of the batch, in bounded memory.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ..checks import TargetSpec, check_number, check_positive_int
from ._base import check_batch_size, explaining, finish
from .core import Fill, accumulate_gradients, fill_images, image_generator, score_variants

#: SmoothGrad's statistics of the gradient over the noisy copies.
SMOOTHGRAD_KINDS = ("gradient", "abs", "square")
#: Integrated gradients' quadrature rules (captum: ``riemann_left`` ... ``gausslegendre``).
IG_RULES = ("left", "right", "middle", "trapezoid", "gauss_legendre")


def _positive_int(value, name: str, least: int = 1) -> int:
    return check_positive_int(value, name, least)


def smoothgrad(
    model: nn.Module,
    images: Tensor,
    target: TargetSpec = None,
    *,
    n: int = 25,
    sigma: float = 0.15,
    kind: str = "gradient",
    seed: int = 0,
    noise: Tensor | None = None,
    batch_size: int = 64,
    progress: bool | None = None,
) -> Tensor:
    """SmoothGrad (Smilkov et al. 2017, arXiv 1706.03825): the gradient averaged over noisy copies.

    ``G = (1/n) sum_i T(dS/dx at x + eps_i)``, ``eps_i ~ N(0, s^2)`` with
    ``s = sigma * (max x - min x)`` (the noise level as a fraction of the image's range, as in the
    paper; 0.1-0.2 works well there), ``T`` the identity (``kind="gradient"``), ``|.|``
    (``"abs"``) or the square (``"square"``, SmoothGrad-squared), reduced like :func:`gradient`:
    ``M = max_k |G_k|`` over colour channels. The target class is that of the clean image.

    The noise is drawn per image from a generator seeded by ``seed`` and the image's pixels
    (:func:`vislib.attribution.core.image_generator`), so a batch gives the maps of its images
    one by one; it is drawn chunk by chunk (one image's copies held at a time). ``noise=`` gives it explicitly, in pixel units (not scaled by ``sigma``):
    ``[B, n, 3, H, W]`` or ``[n, 3, H, W]`` (the same for every image); ``n`` is then its length.
    Cost: ``n`` forward + backward passes of the batch, in chunks of ``batch_size`` copies.
    """
    if kind not in SMOOTHGRAD_KINDS:
        raise ValueError(f"kind must be one of {SMOOTHGRAD_KINDS}, got {kind!r}")
    check_number(sigma, "sigma (the noise level, a fraction of the image's range)", low=0)
    check_batch_size(batch_size)
    if noise is None:
        _positive_int(n, "n")
    with explaining(model, images, target, gradients=False) as p:
        x, classes = p.inputs, p.classes
    b_total = x.shape[0]
    if noise is None:
        n = _positive_int(n, "n")
        scale = (sigma * (x.flatten(1).amax(1) - x.flatten(1).amin(1))).double().cpu()
        drawn: dict[int, Tensor] = {}   # the noise of the last image drawn: chunks run image-major, so
                                        # every image's n copies are drawn once and one image is held

        def noisy(b: Tensor, v: Tensor) -> Tensor:
            out = x[b].clone()
            for i in b.unique().tolist():
                if i not in drawn:
                    drawn.clear()
                    g = image_generator(images[i], seed)
                    drawn[i] = (torch.randn(n, *x.shape[1:], generator=g, dtype=torch.float64) * scale[i]).to(x)
                rows = b == i
                out[rows] += drawn[i][v[rows]]
            return out
    else:
        if not isinstance(noise, Tensor) or not noise.is_floating_point():
            raise TypeError("noise must be a floating-point tensor [B, n, 3, H, W] or [n, 3, H, W]")
        if noise.dim() == 4:
            noise = noise.unsqueeze(0).expand(b_total, *noise.shape)
        if noise.dim() != 5 or noise.shape[0] != b_total or noise.shape[2:] != x.shape[1:]:
            raise ValueError(f"noise must be [B, n, 3, H, W] or [n, 3, H, W] for images {tuple(x.shape)}, "
                             f"got {tuple(noise.shape)}")
        eps = noise.detach().to(x)
        n = _positive_int(eps.shape[1], "the number of noise copies")

        def noisy(b: Tensor, v: Tensor) -> Tensor:
            return x[b] + eps[b, v]
    transform = {"gradient": None, "abs": torch.abs, "square": torch.square}[kind]
    total = accumulate_gradients(model, x, classes, n, noisy, transform=transform,
                                 batch_size=batch_size, progress=progress, desc="SmoothGrad")
    return finish((total / n).abs().amax(dim=1), images)


def quadrature(rule: str | tuple[Tensor, Tensor], steps: int) -> tuple[Tensor, Tensor]:
    """Nodes ``alpha`` in [0, 1] and weights of a rule for ``int_0^1 f``, float64 ``[steps]`` each.

    ``"left"``, ``"right"``, ``"middle"``: Riemann sums, weights ``1/m`` at ``i/m``,
    ``(i+1)/m``, ``(i+1/2)/m``; ``"trapezoid"``: nodes ``i/(m-1)``, weights ``1/(m-1)`` halved at
    both ends (they sum to 1; captum's ``riemann_trapezoid`` weights are ``1/m``, halved at the
    ends, and sum to ``1 - 1/m``); ``"gauss_legendre"``: Gauss-Legendre nodes and weights mapped
    from [-1, 1] to [0, 1] (exact for polynomials of degree ``2m - 1``). A pair
    ``(nodes, weights)`` is a rule of its own (``steps`` is then ignored), e.g. to reproduce
    another library's nodes to the last bit.
    """
    if isinstance(rule, (tuple, list)) and len(rule) == 2:
        nodes, weights = (torch.as_tensor(t, dtype=torch.float64).flatten() for t in rule)
        if len(nodes) != len(weights) or len(nodes) == 0 or nodes.min() < 0 or nodes.max() > 1:
            raise ValueError("a custom rule is (nodes, weights) of equal length with nodes in [0, 1]")
        return nodes, weights
    if rule not in IG_RULES:
        raise ValueError(f"rule must be one of {IG_RULES} or (nodes, weights), got {rule!r}")
    m = _positive_int(steps, "steps", 2 if rule == "trapezoid" else 1)
    i = torch.arange(m, dtype=torch.float64)
    if rule == "gauss_legendre":
        nodes, weights = np.polynomial.legendre.leggauss(m)
        return torch.from_numpy(0.5 * (nodes + 1)), torch.from_numpy(0.5 * weights)
    if rule == "trapezoid":
        weights = torch.full((m,), 1 / (m - 1), dtype=torch.float64)
        weights[0] = weights[-1] = 0.5 / (m - 1)
        return i / (m - 1), weights
    offset = {"left": 0.0, "right": 1.0, "middle": 0.5}[rule]
    return (i + offset) / m, torch.full((m,), 1 / m, dtype=torch.float64)


def integrated_gradients(
    model: nn.Module,
    images: Tensor,
    target: TargetSpec = None,
    *,
    baseline: Fill = "black",
    steps: int = 32,
    rule: str | tuple[Tensor, Tensor] = "gauss_legendre",
    blur_sigma: float | None = None,
    return_gap: bool = False,
    batch_size: int = 64,
    progress: bool | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Integrated gradients (Sundararajan, Taly & Yan 2017, arXiv 1703.01365), summed over colour.

    ``IG(x) = (x - x0) * int_0^1 dS/dx(x0 + a (x - x0)) da``, the integral by ``rule`` with
    ``steps`` nodes (:func:`quadrature`: Riemann ``"left"``/``"right"``/``"middle"``/
    ``"trapezoid"``, ``"gauss_legendre"`` or explicit ``(nodes, weights)``), and the map ``M = sum_k IG_k`` (signed, like
    :func:`input_x_gradient`). The baseline ``x0`` (pixel space): ``"black"`` (0), ``"mean"``
    (the model's Normalize mean colour), ``"blur"`` (the image blurred with ``blur_sigma``,
    default an eighth of the smaller side), a number, or a tensor that broadcasts to the images.

    Completeness: ``sum IG = S(x) - S(x0)`` for the exact integral. ``return_gap=True`` returns
    ``(maps, gap)`` with ``gap[b] = sum M[b] - (S(x_b) - S(x0_b))`` per image, which shrinks as
    ``steps`` grows. Cost: ``steps`` forward + backward passes of the batch in chunks of
    ``batch_size`` (image, step) pairs, plus one forward pass for the target (two with the gap).
    """
    check_batch_size(batch_size)
    if blur_sigma is not None:
        check_number(blur_sigma, "blur_sigma", positive=True)
    alphas, weights = quadrature(rule, steps)
    with explaining(model, images, target, gradients=False) as p:
        x, classes, clean = p.inputs, p.classes, p.scores()
    sigma = blur_sigma if blur_sigma is not None else min(x.shape[-2:]) / 8
    x0 = fill_images(model, x, baseline, sigma, name="baseline").expand_as(x)
    delta = x - x0
    a = alphas.to(x)
    total = accumulate_gradients(model, x, classes, len(a), lambda b, v: x0[b] + a[v].view(-1, 1, 1, 1) * delta[b],
                                 weights=weights.to(x), batch_size=batch_size, progress=progress,
                                 desc="Integrated gradients")
    maps = finish((delta * total).sum(dim=1), images)
    if not return_gap:
        return maps
    base = score_variants(model, x, classes, 1, lambda b, v: x0[b], batch_size=batch_size, progress=False)[:, 0]
    gap = maps.flatten(1).sum(1) - finish(clean - base, images)
    return maps, gap


__all__ = ["IG_RULES", "SMOOTHGRAD_KINDS", "integrated_gradients", "quadrature", "smoothgrad"]
