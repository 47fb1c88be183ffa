"""The course dataset: deterministic, exact masks, the sizes and speed the course relies on."""
import numpy as np
import pytest
import torch

from vislib import data


def test_same_seed_same_images_other_seed_other_images():
    a = data.make_shapes(40, size=32, seed=3)
    b = data.make_shapes(40, size=32, seed=3)
    c = data.make_shapes(40, size=32, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.images, c.images)


@pytest.mark.parametrize("size", [32, 64])
def test_shapes_and_ranges(size):
    ds = data.make_shapes(64, size=size, seed=0)
    assert ds.images.shape == (64, 3, size, size) and ds.images.dtype == torch.float32
    assert ds.masks.shape == (64, size, size) and ds.masks.dtype == torch.bool
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    assert set(ds.labels.tolist()) <= set(range(len(data.SHAPE_CLASSES)))
    # Every object is visible: at least 2 % of the image.
    assert (ds.masks.float().mean((1, 2)) > 0.02).all()


def test_all_eight_classes_appear_roughly_uniformly():
    ds = data.make_shapes(800, size=32, seed=1)
    counts = torch.bincount(ds.labels, minlength=8)
    assert len(data.SHAPE_CLASSES) == 8
    assert counts.min() > 60 and counts.max() < 140


def test_mask_covers_exactly_the_drawn_object():
    """Re-draw each background alone: the image differs from it exactly on the mask."""
    ds = data.make_shapes(30, size=64, seed=5)
    rng = np.random.default_rng(5)
    pool = data._background_pool(64)
    labels = rng.integers(len(data.SHAPE_CLASSES), size=30)
    assert labels.tolist() == ds.labels.tolist()
    for i in range(30):
        background = torch.from_numpy(data._background(rng, 64, pool, 0.7).astype(np.float32)).permute(2, 0, 1)
        data._draw(rng, int(labels[i]), 64, np.zeros((64, 64, 3), np.float32))  # advance the generator
        changed = (ds.images[i] != background).any(0)
        outside = ~ds.masks[i]
        assert torch.equal(ds.images[i][:, outside], background[:, outside])
        # Inside the mask the painted colour replaced the photo almost everywhere (it can match
        # the photo by chance only on a handful of pixels).
        assert changed[ds.masks[i]].float().mean() > 0.98


def test_object_colour_is_uniform_up_to_shading():
    ds = data.make_shapes(20, size=64, seed=2)
    for i in range(20):
        p = ds.params[i]
        colour = torch.tensor(p["colour"])
        pixels = ds.images[i][:, ds.masks[i]]  # [3, n]
        ratio = pixels / colour[:, None].clamp_min(1e-6)
        assert ratio.min() > 0.84 and ratio.max() < 1.0 + 1e-5


def test_mask_centroid_matches_drawn_centre():
    ds = data.make_shapes(50, size=64, seed=7)
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    for i in range(50):
        if ds.params[i]["class"] in ("crescent", "arrow", "triangle"):
            continue  # centroid is off-centre for these shapes by construction
        m = ds.masks[i].float()
        cx = (m * xs).sum() / m.sum()
        cy = (m * ys).sum() / m.sum()
        x0, y0 = ds.params[i]["center"]
        assert abs(cx - (x0 - 0.5)) < 1.5 and abs(cy - (y0 - 0.5)) < 1.5


def test_dataset_statistics_match_the_constants_models_normalise_with():
    ds = data.make_shapes(4000, size=64, seed=0)
    mean = ds.images.mean((0, 2, 3))
    std = ds.images.std((0, 2, 3))
    assert torch.allclose(mean, torch.tensor(data.SHAPES_MEAN), atol=0.01)
    assert torch.allclose(std, torch.tensor(data.SHAPES_STD), atol=0.01)


def test_two_object_image_has_two_disjoint_masks_of_two_classes():
    image, masks, (a, b) = data.two_object_image("circle", "star", size=64, seed=0)
    assert image.shape == (1, 3, 64, 64) and masks.shape == (2, 64, 64)
    assert (a, b) == (data.SHAPE_CLASSES.index("circle"), data.SHAPE_CLASSES.index("star"))
    assert masks[0].sum() > 50 and masks[1].sum() > 50
    assert not (masks[0] & masks[1]).any()
    with pytest.raises(ValueError, match="different classes"):
        data.two_object_image("star", "star")


def test_offline_photos_are_rgb_tensors():
    ph = data.photos(size=96)
    assert {"cat", "coffee", "astronaut", "rocket", "motorcycle", "grace_hopper"} <= set(ph)
    for name, img in ph.items():
        assert img.shape == (3, 96, 96), name
        assert 0 <= img.min() and img.max() <= 1 and img.std() > 0.05


def test_image_folder_loader_reads_classes_and_names_a_corrupt_file(tmp_path):
    import cv2

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for k in range(2):
            img = np.full((20, 30, 3), 40 * k + (100 if cls == "b" else 0), np.uint8)
            cv2.imwrite(str(tmp_path / cls / f"{k}.png"), img)
    ds = data.load_image_folder(tmp_path, size=16)
    assert ds.classes == ("a", "b") and ds.labels.tolist() == [0, 0, 1, 1]
    assert ds.images.shape == (4, 3, 16, 16)
    assert torch.allclose(ds.images[3], torch.full((3, 16, 16), 140 / 255))
    (tmp_path / "b" / "broken.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(data.UnreadableImageError, match="broken.jpg"):
        data.load_image_folder(tmp_path, size=16)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no class sub-folders"):
        data.load_image_folder(tmp_path)
