"""Hooks: recorded outputs are the layer's own, gradients are right, nothing is left behind."""
import pytest
import torch
from torch import nn

from vislib import hooks
from vislib.models import course_model, imagenet


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 3, padding=1),
                         nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))


def test_recorded_output_survives_an_inplace_relu():
    net = _net()
    x = torch.randn(2, 3, 8, 8)
    with hooks.Recorder(net, ["0"]) as rec:
        net(x)
        recorded = rec.output("0")
    expected = net[0](x)
    assert torch.allclose(recorded, expected)
    assert (recorded < 0).any(), "pre-ReLU values must survive the in-place ReLU"


def test_gradient_at_a_layer_equals_the_gradient_of_the_rest_of_the_network():
    net = _net().double()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    with hooks.Recorder(net, ["0"]) as rec:
        out = net(x)
        grad = torch.autograd.grad(out[:, 1].sum(), rec.output("0"))[0]
    # Independent computation: feed the conv output as a leaf into the rest of the network.
    a = net[0](x).detach().requires_grad_(True)
    rest = net[1:](a.clone())
    expected = torch.autograd.grad(rest[:, 1].sum(), a)[0]
    assert torch.allclose(grad, expected, atol=1e-12)


def test_reused_module_records_every_call():
    net = imagenet("resnet18", pretrained=False)
    with hooks.Recorder(net, ["net.layer1.0.relu"], detach=True) as rec:
        net(torch.rand(1, 3, 32, 32))
    assert len(rec.outputs["net.layer1.0.relu"]) == 2  # torchvision's BasicBlock calls its ReLU twice


def test_hooks_removed_after_success_and_after_an_exception():
    net = _net()
    before = hooks.hook_count(net)
    with hooks.Recorder(net, ["0", "2", "6"]):
        assert hooks.hook_count(net) == before + 3
        net(torch.rand(1, 3, 8, 8))
    assert hooks.hook_count(net) == before
    with pytest.raises(RuntimeError, match="boom"):
        with hooks.Recorder(net, ["0", "2"]):
            net(torch.rand(1, 3, 8, 8))
            raise RuntimeError("boom")
    assert hooks.hook_count(net) == before


def test_recording_leaves_the_model_unchanged():
    net = _net()
    net.train()
    net[2].weight.requires_grad_(False)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    modules = list(net.modules())
    with hooks.frozen(net):
        with hooks.Recorder(net, ["0", "3"]) as rec:
            out = net(torch.rand(2, 3, 8, 8, requires_grad=True))
            torch.autograd.grad(out.sum(), rec.output("0"))
        assert not net.training
    assert net.training and all(m.training for m in net.modules())
    assert net[0].weight.requires_grad and not net[2].weight.requires_grad
    assert list(net.modules()) == modules
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def test_preserve_state_restores_after_an_exception():
    net = _net()
    net.train()
    with pytest.raises(ValueError):
        with hooks.frozen(net):
            raise ValueError
    assert net.training and all(p.requires_grad for p in net.parameters())


def test_unknown_layer_name_lists_the_valid_names():
    net = _net()
    with pytest.raises(hooks.LayerNotFoundError) as err:
        hooks.get_layer(net, "features.99")
    message = str(err.value)
    assert "'features.99'" in message and "'0'" in message and "'6'" in message
    with pytest.raises(hooks.LayerNotFoundError, match="not part of the model"):
        hooks.get_layer(net, nn.Conv2d(1, 1, 1))
    assert hooks.get_layer(net, net[2]) == ("2", net[2])


def test_default_layer_is_the_last_spatial_layer():
    assert hooks.default_layer(imagenet("resnet18", pretrained=False)) == "net.layer4"
    assert hooks.default_layer(imagenet("vgg16", pretrained=False)) == "net.features.29"
    vgg = course_model("vgg")
    assert hooks.default_layer(vgg) == "net.features.19"
    assert isinstance(hooks.get_layer(vgg, "net.features.19")[1], nn.ReLU)
    assert hooks.default_layer(course_model("resnet")) == "net.layer3"
