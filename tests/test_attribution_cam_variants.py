"""Score-CAM, XGrad-CAM, LayerCAM, HiResCAM, EigenCAM: plain formulas and the papers' identities
on a tiny GAP network (float64), computed without hooks through ``features`` / ``head``."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from _tiny_models import tiny_images, tiny_net
from vislib import attribution as A
from vislib import hooks


def activations_and_gradients(model, x, classes):
    with torch.no_grad():
        act = model.features(x)
    act.requires_grad_()
    (g,) = torch.autograd.grad(model.head(act).gather(1, classes[:, None]).sum(), act)
    return act.detach(), g


def up(cam, size=(12, 12), align_corners=False):
    return F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=align_corners)[:, 0]


def case():
    model, x, classes = tiny_net(), tiny_images(3), torch.tensor([0, 2, 4])
    act, g = activations_and_gradients(model, x, classes)
    return model, x, classes, act, g


def test_xgradcam_layercam_hirescam_match_their_formulas():
    model, x, classes, act, g = case()
    w_x = (act * g).sum((2, 3)) / (act.sum((2, 3)) + 1e-7)
    torch.testing.assert_close(A.xgradcam(model, x, classes), up(torch.relu(torch.einsum("bk,bkhw->bhw", w_x, act))))
    torch.testing.assert_close(A.layercam(model, x, classes), up(torch.relu((torch.relu(g) * act).sum(1))))
    torch.testing.assert_close(A.hirescam(model, x, classes), up(torch.relu((g * act).sum(1))))


def test_hirescam_is_gradcam_when_the_gradient_is_constant_over_space():
    # GAP + linear head read at the pooled layer: dS/dA^k_ij = W[c, k] / (h w) everywhere.
    model, x, classes, act, g = case()
    assert torch.allclose(g, g[:, :, :1, :1].expand_as(g))
    h, w = act.shape[-2:]
    hires = A.hirescam(model, x, classes)
    torch.testing.assert_close(hires, A.gradcam(model, x, classes))
    torch.testing.assert_close(h * w * hires, A.cam(model, x, classes))
    # where the gradient varies over space (an earlier layer) the two differ
    assert not torch.allclose(A.hirescam(model, x, classes, layer="conv2"),
                              A.gradcam(model, x, classes, layer="conv2"))


def test_layercam_on_the_last_layer_of_a_gap_net_is_cam_with_positive_class_weights():
    # Jiang et al. 2021, sec. III: at the last layer the gradient of a GAP net is W[c, k] / (h w),
    # so LayerCAM = ReLU(sum_k ReLU(W[c, k]) A^k) / (h w): CAM with the negative class weights
    # dropped, and exactly CAM (/ h w) when all the class weights are positive.
    model, x, classes, act, _ = case()
    h, w = act.shape[-2:]
    positive = torch.relu(model.fc.weight.detach()[classes])
    expected = up(torch.relu(torch.einsum("bk,bkhw->bhw", positive, act))) / (h * w)
    torch.testing.assert_close(A.layercam(model, x, classes), expected)
    with torch.no_grad():
        model.fc.weight.abs_()
    torch.testing.assert_close(h * w * A.layercam(model, x, classes), A.cam(model, x, classes))


def test_eigencam_is_the_first_principal_component_with_a_fixed_sign():
    model, x, classes, act, _ = case()
    projections = []
    for b in range(3):                          # numpy's SVD, as pytorch-grad-cam computes it
        points = act[b].reshape(act.shape[1], -1).T.numpy()
        points = points - points.mean(axis=0)
        v = np.linalg.svd(points)[2][0]
        v = v if v.sum() >= 0 else -v
        projections.append(torch.from_numpy(points @ v).view(*act.shape[-2:]))
    p = torch.stack(projections)
    assert p.abs().sum() > 0 and p.sum((1, 2)).abs().max() < 1e-12   # centred: sums to zero
    torch.testing.assert_close(A.eigencam(model, x, classes, relu=False, layer="relu2"), up(p))
    torch.testing.assert_close(A.eigencam(model, x, classes), up(p.clamp(min=0)))
    # class-agnostic
    torch.testing.assert_close(A.eigencam(model, x, 1), A.eigencam(model, x, 3))


def score_cam_by_hand(model, x, classes, act, weights, align_corners=False):
    masks = up(act.flatten(0, 1), x.shape[-2:], align_corners).view(*act.shape[:2], *x.shape[-2:])
    lo, hi = masks.amin((2, 3), keepdim=True), masks.amax((2, 3), keepdim=True)
    masks = torch.where(hi > lo, (masks - lo) / (hi - lo).clamp_min(1e-300), torch.zeros_like(masks))
    with torch.no_grad():
        black = model(torch.zeros_like(x[:1]))[0, classes]
        s = torch.stack([torch.stack([model(x[b:b + 1] * masks[b, k])[0, classes[b]]
                                      for k in range(act.shape[1])]) for b in range(len(x))])
    w = s - black[:, None] if weights == "increase" else s.softmax(1)
    return up(torch.relu(torch.einsum("bk,bkhw->bhw", w, act)))


@pytest.mark.parametrize("weights", A.cam_variants.SCORE_CAM_WEIGHTS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_score_cam_equals_a_loop_over_the_formula(weights, align_corners):
    model, x, classes, act, _ = case()
    expected = score_cam_by_hand(model, x, classes, act, weights, align_corners)
    for batch_size in (3, 64):                   # chunks that cross images, and one pass
        got = A.score_cam(model, x, classes, weights=weights, align_corners=align_corners, batch_size=batch_size)
        torch.testing.assert_close(got, expected)
    assert got.abs().sum() > 0 and hooks.hook_count(model) == 0


def test_score_cam_skips_the_forward_pass_of_a_constant_channel():
    model, x, classes, act, _ = case()
    dead = (act.flatten(2).amax(2) == act.flatten(2).amin(2))          # [B, K] constant channels
    calls = []
    handle = model.normalize.register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    try:
        A.score_cam(model, x, classes, batch_size=1000)
    finally:
        handle.remove()
    # the clean pass (3 images), the black image (1), then one masked image per live channel
    assert calls[:2] == [3, 1] and sum(calls[2:]) == int((~dead).sum())
    with pytest.raises(ValueError, match="weights must be one of"):
        A.score_cam(model, x, weights="logit")
