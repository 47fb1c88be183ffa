"""Checks for the exercises of notebook 02 (t-SNE of a CNN's representations).

Each check runs the student's function on inputs of its own and compares the result with an
answer computed another way than the model solution: the penultimate features from the weights of
a tiny hand-built model, the neighbour counts by a double loop over points in NumPy, and the
neighbour probabilities by a loop over pairs with ``math.exp`` (after subtracting each row's
smallest distance, so that far-apart points do not underflow).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..hooks import hook_count
from .feedback import attempt, expect_close, expect_shape, expect_tensor, fail, passed
from .registry import exercise

NOTEBOOK = "02_tsne"


# --------------------------------------------------------------------------- 1. penultimate features
class _SkipNet(nn.Module):
    """A tiny classifier that is not an ``nn.Sequential``: slicing it does not work, a hook does.

    ``h = relu(fc(x)) - 0.5 · skip(x)`` (signed), then dropout (the identity in eval mode) and ``head``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU())
        self.skip = nn.Linear(12, 6, bias=False)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(6, 4)

    def forward(self, x: Tensor) -> Tensor:
        h = self.body(x) - 0.5 * self.skip(x.flatten(1))
        return self.head(self.drop(h))


@exercise("02-penultimate-features", NOTEBOOK, "penultimate_features",
          "the input of a model's last linear layer, recorded with a forward pre-hook", points=2)
def penultimate_features(fn: Callable) -> None:
    torch.manual_seed(21)
    model = _SkipNet().double().eval()
    g = torch.Generator().manual_seed(21)
    images = torch.rand(5, 3, 2, 2, generator=g, dtype=torch.float64)
    what = "penultimate_features(model, model.head, images)"
    out = attempt(fn, model, model.head, images, name="penultimate_features")
    if isinstance(out, (tuple, list)):
        fail(what, f"returned a {type(out).__name__}, expected the tensor itself",
             "a forward pre-hook `hook(module, inputs)` receives the layer's inputs as a tuple: keep inputs[0]")
    got = expect_tensor(out, what)
    if hook_count(model):
        fail(what, "left a hook on the model after it returned, so every later forward pass would still "
             "run it (and keep tensors alive)",
             "keep the handle that register_forward_pre_hook returns and call handle.remove(), best in a "
             "`finally:` block so that it also happens when the forward pass fails")
    if got.requires_grad:
        fail(what, "the features are still part of an autograd graph (requires_grad=True), which keeps "
             "every intermediate tensor of the forward pass in memory",
             "run the model under `with torch.no_grad():` (or record inputs[0].detach())")
    # Independent answer: the formula of the model, from its weights.
    flat = images.flatten(1)
    fc, skip = model.body[1], model.skip
    expected = torch.relu(flat @ fc.weight.T + fc.bias) - 0.5 * flat @ skip.weight.T
    if tuple(got.shape) == (5, model.head.out_features):
        fail(what, f"has shape {tuple(got.shape)}: those are the logits, the *output* of `last`; expected "
             f"its input, shape {tuple(expected.shape)}",
             "a forward pre-hook (register_forward_pre_hook) sees the input of a layer before it runs; a "
             "forward hook's `output` is what the layer returns")
    expect_close(got, expected.detach(), what, atol=1e-10, axes=["image", "feature"],
                 hint="record inputs[0] of `last` in a forward pre-hook while the model runs on the images")
    # A second layer of the same model: the input of body[1] is the flattened image.
    what = "penultimate_features(model, model.body[1], images)"
    got = expect_tensor(attempt(fn, model, model.body[1], images, name="penultimate_features"), what)
    expect_close(got, flat, what, atol=1e-12, axes=["image", "feature"],
                 hint="use the `last` you are given, not a layer you pick yourself")
    if hook_count(model):
        fail(what, "left a hook on the model after it returned", "call handle.remove() before you return")
    passed("the input of a chosen layer, recorded with a hook",
           "checked on a tiny model with a skip connection, for two layers, and no hook is left behind")


# --------------------------------------------------------------------------- 2. k-NN same-class fraction
def _knn_loop(x: np.ndarray, y: np.ndarray, k: int, *, with_self: bool = False, farthest: bool = False) -> Tensor:
    """Per point, the share of its k nearest (or farthest) other points with its label: a double loop."""
    n = len(x)
    out = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if with_self or j != i]
        dist = [(float(np.sqrt(((x[i] - x[j]) ** 2).sum())), j) for j in others]
        dist.sort(reverse=farthest)
        out[i] = sum(y[j] == y[i] for _, j in dist[:k]) / k
    return torch.from_numpy(out)


def _matches(got: Tensor, other: Tensor) -> bool:
    return tuple(got.shape) == tuple(other.shape) and torch.allclose(got.double(), other, atol=1e-9)


@exercise("02-knn-same-class", NOTEBOOK, "knn_same_class",
          "per point, the same-class fraction of its k nearest neighbours (itself excluded)", points=2)
def knn_same_class(fn: Callable) -> None:
    # By hand: points 0, 1, 2 (class 0) and 10, 11, 30 (class 1) on a line, k = 2. The point at 10 has
    # neighbours 11 and 2, the one at 11 has 10 and 2 (half their class); the rest are all of their class.
    line = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [30.0]], dtype=torch.float64)
    line_labels = torch.tensor([0, 0, 0, 1, 1, 1])
    g = torch.Generator().manual_seed(22)
    labels = torch.randint(0, 3, (24,), generator=g)
    centres = torch.randn(3, 4, generator=g, dtype=torch.float64) * 0.5
    feats = centres[labels] + torch.randn(24, 4, generator=g, dtype=torch.float64)
    cases = [(line, line_labels, 2, torch.tensor([1.0, 1.0, 1.0, 0.5, 0.5, 1.0], dtype=torch.float64),
              "6 points on a line, k=2"),
             (feats, labels, 4, _knn_loop(feats.numpy(), labels.numpy(), 4), "24 random points in 3 classes, k=4")]
    for x, y, k, expected, case in cases:
        what = f"knn_same_class(features, labels, k={k}) on {case}"
        got = expect_tensor(attempt(fn, x, y, k, name="knn_same_class"), what)
        if got.numel() == 1:
            fail(what, f"returned one number ({float(got):.4g}); expected one value per point, shape ({len(x)},)",
                 "do not average over the points: the notebook takes the mean itself (and also looks at "
                 "single classes)")
        if got.dim() == 2 and tuple(got.shape) == (len(x), k):
            fail(what, f"has shape {tuple(got.shape)}, one column per neighbour; expected one value per point, "
                 f"shape ({len(x)},)", "average the same-class indicator over the k neighbours (dim 1)")
        expect_shape(got, (len(x),), what)
        xs, ys = x.numpy(), y.numpy()
        with_self, farthest = _knn_loop(xs, ys, k, with_self=True), _knn_loop(xs, ys, k, farthest=True)
        if not _matches(expected, with_self) and _matches(got, with_self):
            fail(what, "each point is counted as its own neighbour (its distance to itself is 0, so it is "
                 "always the nearest)", "a point is not its own neighbour: set the diagonal of the distance "
                 "matrix to +inf before taking the k smallest")
        if not _matches(expected, farthest) and _matches(got, farthest):
            fail(what, "it matches the k *farthest* points, not the nearest",
                 "take the k smallest distances: d.topk(k, dim=1, largest=False) or d.argsort(dim=1)[:, :k]")
        expect_close(got.double(), expected, what, atol=1e-9, axes=["point"],
                     hint="per point i: the labels of the k points with the smallest Euclidean distance to "
                          "point i (i itself excluded), compared with labels[i], averaged over the k neighbours")
    passed("k-NN same-class fraction", "checked by hand on 6 points on a line and against a double loop on 24 "
           "random points")


# --------------------------------------------------------------------------- 3. t-SNE neighbour probabilities
def _probs_loop(x: np.ndarray, sigma: np.ndarray, *, square: bool = True, two: bool = True,
                sigma_of_row: bool = True, sigma_squared: bool = True) -> Tensor:
    """p_{j|i} by a loop over pairs with math.exp, each row shifted by its smallest exponent.

    The keyword arguments give the variants that the usual mistakes compute.
    """
    n = len(x)
    p = np.zeros((n, n))
    for i in range(n):
        expo = {}
        for j in range(n):
            if j == i:
                continue
            d = float(np.sqrt(((x[i] - x[j]) ** 2).sum()))
            s = float(sigma[i] if sigma_of_row else sigma[j])
            expo[j] = -(d ** 2 if square else d) / ((2 if two else 1) * (s ** 2 if sigma_squared else s))
        top = max(expo.values())
        weights = {j: math.exp(e - top) for j, e in expo.items()}
        total = sum(weights.values())
        for j, w in weights.items():
            p[i, j] = w / total
    return torch.from_numpy(p)


@exercise("02-neighbour-probabilities", NOTEBOOK, "neighbour_probabilities",
          "t-SNE's conditional neighbour probabilities p_{j|i} with a width per point", points=2)
def neighbour_probabilities(fn: Callable) -> None:
    g = torch.Generator().manual_seed(23)
    rand = torch.randn(7, 3, generator=g, dtype=torch.float64) * 1.5
    rand_sigma = 0.5 + 1.5 * torch.rand(7, generator=g, dtype=torch.float64)
    cases = [
        # By hand: points 0, 1 and 3 on a line; row 0 (σ = 1): weights e^{-1/2} and e^{-9/2}.
        (torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64), torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64),
         "3 points on a line"),
        (rand, rand_sigma, "7 random points with their own widths"),
        # Far apart points and σ = 1: exp(-d²/2σ²) is 0 in float64 for every pair.
        (torch.tensor([[0.0, 0.0], [100.0, 0.0], [0.0, 300.0], [400.0, 400.0]], dtype=torch.float64),
         torch.ones(4, dtype=torch.float64), "4 far-apart points with σ = 1"),
    ]
    by_hand = torch.tensor([math.exp(-0.5), math.exp(-4.5)], dtype=torch.float64)
    by_hand = by_hand / by_hand.sum()
    for x, sigma, case in cases:
        what = f"neighbour_probabilities(features, sigma) on {case}"
        n = len(x)
        got = expect_tensor(attempt(fn, x, sigma, name="neighbour_probabilities"), what)
        expect_shape(got, (n, n), what, "one row per point i and one column per neighbour j: P[i, j] = p_{j|i}")
        got = got.double()
        if not torch.isfinite(got).all():
            fail(what, "contains NaN or inf values: exp(-d²/2σ²) underflows to 0 for far-apart points, and 0/0 "
                 "is NaN", "use torch.softmax over each row (dim=1) with the diagonal set to -inf: it subtracts "
                 "the row's largest value before exp, so the nearest neighbour always gets weight e^0 = 1")
        if got.diagonal().abs().max() > 1e-9:
            i = int(got.diagonal().abs().argmax())
            fail(what, f"the diagonal is not 0 (P[{i}, {i}] = {got[i, i].item():.4g}): p_{{i|i}} must be 0, a point is "
                 "not its own neighbour", "set the diagonal of the exponent matrix to -inf before the softmax "
                 "(then exp gives 0 there)")
        rows, cols = got.sum(1), got.sum(0)
        ones = torch.ones(n, dtype=torch.float64)
        if not torch.allclose(rows, ones, atol=1e-8):
            if torch.allclose(cols, ones, atol=1e-8):
                fail(what, "each column sums to 1, not each row", "normalise over the neighbours j of each point "
                     "i: softmax over dim=1 (P[i, j] = p_{j|i}, row i is the distribution of point i)")
            fail(what, f"row 0 sums to {rows[0].item():.6g}; every row must sum to 1 (it is a probability "
                 "distribution over the other points)", "divide by the sum over j ≠ i, or use a softmax over dim=1")
        expected = _probs_loop(x.numpy(), sigma.numpy())
        variants = [
            (dict(sigma_of_row=False), "it uses the width σ_j of the neighbour; the Gaussian belongs to point i, so "
             "row i uses σ_i for every j", "divide row i by 2σ_i²: sigma[:, None], not sigma[None, :]"),
            (dict(square=False), "it uses the distance |x_i - x_j|, not its square",
             "the Gaussian is exp(-|x_i - x_j|² / 2σ_i²): square the distance"),
            (dict(two=False), "the factor 2 in 2σ_i² is missing", "the exponent is -d² / (2 σ_i²)"),
            (dict(sigma_squared=False), "σ_i is not squared", "the exponent is -d² / (2 σ_i²)"),
        ]
        for kwargs, problem, hint in variants:
            wrong = _probs_loop(x.numpy(), sigma.numpy(), **kwargs)
            if not torch.allclose(wrong, expected, atol=1e-9) and torch.allclose(got, wrong, atol=1e-9):
                fail(what, problem, hint)
        if n == 3 and not torch.allclose(got[0, 1:], by_hand, atol=1e-7):
            fail(what, f"row 0 (σ = 1, neighbours at distances 1 and 3) is {got[0, 1:].tolist()}; by hand it is "
                 f"e^(-1/2) and e^(-9/2) divided by their sum = {by_hand.tolist()}",
                 "the exponent is -|x_i - x_j|² / (2 σ_i²)")
        expect_close(got, expected, what, atol=1e-7, axes=["i", "j"],
                     hint="P[i, j] = softmax over j of -|x_i - x_j|² / (2 σ_i²), with P[i, i] = 0")
    passed("t-SNE's neighbour probabilities p_{j|i}", "checked by hand on 3 points, against a loop on 7 random "
           "points, and on far-apart points where exp alone underflows")
