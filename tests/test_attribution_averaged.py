"""SmoothGrad and integrated gradients against plain loops over their formulas (tiny models, float64)."""
from __future__ import annotations

import pytest
import torch

from _tiny_models import LinearNet, tiny_images, tiny_net
from vislib import attribution as A
from vislib import hooks


def input_gradient(model, x, classes):
    """dS/dx of each image's class score, by plain autograd (no vislib)."""
    x = x.detach().clone().requires_grad_()
    (g,) = torch.autograd.grad(model(x).gather(1, classes[:, None]).sum(), x)
    return g


# --------------------------------------------------------------------------- SmoothGrad
@pytest.mark.parametrize("kind, stat", [("gradient", lambda g: g), ("abs", torch.abs), ("square", torch.square)])
def test_smoothgrad_is_the_plain_average_over_the_given_noisy_copies(kind, stat):
    model, x, classes = tiny_net(), tiny_images(3), torch.tensor([1, 4, 0])
    noise = 0.1 * torch.randn(3, 5, 3, 12, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = torch.stack([
        sum(stat(input_gradient(model, x[b:b + 1] + noise[b, i][None], classes[b:b + 1]))[0] for i in range(5)) / 5
        for b in range(3)]).abs().amax(dim=1)
    for batch_size in (1, 4, 64):       # chunks of copies that cross images, and one pass
        got = A.smoothgrad(model, x, classes, noise=noise, kind=kind, batch_size=batch_size)
        torch.testing.assert_close(got, expected)
    assert got.abs().sum() > 0
    # one noise tensor [n, 3, H, W] for every image
    shared = A.smoothgrad(model, x, classes, noise=noise[0], kind=kind)
    torch.testing.assert_close(shared[:1], A.smoothgrad(model, x[:1], classes[:1], noise=noise[:1], kind=kind))


def test_smoothgrad_noise_is_seeded_scaled_to_the_range_and_zero_noise_is_the_gradient():
    model, x = tiny_net(), tiny_images(2)
    torch.testing.assert_close(A.smoothgrad(model, x, n=3, sigma=0.0), A.gradient(model, x))
    a = A.smoothgrad(model, x, n=6, seed=1)
    torch.testing.assert_close(a, A.smoothgrad(model, x, n=6, seed=1))
    assert not torch.allclose(a, A.smoothgrad(model, x, n=6, seed=2))
    # a linear model's gradient does not depend on the noise: SmoothGrad is its gradient
    lin = LinearNet(12).double()
    torch.testing.assert_close(A.smoothgrad(lin, x, 0, n=4, sigma=0.5), A.gradient(lin, x, 0))


def test_smoothgrad_bad_options():
    model, x = tiny_net(), tiny_images(1)
    with pytest.raises(ValueError, match="kind must be one of"):
        A.smoothgrad(model, x, kind="mean")
    with pytest.raises(ValueError, match="sigma"):
        A.smoothgrad(model, x, sigma=-0.1)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        A.smoothgrad(model, x, n=0)
    with pytest.raises(ValueError, match=r"noise must be \[B, n, 3, H, W\]"):
        A.smoothgrad(model, x, noise=torch.zeros(1, 2, 3, 5, 5, dtype=torch.float64))
    assert hooks.hook_count(model) == 0


# --------------------------------------------------------------------------- integrated gradients
def ig_by_hand(model, x, classes, x0, alphas, weights):
    total = torch.zeros_like(x)
    for a, w in zip(alphas.tolist(), weights.tolist()):
        total += w * input_gradient(model, x0 + a * (x - x0), classes)
    return ((x - x0) * total).sum(dim=1)


@pytest.mark.parametrize("rule", A.averaged.IG_RULES)
def test_integrated_gradients_is_the_quadrature_of_its_formula(rule):
    model, x, classes = tiny_net(), tiny_images(3), torch.tensor([1, 4, 0])
    alphas, weights = A.quadrature(rule, 7)
    expected = ig_by_hand(model, x, classes, torch.zeros_like(x), alphas, weights)
    for batch_size in (5, 64):          # chunks of steps that cross images, and one pass
        got = A.integrated_gradients(model, x, classes, steps=7, rule=rule, batch_size=batch_size)
        torch.testing.assert_close(got, expected)
    assert got.abs().sum() > 0


def test_quadrature_rules():
    f = lambda t: 3 * t**2                      # noqa: E731 (integral 1 on [0, 1])
    for rule in A.averaged.IG_RULES:
        a, w = A.quadrature(rule, 4)
        assert a.min() >= 0 and a.max() <= 1 and abs(w.sum().item() - 1) < 1e-12, rule
    a, w = A.quadrature("gauss_legendre", 2)                      # exact up to degree 3
    assert abs((w * f(a)).sum().item() - 1) < 1e-12
    a, w = A.quadrature("left", 4)
    torch.testing.assert_close(a, torch.tensor([0, 0.25, 0.5, 0.75], dtype=torch.float64))
    a, w = A.quadrature("trapezoid", 3)
    torch.testing.assert_close(w, torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64))
    nodes, weights = A.quadrature((torch.tensor([0.5]), [1.0]), 99)           # a custom rule
    assert nodes.tolist() == [0.5] and weights.dtype == torch.float64
    with pytest.raises(ValueError, match="custom rule"):
        A.quadrature(([0.5, 2.0], [0.5, 0.5]), 2)
    with pytest.raises(ValueError, match="rule must be one of"):
        A.quadrature("simpson", 4)
    with pytest.raises(ValueError, match="steps must be an int >= 2"):
        A.quadrature("trapezoid", 1)


@pytest.mark.parametrize("baseline", ["black", "mean", "blur", 0.3, torch.tensor([0.2, 0.5, 0.1])])
def test_completeness_gap_falls_as_steps_grow(baseline):
    model, x = tiny_net(), tiny_images(2)
    gaps = []
    for steps in (2, 8, 64):
        maps, gap = A.integrated_gradients(model, x, baseline=baseline, steps=steps, rule="middle", return_gap=True)
        assert maps.shape == (2, 12, 12) and gap.shape == (2,)
        gaps.append(gap.abs().max().item())
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.1 * gaps[0]
    # the gap is what it says: sum of the map minus the score difference
    x0 = A.core.fill_images(model, x, baseline, 12 / 8, name="baseline").expand_as(x)
    with torch.no_grad():
        logits, logits0 = model(x), model(x0)
    c = logits.argmax(1)
    maps, gap = A.integrated_gradients(model, x, baseline=baseline, steps=8, rule="middle", return_gap=True)
    diff = logits.gather(1, c[:, None])[:, 0] - logits0.gather(1, c[:, None])[:, 0]
    torch.testing.assert_close(gap, maps.flatten(1).sum(1) - diff)


def test_integrated_gradients_on_a_linear_model_is_exact_for_every_rule():
    model, x = LinearNet(12).double(), tiny_images(2)
    expected = ((x - 0.3) * model.fc.weight[2].view(3, 12, 12)).sum(1)
    for rule in A.averaged.IG_RULES:
        maps, gap = A.integrated_gradients(model, x, 2, baseline=0.3, steps=3, rule=rule, return_gap=True)
        torch.testing.assert_close(maps, expected)
        assert gap.abs().max() < 1e-10


def test_integrated_gradients_bad_options():
    model, x = tiny_net(), tiny_images(1)
    with pytest.raises(ValueError, match="unknown baseline 'white'"):
        A.integrated_gradients(model, x, baseline="white")
    with pytest.raises(ValueError, match="baseline tensor of shape"):
        A.integrated_gradients(model, x, baseline=torch.zeros(2, 3, 5, 5))
    with pytest.raises(ValueError, match="batch_size"):
        A.integrated_gradients(model, x, batch_size=0)
    assert hooks.hook_count(model) == 0
