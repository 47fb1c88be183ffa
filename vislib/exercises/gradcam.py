"""Checks for the exercises of notebook 06 (Grad-CAM and its family).

Each check runs the student's function on small tensors of its own (float64, seeded) and compares
it with an answer computed another way than the model solution: the Grad-CAM map and the
Grad-CAM++ weights by explicit loops over images, channels and positions, the upsampling of
Guided Grad-CAM by the bilinear interpolation formula written out per pixel. Each also has a
case whose answer is known by hand, and names the likely mistakes before the generic comparison.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .feedback import attempt, expect_close, expect_shape, expect_tensor, fail, passed, recognise
from .registry import exercise

NOTEBOOK = "06_gradcam"

# --------------------------------------------------------------------------- Exercise 1: Grad-CAM
def _gradcam_by_loops(A: Tensor, G: Tensor) -> Tensor:
    B, K, h, w = A.shape
    out = torch.zeros(B, h, w, dtype=torch.float64)
    for b in range(B):
        weights = [sum(float(G[b, k, i, j]) for i in range(h) for j in range(w)) / (h * w) for k in range(K)]
        for i in range(h):
            for j in range(w):
                out[b, i, j] = max(0.0, sum(weights[k] * float(A[b, k, i, j]) for k in range(K)))
    return out


@exercise("06-gradcam-map", NOTEBOOK, "gradcam_map",
          "Grad-CAM at the layer's resolution: ReLU of the channels weighted by their mean gradient", points=2)
def gradcam_map(fn: Callable) -> None:
    what = "gradcam_map(A, G)"
    hint = ("α_k = mean of G[b, k] over the h·w positions (one weight per image and channel); "
            "map = ReLU(Σ_k α_k A[b, k]), shape [B, h, w], not upsampled")
    g = torch.Generator().manual_seed(6)
    B, K, h, w = 3, 4, 3, 5
    A = torch.randn(B, K, h, w, generator=g, dtype=torch.float64).relu()        # a ReLU layer's output
    G = torch.randn(B, K, h, w, generator=g, dtype=torch.float64) + 0.3
    G[1] -= 0.6                                                                  # other weights per image
    got = expect_tensor(attempt(fn, A, G), what)
    if got.shape == (B, K, h, w):
        fail(what, f"has shape {tuple(got.shape)}: one map per channel; the answer is one map per image, "
             f"shape {(B, h, w)}", "sum the weighted channels over k (dim 1)")
    if got.dim() == 3 and got.shape[0] == B and got.shape[1] > h and got.shape[2] > w:
        fail(what, f"has shape {tuple(got.shape)}, expected {(B, h, w)}",
             "return the map at the layer's resolution h x w; the notebook upsamples it afterwards")
    expect_shape(got, (B, h, w), what, hint)
    got = got.detach().to(torch.float64)
    if (got < -1e-9).any():
        fail(what, f"your map has negative values (down to {got.min().item():.4g}): did you forget the ReLU "
             "(clamp at 0) after the weighted sum?", hint)
    mean_w = G.mean(dim=(2, 3))
    expected = _gradcam_by_loops(A, G)
    alternatives = [
        (torch.einsum("bk,bkhw->bhw", G.sum(dim=(2, 3)), A).clamp(min=0),
         f"your map is h·w = {h * w} times the expected one: the channel weight is the *mean* of the gradient "
         "over the positions, not its sum"),
        ((G * A).sum(1).clamp(min=0),
         "you multiplied each activation by the gradient at its own position (gradient × activation); Grad-CAM "
         "gives every channel a single weight, the mean of its gradient over all positions"),
        (torch.einsum("k,bkhw->bhw", G.mean(dim=(0, 2, 3)), A).clamp(min=0),
         "your channel weights are averaged over the images too: average over the positions of each image "
         "(dims 2 and 3) only, so that every image gets its own weights"),
        ((mean_w[:, :, None, None] * A).clamp(min=0).sum(1),
         "you applied the ReLU to each channel's weighted map before summing; Grad-CAM sums the weighted "
         "channels first and applies the ReLU once, to the sum"),
        (torch.einsum("bk,bkhw->bhw", mean_w, A).clamp(min=0) / K,
         f"your map is the expected one divided by K = {K}: sum the weighted channels, do not average them"),
        (torch.einsum("bk,bkhw->bhw", A.mean(dim=(2, 3)), G).clamp(min=0),
         "you weighted the gradients by the mean activation: the weights come from G (the gradient), the maps "
         "that are summed are the activations A"),
    ]
    recognise(got, alternatives, what, hint)
    # By hand: channel 0 is all ones with mean gradient 0.5, channel 1 is 1 at the top left with mean
    # gradient -1/4: map = 0.5 - 0.25 * A_1. The second image has the opposite gradients: all negative, map 0.
    A_hand = torch.zeros(2, 2, 2, 2, dtype=torch.float64)
    A_hand[:, 0] = 1.0
    A_hand[:, 1, 0, 0] = 1.0
    G_hand = torch.zeros(2, 2, 2, 2, dtype=torch.float64)
    G_hand[0, 0] = 0.5
    G_hand[0, 1, 1, 1] = -1.0
    G_hand[1] = -G_hand[0]
    expect_close(attempt(fn, A_hand, G_hand), torch.tensor([[[0.25, 0.5], [0.5, 0.5]], [[0.0, 0.0], [0.0, 0.0]]],
                                                        dtype=torch.float64),
                 what + " on a 2 x 2 example worked out by hand", atol=1e-9, axes=["image", "row", "column"],
                 hint="image 0: α = (0.5, -0.25), so the map is 0.5·1 - 0.25·A_1 = 0.25 at the top left and 0.5 "
                      "elsewhere; image 1: every weighted sum is negative, so the ReLU gives 0")
    expect_close(got, expected, what, atol=1e-9, axes=["image", "row", "column"], hint=hint)
    passed("Grad-CAM map", f"checked on {B} images of {K} channels x {h} x {w} and on a 2 x 2 example by hand")


# --------------------------------------------------------------------------- Exercise 2: Guided Grad-CAM
def _bilinear_by_formula(maps: Tensor, H: int, W: int) -> Tensor:
    """Bilinear interpolation with align_corners=False, written out: output pixel centre (i + 1/2)
    sits at (i + 1/2)·h/H - 1/2 in input pixels (at least 0); interpolate between its two neighbours."""
    def taps(n_out: int, n_in: int):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(int), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    m = maps.detach().to(torch.float64).numpy()
    r0, r1, fr = taps(H, m.shape[1])
    c0, c1, fc = taps(W, m.shape[2])
    out = np.empty((m.shape[0], H, W))
    for i in range(H):
        for j in range(W):
            top = (1 - fc[j]) * m[:, r0[i], c0[j]] + fc[j] * m[:, r0[i], c1[j]]
            bottom = (1 - fc[j]) * m[:, r1[i], c0[j]] + fc[j] * m[:, r1[i], c1[j]]
            out[:, i, j] = (1 - fr[i]) * top + fr[i] * bottom
    return torch.from_numpy(out)


@exercise("06-guided-gradcam", NOTEBOOK, "guided_gradcam_map",
          "Guided Grad-CAM: guided backprop times the bilinearly upsampled Grad-CAM map", points=2)
def guided_gradcam_map(fn: Callable) -> None:
    what = "guided_gradcam_map(guided, cam)"
    hint = ("upsample cam [B, h, w] to guided's H x W with F.interpolate(cam[:, None], size=(H, W), "
            "mode='bilinear', align_corners=False)[:, 0], then multiply pixel by pixel")
    hints = {"must match the size": "guided backprop is [B, H, W] but Grad-CAM is [B, h, w]: upsample the Grad-CAM "
                                    "map to H x W before multiplying"}
    g = torch.Generator().manual_seed(16)
    B, H, W, h, w = 2, 8, 6, 4, 3
    guided = torch.rand(B, H, W, generator=g, dtype=torch.float64)
    cam = torch.rand(B, h, w, generator=g, dtype=torch.float64)
    cam[0, 0, 0] = 0.0
    got = expect_tensor(attempt(fn, guided, cam, hints=hints), what)
    expect_shape(got, (B, H, W), what, "the answer has the shape of the guided backprop map, [B, H, W]")
    got = got.detach().to(torch.float64)

    def up(mode: str, **kw: Any) -> Tensor:
        return F.interpolate(cam[:, None], size=(H, W), mode=mode, **kw)[:, 0]

    bilinear = up("bilinear", align_corners=False)
    alternatives = [
        (guided * up("nearest"), "you upsampled with mode='nearest' (blocks of equal values); Guided Grad-CAM "
                                 "upsamples Grad-CAM bilinearly"),
        (guided * up("nearest-exact"), "you upsampled with mode='nearest-exact' (blocks of equal values); use "
                                       "mode='bilinear'"),
        (guided * up("bilinear", align_corners=True), "you upsampled with align_corners=True; vislib and the course "
                                                      "use align_corners=False (pixel centres, as images are resized)"),
        (guided * up("bicubic", align_corners=False), "you upsampled with mode='bicubic'; use mode='bilinear'"),
        (guided + bilinear, "you added the two maps; Guided Grad-CAM multiplies them pixel by pixel"),
        (guided * bilinear / bilinear.flatten(1).amax(1)[:, None, None],
         "you rescaled the Grad-CAM map by its maximum; multiply by the raw upsampled map"),
    ]
    recognise(got, alternatives, what, hint)
    # By hand: a Grad-CAM map that is constant c on an image upsamples to c everywhere: the answer is c · guided.
    const = torch.tensor([2.0, 0.5], dtype=torch.float64)[:, None, None].expand(B, h, w).clone()
    expect_close(attempt(fn, guided, const), guided * const[:, :1, :1], what + " with a constant Grad-CAM map c",
                 atol=1e-9, axes=["image", "row", "column"],
                 hint="with Grad-CAM equal to c everywhere the product is c times the guided backprop map "
                      "(c = 2 on image 0, 0.5 on image 1)")
    expect_close(got, guided * _bilinear_by_formula(cam, H, W), what, atol=1e-9, axes=["image", "row", "column"],
                 hint=hint)
    passed("Guided Grad-CAM", f"checked on {B} images, Grad-CAM {h} x {w} upsampled to {H} x {W}, and with a "
           "constant Grad-CAM map")


# --------------------------------------------------------------------------- Exercise 3: Grad-CAM++
def _gradcam_pp_by_loops(A: Tensor, G: Tensor) -> Tensor:
    B, K, h, w = A.shape
    out = torch.zeros(B, K, dtype=torch.float64)
    for b in range(B):
        for k in range(K):
            total = sum(float(A[b, k, i, j]) for i in range(h) for j in range(w))
            for i in range(h):
                for j in range(w):
                    gij = float(G[b, k, i, j])
                    denominator = 2 * gij**2 + total * gij**3
                    alpha = gij**2 / denominator if denominator != 0 else 0.0
                    out[b, k] += alpha * max(gij, 0.0)
    return out


@exercise("06-gradcam-pp-weights", NOTEBOOK, "gradcam_pp_weights",
          "Grad-CAM++ channel weights: alpha-weighted positive gradients", points=2)
def gradcam_pp_weights(fn: Callable) -> None:
    what = "gradcam_pp_weights(A, G)"
    hint = ("α_ij = g_ij² / (2 g_ij² + (Σ_ab A_ab) g_ij³), with Σ_ab over all positions of the channel and α = 0 "
            "where the denominator is 0; w = Σ_ij α_ij ReLU(g_ij), one number per image and channel")
    gen = torch.Generator().manual_seed(26)
    B, K, h, w = 2, 4, 3, 4
    A = torch.randn(B, K, h, w, generator=gen, dtype=torch.float64).relu()
    G = torch.randn(B, K, h, w, generator=gen, dtype=torch.float64)
    A[0, 1] = 0.0                       # Σ A = 0: α = 1/2 wherever g ≠ 0
    G[0, 2] = 0.0                       # no gradient at all: weight 0 (0/0 must not become NaN)
    A[1, 3] = 0.0
    A[1, 3, 0, 0] = 4.0                 # Σ A = 4 and g = -1/2: 2 g² + 4 g³ = 0 exactly
    G[1, 3, 2, 1] = -0.5
    got = expect_tensor(attempt(fn, A, G), what)
    if got.shape == (B, K, h, w):
        fail(what, f"has shape {tuple(got.shape)}: α·ReLU(g) per position; the weights are its sum over the "
             f"positions, shape {(B, K)}", hint)
    expect_shape(got, (B, K), what, hint)
    got = got.detach().to(torch.float64)
    if not torch.isfinite(got).all():
        where = [tuple(int(v) for v in p) for p in (~torch.isfinite(got)).nonzero()[:3]]
        fail(what, f"has NaN or inf weights at (image, channel) {where}: there the denominator 2g² + ΣA·g³ is 0 "
             "at some position (for example where g = 0), and 0/0 is NaN",
             "set α to 0 wherever the denominator is 0, e.g. torch.where(den != 0, g**2 / den, 0) after replacing "
             "the zero denominators by 1")
    expected = _gradcam_pp_by_loops(A, G)

    def weights(alpha: Tensor, positive: bool = True) -> Tensor:
        alpha = torch.nan_to_num(alpha, nan=0.0, posinf=0.0, neginf=0.0)
        return (alpha * (G.clamp(min=0) if positive else G)).sum(dim=(2, 3))

    total = A.sum(dim=(2, 3), keepdim=True)
    alpha = G**2 / (2 * G**2 + total * G**3)
    alternatives = [
        (weights(alpha, positive=False), "negative gradients count in your weights: Grad-CAM++ sums α·ReLU(g), "
                                         "so positions with g < 0 add nothing"),
        (weights(G**2 / (2 * G**2 + A * G**3)), "your denominator uses the activation at the same position, "
                                                "A_ij·g³; it must use the channel's total Σ_ab A_ab (a sum over all "
                                                "positions, keepdim=True)"),
        (weights(G**2 / (G**2 + total * G**3)), "the denominator is 2·g² + ΣA·g³: the factor 2 is missing"),
        (weights(alpha) / (h * w), f"your weights are the expected ones divided by h·w = {h * w}: sum α·ReLU(g) "
                                   "over the positions, do not average"),
    ]
    recognise(got, alternatives, what, hint)
    # By hand: one image of three 1 x 2 channels.
    A_hand = torch.tensor([[[[0.0, 0.0]], [[3.0, 1.0]], [[2.0, 5.0]]]], dtype=torch.float64)
    G_hand = torch.tensor([[[[0.4, 0.2]], [[-0.5, 2.0]], [[0.0, 0.0]]]], dtype=torch.float64)
    expect_close(attempt(fn, A_hand, G_hand), torch.tensor([[0.3, 0.2, 0.0]], dtype=torch.float64),
                 what + " on three 1 x 2 channels worked out by hand", atol=1e-9, axes=["image", "channel"],
                 hint="channel 0: ΣA = 0, so α = 1/2 and w = (0.4 + 0.2)/2 = 0.3; channel 1: ΣA = 4, at g = -0.5 "
                      "the denominator is 0 (α = 0) and at g = 2 α = 4/(8 + 32) = 0.1, so w = 0.2; channel 2: "
                      "g = 0 everywhere, w = 0")
    expect_close(got, expected, what, atol=1e-9, axes=["image", "channel"], hint=hint)
    passed("Grad-CAM++ weights", f"checked on {B} images x {K} channels of {h} x {w} (with a channel whose "
           "activations sum to 0, one without gradient and a zero denominator) and on an example by hand")
