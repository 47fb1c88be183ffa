"""vislib.synthesis: gradient ascent raises the class score, the regularisers do what they say,
the mask statistics are right by hand, and the model is left as it was."""
from __future__ import annotations

import pytest
import torch

from vislib import hooks, synthesis as syn
from _tiny_models import TinyNet


def test_gradient_ascent_increases_each_class_score_and_stays_in_range():
    torch.manual_seed(0)
    model = TinyNet().double().eval()
    # plain gradient ascent (no jitter, blur or decay): every step raises the score
    res = syn.class_visualisation(model, [0, 1, 2, 3, 4], size=16, steps=15, lr=0.005, decay=0.0, jitter=0,
                                  blur_every=0, progress=False)
    assert res.images.shape == (5, 3, 16, 16)
    assert res.images.min() >= 0 and res.images.max() <= 1
    assert (res.score_end > res.score_start).all(), (res.score_start, res.score_end)
    with torch.no_grad():
        again = model(res.images)[torch.arange(5), torch.arange(5)]
    assert torch.allclose(again, res.score_end, atol=1e-9)
    assert torch.allclose(res.confidence, res.logits.softmax(1).diagonal())


def test_without_step_decay_pulls_back_to_grey():
    model = TinyNet().eval()
    kw = dict(size=16, steps=10, lr=0.02, jitter=0, blur_every=0, progress=False)
    free = syn.class_visualisation(model, [1], decay=0.0, **kw).images
    decayed = syn.class_visualisation(model, [1], decay=0.2, **kw).images
    assert (decayed - 0.5).abs().mean() < (free - 0.5).abs().mean()
    same = syn.class_visualisation(model, [1], decay=0.0, **kw).images
    assert torch.equal(free, same)                                       # seeded


def test_visualisation_leaves_the_model_as_it_found_it():
    model = TinyNet().train()
    model.fc.weight.requires_grad_(False)
    params = [p.detach().clone() for p in model.parameters()]
    flags = [p.requires_grad for p in model.parameters()]
    syn.class_visualisation(model, 2, size=16, steps=3, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), params))
    assert [p.requires_grad for p in model.parameters()] == flags
    assert model.training and all(m.training for m in model.modules())
    assert hooks.hook_count(model) == 0
    assert all(p.grad is None for p in model.parameters())


def test_visualisation_rejects_bad_settings():
    model = TinyNet().eval()
    with pytest.raises(ValueError, match="target classes must lie in 0..4"):
        syn.class_visualisation(model, [7], size=16, steps=1)
    with pytest.raises(ValueError, match="0 <= decay < 1"):
        syn.class_visualisation(model, [1], size=16, decay=1.0)


def test_class_mean_masks_and_correlation_by_hand():
    masks = torch.zeros(3, 2, 2, dtype=torch.bool)
    masks[0, 0, 0] = masks[1, 0, 1] = masks[2, 1, 1] = True
    mean = syn.class_mean_masks(masks, torch.tensor([0, 0, 1]), 2)
    assert torch.equal(mean, torch.tensor([[[0.5, 0.5], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]]))
    with pytest.raises(ValueError, match="no masks for classes \\[2\\]"):
        syn.class_mean_masks(masks, torch.tensor([0, 0, 1]), 3)
    maps = torch.stack([mean[0] * 3 + 1, -mean[1], torch.ones(2, 2)])
    corr = syn.map_mask_correlation(maps, mean)
    ref = torch.corrcoef(torch.stack([mean[0].flatten(), mean[1].flatten()]))[0, 1].item()
    assert corr[0, 0].item() == pytest.approx(1.0) and corr[1, 1].item() == pytest.approx(-1.0)
    assert corr[0, 1].item() == pytest.approx(ref) and corr[1, 0].item() == pytest.approx(-ref)
    assert torch.equal(corr[2], torch.zeros(2, dtype=torch.float64))   # a constant map: 0, not NaN


def test_deviation_map_by_hand():
    x = torch.full((1, 3, 1, 2), 0.5)
    x[0, :, 0, 1] = torch.tensor([0.5 + 0.3, 0.5 - 0.4, 0.5])
    assert torch.allclose(syn.deviation_map(x), torch.tensor([[[0.0, 0.5]]]))
