"""Pointing game and energy share on hand-made maps and masks."""
from __future__ import annotations

import pytest
import torch

from vislib.evaluation import dilate, energy_share, pointing_game


def square_mask(b=1, h=8, w=8, rows=slice(2, 4), cols=slice(2, 5)):
    mask = torch.zeros(b, h, w, dtype=torch.bool)
    mask[:, rows, cols] = True  # 2 x 3 = 6 of 64 pixels
    return mask


def peak_map(points, h=8, w=8):
    maps = torch.zeros(len(points), h, w)
    for i, (y, x) in enumerate(points):
        maps[i, y, x] = 1.0
    return maps


def test_hit_and_miss_with_chance_level():
    mask = square_mask(2)
    result = pointing_game(peak_map([(3, 4), (6, 6)]), mask)
    assert result.hits.tolist() == [1.0, 0.0]
    assert result.points.tolist() == [[3, 4], [6, 6]]
    assert result.chance.tolist() == [6 / 64, 6 / 64]
    assert result.accuracy() == 0.5 and result.chance_level() == pytest.approx(6 / 64)


def test_dilation_is_a_disk():
    mask = torch.zeros(1, 7, 7, dtype=torch.bool)
    mask[0, 3, 3] = True
    plus = dilate(mask, 1)
    assert plus.sum() == 5 and plus[0, 2, 3] and not plus[0, 2, 2]  # diagonal is sqrt(2) away
    assert dilate(mask, 1.5).sum() == 9
    assert dilate(mask, 2).sum() == 13  # 9 + the four points at distance 2


def test_tolerance_counts_points_within_r_pixels():
    mask = square_mask()  # rows 2-3, columns 2-4
    maps = peak_map([(3, 7)])  # 3 columns right of the mask
    assert [pointing_game(maps, mask, tolerance=r).hits.item() for r in (0, 2, 3)] == [0.0, 0.0, 1.0]
    assert pointing_game(maps, mask, tolerance=3).chance.item() > 6 / 64


def test_tie_rules_on_two_tied_maxima():
    mask = square_mask()
    maps = peak_map([(2, 2)])
    maps[0, 7, 7] = 1.0  # a second maximum, outside the mask
    assert pointing_game(maps, mask, tie="any").hits.item() == 1.0
    assert pointing_game(maps, mask, tie="fraction").hits.item() == 0.5
    assert pointing_game(maps, mask, tie="random").n_ties.item() == 2
    random = pointing_game(maps.expand(2000, 8, 8), mask.expand(2000, 8, 8), tie="random", seed=0)
    assert abs(random.accuracy() - 0.5) < 0.05
    assert torch.equal(random.hits, pointing_game(maps.expand(2000, 8, 8), mask.expand(2000, 8, 8), seed=0).hits)


def test_a_constant_map_scores_chance_except_under_the_any_rule():
    mask = square_mask(3000)
    flat = torch.zeros(3000, 8, 8)
    assert pointing_game(flat, mask, tie="any").accuracy() == 1.0
    assert pointing_game(flat, mask, tie="fraction").hits[0].item() == pytest.approx(6 / 64)
    assert abs(pointing_game(flat, mask, tie="random").accuracy() - 6 / 64) < 0.02
    # The first-in-raster-order rule a plain argmax uses would always pick (0, 0): a miss.
    assert flat[0].flatten().argmax().item() == 0 and not mask[0, 0, 0]


def test_accuracy_per_class_then_averaged():
    mask = square_mask(3)
    result = pointing_game(peak_map([(2, 2), (0, 0), (0, 0)]), mask)
    labels = torch.tensor([0, 1, 1])
    assert result.accuracy() == pytest.approx(1 / 3)
    assert result.accuracy(labels) == pytest.approx((1.0 + 0.0) / 2)


def test_energy_share_by_hand():
    maps = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    mask = torch.tensor([[[True, True], [False, False]]])
    result = energy_share(maps, mask)
    assert result.share.item() == pytest.approx(3 / 10)
    assert result.chance.item() == 0.5
    uniform = energy_share(torch.ones(1, 8, 8), square_mask())
    assert uniform.share.item() == pytest.approx(6 / 64) == uniform.chance.item()


def test_energy_share_needs_non_negative_maps_or_abs():
    maps = torch.tensor([[[1.0, -2.0], [3.0, -4.0]]])
    mask = torch.tensor([[[True, True], [False, False]]])
    with pytest.raises(ValueError, match="non-negative.*abs=True"):
        energy_share(maps, mask)
    assert energy_share(maps, mask, abs=True).share.item() == pytest.approx(3 / 10)


def test_a_map_without_mass_has_an_undefined_energy_share():
    with pytest.warns(RuntimeWarning, match="zero everywhere"):
        result = energy_share(torch.zeros(2, 8, 8), square_mask(2))
    assert torch.isnan(result.share).all() and torch.isnan(torch.tensor(result.mean()))


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="masks must have the maps' shape"):
        pointing_game(torch.rand(1, 8, 8), torch.ones(1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="empty"):
        pointing_game(torch.rand(2, 8, 8), torch.zeros(2, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="unknown tie rule"):
        pointing_game(torch.rand(1, 8, 8), square_mask(), tie="first")
    with pytest.raises(ValueError, match="non-negative"):
        pointing_game(torch.rand(1, 8, 8), square_mask(), tolerance=-1)
