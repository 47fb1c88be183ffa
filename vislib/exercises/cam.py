"""Checks for the exercises of notebook 05 (class activation maps).

Each check runs the student's function on inputs of its own and compares the result with an
answer computed another way than the model solution: the class activation maps by a loop over
channels on a tiny GAP network (and by the identity *logit = spatial mean of the map + bias*),
the gradient of a GAP + linear head by autograd.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .feedback import attempt, expect_close, expect_tensor, fail, passed
from .registry import exercise

NOTEBOOK = "05_cam"


def _gap_network(k: int, c: int, seed: int) -> nn.Sequential:
    """A tiny GAP network in float64: conv 3->k (3x3, same size) -> ReLU -> GAP -> Linear(k, c)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, k, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(k, c)).double().eval()


def _diagnose_cam(got: Tensor, features: Tensor, weight: Tensor, classes: Tensor, what: str) -> None:
    """Name the likely mistake of a map ``got`` that should be ``Σ_k weight[classes[b], k] features[b, k]``."""
    b, _, h, w = features.shape
    if got.shape == (b, weight.shape[0], h, w):
        fail(what, "returned the maps of every class for every image, shape [B, C, h, w]; the answer is one "
             "map per image, for that image's class classes[b]: shape [B, h, w]",
             "take the fc weights of each image's class first: fc_weight[classes] is [B, K]")
    if got.shape != (b, h, w) or not torch.isfinite(got).all():
        return
    got64 = got.detach().double()
    every = torch.einsum("ck,bkhw->bchw", weight, features)                       # [B, C, h, w]
    expected = every[torch.arange(b), classes]
    for i in range(b):
        if torch.allclose(got64[i], expected[i], atol=1e-8):
            continue
        for other in range(weight.shape[0]):
            if other != classes[i] and torch.allclose(got64[i], every[i, other], atol=1e-8):
                fail(what, f"image {i} should get the map of its class classes[{i}] = {int(classes[i])}, "
                     f"yours is the map of class {other}",
                     "use row classes[b] of fc_weight for image b (fc_weight[classes] is [B, K])")
    if (expected < 0).any() and torch.allclose(got64, expected.clamp(min=0), atol=1e-8):
        fail(what, "your maps have no negative values, but M_c is negative where the class's weighted channels "
             "sum to less than 0 (e.g. a class weight of -1 on a channel of ones)",
             "do not apply a ReLU here: the exercise asks for the signed map M_c (the notebook clamps it "
             "afterwards)")


@exercise("05-cam-by-hand", NOTEBOOK, "cam_by_hand",
          "signed class activation maps M_c = sum_k w_k^c A^k of each image's class", points=2)
def cam_by_hand(fn: Callable) -> None:
    what = "cam_by_hand(features, fc_weight, classes)"
    # 1. By hand: one channel of ones, so each map is its class's weight at every position.
    ones = torch.ones(2, 1, 2, 3, dtype=torch.float64)
    w1 = torch.tensor([[2.0], [-1.0], [0.5]], dtype=torch.float64)
    c1 = torch.tensor([0, 1])
    got = expect_tensor(attempt(fn, ones, w1, c1), what)
    _diagnose_cam(got, ones, w1, c1, what)
    expected = torch.stack([torch.full((2, 3), 2.0), torch.full((2, 3), -1.0)]).double()
    expect_close(got, expected, what + " with one channel of ones", atol=1e-9, axes=["image", "row", "column"],
                 hint="with a single channel of ones, M_c(i, j) = w_1^c at every position: image 0 has class 0 "
                      "(weight 2), image 1 class 1 (weight -1); nothing is averaged or normalised")
    # 2. A tiny GAP network: features of 3 images, classes that are not all the same.
    net = _gap_network(4, 5, seed=5)
    g = torch.Generator().manual_seed(5)
    images = torch.rand(3, 3, 5, 7, generator=g, dtype=torch.float64)
    classes = torch.tensor([3, 0, 4])
    with torch.no_grad():
        features = net[:2](images)                                   # [3, 4, 5, 7] after the ReLU
        logits = net(images)
    fc = net[4]
    weight, bias = fc.weight.detach().clone(), fc.bias.detach()
    # Independent answer: a loop over images and channels.
    expected = torch.zeros(3, 5, 7, dtype=torch.float64)
    for b in range(3):
        for k in range(4):
            expected[b] += weight[classes[b], k] * features[b, k]
    assert torch.allclose(expected.mean((1, 2)) + bias[classes], logits[torch.arange(3), classes])
    got = expect_tensor(attempt(fn, features, weight, classes), what)
    _diagnose_cam(got, features, weight, classes, what)
    hint = ("M_c(i, j) = Σ_k fc_weight[c, k] · features[b, k, i, j] with c = classes[b], a sum over the channels "
            "(not a mean, no 1/(h·w)); torch.einsum('bk,bkhw->bhw', ...) does it in one call")
    if got.shape == expected.shape and torch.isfinite(got).all():
        gap = (got.detach().double().mean((1, 2)) + bias[classes] - logits[torch.arange(3), classes]).abs().max()
        if gap > 1e-6:
            hint = (f"the spatial mean of each map plus the class's bias should be the class's logit, but yours is "
                    f"off by up to {gap.item():.3g}. " + hint)
    expect_close(got, expected, what, atol=1e-8, axes=["image", "row", "column"], hint=hint)
    passed("class activation maps by hand", "checked by hand on one channel of ones, and on a tiny GAP network, "
           "where the mean of each map plus the bias is the logit")


def _diagnose_gradient_shape(got: Tensor, fc_weight: Tensor, batch: int, what: str) -> None:
    """Name the likely mistake behind a gradient of the wrong shape."""
    n_classes, k = fc_weight.shape
    if got.shape == (batch, k):
        fail(what, f"returned one value per channel, shape {tuple(got.shape)} = [B, K]; the gradient has a value at "
             "every position of every channel, shape [B, K, height, width] (here the same value at each position)",
             "expand the [B, K] values over the positions: [:, :, None, None].expand(-1, -1, height, width)")
    if got.dim() >= 2 and tuple(got.shape[:2]) == (n_classes, batch) and (n_classes, batch) != (batch, k):
        fail(what, f"has shape {tuple(got.shape)}: its first axis has one entry per class ({n_classes}), so you "
             "indexed the columns (channels) of fc_weight with the classes",
             "row c of fc_weight [C, K] holds the weights of class c: fc_weight[classes] is [B, K]")


@exercise("05-gap-gradient", NOTEBOOK, "gap_gradient",
          "the gradient of a class logit with respect to the feature maps of a GAP + linear head", points=2)
def gap_gradient(fn: Callable) -> None:
    what = "gap_gradient(fc_weight, classes, height, width)"
    # 1. By hand: one channel, weight 6, GAP over 2 x 3 = 6 positions: derivative 6 / 6 = 1 everywhere.
    w1 = torch.tensor([[6.0], [3.0]], dtype=torch.float64)
    got = expect_tensor(attempt(fn, w1, torch.tensor([0]), 2, 3), what)
    _diagnose_gradient_shape(got, w1, 1, what)
    expect_close(got, torch.ones(1, 1, 2, 3, dtype=torch.float64),
                 what + " for one channel with weight 6 and GAP over 2 x 3 positions", atol=1e-9,
                 axes=["image", "channel", "row", "column"],
                 hint="S = 6 · (1/6) Σ_ij A_ij + b, so ∂S/∂A_ij = 6/6 = 1 at every position: the GAP divides "
                      "by the number of positions h·w")
    # 2. Against autograd on a GAP + linear head, non-square positions, classes that differ.
    torch.manual_seed(6)
    fc = nn.Linear(4, 5).double()
    g = torch.Generator().manual_seed(6)
    features = torch.rand(3, 4, 3, 5, generator=g, dtype=torch.float64).requires_grad_()
    classes = torch.tensor([2, 0, 4])
    logits = fc(features.mean(dim=(2, 3)))
    (expected,) = torch.autograd.grad(logits[torch.arange(3), classes].sum(), features)
    weight = fc.weight.detach().clone()
    got = expect_tensor(attempt(fn, weight, classes, 3, 5), what)
    _diagnose_gradient_shape(got, weight, 3, what)
    expect_close(got, expected, what, atol=1e-10, axes=["image", "channel", "row", "column"],
                 hint="∂S_c/∂A^k_ij = fc_weight[c, k] / (height · width) at every position (i, j), with "
                      "c = classes[b] for image b; compare your formula with S_c = Σ_k w_k^c (1/(h·w)) Σ_ij "
                      "A^k_ij + b_c")
    passed("gradient of a GAP + linear head", "it equals autograd's for 3 images on a 3 x 5 grid: "
           "w_k^c / (h·w), the same at every position")
