"""FullGrad: the completeness identity, its failures, and the maps against the reference definition."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from _tiny_models import ShuffledNet, randomize_batchnorm, tiny_images, tiny_net
from vislib import attribution as A
from vislib import hooks
from vislib.models import Normalize, course_model, imagenet


def relative_gap(dec):
    return ((dec.total() - dec.scores).abs() / dec.scores.abs().clamp(min=1)).max().item()


def prepared(model, seed=0):
    return randomize_batchnorm(model, seed).double().eval()


@pytest.mark.parametrize("build, size", [
    (lambda: course_model("vgg"), 32),
    (lambda: course_model("resnet"), 32),
    (lambda: imagenet("resnet18", pretrained=False), 64),
    (lambda: imagenet("vgg16_bn", pretrained=False), 32),
], ids=["course-vgg", "course-resnet", "resnet18", "vgg16_bn"])
def test_completeness_in_float64(build, size):
    torch.manual_seed(0)
    model = prepared(build())
    x = torch.rand(2, 3, size, size, dtype=torch.float64)
    dec = A.fullgrad_decomposition(model, x, target=[1, 2])
    assert relative_gap(dec) <= 1e-8
    # The identity is not trivial: the bias terms carry a clear part of the score ...
    bias_sum = dec.total() - dec.input_term.flatten(1).sum(1)
    assert (bias_sum.abs() > 1e-3 * dec.scores.abs()).all()
    # ... including the input normalisation's, and the scores are the logits.
    assert "normalize" in dec.bias_terms and dec.bias_terms["normalize"].abs().sum() > 0
    torch.testing.assert_close(dec.scores, model(x)[:, [1, 2]].diagonal().detach())


def test_completeness_fails_where_it_must():
    torch.manual_seed(0)
    model, x = tiny_net(), tiny_images(2)
    assert relative_gap(A.fullgrad_decomposition(model, x)) <= 1e-8
    # train mode: BatchNorm uses batch statistics (running statistics are left as they were)
    state = copy.deepcopy(model.state_dict())
    model.train()
    assert relative_gap(A.fullgrad_decomposition(model, x, eval_mode=False)) > 1e-3
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert all(m.training for m in model.modules())
    # ... and its bias terms use the running statistics as they were before the pass (which
    # updated them until they were restored): b = beta - gamma * mu / sqrt(var + eps), read first
    dec = A.fullgrad_decomposition(model, x, eval_mode=False)
    bn = model.bn1
    b = bn.bias - bn.weight * state["bn1.running_mean"] / torch.sqrt(state["bn1.running_var"] + bn.eps)
    torch.testing.assert_close(dec.bias_terms["bn1"], (dec.bias_gradients["bn1"] * b.view(1, -1, 1, 1)).detach())
    model.eval()
    # a BatchNorm's effective bias left out
    dec = A.fullgrad_decomposition(model, x)
    left_out = dec.total(exclude=("bn1",))
    assert ((left_out - dec.scores).abs() > 1e-3).all()
    # a smooth activation has implicit biases that are not counted
    silu = tiny_net(act=nn.SiLU)
    assert relative_gap(A.fullgrad_decomposition(silu, x)) > 1e-3
    # gradient x input alone misses exactly the bias sum
    gap = dec.scores - dec.input_term.flatten(1).sum(1)
    torch.testing.assert_close(gap, sum(t.flatten(1).sum(1) for t in dec.bias_terms.values()))


def test_bias_terms_are_keyed_by_module_not_order():
    torch.manual_seed(0)
    model = ShuffledNet().double().eval()
    x = tiny_images(2)
    dec = A.fullgrad_decomposition(model, x, 1)
    assert relative_gap(dec) <= 1e-8
    assert set(dec.bias_terms) == {"normalize", "shared[0]", "shared[1]", "bn_a", "conv_b", "bn_b", "fc"}
    # Independent computation: unroll the forward by hand and differentiate each layer's output.
    xr = x.clone().requires_grad_()
    z_norm = model.normalize(xr)
    z_s0 = model.shared(z_norm)
    z_s1 = model.shared(torch.relu(z_s0))
    z_bna = model.bn_a(z_s1)
    z_cb = model.conv_b(torch.relu(z_bna))
    z_bnb = model.bn_b(z_cb)
    z_fc = model.fc(torch.relu(z_bnb).mean(dim=(2, 3)))
    zs = [z_norm, z_s0, z_s1, z_bna, z_cb, z_bnb, z_fc]
    grads = torch.autograd.grad(z_fc[:, 1].sum(), zs)
    bn_a = model.bn_a
    biases = {
        "normalize": -model.normalize.mean / model.normalize.std,
        "shared[0]": model.shared.bias.view(1, -1, 1, 1),
        "shared[1]": model.shared.bias.view(1, -1, 1, 1),
        "bn_a": (-bn_a.running_mean / torch.sqrt(bn_a.running_var + bn_a.eps)).view(1, -1, 1, 1),
        "conv_b": model.conv_b.bias.view(1, -1, 1, 1),
        "bn_b": (model.bn_b.bias - model.bn_b.weight * model.bn_b.running_mean
                 / torch.sqrt(model.bn_b.running_var + model.bn_b.eps)).view(1, -1, 1, 1),
        "fc": model.fc.bias.view(1, -1),
    }
    for key, g in zip(biases, grads):
        torch.testing.assert_close(dec.bias_terms[key], (g * biases[key]).detach(), msg=key)
        torch.testing.assert_close(dec.bias_gradients[key], g.detach(), msg=key)
    assert dec.bias_terms["shared[0]"].abs().sum() > 0 and dec.bias_terms["bn_a"].abs().sum() > 0


# --------------------------------------------------------------------------- maps
def reference_fullgrad(model, x, cls, simple=False):
    """A direct implementation of the reference definition (idiap/fullgrad-saliency)."""
    model = copy.deepcopy(model)
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    outputs, biases = [], []

    def keep(module, inputs, output):
        if isinstance(module, Normalize):
            bias = -module.mean.flatten() / module.std.flatten()
        elif isinstance(module, nn.BatchNorm2d):
            gamma = module.weight if module.affine else 1.0
            beta = module.bias if module.affine else 0.0
            bias = beta - gamma * module.running_mean / torch.sqrt(module.running_var + module.eps)
        elif module.bias is not None:
            bias = module.bias
        else:
            return
        outputs.append(output)
        biases.append(bias)

    for m in model.modules():
        if isinstance(m, (Normalize, nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
            m.register_forward_hook(keep)
    xr = x.clone().requires_grad_()
    out = model(xr)
    grads = torch.autograd.grad(out[torch.arange(len(x)), cls].sum(), [xr] + outputs)

    def psi(t):
        t = t.abs()
        t = t - t.flatten(1).min(1).values[:, None, None, None]
        t = t / (t.flatten(1).max(1).values[:, None, None, None] + 1e-6)
        return F.interpolate(t, size=x.shape[-2:], mode="bilinear", align_corners=True).sum(1)

    saliency = psi(grads[0] * x)
    for g, b in zip(grads[1:], biases):
        if g.dim() == 4:
            saliency = saliency + psi(g if simple else g * b.view(1, -1, 1, 1))
    return saliency.detach()


@pytest.mark.parametrize("simple", [False, True])
def test_fullgrad_maps_equal_the_reference_definition(simple):
    model, x, cls = tiny_net(), tiny_images(3), torch.tensor([0, 1, 2])
    method = A.simple_fullgrad if simple else A.fullgrad
    got = method(model, x, cls)
    torch.testing.assert_close(got, reference_fullgrad(model, x, cls, simple))
    # the number of drawn terms: input + normalize + conv1 + bn1 + bn2 + conv3 + bn3 = 7 maps,
    # each of which reaches its maximum 1 somewhere (so the map exceeds any single term)
    assert got.amax(dim=(1, 2)).min() > 1.0
    assert hooks.hook_count(model) == 0


def test_fullgrad_on_course_resnet_matches_reference():
    torch.manual_seed(0)
    model = prepared(course_model("resnet"))
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    cls = torch.tensor([3, 5])
    torch.testing.assert_close(A.fullgrad(model, x, cls), reference_fullgrad(model, x, cls))


def test_batchnorm_without_affine_and_without_running_stats():
    bn = nn.BatchNorm2d(3, affine=False)
    bn.running_mean.fill_(0.5)
    bn.running_var.fill_(3.0)
    torch.testing.assert_close(A.layer_bias(bn), torch.full((3,), -0.5 / (3.0 + bn.eps) ** 0.5))
    with pytest.raises(ValueError, match="running statistics"):
        A.layer_bias(nn.BatchNorm2d(3, track_running_stats=False))
    assert A.layer_bias(nn.Conv2d(3, 3, 1, bias=False)) is None
