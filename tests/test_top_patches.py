"""Top-activating patches (Zeiler & Fergus 2014), receptive-field crops and nearest neighbours."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from torch import nn

from vislib import activations, models, plot
from vislib.hooks import hook_count


def spot_detector() -> nn.Sequential:
    """conv 3x3 (pad 1) -> ReLU -> max-pool 2 -> conv 3x3 (pad 1): all-ones kernels on channel 0,
    so channel 0 of every layer sums the red channel over its receptive field.

    Receptive field by hand (size, jump, start): conv (3, 1, 0); pool: size 3 + 1·1 = 4,
    start 0 + (1/2 - 0)·1 = 0.5, jump 2; conv: size 4 + 2·2 = 8, start 0.5 + (1 - 1)·2 = 0.5.
    Unit (i, j) of the last conv sees rows 0.5 + 2i ± 3.5, i.e. 2i - 3 .. 2i + 4 (box [2i-3, 2i+5)).
    """
    conv1 = nn.Conv2d(3, 2, 3, padding=1, bias=False)
    conv2 = nn.Conv2d(2, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        conv1.weight.zero_()
        conv1.weight[0, 0] = 1.0                 # channel 0: sum of red over 3x3
        conv1.weight[1, 1] = -1.0                # channel 1: minus green (never the top)
        conv2.weight.zero_()
        conv2.weight[0, 0] = 1.0
        conv2.weight[1, 1] = 1.0
    return nn.Sequential(conv1, nn.ReLU(), nn.MaxPool2d(2), conv2)


def spot_images(n: int = 5, size: int = 16) -> torch.Tensor:
    """Black images; image k has one red pixel whose brightness grows with k, at a known place."""
    images = torch.zeros(n, 3, size, size)
    places = [(1, 1), (7, 9), (12, 3), (5, 14), (9, 6)]
    for k in range(n):
        r, c = places[k % len(places)]
        images[k, 0, r, c] = 0.2 + 0.15 * k
    return images


def test_receptive_field_and_box_of_the_hand_built_model():
    model = spot_detector()
    assert activations.layer_receptive_field(model, "3", size=16) == (8, 2, 0.5)
    assert activations.layer_receptive_field(model, "2", size=16) == (4, 2, 0.5)
    top = activations.top_activating_patches(model, spot_images(), "3", channels=[0], k=2, progress=False)
    # The brightest spot is image 4 (value v = 0.8) at pixel (9, 6). conv1 spreads it over rows 8-10,
    # columns 5-7; max-pooling puts v in pooled cells rows 4-5 x columns 2-3; conv2 sums a 3x3 window of
    # those, so its maximum is 4v, first reached in row-major order at (4, 2): box rows 5..12, cols 1..8.
    assert top.image_index[0].tolist() == [4, 3]
    value = 0.2 + 0.15 * 4
    with torch.no_grad():
        out = model(spot_images()[4:5])[0, 0]
    assert top.values[0, 0].item() == pytest.approx(out.max().item())
    assert out.max().item() == pytest.approx(4 * value)
    i, j = top.position[0, 0].tolist()
    assert (i, j) == (4, 2)
    assert top.values[0, 1].item() == pytest.approx(4 * (0.2 + 0.15 * 3))
    assert out[i, j].item() == out.max().item()
    assert (out.flatten() == out.max()).nonzero()[0].item() == i * out.shape[1] + j   # the first maximum
    assert top.boxes[0, 0].tolist() == [2 * i - 3, 2 * j - 3, 2 * i + 5, 2 * j + 5]
    # The spot lies inside the box, and only the box matters for that unit.
    top_r, left, bottom, right = top.boxes[0, 0].tolist()
    assert top_r <= 9 < bottom and left <= 6 < right


def test_a_unit_depends_on_its_receptive_field_crop_alone():
    torch.manual_seed(0)
    model = models.course_model("vgg", width=4).eval()
    images = torch.rand(6, 3, 32, 32)
    layer = "net.features.12"
    top = activations.top_activating_patches(model, images, layer, channels=[0, 3, 5], k=3, progress=False)
    assert top.field == (14, 2, 0.5)
    boxes = top.clipped_boxes(32, 32)
    for c, channel in enumerate(top.channels):
        for r in range(3):
            n = int(top.image_index[c, r])
            t, l, b, rr = boxes[c, r].tolist()
            noisy = torch.rand(1, 3, 32, 32)                 # new pixels everywhere ...
            noisy[0, :, t:b, l:rr] = images[n, :, t:b, l:rr]  # ... except inside the receptive field
            with torch.no_grad():
                out = model.net.features[:13](model.normalize(noisy))
            i, j = top.position[c, r].tolist()
            assert out[0, channel, i, j].item() == pytest.approx(top.values[c, r].item(), abs=1e-5)


def test_top_patches_are_the_brute_force_ranking_in_any_batch_size():
    torch.manual_seed(1)
    model = models.course_model("vgg", width=4).eval()
    images = torch.rand(11, 3, 32, 32)
    layer = "net.features.5"
    with torch.no_grad():
        acts = model.net.features[:6](model.normalize(images))       # [N, C, h, w]
    best = acts.flatten(2).max(2).values                             # [N, C]
    expected = best.T.sort(dim=1, descending=True, stable=True)
    for bs in (1, 4, 128):
        top = activations.top_activating_patches(model, images, layer, k=4, batch_size=bs, progress=False)
        assert top.image_index.tolist() == expected.indices[:, :4].tolist()
        assert torch.allclose(top.values, expected.values[:, :4], atol=1e-6)


def test_subset_keeps_the_rows_of_the_chosen_channels():
    torch.manual_seed(2)
    model = models.course_model("vgg", width=4).eval()
    images = torch.rand(6, 3, 32, 32)
    top = activations.top_activating_patches(model, images, "net.features.5", k=3, progress=False)
    part = top.subset([3, 1])
    assert part.channels == [3, 1]
    assert torch.equal(part.image_index, top.image_index[[3, 1]]) and torch.equal(part.boxes, top.boxes[[3, 1]])
    assert torch.equal(part.values, top.values[[3, 1]]) and part.field == top.field
    with pytest.raises(ValueError, match="were not ranked"):
        top.subset([9])


def test_crops_cut_the_box_and_pad_outside_the_image():
    model = spot_detector()
    images = spot_images()
    top = activations.top_activating_patches(model, images, "3", channels=[0], k=5, progress=False)
    crops = top.crops(images, fill=-1.0)
    assert crops.shape == (1, 5, 3, 8, 8)
    for r in range(5):
        t, l, b, rr = top.boxes[0, r].tolist()
        n = int(top.image_index[0, r])
        for y in range(t, b):
            for x in range(l, rr):
                inside = 0 <= y < 16 and 0 <= x < 16
                want = images[n, :, y, x] if inside else torch.full((3,), -1.0)
                assert torch.equal(crops[0, r, :, y - t, x - l], want)


def test_top_patches_leave_the_model_as_found_and_check_their_input():
    torch.manual_seed(0)
    model = models.course_model("vgg", width=4).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.rand(5, 3, 32, 32)
    activations.top_activating_patches(model, images, "net.features.2", k=2, progress=False)
    assert model.training and hook_count(model) == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="k must be between 1 and the number of images"):
        activations.top_activating_patches(model, images, "net.features.2", k=6, progress=False)
    with pytest.raises(ValueError, match="channels must be indices between 0 and 3"):
        activations.top_activating_patches(model, images, "net.features.2", channels=[4], k=2, progress=False)
    with pytest.raises(ValueError, match="valid"):
        activations.top_activating_patches(model, images, "net.nope", k=2, progress=False)
    with pytest.raises(ValueError, match="conv layer"):
        activations.top_activating_patches(model, images, "net.classifier.2", k=2, progress=False)


def test_a_layer_after_a_residual_block_is_refused_with_the_reason():
    resnet = models.course_model("resnet", width=4)
    assert activations.layer_receptive_field(resnet, "net.layer1.0.conv2") == (11, 2, 0.0)
    with pytest.raises(ValueError, match="not at the end of a plain chain"):
        activations.layer_receptive_field(resnet, "net.layer2.0.conv1")
    with pytest.raises(ValueError, match="runs 2 times"):
        activations.layer_receptive_field(resnet, "net.layer1.0.relu")
    assert hook_count(resnet) == 0


def test_describe_layer_names_block_and_conv():
    model = models.course_model("vgg", width=4)
    assert activations.describe_layer(model, "net.features.2") == "block 1, conv 1 (ReLU), net.features.2"
    assert activations.describe_layer(model, "net.features.12") == "block 2, conv 4 (ReLU), net.features.12"
    assert activations.describe_layer(model, "net.features.19") == "block 3, conv 6 (ReLU), net.features.19"


def test_class_purity_by_hand():
    labels = torch.tensor([[0, 0, 0, 1], [2, 1, 0, 3], [5, 5, 1, 1]])
    assert activations.class_purity(labels).tolist() == [0.75, 0.25, 0.5]


def test_nearest_neighbours_equal_a_brute_force_search():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(37, 2, 3, 4, generator=g, dtype=torch.float64)
    flat = x.flatten(1)
    for chunk in (1, 5, 256):
        dist, idx = activations.nearest_neighbours(x, k=4, chunk=chunk)
        for q in range(len(x)):
            brute = sorted((float(((flat[q] - flat[j]) ** 2).sum().sqrt()), j) for j in range(len(x)) if j != q)[:4]
            assert idx[q].tolist() == [j for _, j in brute]
            assert dist[q].tolist() == pytest.approx([d for d, _ in brute], abs=1e-12)
    dist_q, idx_q = activations.nearest_neighbours(x, k=4, queries=[5, 0])
    assert torch.equal(idx_q, idx[[5, 0]])


def test_nearest_neighbours_ties_keep_the_smaller_index_and_inputs_are_checked():
    x = torch.tensor([[0.0], [1.0], [-1.0], [2.0]])
    _, idx = activations.nearest_neighbours(x, k=2)
    assert idx[0].tolist() == [1, 2]                 # 1 and 2 are both at distance 1 from point 0
    with pytest.raises(ValueError, match="k must be between 1 and N - 1 = 3"):
        activations.nearest_neighbours(x, k=4)
    with pytest.raises(ValueError, match="queries must be indices between 0 and 3"):
        activations.nearest_neighbours(x, k=1, queries=[4])


def test_plots_have_one_axis_per_patch_and_neighbour():
    model = spot_detector()
    images = spot_images()
    top = activations.top_activating_patches(model, images, "3", k=3, progress=False)
    fig = activations.plot_top_patches(top, images, labels=torch.arange(5), classes=list("abcde"), title="t")
    assert len(fig.axes) == 2 * 3 and fig.axes[0].get_ylabel() == "channel 0"
    assert not plot.check_figure(fig).problems()             # the figure standard: <= 7 in, >= 7 pt, no frames
    _, idx = activations.nearest_neighbours(images, k=2, queries=[0, 1])
    fig = activations.neighbour_grid(images, [0, 1], {"pixels": idx, "other": idx}, labels=torch.arange(5),
                                     classes=list("abcde"))
    assert len(fig.axes) == 2 * 2 * 3
    assert not plot.check_figure(fig).problems()             # the class frames are patches, not spines
