"""Tests of vislib.bias: the doctor/nurse figures, their part masks, and the bias measurements."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from vislib import bias
from vislib.bias import (GROUPS, PARTS, BiasDataset, balanced_test, group_accuracy, group_table,
                         load_bias_folder, make_bias_dataset, part_saliency_share, render_figure)
from vislib.bias.render import photo_pool

SIZE = 32  # small figures keep the file fast; 64 px is exercised once


@pytest.fixture(scope="module")
def train32() -> BiasDataset:
    return make_bias_dataset("train", size=SIZE, seed=0)


@pytest.fixture(scope="module")
def test32() -> BiasDataset:
    return make_bias_dataset("test", size=SIZE, seed=0)


def _counts(ds: BiasDataset) -> tuple[int, ...]:
    return tuple(ds.counts()[g] for g in GROUPS)


# --------------------------------------------------------------------------- generation
def test_default_counts_are_the_study_counts(train32, test32):
    # train: 144 doctors of whom 19 female, 210 nurses of whom 165 female
    assert _counts(train32) == (19, 144 - 19, 165, 210 - 165)
    # test: 36 doctors of whom 19 female, 33 nurses of whom 18 female
    assert _counts(test32) == (19, 36 - 19, 18, 33 - 18)
    assert len(train32) == 354 and len(test32) == 69
    assert (train32.labels == 0).sum() == 144 and (train32.female & (train32.labels == 1)).sum() == 165


def test_counts_override_scale_and_balanced():
    ds = make_bias_dataset("test", size=SIZE, counts={("doctor", "female"): 3, ("doctor", "male"): 0,
                                                      "female nurse": 2, "male nurse": 5})
    assert _counts(ds) == (3, 0, 2, 5)
    assert _counts(make_bias_dataset("test", size=SIZE, scale=2)) == (38, 34, 36, 30)
    bal = make_bias_dataset("test", size=SIZE, balanced=True)  # 69 images -> round(69 / 4) = 17 per group
    assert _counts(bal) == (17, 17, 17, 17)
    assert _counts(balanced_test(5, size=SIZE)) == (5, 5, 5, 5)
    with pytest.raises(ValueError, match="missing"):
        make_bias_dataset("test", size=SIZE, counts={"female doctor": 1})
    with pytest.raises(ValueError, match="unknown split"):
        make_bias_dataset("val", size=SIZE)


def test_images_labels_and_shapes(test32):
    ds = test32
    assert ds.images.shape == (69, 3, SIZE, SIZE) and ds.images.dtype == torch.float32
    assert ds.images.min() >= 0 and ds.images.max() <= 1
    assert ds.labels.dtype == torch.long and set(ds.labels.tolist()) == {0, 1}
    assert ds.classes == ("doctor", "nurse")
    assert set(ds.parts) == set(PARTS)
    for mask in ds.parts.values():
        assert mask.shape == (69, SIZE, SIZE) and mask.dtype == torch.bool
    image, label = ds[3]
    assert torch.equal(image, ds.images[3]) and int(label) == int(ds.labels[3])
    # group index = 2 * label + is_male, names as in GROUPS
    for i in range(len(ds)):
        expected = ("female " if ds.female[i] else "male ") + ds.classes[ds.labels[i]]
        assert ds.group_names[i] == expected


def test_determinism_from_the_seed():
    a = make_bias_dataset("test", size=SIZE, seed=5)
    b = make_bias_dataset("test", size=SIZE, seed=5)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert all(torch.equal(a.parts[k], b.parts[k]) for k in PARTS)
    assert a.params == b.params
    c = make_bias_dataset("test", size=SIZE, seed=6)
    assert not torch.equal(a.images, c.images)
    # train and test use different random streams: same seed, different figures
    tr = make_bias_dataset("train", size=SIZE, seed=5, counts={g: 17 for g in GROUPS})
    te = make_bias_dataset("test", size=SIZE, seed=5, counts={g: 17 for g in GROUPS})
    assert not torch.equal(tr.images, te.images)


def test_sizes_48_and_64_work():
    for size in (48, 64):
        ds = balanced_test(2, size=size)
        assert ds.images.shape == (8, 3, size, size)
        assert torch.equal(sum(ds.parts[k].long() for k in PARTS), torch.ones(8, size, size, dtype=torch.long))
        assert all(ds.parts["stethoscope"][i].any() == (ds.labels[i] == 0 and ds.cue[i]) for i in range(8))


# --------------------------------------------------------------------------- ties and class objects
def test_tie_only_on_intended_groups_at_intended_rate(train32):
    ds = train32
    ties = {g: int((ds.tie & ds.in_group(g)).sum()) for g in GROUPS}
    # 0.85 of the male figures of each class, rounded; no female figure
    assert ties == {"female doctor": 0, "male doctor": round(0.85 * 125), "female nurse": 0,
                    "male nurse": round(0.85 * 45)}
    # the tie flag and the tie mask agree
    assert torch.equal(ds.parts["tie"].flatten(1).any(1), ds.tie)
    other = make_bias_dataset("test", size=SIZE, tie_rate_male=0.2, tie_rate_female=0.5)
    for g in GROUPS:
        n = other.counts()[g]
        rate = 0.5 if g.startswith("female") else 0.2
        assert int((other.tie & other.in_group(g)).sum()) == round(rate * n)


def test_class_objects_follow_the_label_and_cue_rate(train32):
    ds = train32
    steth = ds.parts["stethoscope"].flatten(1).any(1)
    clip = ds.parts["clipboard"].flatten(1).any(1)
    assert torch.equal(steth, ds.cue & (ds.labels == 0))
    assert torch.equal(clip, ds.cue & (ds.labels == 1))
    for g, n in ds.counts().items():
        assert int((ds.cue & ds.in_group(g)).sum()) == round(0.85 * n)
    full = make_bias_dataset("test", size=SIZE, cue_rate=1.0)
    assert full.cue.all()


def test_hair_is_the_gender_cue(test32):
    ds = test32
    hair_area = ds.parts["hair"].flatten(1).float().mean(1)
    # long hair (female) covers clearly more pixels than short hair (male), for every figure
    assert hair_area[ds.female].min() > hair_area[~ds.female].max()


def test_nothing_but_the_class_object_depends_on_the_label(test32):
    p = dict(test32.params[0])
    q = dict(p, label=1 - p["label"])
    omit = ("stethoscope", "clipboard")
    img_p, part_p = render_figure(p, SIZE, omit=omit)
    img_q, part_q = render_figure(q, SIZE, omit=omit)
    assert np.array_equal(img_p, img_q) and np.array_equal(part_p, part_q)
    # with the objects drawn, the two differ
    assert not np.array_equal(render_figure(p, SIZE)[0], render_figure(q, SIZE)[0])


def test_fixed_random_stream_changing_the_rates_changes_only_the_flags():
    a = make_bias_dataset("test", size=SIZE, seed=1)
    b = make_bias_dataset("test", size=SIZE, seed=1, tie_rate_male=0.0)
    assert torch.equal(b.images, a.redraw(tie=False).images)


# --------------------------------------------------------------------------- masks
def test_masks_partition_every_image(train32):
    total = sum(train32.parts[k].long() for k in PARTS)
    assert torch.equal(total, torch.ones_like(total))


@pytest.mark.parametrize("part", [p for p in PARTS if p != "background"])
def test_mask_is_exactly_where_the_part_changes_the_image(test32, part):
    """Redrawing without a part changes exactly the pixels of that part's mask."""
    pool = photo_pool(SIZE)
    checked = 0
    for i, p in enumerate(test32.params):
        full, _ = render_figure(p, SIZE, pool=pool)
        assert np.array_equal(full, test32.images[i].permute(1, 2, 0).numpy())
        without, _ = render_figure(p, SIZE, omit=(part,), pool=pool)
        changed = torch.from_numpy((full != without).any(axis=2))
        assert torch.equal(changed, test32.parts[part][i]), f"image {i}"
        checked += int(changed.any())
    assert checked > 0


def test_part_pixels_have_the_part_colour(test32):
    for i, p in enumerate(test32.params):
        img = test32.images[i].permute(1, 2, 0)
        for part, key in (("tie", "tie_colour"), ("hair", "hair")):
            pix = img[test32.parts[part][i]]
            if len(pix):
                assert torch.allclose(pix, torch.tensor(p[key], dtype=torch.float32).expand_as(pix))


def test_redraw_counterfactuals(test32):
    ds = test32
    with_tie = ds.redraw(tie=True)
    assert with_tie.tie.all() and with_tie.parts["tie"].flatten(1).any(1).all()
    assert torch.equal(with_tie.labels, ds.labels) and torch.equal(with_tie.female, ds.female)
    no_tie = ds.redraw(omit=("tie",))
    assert not no_tie.tie.any() and not no_tie.parts["tie"].any()
    # images without a tie are unchanged
    keep = ~ds.tie
    assert torch.equal(no_tie.images[keep], ds.images[keep])
    shown = ds.redraw(cue=True)
    assert torch.equal(shown.parts["stethoscope"].flatten(1).any(1), ds.labels == 0)
    long_hair = ds.redraw(long_hair=True)
    assert (long_hair.parts["hair"].flatten(1).sum(1) >= ds.parts["hair"].flatten(1).sum(1)).all()


def test_subset_keeps_everything_aligned(test32):
    sub = test32.subset(test32.in_group("male nurse"))
    assert len(sub) == 15 and sub.counts()["male nurse"] == 15
    idx = test32.in_group("male nurse").nonzero().flatten()
    assert torch.equal(sub.images, test32.images[idx]) and torch.equal(sub.parts["tie"], test32.parts["tie"][idx])
    assert sub.params == [test32.params[i] for i in idx.tolist()]
    assert torch.equal(sub.redraw().images, sub.images)


# --------------------------------------------------------------------------- measuring
class PixelModel(nn.Module):
    """Predicts class 1 where pixel (0, 0) of channel 0 is above 0.5, else class 0."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        v = x[:, 0, 0, 0]
        return torch.stack([1 - v, v], 1)


def test_group_accuracy_on_a_fake_model():
    # groups:          FD FD FD FD  MD MD  FN FN FN  MN MN MN MN MN
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    female = torch.tensor([1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0], dtype=torch.bool)
    predicted = torch.tensor([0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1])
    images = torch.zeros(14, 3, 8, 8)
    images[:, 0, 0, 0] = predicted.float()
    ds = BiasDataset(images=images, labels=labels, female=female)
    model = PixelModel().train()
    res = group_accuracy(model, ds)
    assert model.training  # flag restored
    assert res["female doctor"] == {"accuracy": 0.25, "correct": 1, "n": 4}
    assert res["male doctor"] == {"accuracy": 1.0, "correct": 2, "n": 2}
    assert res["female nurse"] == {"accuracy": 1.0, "correct": 3, "n": 3}
    assert res["male nurse"] == {"accuracy": 0.4, "correct": 2, "n": 5}
    assert res["all"] == {"accuracy": 8 / 14, "correct": 8, "n": 14}
    table = group_table({"biased": res, "flipped": res})
    assert "25.0% (1/4)" in table and table.splitlines()[-1].split()[1:] == ["75.0", "pts", "75.0", "pts"]
    # without gender, the groups are the classes
    res2 = group_accuracy(model, BiasDataset(images=images, labels=labels))
    assert list(res2) == ["doctor", "nurse", "all"]
    assert res2["doctor"]["correct"] == 3 and res2["nurse"]["correct"] == 5


def test_flip_count_counts_changed_predictions_only():
    # PixelModel predicts class round(x[0, 0, 0]); the edit changes that pixel on 3 of 6 images
    original = torch.zeros(6, 3, 4, 4)
    original[:, 0, 0, 0] = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.2, 0.9])
    edited = original.clone()
    edited[0, 0, 0, 0] = 1.0      # 0 -> 1: flips
    edited[3, 0, 0, 0] = 0.0      # 1 -> 0: flips
    edited[4, 0, 0, 0] = 0.8      # 0 -> 1: flips
    edited[5, 0, 0, 0] = 0.7      # the logits change, the prediction (1) does not
    edited[:, 1] = 0.5            # another channel: the model ignores it
    model = PixelModel().train()
    assert bias.flip_count(model, original, edited) == 3
    assert bias.flip_count(model, original, edited, batch_size=4) == 3
    assert bias.flip_count(model, original, original) == 0
    assert model.training  # flag restored
    assert isinstance(bias.flip_count(model, original, edited), int)
    with pytest.raises(ValueError, match="differ in shape"):
        bias.flip_count(model, original, edited[:5])


def test_part_saliency_share_on_hand_made_maps():
    parts = {"left": torch.zeros(2, 2, 4, dtype=torch.bool), "right": torch.zeros(2, 2, 4, dtype=torch.bool)}
    parts["left"][:, :, :1] = True   # 2 of 8 pixels
    parts["right"][:, :, 1:] = True  # 6 of 8 pixels
    maps = torch.tensor([[[1.0, 0.0, 2.0, -5.0], [3.0, 1.0, 1.0, 0.0]],   # left 4, right 4 (-5 ignored)
                         [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 6.0]]])   # left 0, right 6
    res = part_saliency_share(maps, parts)
    assert torch.allclose(res.share["left"], torch.tensor([0.5, 0.0]))
    assert torch.allclose(res.share["right"], torch.tensor([0.5, 1.0]))
    assert torch.allclose(res.area["left"], torch.tensor([0.25, 0.25]))
    assert torch.allclose(res.ratio()["left"], torch.tensor([2.0, 0.0]))
    mean = res.mean()
    assert mean["left"] == pytest.approx((0.25, 0.25)) and mean["right"] == pytest.approx((0.75, 0.75))
    assert res.mean(torch.tensor([True, False]))["right"] == pytest.approx((0.5, 0.75))
    # a map without positive mass gives NaN shares and a warning
    with pytest.warns(UserWarning, match="no positive mass"):
        empty = part_saliency_share(-maps.abs(), parts)
    assert torch.isnan(empty.share["left"]).all()
    # a constant low-resolution map is upsampled: its shares equal the areas
    const = part_saliency_share(torch.ones(2, 1, 2), parts)
    assert torch.allclose(const.share["right"], const.area["right"])


def test_part_saliency_share_on_generated_masks(test32):
    # a map that is 1 on the tie and 0 elsewhere puts all its mass on the tie
    maps = test32.parts["tie"].float() + 1e-3 * test32.parts["background"].float()
    sel = test32.tie
    res = part_saliency_share(maps[sel], {k: v[sel] for k, v in test32.parts.items()})
    total = sum(res.share[k] for k in PARTS)
    assert torch.allclose(total, torch.ones_like(total))
    assert (res.share["tie"] > 0.9).all() and (res.area["tie"] < 0.1).all()
    by_group = res.by_group(test32.subset(sel))
    assert math.isnan(by_group["female doctor"]["tie"][0])  # no female figure wears a tie
    assert by_group["male nurse"]["tie"][0] > 0.9


# --------------------------------------------------------------------------- own photos
def _write(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((10, 12, 3), colour, np.uint8))


def test_load_bias_folder_with_and_without_gender(tmp_path):
    for cls in ("doctor", "nurse"):
        for gender, n in (("female", 2), ("male", 1)):
            for j in range(n):
                _write(tmp_path / "g" / cls / gender / f"{j}.png", 40 * j)
        _write(tmp_path / "c" / cls / "a.png", 10)
    ds = load_bias_folder(tmp_path / "g", size=16)
    assert ds.images.shape == (6, 3, 16, 16)
    assert ds.counts() == {"female doctor": 2, "male doctor": 1, "female nurse": 2, "male nurse": 1}
    plain = load_bias_folder(tmp_path / "c", size=16)
    assert plain.groups == ("doctor", "nurse") and plain.labels.tolist() == [0, 1]
    with pytest.raises(FileNotFoundError, match="nurse"):
        load_bias_folder(tmp_path / "g" / "doctor")


def test_drawing_options_plain_background_noise_and_cue_size():
    base = make_bias_dataset("test", size=SIZE, seed=2)
    plain = make_bias_dataset("test", size=SIZE, seed=2, background="plain")
    for i in range(5):  # a plain background is the wall colour, everywhere
        bg = plain.images[i].permute(1, 2, 0)[plain.parts["background"][i]]
        assert torch.allclose(bg, torch.tensor(plain.params[i]["wall"], dtype=torch.float32).expand_as(bg))
    noisy = make_bias_dataset("test", size=SIZE, seed=2, noise=0.05)
    assert all(torch.equal(noisy.parts[k], base.parts[k]) for k in PARTS)  # noise leaves the masks alone
    assert 0.01 < (noisy.images - base.images).abs().mean() < 0.06
    big = make_bias_dataset("test", size=SIZE, seed=2, cue_size=1.5, accessories=False)
    for part in ("stethoscope", "clipboard"):
        assert big.parts[part].sum() > 1.5 * base.parts[part].sum()
    assert not big.parts["accessories"].any()
