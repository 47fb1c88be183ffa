"""Pixel ranking, removal masks and fills (black, mean, ROAD imputation) with known answers."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg
import torch
from torch import nn

from vislib.evaluation import (check_fractions, dataset_mean, fill_pixels, noisy_linear_imputation, pixel_count,
                               random_mask, random_rank, removal_mask, saliency_rank)
from vislib.evaluation.removal import mask_from_rank
from vislib.models import with_normalization

MEAN = (0.2, 0.4, 0.6)


# --------------------------------------------------------------------------- counts and ranking
@pytest.mark.parametrize("k, h, w, expected", [
    (0.0, 16, 16, 0), (1.0, 16, 16, 256), (0.1, 16, 16, 26),  # 25.6 -> 26
    (0.25, 10, 10, 25), (0.025, 10, 10, 3),                      # 2.5 -> 3 (half up)
    (0.3, 7, 5, 11),                                             # 10.5 -> 11
])
def test_pixel_count_is_round_k_hw(k, h, w, expected):
    assert pixel_count(k, h, w) == expected


def test_every_mask_removes_exactly_round_k_hw_pixels():
    maps = torch.rand(5, 7, 9)
    maps[:, :3] = 0.0  # many ties
    for k in (0.0, 0.01, 0.1, 0.33, 0.5, 0.9, 1.0):
        n = pixel_count(k, 7, 9)
        for mode in ("most", "least"):
            assert (removal_mask(maps, k, mode).sum(dim=(1, 2)) == n).all()
        assert (random_mask(maps, k, seed=3).sum(dim=(1, 2)) == n).all()


def test_least_and_most_on_a_strictly_increasing_map():
    maps = torch.arange(16.0).view(1, 4, 4)
    least = removal_mask(maps, 0.25, "least")
    most = removal_mask(maps, 0.25, "most")
    assert least.flatten().nonzero().flatten().tolist() == [0, 1, 2, 3]
    assert most.flatten().nonzero().flatten().tolist() == [12, 13, 14, 15]


def test_masks_are_nested_across_fractions():
    maps = torch.rand(3, 8, 8).round(decimals=1)  # ties
    rank = saliency_rank(maps, seed=5)
    for mode in ("least", "most"):
        previous = torch.zeros(3, 8, 8, dtype=torch.bool)
        for n in range(0, 65, 7):
            mask = mask_from_rank(rank, n, mode, (8, 8))
            assert (mask | previous).eq(mask).all()  # previous subset of mask
            previous = mask


def test_ties_are_only_broken_among_equal_values():
    maps = torch.zeros(2, 6, 6)
    maps[:, 2:4, 2:4] = 1.0  # 4 salient pixels
    most = removal_mask(maps, 4 / 36, "most", seed=1)
    assert torch.equal(most, maps.bool())
    least = removal_mask(maps, 0.5, "least", seed=1)
    assert not (least & maps.bool()).any()


def test_maps_without_ties_rank_the_same_for_every_seed():
    maps = torch.randn(3, 9, 9, dtype=torch.float64)
    expected = maps.flatten(1).argsort(1).argsort(1)
    assert torch.equal(saliency_rank(maps, seed=0), expected) and torch.equal(saliency_rank(maps, seed=5), expected)


def test_tie_breaking_is_seeded():
    maps = torch.zeros(4, 8, 8)
    a = removal_mask(maps, 0.3, "least", seed=7)
    assert torch.equal(a, removal_mask(maps, 0.3, "least", seed=7))
    assert not torch.equal(a, removal_mask(maps, 0.3, "least", seed=8))


def test_tie_breaking_is_unbiased_in_position():
    # A constant map: every pixel is tied. A plain argsort would remove the first rows.
    maps = torch.zeros(4000, 8, 8)
    freq = removal_mask(maps, 0.25, "least", seed=0).float().mean(0)
    assert (freq - 0.25).abs().max() < 0.04  # ~6 standard deviations of a binomial frequency
    assert abs(freq[:4].mean() - freq[4:].mean()) < 0.02  # top half vs bottom half
    naive = torch.zeros(64, dtype=torch.bool)
    naive[maps[0].flatten().argsort(stable=True)[:16]] = True
    assert naive.view(8, 8)[:2].all()  # the bias the seeded permutation removes


def test_random_rank_is_a_permutation_so_no_pixel_repeats():
    rank = random_rank(50, 5, 6, seed=2)
    assert torch.equal(rank.sort(dim=1).values, torch.arange(30).expand(50, 30))
    masks = random_mask((2000, 5, 6), 0.4, seed=1)
    assert (masks.sum(dim=(1, 2)) == 12).all()
    assert ((masks.float().mean(0) - 0.4).abs() < 0.06).all()  # uniform over positions
    assert not torch.equal(random_mask((3, 5, 6), 0.4, seed=1), random_mask((3, 5, 6), 0.4, seed=2))


# --------------------------------------------------------------------------- fills
def _images(b=2, h=6, w=6):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1


def test_black_fill_zeroes_all_channels_of_removed_pixels_only():
    images = _images()
    mask = torch.zeros(2, 6, 6, dtype=torch.bool)
    mask[0, 1, 2] = mask[1, 4, 5] = True
    out = fill_pixels(images, mask, "black")
    assert (out[0, :, 1, 2] == 0).all() and (out[1, :, 4, 5] == 0).all()  # all three channels
    keep = ~mask.unsqueeze(1).expand_as(images)
    assert torch.equal(out[keep], images[keep])
    assert (out == 0).sum() == 6


def test_mean_fill_uses_the_models_normalize_mean_or_an_explicit_mean():
    images = _images()
    mask = torch.rand(2, 6, 6, generator=torch.Generator().manual_seed(1)) < 0.3
    model = with_normalization(nn.Flatten(), MEAN, (0.3, 0.3, 0.3))
    out = fill_pixels(images, mask, "mean", model=model)
    for c, m in enumerate(MEAN):
        assert torch.allclose(out[:, c][mask], torch.tensor(m))
        assert torch.equal(out[:, c][~mask], images[:, c][~mask])
    explicit = fill_pixels(images, mask, "mean", mean=(0.9, 0.8, 0.7), model=model)
    assert torch.allclose(explicit[:, 2][mask], torch.tensor(0.7))
    assert torch.allclose(dataset_mean(model), torch.tensor(MEAN))


def test_mean_fill_without_a_mean_is_a_clear_error():
    with pytest.raises(ValueError, match="mean colour"):
        fill_pixels(_images(), torch.ones(2, 6, 6, dtype=torch.bool), "mean", model=nn.Flatten())


# --------------------------------------------------------------------------- ROAD imputation
def _ramp(h, w):
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    return torch.stack([0.1 + 0.02 * xx + 0.01 * yy, 0.8 - 0.03 * yy, 0.5 + 0.01 * (xx - yy)]).unsqueeze(0)


def test_road_fill_of_a_linear_ramp_reproduces_the_ramp():
    images = _ramp(16, 16)
    mask = torch.zeros(1, 16, 16, dtype=torch.bool)
    mask[0, 3:12, 2:9] = True          # one big hole, solved jointly from its rim
    mask[0, 13, 10:15:2] = True       # scattered single pixels
    out = noisy_linear_imputation(images, mask, noise=0.0)
    assert torch.allclose(out, images, atol=1e-12)


def _road_reference(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The ROAD system written pixel by pixel and solved with scipy's sparse LU."""
    c, h, w = image.shape
    unknowns = [(y, x) for y in range(h) for x in range(w) if mask[y, x]]
    index = {p: i for i, p in enumerate(unknowns)}
    a = scipy.sparse.lil_matrix((len(unknowns), len(unknowns)))
    b = np.zeros((len(unknowns), c))
    for i, (y, x) in enumerate(unknowns):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if (dy, dx) == (0, 0) or not (0 <= y + dy < h and 0 <= x + dx < w):
                    continue
                weight = 1 / 6 if dy == 0 or dx == 0 else 1 / 12
                a[i, i] += weight
                if mask[y + dy, x + dx]:
                    a[i, index[(y + dy, x + dx)]] -= weight
                else:
                    b[i] += weight * image[:, y + dy, x + dx]
    solution = scipy.sparse.linalg.spsolve(a.tocsc(), b)
    out = image.copy()
    for i, (y, x) in enumerate(unknowns):
        out[:, y, x] = solution[i]
    return out


def test_road_fill_matches_an_independent_sparse_solve_including_borders():
    gen = torch.Generator().manual_seed(4)
    images = torch.rand(3, 3, 9, 11, generator=gen, dtype=torch.float64)
    mask = torch.rand(3, 9, 11, generator=gen) < 0.6
    mask[1] = False  # an image with nothing removed
    out = noisy_linear_imputation(images, mask, noise=0.0, clip=False)
    for i in range(3):
        expected = _road_reference(images[i].numpy(), mask[i].numpy())
        np.testing.assert_allclose(out[i].numpy(), expected, atol=1e-12)


def test_road_noise_is_seeded_and_has_the_requested_scale():
    images = torch.full((4, 3, 16, 16), 0.5)
    mask = torch.rand(4, 16, 16, generator=torch.Generator().manual_seed(0)) < 0.5
    a = noisy_linear_imputation(images, mask, noise=0.05, seed=1)
    assert torch.equal(a, noisy_linear_imputation(images, mask, noise=0.05, seed=1))
    assert not torch.equal(a, noisy_linear_imputation(images, mask, noise=0.05, seed=2))
    residual = (a - 0.5)[mask.unsqueeze(1).expand_as(a)]
    assert abs(residual.std().item() - 0.05) < 0.005
    assert torch.equal(a[~mask.unsqueeze(1).expand_as(a)], images[~mask.unsqueeze(1).expand_as(a)])


def test_road_fill_of_a_fully_removed_image_uses_the_mean_colour():
    model = with_normalization(nn.Flatten(), MEAN, (0.3, 0.3, 0.3))
    out = fill_pixels(_images(1), torch.ones(1, 6, 6, dtype=torch.bool), "road", model=model, noise=0.0)
    assert torch.allclose(out[0], torch.tensor(MEAN).view(3, 1, 1).expand(3, 6, 6))


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("fractions", [1.5, -0.1, [0.1, 10], [float("nan")], []])
def test_fractions_outside_0_1_are_rejected(fractions):
    with pytest.raises(ValueError, match="fraction"):
        check_fractions(fractions)


def test_percentages_get_a_hint():
    with pytest.raises(ValueError, match="10 % is 0.1"):
        check_fractions([10])


def test_unknown_fill_and_mode_are_rejected():
    with pytest.raises(ValueError, match="unknown fill 'white'.*black"):
        fill_pixels(_images(), torch.zeros(2, 6, 6, dtype=torch.bool), "white")
    with pytest.raises(ValueError, match="unknown mode"):
        removal_mask(torch.rand(1, 4, 4), 0.5, "middle")


def test_mask_of_the_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match=r"\[B, H, W\]"):
        fill_pixels(_images(), torch.zeros(2, 5, 6, dtype=torch.bool), "black")
