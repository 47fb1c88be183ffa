"""Checks for the exercises of notebook 01 (weights and activations).

Each check runs the student's function on inputs of its own and compares the result with an
answer computed another way than the model solution: the colour share by projecting each filter
on the constant filter, the templates by the scores they must reproduce, the inactive fraction
by a loop over images.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from .feedback import attempt, expect_close, expect_tensor, fail, passed
from .registry import exercise

NOTEBOOK = "01_weights_activations"


@exercise("01-colour-share", NOTEBOOK, "colour_share", "share of a filter's squared norm in its spatial mean",
          points=2)
def colour_share(fn: Callable) -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(6, 3, 3, 3, generator=g, dtype=torch.float64)
    w[0] = torch.tensor([0.2, -0.5, 0.9], dtype=torch.float64)[:, None, None]    # constant: all colour
    w[1] -= w[1].mean(dim=(1, 2), keepdim=True)                                  # zero mean: no colour
    # Independent answer: project every channel's 9 weights on the constant vector (1, ..., 1) / 3.
    flat = w.reshape(6, 3, 9)
    ones = torch.full((9,), 1 / 3, dtype=torch.float64)
    projection = (flat @ ones)[..., None] * ones                                 # [6, 3, 9]
    expected = projection.pow(2).sum(dim=(1, 2)) / flat.pow(2).sum(dim=(1, 2))
    what = "colour_share(w)"
    got = expect_tensor(attempt(fn, w), what)
    if got.shape == (6,) and abs(float(got[0]) - 1) > 1e-6:
        fail(what, f"a filter that is the same at all 9 positions should have a colour share of 1, yours gives "
             f"{float(got[0]):.4g}", "the colour part is the spatial mean repeated at every position: "
             "its squared norm is k·k times the squared mean, per input channel")
    expect_close(got, expected, what, atol=1e-6, axes=["filter"],
                 hint="per filter: k·k · Σ_c mean_c² / Σ w²; take the mean over the two spatial axes only "
                      "(one mean per input channel), not over the colour channels too")
    passed("colour share of each filter", "checked on 6 random filters, a constant one and a zero-mean one")


@exercise("01-pixel-templates", NOTEBOOK, "pixel_templates",
          "a linear classifier on normalised pixels as templates and biases in pixel space", points=2)
def pixel_templates(fn: Callable) -> None:
    g = torch.Generator().manual_seed(2)
    k, h, w = 4, 5, 6
    weight = torch.randn(k, 3 * h * w, generator=g, dtype=torch.float64)
    bias = torch.randn(k, generator=g, dtype=torch.float64)
    mean = torch.tensor([0.45, 0.40, 0.35], dtype=torch.float64)
    std = torch.tensor([0.25, 0.20, 0.30], dtype=torch.float64)
    what = "pixel_templates(weight, bias, mean, std, height, width)"
    out = attempt(fn, weight, bias, mean, std, h, w)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        fail(what, f"should return a pair (templates, biases), got {type(out).__name__}")
    templates, biases = (expect_tensor(t, what) for t in out)
    # Independent answer: the scores the model computes on normalised pixels, for random images.
    x = torch.rand(7, 3, h, w, generator=g, dtype=torch.float64)
    z = (x - mean[:, None, None]) / std[:, None, None]
    scores = z.flatten(1) @ weight.T + bias
    expect_close(templates, (weight.reshape(k, 3, h, w) / std[:, None, None]), "templates", atol=1e-8,
                 axes=["class", "colour", "row", "column"],
                 hint="reshape each row of the weight to [3, height, width] (channels first, as the images are "
                      "flattened) and divide channel c by std[c]")
    black = ((torch.zeros(3, h, w, dtype=torch.float64) - mean[:, None, None]) / std[:, None, None]).flatten()
    expect_close(biases, weight @ black + bias, "biases (the scores of a black image)", atol=1e-8, axes=["class"],
                 hint="b'_k = b_k - Σ_{c,i,j} W[k, c, i, j] · mean_c / std_c: the part of the score that does not "
                      "depend on the image")
    pixel_scores = torch.einsum("kchw,nchw->nk", templates.double(), x) + biases.double()
    expect_close(pixel_scores, scores, "the scores <templates, x> + biases", atol=1e-8, axes=["image", "class"])
    passed("pixel-space templates and biases", "they reproduce the classifier's scores on 7 random images")


@exercise("01-inactive-fraction", NOTEBOOK, "inactive_fraction",
          "per channel, the fraction of images on which a ReLU channel is all zeros", points=2)
def inactive_fraction(fn: Callable) -> None:
    g = torch.Generator().manual_seed(3)
    acts = torch.randn(10, 5, 4, 4, generator=g).relu()
    acts[:, 0] = 0                                   # dead on every image
    acts[:6, 1] = 0                                  # inactive on 6 of 10 images
    acts[:, 2, 0, 0] = 1.0                           # active at one position on every image: never inactive
    acts[3, 3] = 0
    acts[3, 3, 2, 1] = 0.5                           # a single active position is enough to be active
    # Independent answer: a loop over channels and images.
    expected = torch.tensor([sum(float(acts[n, c].max() <= 0) for n in range(10)) / 10 for c in range(5)])
    what = "inactive_fraction(acts)"
    got = expect_tensor(attempt(fn, acts), what)
    if got.shape == (10,):
        fail(what, "returned one value per image; the answer has one value per channel",
             "reduce over the images (dim 0) after deciding, per image and channel, whether all positions are 0")
    expect_close(got.double(), expected.double(), what, atol=1e-9, axes=["channel"],
                 hint="a channel is inactive on an image when it is <= 0 at *every* position ((a <= 0).all over "
                      "the positions); then average that over the images. The fraction of zero values is "
                      "something else")
    passed("fraction of images on which each channel is all zeros", "checked on 10 images x 5 channels, with a "
           "dead, a selective and an always-active channel")
