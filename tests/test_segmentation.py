"""'Segmentation for free': thresholded and GrabCut-refined maps against object masks."""
from __future__ import annotations

import pytest
import torch

from vislib.evaluation import chance_iou, grabcut_refine, iou, segmentation_iou, threshold_maps


def square(h=8, w=8, rows=slice(2, 6), cols=slice(2, 6)):
    m = torch.zeros(1, h, w, dtype=torch.bool)
    m[:, rows, cols] = True
    return m


def test_iou_on_hand_built_masks():
    obj = square()                                     # 16 px
    pred = square(rows=slice(2, 6), cols=slice(4, 8))  # 16 px, 8 of them on the object
    assert iou(pred, obj).item() == pytest.approx(8 / 24)
    assert iou(obj, obj).item() == 1.0
    assert iou(torch.zeros_like(obj), obj).item() == 0.0
    assert iou(torch.ones_like(obj), obj).item() == pytest.approx(16 / 64)


def test_chance_level_by_hand_and_by_simulation():
    obj = square()                                     # m = 16/64
    pred = square(rows=slice(0, 8), cols=slice(0, 4))  # a = 32/64
    a, m = 0.5, 0.25
    expected = a * m / (a + m - a * m)                 # 8 / 40 = 0.2
    assert chance_iou(pred, obj).item() == pytest.approx(expected) == pytest.approx(0.2)
    # Independent check: random sets of 32 pixels, average intersection over average union.
    g = torch.Generator().manual_seed(0)
    inter = union = 0.0
    for _ in range(4000):
        r = torch.zeros(64, dtype=torch.bool)
        r[torch.randperm(64, generator=g)[:32]] = True
        r = r.view(1, 8, 8)
        inter += (r & obj).sum().item()
        union += (r | obj).sum().item()
    assert inter / union == pytest.approx(expected, abs=0.01)
    # The whole image: IoU = chance = the object's area fraction.
    full = torch.ones_like(obj)
    assert chance_iou(full, obj).item() == pytest.approx(0.25) == pytest.approx(iou(full, obj).item())


def test_thresholds():
    maps = torch.zeros(2, 4, 4)
    maps[0, 1:3, 1:3] = 1.0                            # a clean two-level map
    maps[1] = torch.arange(16.0).view(4, 4)
    otsu = threshold_maps(maps, "otsu")
    assert torch.equal(otsu[0], maps[0] > 0)
    assert threshold_maps(maps, "mean")[1].sum() == 8  # values 8..15 > 7.5
    assert threshold_maps(maps, 0.5)[1].sum() == 8     # (v - 0) / 15 >= 0.5: v >= 7.5
    assert threshold_maps(maps, 0.0).all()
    const = torch.ones(1, 4, 4)
    assert not threshold_maps(const, "otsu").any() and not threshold_maps(const, 0.3).any()


@pytest.mark.parametrize("bad", ["median", 1.5, -0.1, True])
def test_threshold_must_be_valid(bad):
    with pytest.raises(ValueError, match="threshold"):
        threshold_maps(torch.rand(1, 4, 4), bad)


def synthetic_scene(h=32, w=32, seed=0):
    """A red square on a noisy blue background, and a blurry saliency blob around it."""
    g = torch.Generator().manual_seed(seed)
    img = torch.zeros(1, 3, h, w)
    img[:, 1], img[:, 2] = 0.3, 0.7
    obj = square(h, w, slice(10, 22), slice(8, 20))
    img[:, :, 10:22, 8:20] = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1)
    img = (img + 0.03 * torch.randn(img.shape, generator=g)).clamp(0, 1)
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    blob = torch.exp(-((yy - 17) ** 2 + (xx - 15) ** 2) / (2 * 7.0 ** 2))[None]
    return img, obj, blob


def test_grabcut_keeps_the_shape_and_does_not_lower_the_iou_on_a_clean_scene():
    img, obj, blob = synthetic_scene()
    plain = segmentation_iou(blob, obj)
    refined = segmentation_iou(blob, obj, images=img, grabcut=True)
    assert refined.masks.shape == obj.shape and refined.masks.dtype == torch.bool
    assert plain.iou.item() < 0.8                      # the blob is not the square
    assert refined.iou.item() >= plain.iou.item()
    assert refined.iou.item() > 0.9                    # GrabCut snaps to the colour edge
    assert plain.iou.item() > plain.chance.item() > 0
    # deterministic
    again = grabcut_refine(img, threshold_maps(blob), seed=0)
    assert torch.equal(again, refined.masks)


def test_grabcut_leaves_masks_it_cannot_refine_unchanged():
    img, obj, _ = synthetic_scene()
    empty = torch.zeros_like(obj)
    assert torch.equal(grabcut_refine(img, empty), empty)
    assert torch.equal(grabcut_refine(img, torch.ones_like(obj)), torch.ones_like(obj))


def test_grabcut_needs_images_and_checks_shapes():
    _, obj, blob = synthetic_scene()
    with pytest.raises(ValueError, match="images"):
        segmentation_iou(blob, obj, grabcut=True)
    with pytest.raises(ValueError, match="pred"):
        grabcut_refine(torch.rand(1, 3, 16, 16), obj)
    with pytest.raises(ValueError, match="iterations"):
        grabcut_refine(torch.rand(1, 3, 32, 32), obj, iterations=0)
