"""What every method of ``vislib.attribution.METHODS`` promises (DESIGN.md conventions)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from _tiny_models import Exploding, tiny_images, tiny_net
from vislib import attribution as A
from vislib import hooks
from vislib.models import imagenet

NAMES = list(A.METHODS)
MODEL_FREE = tuple(r.name for r in A.CATALOGUE if not r.uses_model)
MODEL_METHODS = [n for n in NAMES if n not in MODEL_FREE]
CLASS_AGNOSTIC = tuple(r.name for r in A.CATALOGUE if not r.class_specific)
#: Small settings that keep the loops short (chunks that cross image boundaries where there are chunks).
OPTIONS = {"occlusion": dict(patch=4, stride=4), "ablation_cam": dict(batch_size=3),
           "smoothgrad": dict(n=4, batch_size=3), "integrated_gradients": dict(steps=6, batch_size=4),
           "score_cam": dict(batch_size=5)}


def call(name, model, images, target=None, **options):
    return A.METHODS[name](model, images, target, **{**OPTIONS.get(name, {}), **options})


def test_registry_is_derived_from_the_catalogue():
    import inspect

    from vislib import plot, widgets
    names = [r.name for r in A.CATALOGUE]
    assert NAMES == names and len(set(names)) == len(names)
    assert A.LAYER_METHODS == tuple(r.name for r in A.CATALOGUE if r.takes_layer)
    assert plot.METHOD_COLOURS == {r.name: r.colour for r in A.CATALOGUE}
    assert widgets.CAM_METHODS == {r.name: r.display for r in A.CATALOGUE if r.takes_layer}
    for r in A.CATALOGUE:
        params = inspect.signature(r.fn).parameters
        assert r.fn is getattr(A, r.name) and r.fn.__name__ == r.name
        assert list(params)[:3] == ["model", "images", "target"], r.name
        assert ("layer" in params) == r.takes_layer, r.name
        assert params["layer"].kind is inspect.Parameter.KEYWORD_ONLY if r.takes_layer else True
        assert r.display and r.cost
        if r.uses_model:          # every method names its paper, in the record and in its docstrings
            docs = r.fn.__doc__ + (sys.modules[r.fn.__module__].__doc__ or "")
            assert r.paper and r.paper.split()[0].strip(",") in docs, r.name
    table = A.method_table()          # the README's method table, one row per method
    assert all(f"| `{n}` |" in table for n in names) and table.count("\n") == len(names) + 1
    readme = Path(__file__).resolve().parent.parent / "README.md"
    assert table in readme.read_text(), "README's method table is stale: paste attribution.method_table()"
    # the seven new methods are there
    assert {"smoothgrad", "integrated_gradients", "score_cam", "xgradcam", "layercam", "hirescam",
            "eigencam"} <= set(names)


@pytest.mark.parametrize("name", NAMES)
def test_batch_gives_the_maps_of_its_images_one_by_one(name):
    model, x = tiny_net(), tiny_images(3)
    batch = call(name, model, x)
    assert batch.shape == (3, 12, 12) and batch.dtype == x.dtype and batch.device == x.device
    assert torch.isfinite(batch).all() and batch.abs().sum() > 0
    singles = torch.cat([call(name, model, x[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, singles)


@pytest.mark.parametrize("name", MODEL_METHODS)
def test_target_rules(name):
    model, x = tiny_net(), tiny_images(3)
    predicted = model(x).argmax(dim=1)
    default = call(name, model, x)
    torch.testing.assert_close(default, call(name, model, x, predicted))
    torch.testing.assert_close(default, call(name, model, x, predicted.tolist()))
    one = call(name, model, x, 4)
    torch.testing.assert_close(one, call(name, model, x, [4, 4, 4]))
    per_image = call(name, model, x, [4, 0, 4])
    torch.testing.assert_close(per_image[[0, 2]], one[[0, 2]])
    if name in CLASS_AGNOSTIC:
        torch.testing.assert_close(per_image, one)          # the class is checked, but does not matter
    else:
        assert not torch.allclose(per_image[1], one[1])     # the class matters
    for bad in (5, -1, [0, 1, 7]):
        with pytest.raises(ValueError, match="out of range"):
            call(name, model, x, bad)
    with pytest.raises(ValueError, match="batch of 3"):
        call(name, model, x, [0, 1])


def snapshot(model):
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "training": [(n, m.training) for n, m in model.named_modules()],
        "requires_grad": [(n, p.requires_grad) for n, p in model.named_parameters()],
        "grad": [(n, None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()],
        "modules": [(n, id(m)) for n, m in model.named_modules()],
        "inplace": [(n, getattr(m, "inplace", None)) for n, m in model.named_modules()],
    }


def assert_unchanged(model, before):
    after = snapshot(model)
    for key in ("training", "requires_grad", "modules", "inplace"):
        assert after[key] == before[key], key
    for k, v in before["state"].items():
        assert torch.equal(v, after["state"][k]), k
    for (n, g0), (_, g1) in zip(before["grad"], after["grad"]):
        assert (g0 is None and g1 is None) or torch.equal(g0, g1), n
    assert hooks.hook_count(model) == 0


def odd_model():
    """A model in train mode, with one frozen parameter and a stale ``.grad``."""
    model = tiny_net().train()
    model.bn1.eval()
    model.conv1.weight.requires_grad_(False)
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    return model


@pytest.mark.parametrize("name", NAMES)
def test_model_left_as_found_and_images_untouched(name):
    model = odd_model()
    x = tiny_images(2)
    x_before = x.clone()
    before = snapshot(model)
    call(name, model, x)
    assert_unchanged(model, before)
    assert torch.equal(x, x_before) and not x.requires_grad and x.grad is None
    # images that require grad: the map is a plain tensor and the images get no .grad
    x.requires_grad_()
    maps = call(name, model, x)
    assert not maps.requires_grad and x.grad is None


@pytest.mark.parametrize("at", [0, 1, 2], ids=["in-backward", "first-forward", "second-forward"])
@pytest.mark.parametrize("name", NAMES)
def test_no_hook_left_after_an_exception(name, at):
    model = Exploding(odd_model(), at=at)
    before = snapshot(model)
    raised = False
    try:
        call(name, model, tiny_images(2))
    except RuntimeError as error:
        raised = True
        assert "boom" in str(error) or "must not reach" in str(error)
    if at == 1 and name not in MODEL_FREE:
        assert raised
    if at == 2 and name in ("occlusion", "ablation_cam", "guided_gradcam"):
        assert raised
    assert_unchanged(model, before)


@pytest.mark.parametrize("name", NAMES)
def test_bad_images_get_clear_errors(name):
    model, x = tiny_net(), tiny_images(2)
    with pytest.raises(ValueError, match="3 colour channels"):
        call(name, model, x[:, :1])
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        call(name, model, x[0])
    with pytest.raises(TypeError, match="floating-point"):
        call(name, model, (x * 255).to(torch.uint8))
    assert hooks.hook_count(model) == 0


@pytest.mark.parametrize("name", A.LAYER_METHODS)
def test_unknown_layer_lists_the_valid_names(name):
    model = tiny_net()
    with pytest.raises(hooks.LayerNotFoundError, match="valid layer names.*'relu2'"):
        call(name, model, tiny_images(1), layer="layer9")
    assert hooks.hook_count(model) == 0


@pytest.mark.parametrize("name", NAMES)
def test_dtype_follows_the_images_and_no_grad_is_fine(name):
    model = tiny_net(dtype=torch.float32)
    x64 = tiny_images(2)
    with torch.no_grad():
        maps = call(name, model, x64)
    assert maps.dtype == torch.float64
    torch.testing.assert_close(maps, call(name, model, x64.float()).double(), rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    return imagenet("resnet18", pretrained=False)


@pytest.mark.parametrize("name", NAMES)
def test_torchvision_resnet18_with_inplace_and_reused_relus(name, resnet18):
    x = torch.rand(2, 3, 32, 32)
    before = snapshot(resnet18)
    options = {"occlusion": dict(patch=16, stride=16), "ablation_cam": dict(batch_size=256),
               "smoothgrad": dict(n=3), "integrated_gradients": dict(steps=3),
               "score_cam": dict(batch_size=256)}.get(name, {})
    # at 32 px the default layer4 is 1x1, an error since issue 15: CAM (which needs the pooled
    # layer4) gets 64 px images, where layer4 is 2x2; the other layer methods read layer3 (2x2)
    if name == "cam":
        x = torch.rand(2, 3, 64, 64)
    elif name in A.LAYER_METHODS:
        options["layer"] = "net.layer3"
    maps = A.METHODS[name](resnet18, x, 7, **options)
    assert maps.shape == x.shape[:1] + x.shape[2:] and torch.isfinite(maps).all()
    assert_unchanged(resnet18, before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("name", NAMES)
def test_maps_come_back_on_the_images_device(name):
    model = tiny_net(dtype=torch.float32).cuda()
    x = tiny_images(2, dtype=torch.float32)
    cpu = call(name, model, x)
    assert cpu.device.type == "cpu"
    gpu = call(name, model, x.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-5)
