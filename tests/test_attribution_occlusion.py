"""Occlusion against analytic answers on a linear model; fills; chunking; the baselines."""
from __future__ import annotations

import math

import pytest
import torch

from _tiny_models import LinearNet, tiny_images, tiny_net
from vislib import attribution as A
from vislib.attribution.core import gaussian_blur
from vislib.attribution.occlusion import average_over_windows, window_count, window_drops, window_masks
from vislib.models import with_normalization


def linear_model(size, seed=0):
    torch.manual_seed(seed)
    return LinearNet(size).double().eval()


def explicit_occlusion(model, x, cls, patch, stride, fill):
    """Captum's definition written out: every window, its score drop, averaged per pixel."""
    b, _, h, w = x.shape
    patch = (min(patch[0], h), min(patch[1], w))   # a patch larger than the image covers it all
    total = torch.zeros(b, h, w, dtype=x.dtype)
    count = torch.zeros(h, w, dtype=x.dtype)
    with torch.no_grad():
        clean = model(x)[torch.arange(b), cls]
        for i in range(math.ceil((h - patch[0]) / stride[0]) + 1):
            for j in range(math.ceil((w - patch[1]) / stride[1]) + 1):
                rows = slice(i * stride[0], i * stride[0] + patch[0])
                cols = slice(j * stride[1], j * stride[1] + patch[1])
                occluded = x.clone()
                occluded[:, :, rows, cols] = fill.expand_as(x)[:, :, rows, cols]
                drop = clean - model(occluded)[torch.arange(b), cls]
                total[:, rows, cols] += drop[:, None, None]
                count[rows, cols] += 1
    return total / count


def test_single_pixel_occlusion_is_weight_times_input_difference():
    """For S = W x + b and a 1x1 patch: drop = sum_c W[c, i, j] (x - fill)[c, i, j]."""
    size = 5
    model, x = linear_model(size), tiny_images(2, size)
    weight = model.fc.weight.detach()[1].view(3, size, size)
    for fill, value in (("black", 0.0), (0.3, 0.3)):
        got = A.occlusion(model, x, 1, patch=1, stride=1, fill=fill)
        torch.testing.assert_close(got, (weight * (x - value)).sum(dim=1))


@pytest.mark.parametrize("patch, stride", [(3, 2), ((2, 4), (1, 3)), (4, 4), (9, 1)])
def test_occlusion_equals_the_explicit_window_average(patch, stride):
    size = 7
    model, x = linear_model(size, seed=1), tiny_images(2, size)
    pair = lambda v: (v, v) if isinstance(v, int) else v
    for fill in ("black", "mean"):
        expected_fill = torch.zeros_like(x) if fill == "black" else x.mean(dim=(2, 3), keepdim=True)
        got = A.occlusion(model, x, [0, 2], patch=patch, stride=stride, fill=fill)
        expected = explicit_occlusion(model, x, torch.tensor([0, 2]), pair(patch), pair(stride),
                                      expected_fill)
        torch.testing.assert_close(got, expected)


def test_mean_fill_is_the_models_normalize_mean():
    size = 6
    net = linear_model(size)
    model = with_normalization(net, (0.2, 0.5, 0.7), (1.0, 1.0, 1.0)).double()
    x = tiny_images(1, size)
    colour = torch.tensor([0.2, 0.5, 0.7], dtype=torch.float64).view(1, 3, 1, 1)
    got = A.occlusion(model, x, 0, patch=2, stride=2, fill="mean")
    torch.testing.assert_close(got, A.occlusion(model, x, 0, patch=2, stride=2, fill=colour.flatten()))
    torch.testing.assert_close(got, explicit_occlusion(model, x, torch.tensor([0]), (2, 2), (2, 2), colour))
    assert not torch.allclose(got, A.occlusion(model, x, 0, patch=2, stride=2, fill="black"))


def test_blur_fill_and_gaussian_blur():
    size = 8
    model, x = linear_model(size), tiny_images(1, size)
    blurred = gaussian_blur(x, 1.5)
    got = A.occlusion(model, x, 0, patch=3, stride=2, fill="blur", blur_sigma=1.5)
    torch.testing.assert_close(got, explicit_occlusion(model, x, torch.tensor([0]), (3, 3), (2, 2), blurred))
    # the blur keeps a constant image and smooths noise
    flat = torch.full((1, 3, 8, 8), 0.4, dtype=torch.float64)
    torch.testing.assert_close(gaussian_blur(flat, 2.0), flat)
    assert blurred.std() < x.std()


def test_chunked_equals_unchunked_and_no_grad():
    model, x = tiny_net(), tiny_images(3)
    whole = A.occlusion(model, x, patch=3, stride=2, batch_size=10_000)
    for batch_size in (5, 13):      # chunks that cross the boundary between two images
        torch.testing.assert_close(A.occlusion(model, x, patch=3, stride=2, batch_size=batch_size), whole)
    assert whole.abs().sum() > 0


def test_stride_larger_than_patch_leaves_uncovered_pixels_at_zero():
    size = 5
    model, x = linear_model(size), tiny_images(1, size)
    got = A.occlusion(model, x, 0, patch=1, stride=2, fill="black")
    weight = model.fc.weight.detach()[0].view(3, size, size)
    expected = (weight * x).sum(dim=1)
    expected[:, 1::2, :] = 0
    expected[:, :, 1::2] = 0
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("size, patch, stride, n", [(64, 8, 4, 15), (10, 4, 4, 3), (7, 3, 2, 3), (8, 8, 4, 1),
                                                     (5, 8, 2, 1), (9, 1, 1, 9), (8, 2, 3, 3)])
def test_window_count_by_hand(size, patch, stride, n):
    """Windows start at 0, s, 2s, ... until one reaches the border (10, 4, 4: at 0, 4 and 8, the last clipped)."""
    assert window_count(size, patch, stride) == n == len(window_masks(size, patch, stride))
    with pytest.raises(ValueError, match="stride"):
        window_count(size, patch, 0)


def test_window_drops_are_the_closed_form_of_a_linear_model():
    """For S = W x + b the drop of a window is sum_window W[c] (x - fill): one value per window."""
    size = 7
    model, x = linear_model(size, seed=2), tiny_images(2, size)
    drops = window_drops(model, x, [1, 2], patch=3, stride=2, fill=0.25, batch_size=5)
    assert drops.shape == (2, 3, 3) and drops.dtype == x.dtype
    for b, cls in enumerate((1, 2)):
        contribution = (model.fc.weight.detach()[cls].view(3, size, size) * (x[b] - 0.25)).sum(0)
        for r in range(3):
            for c in range(3):
                expected = contribution[2 * r:2 * r + 3, 2 * c:2 * c + 3].sum()
                torch.testing.assert_close(drops[b, r, c], expected)
    torch.testing.assert_close(window_drops(model, x, [1, 2], patch=3, stride=2, fill=0.25, batch_size=1), drops)


@pytest.mark.parametrize("patch, stride", [(3, 2), ((2, 4), (1, 3)), (2, 3), (9, 1)])
def test_occlusion_is_the_average_of_the_window_drops(patch, stride):
    size = 7
    model, x = linear_model(size, seed=1), tiny_images(2, size)
    drops = window_drops(model, x, [0, 2], patch=patch, stride=stride, fill="black")
    torch.testing.assert_close(average_over_windows(drops, size, size, patch, stride),
                               A.occlusion(model, x, [0, 2], patch=patch, stride=stride, fill="black"))


def test_average_over_windows_by_hand():
    # Every drop 1: the mean is 1 wherever a window covers the pixel, 0 where none does.
    ones = torch.ones(3, 3, dtype=torch.float64)
    got = average_over_windows(ones, 8, 8, 2, 3)                 # windows at 0, 3, 6: rows 2 and 5 uncovered
    expected = torch.ones(8, 8, dtype=torch.float64)
    expected[[2, 5]] = 0
    expected[:, [2, 5]] = 0
    torch.testing.assert_close(got, expected)
    # One row of windows, patch 2, stride 1, along a side of 3: pixel 1 is covered by windows 0 and 1.
    drops = torch.tensor([[4.0, 2.0]], dtype=torch.float64)
    torch.testing.assert_close(average_over_windows(drops, 1, 3, (1, 2), 1),
                               torch.tensor([[4.0, 3.0, 2.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="do not match"):
        average_over_windows(torch.ones(2, 2), 8, 8, 2, 3)


def test_bad_occlusion_options():
    model, x = tiny_net(), tiny_images(1)
    with pytest.raises(ValueError, match="unknown fill"):
        A.occlusion(model, x, fill="grey")
    with pytest.raises(ValueError, match="does not broadcast"):
        A.occlusion(model, x, fill=torch.zeros(4))
    with pytest.raises(ValueError, match="patch"):
        A.occlusion(model, x, patch=0)
    with pytest.raises(ValueError, match="batch_size"):
        A.occlusion(model, x, batch_size=0)


# --------------------------------------------------------------------------- baselines
def test_random_is_seeded_uniform_and_model_free():
    x = tiny_images(3)
    a = A.random(None, x)
    assert a.shape == (3, 12, 12) and a.dtype == x.dtype and 0 <= a.min() and a.max() < 1
    torch.testing.assert_close(a, A.random(tiny_net(), x, target=1, seed=0))
    assert not torch.allclose(a, A.random(None, x, seed=1))
    assert not torch.allclose(a[0], a[1])                       # images get different noise
    # roughly uniform: mean 1/2, variance 1/12
    big = A.random(None, tiny_images(4, size=64))
    assert abs(big.mean().item() - 0.5) < 0.01 and abs(big.var().item() - 1 / 12) < 0.005


def test_sobel_on_a_vertical_edge():
    x = torch.zeros(1, 3, 5, 6, dtype=torch.float64)
    x[..., 3:] = 1.0                                             # white right half, grey = 1
    got = A.sobel(None, x)
    # columns 2 and 3 straddle the edge: Gx = 1 + 2 + 1 = 4, Gy = 0; elsewhere 0
    expected = torch.zeros(1, 5, 6, dtype=torch.float64)
    expected[..., 2:4] = 4.0
    torch.testing.assert_close(got, expected)
    # grey weights: a pure green edge is 0.587 times as strong
    g = torch.zeros_like(x)
    g[:, 1, :, 3:] = 1.0
    torch.testing.assert_close(A.sobel(None, g), 0.587 * expected)
