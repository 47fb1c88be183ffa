"""Gradient maps: finite differences, a hand-computed guided backprop, one neuron's gradient."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from _tiny_models import Exploding, GuidedToy, tiny_images, tiny_net
from vislib import attribution as A
from vislib import hooks
from vislib.models import imagenet


def finite_difference_gradient(model, images, classes, h=1e-6):
    """Central differences of each image's class logit with respect to every input value."""
    grad = torch.zeros_like(images)
    n = images[0].numel()
    steps = (torch.eye(n, dtype=images.dtype) * h).view(n, *images.shape[1:])
    with torch.no_grad():
        for b in range(len(images)):
            up = model(images[b] + steps)[:, classes[b]]
            down = model(images[b] - steps)[:, classes[b]]
            grad[b] = ((up - down) / (2 * h)).view(images.shape[1:])
    return grad


def test_gradient_equals_central_finite_differences():
    model = tiny_net()
    x = tiny_images(2, size=6)
    classes = torch.tensor([1, 3])
    fd = finite_difference_gradient(model, x, classes)
    torch.testing.assert_close(A.gradient(model, x, classes), fd.abs().amax(dim=1), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(A.input_x_gradient(model, x, classes), (fd * x).sum(dim=1), rtol=1e-6, atol=1e-8)


def test_gradient_is_not_trivially_zero_and_depends_on_target():
    model = tiny_net()
    x = tiny_images(1)
    a, b = A.gradient(model, x, 0), A.gradient(model, x, 1)
    assert a.abs().sum() > 0 and not torch.allclose(a, b)


# --------------------------------------------------------------------------- guided backprop
# GuidedToy on the 1x1 image x = (1, 0.5, 0.25):
#   h1 = fc1 x = (1, 0.5, -0.25) -> ReLU (1, 0.5, 0)       unit 3 inactive
#   h2 = fc2 r1 = (0.5, 1.5)     -> ReLU (0.5, 1.5)        both active
#   S  = fc3 r2 = (-1, 2.5)
# Target 0: dS/dr2 = (1, -1). Guided: keep positive -> (1, 0); dS/dr1 = fc2^T (1, 0) = (1, -1, 1);
#   positive and active -> (1, 0, 0); dS/dx = fc1^T (1, 0, 0) = (1, 0, 0).
#   Vanilla: fc2^T (1, -1) = (0, -2, 0), active -> (0, -2, 0), dS/dx = (0, -2, 0).
# Target 1: dS/dr2 = (2, 1), both positive; fc2^T (2, 1) = (3, -1, 3); guided -> (3, 0, 0),
#   dS/dx = (3, 0, 0). Vanilla: (3, -1, 0) -> dS/dx = (3, -1, 0).
TOY_X = torch.tensor([1.0, 0.5, 0.25]).view(1, 3, 1, 1)


@pytest.mark.parametrize("target, guided, vanilla", [
    (0, [1.0, 0.0, 0.0], [0.0, -2.0, 0.0]),
    (1, [3.0, 0.0, 0.0], [3.0, -1.0, 0.0]),
])
def test_guided_backprop_hand_computed(target, guided, vanilla):
    model = GuidedToy().eval()
    full = A.neuron_gradient(model, TOY_X, "fc3", target, guided=True)
    assert full.flatten().tolist() == guided
    plain = A.neuron_gradient(model, TOY_X, "fc3", target)
    assert plain.flatten().tolist() == vanilla
    assert A.guided_backprop(model, TOY_X, target).flatten().tolist() == [max(abs(v) for v in guided)]
    assert A.gradient(model, TOY_X, target).flatten().tolist() == [max(abs(v) for v in vanilla)]


# Deconvnet on the same toy: every ReLU sends back clamp(g, 0), whatever its input was.
# Target 0: dS/dr2 = (1, -1) -> (1, 0); fc2^T (1, 0) = (1, -1, 1) -> (1, 0, 1) (unit 3 was
#   inactive, deconvnet passes it anyway); dS/dx = fc1^T (1, 0, 1) = (1, 0, -1).
# Target 1: dS/dr2 = (2, 1); fc2^T (2, 1) = (3, -1, 3) -> (3, 0, 3); dS/dx = (3, 0, -3).
@pytest.mark.parametrize("target, expected", [(0, [1.0, 0.0, -1.0]), (1, [3.0, 0.0, -3.0])])
def test_deconvnet_hand_computed_with_an_in_place_relu_used_twice(target, expected):
    model = GuidedToy().eval()
    x = TOY_X.clone().requires_grad_()
    with A.deconvnet_relus(model):
        logits = model(x)
        assert hooks.hook_count(model) == 2                  # a pre-hook and a hook on the one ReLU
    (g,) = torch.autograd.grad(logits[0, target], x)
    assert g.flatten().tolist() == expected
    assert logits[0].tolist() == [-1.0, 2.5]                  # the forward pass is the model's
    assert A.deconvnet(model, TOY_X, target).flatten().tolist() == [max(abs(v) for v in expected)]
    assert hooks.hook_count(model) == 0 and model.relu.inplace


def test_deconvnet_matches_a_module_swap_implementation_and_leaves_no_hook_on_error():
    import copy

    class DeconvReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, g):
            return g.clamp(min=0)

    class DeconvModule(nn.Module):
        def forward(self, x):
            return DeconvReLU.apply(x)

    model, x = tiny_net(), tiny_images(2)
    swapped = copy.deepcopy(model)
    swapped.relu, swapped.relu2 = DeconvModule(), DeconvModule()
    xr = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(swapped(xr)[:, 2].sum(), xr)
    torch.testing.assert_close(A.deconvnet(model, x, 2), g.abs().amax(1))
    assert not torch.allclose(A.deconvnet(model, x, 2), A.guided_backprop(model, x, 2))
    with pytest.raises(RuntimeError, match="boom"):
        A.deconvnet(Exploding(model), x, 2)
    assert hooks.hook_count(model) == 0


def _module_ids(model):
    return [(name, id(m), type(m)) for name, m in model.named_modules()]


def test_guided_backprop_on_torchvision_resnet_restores_modules():
    torch.manual_seed(0)
    model = imagenet("resnet18", pretrained=False)
    before = _module_ids(model)
    relu = model.net.layer1[0].relu
    assert relu.inplace
    x = torch.rand(2, 3, 32, 32)
    guided = A.guided_backprop(model, x, 3)
    plain = A.gradient(model, x, 3)
    assert guided.shape == (2, 32, 32) and torch.isfinite(guided).all() and guided.abs().sum() > 0
    assert not torch.allclose(guided, plain)
    assert _module_ids(model) == before and model.net.layer1[0].relu is relu and relu.inplace
    assert hooks.hook_count(model) == 0
    # Guided backprop on a network without ReLU modules is the plain gradient.
    no_relu = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Tanh(), nn.Flatten(), nn.LazyLinear(3))
    no_relu(x)
    torch.testing.assert_close(A.guided_backprop(no_relu, x, 1), A.gradient(no_relu, x, 1))


def test_guided_backprop_matches_a_module_swap_implementation():
    """Independent check on the tiny net: swap every ReLU for a guided one on a copy."""
    import copy

    class GuidedReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x > 0) * (g > 0)

    class GuidedModule(nn.Module):
        def forward(self, x):
            return GuidedReLU.apply(x)

    model = tiny_net()
    x = tiny_images(2)
    swapped = copy.deepcopy(model)
    swapped.relu, swapped.relu2 = GuidedModule(), GuidedModule()
    xr = x.clone().requires_grad_()
    logits = swapped(xr)
    (g,) = torch.autograd.grad(logits[:, 2].sum(), xr)
    torch.testing.assert_close(A.guided_backprop(model, x, 2), g.abs().amax(1))


# --------------------------------------------------------------------------- neuron gradient
def test_neuron_gradient_matches_direct_autograd():
    model = tiny_net()
    x = tiny_images(2)
    xr = x.clone().requires_grad_()
    feats = model.features(xr)
    (g_pos,) = torch.autograd.grad(feats[:, 5, 2, 3].sum(), xr)
    (g_mean,) = torch.autograd.grad(model.features(xr)[:, 5].mean(dim=(1, 2)).sum(), xr)
    torch.testing.assert_close(A.neuron_gradient(model, x, "relu2", 5, (2, 3)), g_pos)
    torch.testing.assert_close(A.neuron_gradient(model, x, model.relu2, 5), g_mean)
    with pytest.raises(ValueError, match="out of range"):
        A.neuron_gradient(model, x, "relu2", 99)
    with pytest.raises(ValueError, match="outside"):
        A.neuron_gradient(model, x, "relu2", 0, (40, 0))
    with pytest.raises(ValueError, match="valid layer names"):
        A.neuron_gradient(model, x, "nope", 0)
    assert hooks.hook_count(model) == 0


# --------------------------------------------------------------------------- ReLU backward rules
def test_relu_backward_rules_on_five_numbers_and_against_autograd():
    h = torch.tensor([1.0, -1.0, 5.0, -3.0, 2.0, 0.0])
    g = torch.tensor([-2.0, 3.0, -1.0, 4.0, 3.0, 1.0])
    # By hand (Springenberg et al. 2015, Table 1); at h = 0 the unit is inactive.
    assert (A.relu_backward(h, g, "backprop") + 0.0).tolist() == [-2.0, 0.0, -1.0, 0.0, 3.0, 0.0]
    assert (A.relu_backward(h, g, "deconvnet") + 0.0).tolist() == [0.0, 3.0, 0.0, 4.0, 3.0, 1.0]
    assert (A.relu_backward(h, g, "guided") + 0.0).tolist() == [0.0, 0.0, 0.0, 0.0, 3.0, 0.0]
    # "backprop" is the true gradient of the ReLU.
    gen = torch.Generator().manual_seed(0)
    h2 = torch.randn(4, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    g2 = torch.randn(4, 7, generator=gen, dtype=torch.float64)
    (true,) = torch.autograd.grad(torch.relu(h2), h2, g2)
    assert torch.equal(A.relu_backward(h2.detach(), g2, "backprop"), true)
    out = A.relu_backward(h2.detach(), g2, "deconvnet")
    assert out.data_ptr() != g2.data_ptr()           # a new tensor: g is never returned itself
    with pytest.raises(ValueError, match="rule"):
        A.relu_backward(h, g, "zeiler")
