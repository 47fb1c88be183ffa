"""Checks for the exercises of notebook 07 (FullGrad).

Each check runs the student's function on inputs of its own (float64, seeded) and compares it
with an answer computed another way than the model solution: a BatchNorm's effective bias as its
output for a zero input, the sum of the decomposition as the logit itself (completeness, on a
tiny conv-BatchNorm-linear network whose gradients the check records with hooks), and ψ with
vislib's :func:`~vislib.attribution.fullgrad.psi`, which sums the channels before upsampling.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attribution.fullgrad import psi
from .feedback import attempt, expect_close, expect_shape, expect_tensor, fail, passed, recognise
from .registry import exercise

NOTEBOOK = "07_fullgrad"


# --------------------------------------------------------------------------- Exercise 1: effective bias
def _batchnorm(generator: torch.Generator, channels: int = 5, eps: float = 0.01) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, eps=eps).double().eval()
    with torch.no_grad():
        bn.weight.copy_(torch.rand(channels, generator=generator, dtype=torch.float64) + 0.5)
        bn.bias.copy_(torch.randn(channels, generator=generator, dtype=torch.float64))
        bn.running_mean.copy_(torch.randn(channels, generator=generator, dtype=torch.float64) * 2)
        bn.running_var.copy_(torch.rand(channels, generator=generator, dtype=torch.float64) * 0.5 + 0.05)
        bn.running_mean[0] = 0.0                   # no mean to subtract: the bias is beta
        bn.weight[1], bn.running_mean[1], bn.running_var[1] = 2.0, 3.0, 1.0 - eps   # s = 1: beta - 6
    return bn


@exercise("07-effective-bias", NOTEBOOK, "bn_effective_bias",
          "the bias an eval-mode BatchNorm adds: beta - gamma * running_mean / sqrt(running_var + eps)", points=2)
def bn_effective_bias(fn: Callable) -> None:
    what = "bn_effective_bias(bn)"
    hint = ("in eval mode BN(z) = γ (z - μ)/s + β with μ = bn.running_mean, s = sqrt(bn.running_var + bn.eps), "
            "γ = bn.weight, β = bn.bias: its bias is β - γ·μ/s, one value per channel")
    bn = _batchnorm(torch.Generator().manual_seed(7))
    state = {k: v.clone() for k, v in bn.state_dict().items()}
    got = attempt(fn, bn)
    changed = [k for k, v in bn.state_dict().items() if not torch.equal(v, state[k])]
    if changed or bn.training:
        fail(what, f"changed the BatchNorm it was given ({', '.join(changed) or 'its train/eval mode'})",
             "read its parameters and buffers, do not write to them (no in-place operations, no .train())")
    got = expect_tensor(got, what)
    expect_shape(got, (bn.num_features,), what, "one bias per channel: a tensor [C]")
    got = got.detach().to(torch.float64)
    with torch.no_grad():
        # Independent answer: an affine layer's bias is its output for a zero input.
        expected = bn(torch.zeros(1, bn.num_features, 1, 1, dtype=torch.float64))[0, :, 0, 0]
        gamma, beta, mu, var = bn.weight, bn.bias, bn.running_mean, bn.running_var
        alternatives = [
            (beta, "that is β, the BatchNorm's `bias` parameter; in eval mode the layer also shifts by -γ·μ/s "
                   "(it subtracts the running mean), and that shift is part of its bias"),
            (beta + gamma * mu / torch.sqrt(var + bn.eps), "the mean term has the wrong sign: BN subtracts the "
                                                            "running mean, so the bias is β - γ·μ/s"),
            (beta - gamma * mu / torch.sqrt(var), f"you left out ε: s = sqrt(running_var + eps), with the layer's "
                                                  f"own eps (bn.eps = {bn.eps})"),
            (beta - gamma * mu / torch.sqrt(var + 1e-5), f"you used ε = 1e-5; use the layer's own bn.eps "
                                                         f"(= {bn.eps} here)"),
            (beta - gamma * mu / (var + bn.eps), "you divided by the variance; divide by the standard deviation "
                                                 "s = sqrt(running_var + eps)"),
            (beta - gamma * mu / (torch.sqrt(var) + bn.eps),
             "ε goes inside the square root: s = sqrt(running_var + eps)"),
            (beta - mu / torch.sqrt(var + bn.eps), "you left out γ (bn.weight), which scales the normalised value "
                                                   "and so the shift -μ/s too"),
            (-gamma * mu / torch.sqrt(var + bn.eps), "you left out β (bn.bias)"),
        ]
    recognise(got, alternatives, what, hint)
    expect_close(got[:2], expected[:2], what + " on two channels worked out by hand", atol=1e-9, axes=["channel"],
                 hint="channel 0 has running mean 0, so its bias is β; channel 1 has γ = 2, μ = 3 and "
                      "running_var + eps = 1, so its bias is β - 6")
    expect_close(got, expected, what, atol=1e-9, axes=["channel"], hint=hint)
    passed("effective bias of an eval-mode BatchNorm",
           "it equals the layer's output for a zero input, on 5 channels with ε = 0.01")


# --------------------------------------------------------------------------- Exercise 2: completeness
def _tiny_network(generator: torch.Generator) -> nn.Sequential:
    """conv(bias)-BN-ReLU-maxpool-conv(no bias)-BN-ReLU-flatten-linear-ReLU-linear, float64, eval."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 5, 3, padding=1, bias=False), nn.BatchNorm2d(5), nn.ReLU(), nn.Flatten(),
                        nn.Linear(5 * 3 * 3, 7), nn.ReLU(), nn.Linear(7, 3)).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64) * 0.5)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.add_(1.0)
                m.running_mean.copy_(torch.randn(m.num_features, generator=generator, dtype=torch.float64) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=generator, dtype=torch.float64) + 0.5)
    return net


def _bias_of(m: nn.Module) -> Tensor | None:
    if isinstance(m, nn.BatchNorm2d):
        return (m.bias - m.weight * m.running_mean / torch.sqrt(m.running_var + m.eps)).detach()
    if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
        return m.bias.detach()
    return None


def _gradients(net: nn.Sequential, x: Tensor, target: Tensor):
    """Logit S [B], dS/dx, the biases and dS/dz at each bias layer's output, by forward hooks."""
    biases = {name: b for name, m in net.named_children() if (b := _bias_of(m)) is not None}
    outputs, handles = {}, []
    for name in biases:
        handles.append(net.get_submodule(name).register_forward_hook(
            lambda mod, inp, out, name=name: outputs.__setitem__(name, out)))
    try:
        x = x.clone().requires_grad_(True)
        S = net(x).gather(1, target[:, None]).squeeze(1)
    finally:
        for h in handles:
            h.remove()
    grads = torch.autograd.grad(S.sum(), [x] + [outputs[n] for n in biases])
    return S.detach(), grads[0], biases, dict(zip(biases, grads[1:]))


@exercise("07-completeness-total", NOTEBOOK, "fullgrad_total",
          "input term plus every bias term, summed per image (it must give back the logit)", points=2)
def fullgrad_total(fn: Callable) -> None:
    what = "fullgrad_total(x, input_grad, biases, bias_grads)"
    hint = ("per image: Σ x·∂S/∂x over channels and positions, plus for every layer Σ_k b_l[k]·Σ_positions "
            "∂S/∂z_l[k, ...]: the bias [C] multiplies axis 1 of the gradient (reshape it to [1, C, 1, 1] for a "
            "[B, C, h, w] gradient, leave it [C] for a linear layer's [B, C])")
    hints = {"must match the size": "a bias [C] broadcasts against the *last* axis of a [B, C, h, w] gradient; it "
                                    "belongs to axis 1, the channels: reshape it with b.view(1, -1, 1, 1)",
             "out of range": "a linear layer's gradient is [B, C], with no spatial axes: it has no dims 2 and 3"}
    gen = torch.Generator().manual_seed(17)
    net = _tiny_network(gen)
    x = torch.rand(4, 3, 6, 6, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        target = net(x).argmax(1)
    S, input_grad, biases, bias_grads = _gradients(net, x, target)
    got = expect_tensor(attempt(fn, x, input_grad, biases, bias_grads, hints=hints), what)
    if got.numel() == 1 and len(S) > 1:
        fail(what, f"returned a single number {got.flatten()[0].item():.6g}; expected one per image, shape "
             f"{(len(S),)}", "sum over every axis but the batch axis (dim 0), e.g. t.flatten(1).sum(1)")
    expect_shape(got, (len(S),), what, "one number per image: a tensor [B]")
    got = got.detach().to(torch.float64)

    def per_image(t: Tensor) -> Tensor:
        return t.flatten(1).sum(1)

    def term(name: str, reduce: str = "sum") -> Tensor:
        g, b = bias_grads[name], biases[name]
        if g.dim() == 2:
            return per_image(g * b)
        summed = per_image(g * b.view(1, -1, 1, 1))
        return summed / g[0, 0].numel() if reduce == "mean" else summed

    spatial = [n for n, g in bias_grads.items() if g.dim() == 4]
    linear = [n for n, g in bias_grads.items() if g.dim() == 2]
    input_term = per_image(x * input_grad)
    alternatives = [
        (input_term, "your total is the input term x·∂S/∂x alone (gradient × input): add the bias term of every "
                     "layer in `biases`"),
        (sum(term(n) for n in biases), "your total is the sum of the bias terms alone: add the input term "
                                       "Σ x·∂S/∂x"),
        (input_term + sum(term(n) for n in spatial), "you left out the bias terms of the linear layers (their "
                                                     "gradients are [B, C], without spatial axes)"),
        (input_term + sum(term(n) for n in linear), "you left out the bias terms of the layers with a spatial "
                                                    "output (conv and BatchNorm, gradients [B, C, h, w])"),
        (input_term + sum(term(n, "mean") for n in spatial) + sum(term(n) for n in linear),
         "you averaged b·∂S/∂z over the positions: a conv or BatchNorm bias is added at *every* position, so its "
         "term is the sum over the positions"),
        (input_term + sum(term(n) for n in spatial)
         + sum(per_image(b.view(1, -1, 1, 1) * bias_grads[n])[:1] for n, b in biases.items() if n in linear),
         "a linear layer's gradient is [B, C]: reshaping its bias to [1, C, 1, 1] broadcasts it against the batch "
         "axis; reshape it only for gradients with spatial axes"),
    ]
    recognise(got, alternatives, what, hint)
    # By hand: S = 3·x_0 - x_1 + 2·x_2 + 0.5 on a 3 x 1 x 1 "image" x = (1, 2, 0.5): S = 2.5, input term 2.
    x_hand = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64).view(1, 3, 1, 1)
    g_hand = torch.tensor([3.0, -1.0, 2.0], dtype=torch.float64).view(1, 3, 1, 1)
    hand = attempt(fn, x_hand, g_hand, {"fc": torch.tensor([0.5], dtype=torch.float64)},
                {"fc": torch.ones(1, 1, dtype=torch.float64)}, hints=hints)
    hand = expect_tensor(hand, what)
    expect_shape(hand, (1,), what, "one number per image: a tensor [B]")
    expect_close(hand, torch.tensor([2.5], dtype=torch.float64), what + " for S = 3·x₀ - x₁ + 2·x₂ + 0.5",
                 atol=1e-9, hint="at x = (1, 2, 0.5) the input term is 3 - 2 + 1 = 2 and the bias term of the "
                                 "linear layer is 0.5 · 1: the total is the score, 2.5")
    expect_close(got, S, what + " (it must equal the logit S, by completeness)", atol=1e-9, rtol=1e-9,
                 axes=["image"], hint=hint)
    passed("sum of the full-gradient decomposition", f"it gives back the logit of {len(S)} images of a "
           f"conv-BatchNorm-linear network with {len(biases)} bias layers, and 2.5 for a linear score by hand")


# --------------------------------------------------------------------------- Exercise 3: psi
@exercise("07-psi", NOTEBOOK, "psi_map",
          "FullGrad's post-processing: |T| min-max rescaled per image, upsampled (align_corners=True), "
          "summed over channels", points=2)
def psi_map(fn: Callable) -> None:
    what = "psi_map(t, size)"
    hint = ("|T|; per image, (|T| - min) / (max - min + eps) with min and max over all C x h x w values of that "
            "image; F.interpolate(..., size, mode='bilinear', align_corners=True); sum over the channels")
    hints = {"out of range": "t is [B, C, h, w]: take min and max over t.flatten(1), one per image"}
    # By hand: one value -2 at the top-left corner of image 0, the rest 0: after |.| and rescaling a 1 there,
    # which align_corners=True upsampling from 2 x 2 to 3 x 3 spreads as 1, 1/2, 1/4 over the next pixels.
    # Image 1 is ±3 everywhere: |T| is constant, (|T| - min) = 0, the map is 0.
    t_hand = torch.zeros(2, 2, 2, 2, dtype=torch.float64)
    t_hand[0, 0, 0, 0] = -2.0
    t_hand[1] = 3.0
    t_hand[1, 1] = -3.0
    v = 2.0 / (2.0 + 1e-6)
    hand_expected = torch.zeros(2, 3, 3, dtype=torch.float64)
    hand_expected[0, :2, :2] = torch.tensor([[v, v / 2], [v / 2, v / 4]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(27)
    B, C, h, w, size = 2, 3, 4, 5, (8, 10)
    t = torch.randn(B, C, h, w, generator=gen, dtype=torch.float64)
    t = torch.sign(t) * (t.abs() + 1.0)              # |T| >= 1: the minimum matters
    t[1] *= 5.0                                      # images of different scale
    got = expect_tensor(attempt(fn, t, size, hints=hints), what)
    if got.shape == (B, C, *size):
        fail(what, f"has shape {tuple(got.shape)}: one map per channel; ψ sums them, shape {(B, *size)}", hint)
    expect_shape(got, (B, *size), what, hint)
    got = got.detach().to(torch.float64)

    def rescaled(a: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
        return (a - lo) / (hi - lo + 1e-6)

    def up(a: Tensor, **kw) -> Tensor:
        return F.interpolate(a, size=size, **{"mode": "bilinear", "align_corners": True, **kw})

    a = t.abs()
    lo = a.flatten(1).amin(1).view(-1, 1, 1, 1)
    hi = a.flatten(1).amax(1).view(-1, 1, 1, 1)
    right = rescaled(a, lo, hi)
    summed = a.sum(1)
    s_lo, s_hi = summed.flatten(1).amin(1).view(-1, 1, 1), summed.flatten(1).amax(1).view(-1, 1, 1)
    alternatives = [
        (up(rescaled(t, t.flatten(1).amin(1).view(-1, 1, 1, 1), t.flatten(1).amax(1).view(-1, 1, 1, 1))).sum(1),
         "you forgot the absolute value: ψ rescales |T|, so large negative terms count as much as large positive "
         "ones"),
        (up(rescaled(a, a.amin(dim=(2, 3), keepdim=True), a.amax(dim=(2, 3), keepdim=True))).sum(1),
         "you rescaled each channel on its own; the min and max are taken over all C x h x w values of an image "
         "together"),
        (up(rescaled(a, a.min(), a.max())).sum(1), "your min and max are over the whole batch; take them per image "
                                                   "(over t.flatten(1), dim 1)"),
        (up(right, align_corners=False).sum(1), "you upsampled with align_corners=False; FullGrad's ψ (the "
                                                "reference code) uses align_corners=True"),
        (up(right, mode="nearest", align_corners=None).sum(1), "you upsampled with mode='nearest'; use "
                                                               "mode='bilinear', align_corners=True"),
        (up(a / hi).sum(1), "you divided by the maximum only: subtract the per-image minimum first "
                            "((|T| - min) / (max - min + eps))"),
        (up(((summed - s_lo) / (s_hi - s_lo + 1e-6))[:, None])[:, 0],
         "you rescaled after summing over the channels; rescale |T| first (min and max over all its C x h x w "
         "values), upsample, then sum"),
        (up(right).mean(1), f"your map is the expected one divided by C = {C}: sum over the channels, do not average"),
    ]
    recognise(got, alternatives, what, hint)
    expect_close(attempt(fn, t_hand, (3, 3), hints=hints), hand_expected, what + " on a 2 x 2 example worked out by hand",
                 atol=1e-9, axes=["image", "row", "column"],
                 hint="image 0: |T| is 2 at the top-left of channel 0 and 0 elsewhere, rescaled to 1 (up to eps) "
                      "there; align_corners=True keeps the corners and puts 1/2, 1/4 between them; image 1: |T| = 3 "
                      "everywhere, so |T| - min = 0 and ψ = 0")
    expect_close(got, psi(t, size), what, atol=1e-9, axes=["image", "row", "column"], hint=hint)
    passed("ψ, FullGrad's post-processing", f"checked on {B} images of {C} x {h} x {w} upsampled to {size[0]} x "
           f"{size[1]}, and on a 2 x 2 example by hand")
