"""vislib.robustness: FGSM and PGD against answers known by hand on a linear model, the ball and
the image range, the grid search for the smallest radius, the corruptions' identity at severity 0
and monotone distortion, clear errors, and models left as they were."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from vislib import data, hooks, robustness as rb
from _tiny_models import TinyNet


def _linear(seed: int = 0, k: int = 4, size: int = 4) -> nn.Module:
    """``S = W flatten(x) + b`` in float64: ``dS_k/dx = W[k]``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, k)).double().eval()


def _images(n: int = 3, size: int = 4, seed: int = 1) -> torch.Tensor:
    # values away from 0 and 1 so a small step is not clamped
    return 0.25 + 0.5 * torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _state(model):
    return ([p.detach().clone() for p in model.parameters()], [p.requires_grad for p in model.parameters()],
            [m.training for m in model.modules()], hooks.hook_count(model))


def _same_state(model, state):
    params, flags, training, n_hooks = state
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), params))
    assert [p.requires_grad for p in model.parameters()] == flags
    assert [m.training for m in model.modules()] == training
    assert hooks.hook_count(model) == n_hooks


def test_targeted_fgsm_margin_step_is_the_sign_of_the_weight_difference():
    model = _linear()
    x = _images()
    W = model[1].weight.detach()
    with torch.no_grad():
        logits = model(x)
    t = torch.tensor([0, 1, 2])
    # the strongest other class of each image, by hand
    others = logits.clone()
    others[torch.arange(3), t] = -float("inf")
    c = others.argmax(1)
    expected = (x + 0.01 * torch.sign(W[t] - W[c]).view(3, 3, 4, 4)).clamp(0, 1)
    got = rb.fgsm(model, x, 0.01, t, loss="margin")
    assert torch.allclose(got, expected, atol=1e-12)


def test_fgsm_cross_entropy_step_matches_the_softmax_gradient_by_hand():
    model = _linear(seed=3)
    x = _images(seed=4)
    W = model[1].weight.detach()
    with torch.no_grad():
        p = model(x).softmax(1)
    t = torch.tensor([3, 0, 1])
    grad_ce = p @ W - W[t]                         # d(-log p_t)/dx = sum_k p_k w_k - w_t
    targeted = (x - 0.02 * grad_ce.sign().view_as(x)).clamp(0, 1)
    assert torch.allclose(rb.fgsm(model, x, 0.02, t), targeted, atol=1e-12)
    y = torch.tensor([1, 2, 3])                    # untargeted: away from y, the other sign
    away = (x + 0.02 * (p @ W - W[y]).sign().view_as(x)).clamp(0, 1)
    assert torch.allclose(rb.fgsm(model, x, 0.02, labels=y), away, atol=1e-12)


def test_fgsm_clamps_to_the_image_range_and_takes_one_eps_per_image():
    model = _linear()
    x = torch.rand(3, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    eps = torch.tensor([0.0, 0.1, 2.0], dtype=torch.float64)
    out = rb.fgsm(model, x, eps, 1)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out[0], x[0])
    assert torch.allclose((out[1] - x[1]).abs().max(), torch.tensor(0.1, dtype=torch.float64))
    assert set(out[2].unique().tolist()) <= {0.0, 1.0}      # a huge step lands on the range's ends


def test_pgd_stays_in_the_ball_and_the_range_and_beats_fgsm_on_the_margin():
    torch.manual_seed(0)
    model = TinyNet().double().eval()
    x = torch.rand(4, 3, 12, 12, dtype=torch.float64)
    t = torch.tensor([0, 1, 2, 3])
    eps = 0.03
    for random_start in (False, True):
        adv = rb.pgd(model, x, eps, t, steps=8, random_start=random_start)
        assert (adv - x).abs().max() <= eps + 1e-12
        assert adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        margin = lambda z: rb.attack_loss(model(z), t, "margin")
        assert (margin(rb.pgd(model, x, eps, t, steps=10, loss="margin")) <= margin(x)).all()
        assert margin(rb.pgd(model, x, eps, t, steps=10, loss="margin")).sum() < margin(
            rb.fgsm(model, x, eps, t, loss="margin")).sum()


def test_project_linf_by_hand():
    x = torch.tensor([0.5, 0.02, 0.98, 0.5]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    adv = torch.tensor([0.7, -0.5, 0.99, 0.45]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    out = rb.project_linf(adv, x, 0.1)
    assert torch.allclose(out[0, 0].flatten(), torch.tensor([0.6, 0.0, 0.99, 0.45]))


def test_minimal_epsilon_finds_the_smallest_radius_on_the_grid():
    model = _linear(seed=5)
    x = _images(n=4, seed=6)
    t = torch.tensor([0, 1, 2, 3])
    grid = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]
    res = rb.minimal_epsilon(model, x, t, grid, method="fgsm")
    with torch.no_grad():
        for i in range(4):
            ok = [e for e in grid if model(rb.fgsm(model, x[i:i + 1], e, int(t[i]))).argmax(1).item() == t[i]]
            assert res.eps[i].item() == (ok[0] if ok else float("inf"))
            if ok:
                assert res.predicted[i] == t[i]
                assert res.linf[i].item() == pytest.approx(ok[0], abs=1e-9)       # nothing clamped here
                assert res.l2[i].item() == pytest.approx((res.adversarial[i] - x[i]).norm().item())
            else:
                assert torch.isnan(res.linf[i]) and torch.equal(res.adversarial[i], x[i])
    assert res.success_rate == res.success.float().mean().item() > 0
    pgd_res = rb.minimal_epsilon(model, x, t, grid, method="pgd", steps=5)
    assert ((pgd_res.adversarial - x).abs().flatten(1).amax(1) <= pgd_res.eps.clamp(max=1) + 1e-12).all()


def test_attacks_leave_the_model_as_they_found_it():
    model = TinyNet().double().train()
    model.conv1.weight.requires_grad_(False)
    state = _state(model)
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64)
    rb.fgsm(model, x, 0.01, 1)
    rb.pgd(model, x, 0.01, 1, steps=2)
    rb.minimal_epsilon(model, x, 1, [0.01, 0.1], method="pgd", steps=2)
    _same_state(model, state)
    assert model.training


def test_attacks_give_clear_errors():
    model = _linear()
    x = _images()
    with pytest.raises(ValueError, match="eps must be finite and >= 0"):
        rb.fgsm(model, x, -0.1, 0)
    with pytest.raises(ValueError, match="one per image"):
        rb.fgsm(model, x, torch.tensor([0.1, 0.2]), 0)
    with pytest.raises(ValueError, match="valid: \\['ce', 'margin'\\]"):
        rb.pgd(model, x, 0.1, 0, loss="hinge")
    with pytest.raises(ValueError, match="not both"):
        rb.fgsm(model, x, 0.1, 0, labels=1)
    with pytest.raises(ValueError, match="positive finite"):
        rb.minimal_epsilon(model, x, 0, [0.0, 0.1])
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        rb.pgd(model, x, 0.1, 0, steps=0)


# --------------------------------------------------------------------------- corruptions
@pytest.fixture(scope="module")
def course_images():
    return data.make_shapes(6, size=32, seed=3).images


@pytest.mark.parametrize("name", list(rb.CORRUPTIONS))
def test_severity_zero_is_the_identity_and_distortion_grows_with_severity(name, course_images):
    x = course_images
    assert torch.equal(rb.corrupt(x, name, 0), x)
    mse = [((rb.corrupt(x, name, s) - x) ** 2).mean().item() for s in range(6)]
    assert mse[0] == 0 and all(a < b for a, b in zip(mse, mse[1:])), mse
    for s in range(1, 6):
        out = rb.corrupt(x, name, s)
        assert out.shape == x.shape and out.dtype == x.dtype and out.min() >= 0 and out.max() <= 1


def test_corruptions_by_hand():
    x = torch.tensor([0.2, 0.6]).repeat_interleave(2).view(1, 1, 2, 2).expand(1, 3, 2, 2).contiguous()
    m = 0.4
    c = rb.SEVERITIES["contrast"][2]
    assert torch.allclose(rb.contrast(x, 3), (x - m) * c + m)
    flat = torch.full((2, 3, 8, 8), 0.3)
    assert torch.allclose(rb.gaussian_blur(flat, 5), flat)              # a blur keeps a constant image
    noisy = rb.gaussian_noise(flat, 5, seed=1)
    assert torch.equal(noisy, rb.gaussian_noise(flat, 5, seed=1)) and not torch.equal(noisy, rb.gaussian_noise(flat, 5, seed=2))
    sigma = rb.SEVERITIES["gaussian_noise"][4]
    assert (noisy - flat).std().item() == pytest.approx(sigma, rel=0.15)
    impulse = torch.zeros(1, 3, 9, 9)
    impulse[..., 4, 4] = 1.0
    b = rb.blur(impulse, 1.0)
    assert b.sum().item() == pytest.approx(3.0, rel=1e-5)             # the kernel sums to 1
    assert b[0, 0, 4, 5].item() / b[0, 0, 4, 4].item() == pytest.approx(torch.exp(torch.tensor(-0.5)).item(), rel=1e-5)


def test_jpeg_uses_opencv_and_keeps_colours():
    import cv2
    import numpy as np

    x = data.make_shapes(1, size=32, seed=0).images
    arr = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", arr[:, :, ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), 7])
    expected = torch.from_numpy(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy()).permute(2, 0, 1) / 255
    assert torch.allclose(rb.jpeg(x, 5)[0], expected)
    assert (rb.jpeg(x, 1) - x).abs().mean(dim=(0, 2, 3)).max() < 0.1     # no channel swap (BGR/RGB)


def test_corruptions_give_clear_errors(course_images):
    with pytest.raises(ValueError, match="valid: \\['gaussian_noise'"):
        rb.corrupt(course_images, "fog", 1)
    with pytest.raises(ValueError, match="integer 0..5"):
        rb.corrupt(course_images, "contrast", 6)
    with pytest.raises(ValueError, match="3 colour channels"):
        rb.corrupt(course_images[:, :1], "contrast", 1)
