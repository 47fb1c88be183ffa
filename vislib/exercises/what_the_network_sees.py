"""Checks for the exercises of notebook 11 (what the network wants to see, and how easily it is fooled).

The FGSM check compares the student's step with its closed form on a bias-free linear model
``S = W x`` (the gradient of the cross-entropy of class t is ``Σ_k p_k w_k - w_t``, computed from
the softmax by hand) and with :func:`vislib.robustness.fgsm` on a small conv net; the projection
check compares with the clip written out element by element. Typical mistakes are recognised
first: the gradient's sign flipped (the untargeted direction), the step away from the predicted
class, a missing clamp to [0, 1], the raw gradient instead of its sign, the target's logit
instead of the loss.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .. import robustness
from .feedback import attempt, expect_close, expect_tensor, fail, passed, recognise
from .registry import exercise

NOTEBOOK = "11_what_the_network_sees"


def _linear_model() -> nn.Module:
    torch.manual_seed(111)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5, bias=False)).double().eval()


def _conv_model() -> nn.Module:
    torch.manual_seed(112)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 5)).double().eval()


def _images(seed: int, size: int = 4) -> Tensor:
    return torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --------------------------------------------------------------------------- Exercise 1: the FGSM step
@exercise("11-fgsm-step", NOTEBOOK, "fgsm_targeted",
          "one targeted FGSM step: x - eps * sign(grad of the target's cross-entropy), clamped to [0, 1]", points=2)
def fgsm_targeted(fn: Callable) -> None:
    what = "fgsm_targeted(model, x, target, eps)"
    hint = ("loss = F.cross_entropy(model(x), target); g = dloss/dx on a copy of x that requires grad; "
            "return (x - eps * g.sign()).clamp(0, 1): a *targeted* attack walks *down* the target's loss")
    model, x, eps = _linear_model(), _images(11), 0.1
    with torch.no_grad():
        logits = model(x)
    predicted = logits.argmax(1)
    target = (predicted + 1) % 5                                   # never the predicted class
    W = model[1].weight.detach()
    p = logits.softmax(1)

    def step(direction: Tensor, sign: float = -1.0, clamp: bool = True) -> Tensor:
        out = x + sign * eps * direction.view_as(x)
        return out.clamp(0, 1) if clamp else out

    grad_t = p @ W - W[target]                                      # d CE(x, t) / dx, by hand
    grad_pred = p @ W - W[predicted]
    expected = step(grad_t.sign())
    got = expect_tensor(attempt(fn, model, x, target, eps), what).detach()
    if got.shape != x.shape:
        fail(what, f"has shape {tuple(got.shape)}, expected the images' shape {tuple(x.shape)}", hint)
    recognise(got, [
        (step(grad_t.sign(), +1.0), "you stepped *up* the target's loss (x + eps·sign(g)): that is the untargeted "
         "direction, which pushes the image *away* from the target class. A targeted step subtracts: "
         "x - eps·sign(g)"),
        (step(grad_pred.sign(), +1.0), "you took the loss of the *predicted* class and stepped away from it "
         "(an untargeted attack); the exercise asks for a step *toward* `target`: the loss of `target`, "
         "and x - eps·sign(g)"),
        (step(grad_t.sign(), clamp=False), "the step is right but some pixels leave [0, 1]: clamp the result to "
         "the image range with .clamp(0, 1)"),
        (step(grad_t), "you stepped by the gradient itself; FGSM steps by its *sign*, so that every pixel moves by "
         "exactly eps (the largest step in the L∞ ball of radius eps)"),
        (step(grad_t / grad_t.abs().amax(dim=1, keepdim=True)), "you scaled the gradient instead of taking its "
         "sign: use g.sign()"),
        (step(-W[target].sign()), "you raised the target's logit S_t alone (its gradient is w_t); the exercise "
         "asks for the cross-entropy loss of the target, which also pushes the other classes' logits down"),
    ], what, hint, expected=expected)
    expect_close(got, expected, what + " on a linear model S = W x (its CE gradient is Σ_k p_k w_k - w_t)",
                 atol=1e-9, hint=hint, axes=["image", "colour", "row", "column"])
    conv, xc = _conv_model(), _images(12, size=8)
    tc = torch.tensor([0, 1, 2, 3])
    expect_close(expect_tensor(attempt(fn, conv, xc, tc, 0.05), what), robustness.fgsm(conv, xc, 0.05, tc),
                 what + " on a small conv net", atol=1e-9, hint=hint, axes=["image", "colour", "row", "column"])
    passed("targeted FGSM step", "checked against its closed form on a linear model and against "
           "vislib.robustness.fgsm on a conv net")


# --------------------------------------------------------------------------- Exercise 2: the PGD projection
@exercise("11-project-linf", NOTEBOOK, "project_linf",
          "PGD's projection: back into the L∞ ball of radius eps around x, and into [0, 1]", points=1)
def project_linf(fn: Callable) -> None:
    what = "project_linf(x_adv, x, eps)"
    hint = ("clip the *perturbation* x_adv - x to [-eps, eps] (or x_adv to [x - eps, x + eps]), add it back, "
            "then clamp to [0, 1]: torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp(0, 1)")
    g = torch.Generator().manual_seed(13)
    x = torch.rand(3, 3, 5, 5, generator=g, dtype=torch.float64)
    x_adv = x + 0.3 * torch.randn(3, 3, 5, 5, generator=g, dtype=torch.float64)
    eps = 0.1
    expected = torch.empty_like(x)
    for i, (a, c) in enumerate(zip(x_adv.flatten().tolist(), x.flatten().tolist())):    # element by element
        expected.view(-1)[i] = min(1.0, max(0.0, min(c + eps, max(c - eps, a))))
    got = expect_tensor(attempt(fn, x_adv, x, eps), what).detach()
    ball = torch.minimum(torch.maximum(x_adv, x - eps), x + eps)
    recognise(got, [
        (ball, "the result is in the ball but some pixels leave [0, 1]: clamp to the image range as well"),
        (x_adv.clamp(0, 1), "you clamped to [0, 1] only: the perturbation x_adv - x must also stay within ±eps"),
        (x_adv.clamp(-eps, eps), "you clamped the *image* to [-eps, eps]; it is the *perturbation* x_adv - x "
         "that must stay within ±eps"),
        ((x_adv - x).clamp(-eps, eps), "you returned the clipped perturbation; return the image x + perturbation"),
        ((x_adv - x).clamp(-eps, eps).clamp(0, 1), "you returned the clipped perturbation; return the image "
         "x + perturbation, clamped to [0, 1]"),
    ], what, hint, expected=expected)
    expect_close(got, expected, what, atol=1e-12, hint=hint, axes=["image", "colour", "row", "column"])
    passed("L∞ projection", "checked element by element on 225 values, some outside the ball and outside [0, 1]")
