"""The public core (vislib.attribution.core) and the plumbing with one home each: device/dtype,
the probe forward pass, the progress bar."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from _tiny_models import Exploding, tiny_images, tiny_net
from vislib import checks, hooks, progress
from vislib.activations import penultimate_layer
from vislib.attribution import core


def test_layer_pass_records_activations_and_gradients_and_leaves_no_hook():
    model, x, classes = tiny_net(), tiny_images(3), torch.tensor([1, 0, 4])
    p = core.layer_pass(model, x, classes)
    with torch.no_grad():
        act = model.features(x)
    a = act.clone().requires_grad_()
    (g,) = torch.autograd.grad(model.head(a).gather(1, classes[:, None]).sum(), a)
    assert p.name == "relu2" and p.calls == 1
    torch.testing.assert_close(p.activations, act)
    torch.testing.assert_close(p.gradients, g)
    torch.testing.assert_close(p.scores, model(x).gather(1, classes[:, None])[:, 0].detach())
    assert torch.equal(p.classes, classes) and not p.activations.requires_grad
    q = core.layer_pass(model, x, None, "conv2", gradients=False)
    assert q.gradients is None and q.activations.shape == (3, 4, 12, 12)
    assert torch.equal(q.classes, model(x).argmax(1))
    assert core.layer_pass(model, x, layer="relu").calls == 2           # a ReLU module used twice
    with pytest.raises(ValueError, match="feature maps"):
        core.layer_pass(model, x, layer="fc")
    with pytest.raises(RuntimeError, match="boom"):
        core.layer_pass(Exploding(model, at=1), x)
    assert hooks.hook_count(model) == 0


def test_weighted_map_per_channel_and_per_position():
    a = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    w = torch.randn(2, 3, dtype=torch.float64)
    per_channel = core.weighted_map(a, w, (8, 8), relu=False)
    per_position = core.weighted_map(a, w[:, :, None, None].expand_as(a), (8, 8), relu=False)
    torch.testing.assert_close(per_channel, per_position)
    assert per_channel.shape == (2, 8, 8) and per_channel.min() < 0
    torch.testing.assert_close(core.weighted_map(a, w, (4, 4)), torch.einsum("bk,bkhw->bhw", w, a).clamp(min=0))
    with pytest.raises(ValueError, match="weights must be"):
        core.weighted_map(a, torch.ones(2, 3, 2, 2), (8, 8))


def test_score_variants_of_inputs_equals_a_loop_and_skips_what_is_not_selected():
    model, x = tiny_net(), tiny_images(3)
    classes = torch.tensor([2, 0, 1])
    shifts = torch.linspace(-0.3, 0.3, 5, dtype=x.dtype)

    def make(b, v):
        return x[b] + shifts[v].view(-1, 1, 1, 1)

    with torch.no_grad():
        expected = torch.stack([torch.stack([model(x[b:b + 1] + s)[0, classes[b]] for s in shifts]) for b in range(3)])
    for batch_size in (1, 4, 100):
        torch.testing.assert_close(core.score_variants(model, x, classes, 5, make, batch_size=batch_size), expected)
    select = torch.rand(3, 5, generator=torch.Generator().manual_seed(0)) > 0.5
    got = core.score_variants(model, x, classes, 5, make, select=select, batch_size=2)
    torch.testing.assert_close(got[select], expected[select])
    assert torch.isnan(got[~select]).all()
    with pytest.raises(ValueError, match="select must be"):
        core.score_variants(model, x, classes, 5, make, select=select[:2])
    assert hooks.hook_count(model) == 0 and not model.training


def test_score_variants_replacing_a_layer_output_runs_only_the_layers_after_it():
    model, x = tiny_net(), tiny_images(3)
    classes = torch.tensor([2, 0, 1])
    p = core.layer_pass(model, x, classes, gradients=False)
    scale = torch.tensor([0.0, 0.5, 2.0], dtype=x.dtype)

    def make(b, v):
        return p.activations[b] * scale[v].view(-1, 1, 1, 1)

    with torch.no_grad():
        expected = torch.stack([model.head(p.activations[b:b + 1] * s)[0, classes[b]] for b in range(3) for s in scale])
    convs = []
    handle = model.conv1.register_forward_hook(lambda m, i, o: convs.append(o.shape[0]))
    try:
        got = core.score_variants(model, x, classes, 3, make, layer="relu2", batch_size=6)
    finally:
        handle.remove()
    torch.testing.assert_close(got.flatten(), expected)
    assert convs == [2, 1]          # the layers before relu2 see the images, not the variants


def test_accumulate_gradients_equals_a_loop():
    model, x = tiny_net(), tiny_images(2)
    classes = torch.tensor([3, 1])
    shifts = torch.tensor([0.0, 0.2, -0.1], dtype=x.dtype)
    weights = torch.tensor([0.5, 1.0, 2.0], dtype=x.dtype)
    expected = torch.zeros_like(x)
    for b in range(2):
        for s, w in zip(shifts, weights):
            xi = (x[b:b + 1] + s).requires_grad_()
            (g,) = torch.autograd.grad(model(xi)[0, classes[b]], xi)
            expected[b] += w * g[0].abs()
    for batch_size in (1, 4, 64):
        got = core.accumulate_gradients(model, x, classes, 3, lambda b, v: x[b] + shifts[v].view(-1, 1, 1, 1),
                                        weights=weights, transform=torch.abs, batch_size=batch_size)
        torch.testing.assert_close(got, expected)
    assert hooks.hook_count(model) == 0 and all(p.grad is None for p in model.parameters())


def test_fills_and_seeded_generators():
    model, x = tiny_net(), tiny_images(2)
    assert core.fill_images(model, x, "black", 1.0).abs().sum() == 0
    torch.testing.assert_close(core.fill_images(model, x, "mean", 1.0).flatten(), model.normalize.mean.flatten())
    with pytest.raises(ValueError, match="unknown baseline 'grey'"):
        core.fill_images(model, x, "grey", 1.0, name="baseline")
    a = torch.randn(4, generator=core.image_generator(x[0], 3))
    assert torch.equal(a, torch.randn(4, generator=core.image_generator(x[0].float(), 3)))
    assert not torch.equal(a, torch.randn(4, generator=core.image_generator(x[1], 3)))


def test_one_home_for_device_dtype_probe_pass_and_progress_bar():
    model = tiny_net(dtype=torch.float32)
    assert checks.model_device(model).type == "cpu" and checks.model_dtype(model) == torch.float32
    assert checks.model_dtype(tiny_net()) == torch.float64
    assert checks.model_dtype(nn.ReLU()) == torch.float32
    calls = hooks.trial_forward(model, size=16)
    names = [c.name for c in calls]
    assert names[0] == "normalize" and names[-1] == "fc" and names.count("relu") == 2
    assert calls[-1].output.shape == (1, 5) and calls[0].inputs[0].shape == (1, 3, 16, 16)
    assert hooks.hook_count(model) == 0 and not model.training
    assert hooks.default_layer(nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))) == "1"
    seq = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    assert penultimate_layer(seq) == "2" and hooks.hook_count(seq) == 0
    assert progress.progress_bar(range(3), progress=None).disable
    assert not progress.progress_bar(range(progress.LONG_LOOP), progress=None, leave=False).disable
    assert progress.progress_bar(total=100, progress=False).disable


class _ValueBranch(nn.Module):
    """Control flow on a tensor's value: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.bn(self.conv(x))
        return (y if y.sum() > 0 else -y).mean(dim=(2, 3))


def test_inference_copy_folds_batch_norm_keeps_the_logits_and_leaves_the_model_alone():
    model, x = tiny_net(), tiny_images(4)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        expected = model.eval()(x)
    model.train()
    net = core.inference_copy(model)
    kinds = {type(m) for m in net.modules()}
    assert nn.BatchNorm2d not in kinds and nn.Conv2d in kinds      # every conv + BN pair folded
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    with torch.no_grad():
        torch.testing.assert_close(net(x), expected)              # float64: equal to rounding
        torch.testing.assert_close(net(x.contiguous(memory_format=torch.channels_last)), expected)
    assert model.training and all(p.requires_grad for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k

    branchy = _ValueBranch().double().eval()
    copied = core.inference_copy(branchy)                          # untraceable: copied, not folded
    assert copied is not branchy and any(isinstance(m, nn.BatchNorm2d) for m in copied.modules())
    with torch.no_grad():
        torch.testing.assert_close(copied(x), branchy(x))


def test_score_variants_through_the_inference_copy_equals_the_plain_model():
    model, x = tiny_net(), tiny_images(3)
    classes = torch.tensor([2, 0, 1])
    shifts = torch.linspace(-0.3, 0.3, 8, dtype=x.dtype)

    def make(b, v):
        return x[b] + shifts[v].view(-1, 1, 1, 1)

    plain = core.score_variants(model, x, classes, 8, make, batch_size=2, fast_from=10**9)
    fast = core.score_variants(model, x, classes, 8, make, batch_size=2, fast_from=1)
    torch.testing.assert_close(fast, plain)
    assert hooks.hook_count(model) == 0 and not model.training
