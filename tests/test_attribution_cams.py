"""CAM family: identities and plain loops over the papers' formulas on a tiny model."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from _tiny_models import Blocked, tiny_images, tiny_net
from vislib import attribution as A
from vislib import hooks
from vislib.models import course_model, imagenet


def activations_and_gradients(model, x, classes):
    """A = the CAM layer's output, g = dS/dA, computed without hooks (``features``/``head``)."""
    with torch.no_grad():
        act = model.features(x)
    act.requires_grad_()
    scores = model.head(act).gather(1, classes[:, None]).sum()
    (g,) = torch.autograd.grad(scores, act)
    return act.detach(), g


def upsampled(cam, size):
    return F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def test_gradcam_matches_its_formula():
    model, x, classes = tiny_net(), tiny_images(3), torch.tensor([0, 2, 4])
    act, g = activations_and_gradients(model, x, classes)
    expected = upsampled(torch.relu((g.mean((2, 3))[:, :, None, None] * act).sum(1)), (12, 12))
    got = A.gradcam(model, x, classes)
    torch.testing.assert_close(got, expected)
    assert got.abs().sum() > 0


def test_cam_equals_gradcam_times_feature_map_size():
    model, x = tiny_net(), tiny_images(3)
    h, w = model.features(x).shape[-2:]
    for target in (None, 1, [0, 3, 4]):
        cam = A.cam(model, x, target)
        assert cam.abs().sum() > 0
        torch.testing.assert_close(cam, h * w * A.gradcam(model, x, target))
    # Without ReLU the map is the signed sum_k w_k A^k; its positive part is the ReLU'd CAM.
    signed = A.cam(model, x, 1, relu=False)
    act = model.features(x).detach()
    expected = upsampled(torch.einsum("k,bkhw->bhw", model.fc.weight[1].detach(), act), (12, 12))
    torch.testing.assert_close(signed, expected)


def test_cam_on_course_resnet_and_clear_error_on_vgg():
    torch.manual_seed(0)
    resnet = course_model("resnet").eval()
    x = torch.rand(2, 3, 32, 32)
    h = w = 32 // 8  # stem, layer2 and layer3 have stride 2
    torch.testing.assert_close(A.cam(resnet, x), h * w * A.gradcam(resnet, x), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="ends in 3 linear layers .like a VGG.*use gradcam"):
        A.cam(course_model("vgg"), x)          # VGG: three linear layers after the convolutions
    with pytest.raises(ValueError, match="reads 64 features, not the 32 channel means of 'net.layer2'"):
        A.cam(resnet, x, layer="net.layer2")   # a layer whose mean is not what fc reads
    same_width = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                               nn.Linear(4, 2))
    with pytest.raises(ValueError, match="input is not the spatial mean of '0'"):
        A.cam(same_width, x, layer="0")        # right width, but not the pooled layer
    with pytest.raises(ValueError, match="no nn.Linear"):
        A.cam(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()), x)


def test_guided_gradcam_is_guided_backprop_times_gradcam():
    model, x = tiny_net(), tiny_images(2)
    expected = A.guided_backprop(model, x, 3) * A.gradcam(model, x, 3)
    got = A.guided_gradcam(model, x, 3)
    torch.testing.assert_close(got, expected)
    assert got.abs().sum() > 0


def test_gradcam_pp_equals_a_loop_over_the_formula():
    model, x, classes = tiny_net(), tiny_images(2), torch.tensor([1, 4])
    act, g = activations_and_gradients(model, x, classes)
    b, k, h, w = act.shape
    expected = torch.zeros(b, h, w, dtype=x.dtype)
    for n in range(b):
        for c in range(k):
            total_a = act[n, c].sum()
            weight = 0.0
            for i in range(h):
                for j in range(w):
                    gij = g[n, c, i, j]
                    denominator = 2 * gij**2 + total_a * gij**3
                    alpha = gij**2 / denominator if gij != 0 and denominator != 0 else 0.0
                    weight += alpha * max(gij, 0)
            expected[n] += weight * act[n, c]
    expected = upsampled(expected.clamp(min=0), (12, 12))
    got = A.gradcam_pp(model, x, classes)
    torch.testing.assert_close(got, expected)
    assert got.abs().sum() > 0


# 8 channels at the CAM layer: 3 = chunks of 3 channels; 8 = one image per pass; 16 = two
# images per pass (3 images: 2 + 1); 24 and None = all images in one pass.
@pytest.mark.parametrize("batch_size", [3, 8, 16, 24, None])
def test_ablation_cam_equals_a_loop_over_the_formula(batch_size):
    model, x, classes = tiny_net(), tiny_images(3), torch.tensor([2, 0, 4])
    with torch.no_grad():
        act = model.features(x)
        scores = model.head(act).gather(1, classes[:, None]).squeeze(1)
        expected = torch.zeros(3, *act.shape[-2:], dtype=x.dtype)
        for n in range(3):
            for c in range(act.shape[1]):
                ablated = act[n:n + 1].clone()
                ablated[0, c] = 0
                y_c = model.head(ablated)[0, classes[n]]
                expected[n] += (scores[n] - y_c) / scores[n] * act[n, c]
    expected = upsampled(expected.clamp(min=0), (12, 12))
    got = A.ablation_cam(model, x, classes, batch_size=batch_size)
    torch.testing.assert_close(got, expected)
    assert got.abs().sum() > 0


@pytest.mark.parametrize("layer", ["net.layer3.0.downsample", "net.layer3.1.relu", "net.layer2.1.bn2"])
def test_ablation_cam_inside_residual_blocks(layer):
    """Inside torchvision BasicBlocks: the downsample branch cannot broadcast against a batch-1
    main path, the block's ReLU module runs twice (the last call is the layer's output), bn2 is
    followed by an in-place residual addition. Compare with zeroing each channel by a plain hook."""
    torch.manual_seed(0)
    model = course_model("resnet", width=6).double().eval()
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    name, module = hooks.get_layer(model, layer)
    with hooks.Recorder(model, [name]) as rec, torch.no_grad():
        logits = model(x)
        calls = len(rec.outputs[name])
        act = rec.output(name)
    cls = int(logits.argmax())
    y = logits[0, cls]
    weights = torch.zeros(act.shape[1], dtype=x.dtype)
    for c in range(act.shape[1]):
        seen = []

        def zero(mod, inp, out, c=c, seen=seen):
            seen.append(1)
            if len(seen) == calls:
                out = out.clone()
                out[:, c] = 0
                return out

        handle = module.register_forward_hook(zero)
        try:
            with torch.no_grad():
                weights[c] = (y - model(x)[0, cls]) / y
        finally:
            handle.remove()
    expected = upsampled(torch.relu(torch.einsum("k,bkhw->bhw", weights, act)), (16, 16))
    got = A.ablation_cam(model, x, cls, layer=layer, batch_size=10)
    torch.testing.assert_close(got, expected)
    assert got.abs().sum() > 0 and hooks.hook_count(model) == 0


@pytest.mark.parametrize("layer, passes", [("net.layer3.1.bn2", 1 + 1 + 3), ("net.layer3", 1 + 1)])
def test_ablation_cam_batch_equals_one_by_one_with_and_without_a_skip_around_the_layer(layer, passes):
    # Inside a block the residual path cannot join the copies of several images: one failed
    # joint pass, then image by image. After the last block nothing joins: one joint pass.
    torch.manual_seed(0)
    model = course_model("resnet", width=6).double().eval()
    x = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    calls = []
    handle = model.normalize.register_forward_hook(lambda *args: calls.append(1))
    batch = A.ablation_cam(model, x, layer=layer)            # 1 = the clean forward pass
    handle.remove()
    assert len(calls) == passes
    singles = torch.cat([A.ablation_cam(model, x[i:i + 1], layer=layer) for i in range(3)])
    torch.testing.assert_close(batch, singles)
    assert batch.abs().sum() > 0 and hooks.hook_count(model) == 0


def test_gradcam_backward_stops_at_its_layer():
    model = tiny_net()
    model.normalize = nn.Sequential(model.normalize, Blocked())   # before every layer
    x = tiny_images(2)
    with pytest.raises(RuntimeError, match="must not reach"):
        A.gradient(model, x)            # an input gradient has to pass the blocked part
    for method in (A.gradcam, A.gradcam_pp):
        assert method(model, x).abs().sum() > 0
    assert hooks.hook_count(model) == 0


def test_default_layers():
    torch.manual_seed(0)
    tv = imagenet("resnet18", pretrained=False)
    tv.vislib_input_size = 64          # default_layer's probe pass: small is enough
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(A.gradcam(tv, x, 1), A.gradcam(tv, x, 1, layer="net.layer4"))
    assert not torch.allclose(A.gradcam(tv, x, 1), A.gradcam(tv, x, 1, layer="net.layer3"))
    resnet = course_model("resnet").eval()
    torch.testing.assert_close(A.gradcam(resnet, x), A.gradcam(resnet, x, layer=resnet.net.layer3))
    with pytest.raises(ValueError, match="feature maps"):
        A.gradcam(resnet, x, layer="net.fc")


def test_channel_weight_functions_by_hand_and_inside_the_maps():
    # Grad-CAM: the mean gradient. Grad-CAM++ on hand-computed channels: sum A = 0 gives alpha = 1/2;
    # 2 g^2 + (sum A) g^3 = 0 (g = -1/2, sum A = 4) and g = 0 give alpha = 0, not NaN.
    A_ = torch.tensor([[[[1.0, -1.0]], [[3.0, 1.0]], [[2.0, 5.0]]]], dtype=torch.float64)   # [1, 3, 1, 2]
    g = torch.tensor([[[[0.4, 0.2]], [[-0.5, 2.0]], [[0.0, 1.0]]]], dtype=torch.float64)
    torch.testing.assert_close(A.gradcam_weights(g), torch.tensor([[0.3, 0.75, 0.5]], dtype=torch.float64))
    alpha_sum_a_4 = 2.0**2 / (2 * 2.0**2 + 4 * 2.0**3)                 # channel 1, position 1
    alpha_sum_a_7 = 1.0 / (2 + 7)                                         # channel 2, position 1
    expected = torch.tensor([[0.5 * 0.4 + 0.5 * 0.2, alpha_sum_a_4 * 2.0, alpha_sum_a_7 * 1.0]], dtype=torch.float64)
    got = A.gradcam_pp_weights(A_, g)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected)
    # The maps are weighted_map(A, weights) of the layer's A and dS/dA.
    model, x, classes = tiny_net(), tiny_images(2), torch.tensor([1, 3])
    act, grad = activations_and_gradients(model, x, classes)
    torch.testing.assert_close(A.gradcam(model, x, classes), A.weighted_map(act, A.gradcam_weights(grad), (12, 12)))
    torch.testing.assert_close(A.gradcam_pp(model, x, classes),
                               A.weighted_map(act, A.gradcam_pp_weights(act, grad), (12, 12)))
