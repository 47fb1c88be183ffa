"""The shared dataset base (vislib.datasets.ImageDataset): one subset/getitem for the shapes, the
image folders and the bias study, keeping every per-image field aligned."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vislib import data
from vislib.bias import BiasDataset, balanced_test
from vislib.datasets import ImageDataset, as_indices
from vislib.image_files import ImageFolderData


def test_every_dataset_shares_the_base():
    for cls in (data.ShapesDataset, ImageFolderData, BiasDataset):
        assert issubclass(cls, ImageDataset)
        # one implementation, not copies
        assert cls.subset is ImageDataset.subset and cls.__getitem__ is ImageDataset.__getitem__


@pytest.mark.parametrize("index, expected", [
    (slice(1, 7, 2), [1, 3, 5]),
    ([4, 0, 4], [4, 0, 4]),
    (torch.tensor([2, -1]), [2, 7]),
    ([False, True, False, False, False, False, True, True], [1, 6, 7]),
    (torch.tensor([], dtype=torch.long), []),
])
def test_as_indices(index, expected):
    assert as_indices(index, 8).tolist() == expected


def test_as_indices_refuses_what_it_cannot_mean():
    with pytest.raises(TypeError, match=r"write \[3\]"):
        as_indices(3, 8)
    with pytest.raises(IndexError, match="index 8 is out of range for 8 images"):
        as_indices([1, 8], 8)
    with pytest.raises(ValueError, match="one entry per image \\(8\\), got 3"):
        as_indices([True, False, True], 8)
    with pytest.raises(TypeError, match="integers or bools"):
        as_indices(torch.tensor([0.5]), 8)


def test_shapes_subset_keeps_masks_and_params_aligned():
    ds = data.make_shapes(12, size=32, seed=3)
    for index in ([5, 2, 9], ds.labels == int(ds.labels[0]), slice(3, 6)):
        sub = ds.subset(index)
        idx = as_indices(index, len(ds)).tolist()
        assert isinstance(sub, data.ShapesDataset) and len(sub) == len(idx)
        assert torch.equal(sub.images, ds.images[idx]) and torch.equal(sub.masks, ds.masks[idx])
        assert sub.params == [ds.params[i] for i in idx] and sub.classes == ds.classes
        # the params really describe the picked images (class name matches the label)
        assert [p["label"] for p in sub.params] == sub.labels.tolist()
    image, label = ds[4]
    assert torch.equal(image, ds.images[4]) and int(label) == int(ds.labels[4])


def test_bias_subset_picks_tensors_dicts_and_lists_alike():
    ds = balanced_test(3, size=24)
    mask = ds.tie | ~ds.female
    sub = ds.subset(mask)
    idx = mask.nonzero().flatten()
    assert len(sub) == int(mask.sum())
    for name in ("images", "labels", "female", "tie", "cue"):
        assert torch.equal(getattr(sub, name), getattr(ds, name)[idx]), name
    assert all(torch.equal(sub.parts[k], ds.parts[k][idx]) for k in ds.parts)
    assert sub.params == [ds.params[i] for i in idx.tolist()] and sub.files is None


def test_image_folder_subset_keeps_files():
    images = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 2, 2).clone()
    ds = ImageFolderData(images, torch.tensor([0, 0, 1, 1]), ("a", "b"), [Path(f"{k}.png") for k in range(4)])
    sub = ds.subset([3, 1])
    assert [f.name for f in sub.files] == ["3.png", "1.png"] and sub.classes == ("a", "b")
    assert sub.images[:, 0, 0, 0].tolist() == [3.0, 1.0] and sub.labels.tolist() == [1, 0]


def test_channel_stats_is_the_per_channel_mean_and_std():
    images = torch.zeros(2, 3, 2, 2)
    images[0, 1] = 1.0     # channel 1: four ones and four zeros -> mean 0.5, std sqrt(8/7 * 0.25)
    ds = ImageDataset(images, torch.tensor([0, 1]))
    mean, std = ds.channel_stats()
    assert mean == pytest.approx((0.0, 0.5, 0.0)) and std == pytest.approx((0.0, (2 / 7) ** 0.5, 0.0))


def test_misaligned_fields_are_refused_at_construction():
    with pytest.raises(ValueError, match=r"BiasDataset.female has \[2\] entries but there are 3 labels"):
        BiasDataset(images=torch.zeros(3, 3, 4, 4), labels=torch.zeros(3, dtype=torch.long),
                    female=torch.tensor([True, False]))
    with pytest.raises(ValueError, match=r"ShapesDataset.images has \[4\] entries but there are 3 labels"):
        data.ShapesDataset(torch.zeros(4, 3, 4, 4), torch.zeros(3, dtype=torch.long), torch.zeros(3, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"parts has \[2\] entries"):
        BiasDataset(images=torch.zeros(3, 3, 4, 4), labels=torch.zeros(3, dtype=torch.long),
                    parts={"tie": torch.zeros(2, 4, 4, dtype=torch.bool)})
