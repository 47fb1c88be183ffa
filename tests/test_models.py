"""Models: pixel-space normalisation, committed checkpoints, offline ImageNet behaviour."""
import time

import pytest
import torch
from torchvision import transforms

from vislib import data, models, train


def test_normalize_layer_equals_the_torchvision_transform():
    x = torch.rand(4, 3, 20, 20)
    layer = models.Normalize(models.IMAGENET_MEAN, models.IMAGENET_STD)
    expected = torch.stack([transforms.Normalize(models.IMAGENET_MEAN, models.IMAGENET_STD)(img) for img in x])
    assert torch.allclose(layer(x), expected, atol=1e-6)
    assert torch.allclose(layer.bias, -torch.tensor(models.IMAGENET_MEAN) / torch.tensor(models.IMAGENET_STD))
    # Black (0) in pixel space is -mean/std after normalisation, the pitfall of evaluation.md §8.11.
    assert torch.allclose(layer(torch.zeros(1, 3, 1, 1)).flatten(), layer.bias)


def test_with_normalization_wraps_any_model():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    wrapped = models.with_normalization(net, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    x = torch.rand(3, 3, 2, 2)
    assert torch.allclose(wrapped(x), net((x - 0.5) / 0.25))
    with pytest.raises(ValueError, match="positive"):
        models.Normalize((0, 0, 0), (1, 0, 1))


@pytest.mark.parametrize("arch", ["vgg", "resnet"])
def test_course_models_take_32_and_64_pixel_images(arch):
    m = models.course_model(arch).eval()
    for size in (32, 64):
        assert m(torch.rand(2, 3, size, size)).shape == (2, 8)


@pytest.mark.parametrize("name", ["vgg", "resnet"])
def test_committed_checkpoint_reaches_its_manifest_accuracy(name):
    entry = models.manifest()[name]
    model = models.load_course_model(name)
    assert not model.training and model.classes == list(data.SHAPE_CLASSES)
    test = data.make_shapes(entry["test_split"]["n"], size=entry["image_size"], seed=entry["test_split"]["seed"])
    acc = train.accuracy(model, test.images, test.labels)
    assert acc >= 0.95
    assert acc == pytest.approx(entry["test_accuracy"], abs=0.003)


def test_checkpoints_load_with_weights_only(monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    models.load_course_model("resnet")
    assert calls == [True]


def test_unknown_course_model_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="available"):
        models.load_course_model("alexnet")


def test_missing_imagenet_weights_fail_at_once_without_network(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert not models.imagenet_available("resnet18")
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        models.imagenet("vgg16")
    assert time.perf_counter() - start < 2.0
    assert "vgg16" in str(err.value) and "download=True" in str(err.value)
    with pytest.raises(ValueError, match="valid"):
        models.imagenet("alexnet")


def test_random_weight_imagenet_model_is_wrapped():
    m = models.imagenet("resnet18", pretrained=False)
    assert isinstance(m[0], models.Normalize) and len(m.classes) == 1000
    assert m(torch.rand(1, 3, 64, 64)).shape == (1, 1000)
