"""Issue 15, items 1-3: bad input gets a clear error up front; valid input keeps its numbers.

1. images outside [0, 1] (0-255, [-1, 1]) are rejected by every method and evaluation, with a
   hint; ``vislib.checks.any_pixel_range()`` (or ``check_images(..., pixel_range=False)``) opts out;
2. CAM methods on a 1x1 layer, or on images so small that the layer's map is 1x1, name the layer,
   its size and the valid layers; images too small for the network say the minimum size;
3. arguments (string targets, float batch sizes, NaN numbers, NumPy maps, size 0, ROAR's methods
   and options, the pointing game's tolerance) are checked before any work.

Every error test also checks that no hook is left behind and the model is unchanged.
"""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from _tiny_models import Exploding, LinearNet, tiny_images, tiny_net
from vislib import attribution as A
from vislib import checks, hooks, maps
from vislib.evaluation import (cascading_randomization, dilate, energy_share, fill_pixels, noisy_linear_imputation,
                               pixel_perturbation, pointing_game, removal_mask, roar, saliency_rank,
                               spearman_similarity)
from vislib.evaluation._common import compute_maps
from vislib.models import Normalize, course_model

NAMES = list(A.METHODS)
MODEL_FREE = tuple(r.name for r in A.CATALOGUE if not r.uses_model)
OPTIONS = {"occlusion": dict(patch=4, stride=4), "ablation_cam": dict(batch_size=3),
           "smoothgrad": dict(n=3, batch_size=3), "integrated_gradients": dict(steps=4, batch_size=4),
           "score_cam": dict(batch_size=5)}


def call(name, model, images, target=None, **options):
    return A.METHODS[name](model, images, target, **{**OPTIONS.get(name, {}), **options})


def state(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_untouched(model: nn.Module, before: dict) -> None:
    assert hooks.hook_count(model) == 0
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


class Counting(nn.Module):
    """Wraps a model and counts its forward passes (a check 'up front' runs none)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.calls = 0
        if hasattr(model, "vislib_default_layer"):
            self.vislib_default_layer = "model." + model.vislib_default_layer

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        return self.model(x)


# =========================================================================== 1. pixel range
@pytest.mark.parametrize("name", NAMES)
def test_every_method_rejects_0_255_and_minus_1_1_images(name):
    model, x = tiny_net(), tiny_images(2)
    before = state(model)
    with pytest.raises(ValueError, match=r"values in \[0\.\d+, 25\d\.\d+\].*0-255 pixel values: divide by 255"):
        call(name, model, x * 255)
    with pytest.raises(ValueError, match=r"look normalised \(\[-1, 1\].*before normalising.*any_pixel_range"):
        call(name, model, 2 * x - 1)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]; clamp them"):
        call(name, model, x * 1.01 + 1e-3)
    assert_untouched(model, before)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in MODEL_FREE])
def test_the_opt_out_gives_the_maps_of_the_equivalent_pixel_space_model(name):
    """Identity: a model normalising by (255 mean, 255 std) on 255 x gives the logits of the
    original on x, so every map that does not scale with the input is the same; input-gradient
    maps are divided by 255 (dS/d(255 x) = dS/dx / 255)."""
    model, x = tiny_net(), tiny_images(2)
    scaled = tiny_net()
    scaled.normalize = Normalize([255 * m for m in scaled.normalize.mean.flatten().tolist()],
                                 [255 * s for s in scaled.normalize.std.flatten().tolist()]).double()
    torch.testing.assert_close(scaled(255 * x), model(x))
    options, scaled_options = {}, {}
    if name == "occlusion":
        options = scaled_options = {"patch": 4, "stride": 4, "fill": "black"}
    if name == "smoothgrad":       # its noise is drawn per image's pixels: give the same noise, in pixel units
        noise = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        options, scaled_options = {"noise": 0.1 * noise}, {"noise": 25.5 * noise}
    reference = call(name, model, x, **options)
    with checks.any_pixel_range():
        opted = call(name, scaled, 255 * x, **scaled_options)
    assert checks.pixel_range_checked()                            # restored on exit
    # pure input gradients (gradient, guided backprop, SmoothGrad, ...) scale by 1/255; gradient x
    # input, IG, CAMs, occlusion, FullGrad (psi rescales per image) do not
    ratio = (opted.abs().max() / reference.abs().max()).item()
    factor = min((1.0, 1 / 255), key=lambda f: abs(math.log(ratio / f)))
    torch.testing.assert_close(opted, reference * factor, rtol=1e-6, atol=1e-9)



def test_the_opt_out_is_explicit_scoped_and_per_call():
    x = tiny_images(2)
    with pytest.raises(ValueError, match="divide by 255"):
        checks.check_images(x * 255)
    assert checks.check_images(x * 255, pixel_range=False) is not None          # one call
    with pytest.raises(RuntimeError, match="inside"):
        with checks.any_pixel_range():
            checks.check_images(x * 255)
            raise RuntimeError("inside")
    assert checks.pixel_range_checked()                                          # restored after an error
    with checks.any_pixel_range():
        with checks.any_pixel_range():
            pass
        checks.check_images(x * 255)                                            # nested: still off

    @checks.any_pixel_range()
    def decorated():
        return checks.check_images(x * 255)

    decorated()
    seen = []                                        # another thread is not affected by this one's block
    with checks.any_pixel_range():
        t = threading.Thread(target=lambda: seen.append(checks.pixel_range_checked()))
        t.start()
        t.join()
    assert seen == [True]


def test_rounding_excursions_pass_and_real_ones_do_not():
    x = tiny_images(2, dtype=torch.float32)
    checks.check_images(x.clamp(0, 1))
    checks.check_images(torch.nn.functional.interpolate(x, size=(31, 29), mode="bilinear"))
    checks.check_images(torch.cat([x[:, :, :1] + 1e-6 - x[:, :, :1], x[:, :, 1:]], dim=2).clamp(min=-1e-6))
    checks.check_images(torch.full((1, 3, 4, 4), 1 + 5e-7))
    with pytest.raises(ValueError, match="outside"):
        checks.check_images(torch.full((1, 3, 4, 4), 1 + 1e-4))
    with pytest.raises(ValueError, match="outside"):
        checks.check_images(torch.full((1, 3, 4, 4), -1e-4, dtype=torch.float64))
    # float16's rounding near 1 is 2^-10: one step above 1 passes, ten steps do not
    assert checks.pixel_tolerance(torch.float16) == pytest.approx(4 * 2 ** -10)
    checks.check_images(torch.full((1, 3, 4, 4), 1 + 2 ** -10, dtype=torch.float16))
    with pytest.raises(ValueError, match="outside"):
        checks.check_images(torch.full((1, 3, 4, 4), 1 + 10 * 2 ** -10, dtype=torch.float16))


def test_only_the_callers_images_are_checked_not_the_noisy_copies():
    """SmoothGrad's copies with sigma = 1 leave [0, 1] by far; IG's path from a grey baseline too
    would not: both run. The map equals the mean gradient over the same noise given explicitly."""
    model, x = tiny_net(), tiny_images(2)
    noise = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert ((x[:1] + noise) > 1).any() and ((x[:1] + noise) < 0).any()
    maps = A.smoothgrad(model, x, noise=noise)
    grads = []
    for eps in noise:
        xi = (x + eps).requires_grad_()
        logits = model(xi)
        (g,) = torch.autograd.grad(logits.gather(1, model(x).argmax(1, keepdim=True)).sum(), xi)
        grads.append(g)
    torch.testing.assert_close(maps, torch.stack(grads).mean(0).abs().amax(1))
    A.smoothgrad(model, x, n=3, sigma=1.0)


def test_evaluations_reject_out_of_range_images_before_any_forward_pass():
    model, x = Counting(tiny_net()), tiny_images(4)
    for run in (lambda: pixel_perturbation(model, x * 255, torch.rand(4, 12, 12), 0.5),
                lambda: compute_maps(model, 2 * x - 1, "gradient"),
                lambda: cascading_randomization(model, x * 255, ["gradient"], progress=False),
                lambda: roar(model, (x * 255, torch.zeros(4)), (x, torch.zeros(4)), ["gradient"], progress=False)):
        with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
            run()
    assert model.calls == 0 and hooks.hook_count(model) == 0
    with checks.any_pixel_range():                               # the opt-out reaches the evaluations too
        torch.testing.assert_close(compute_maps(model, x, "gradcam"), compute_maps(model, x, "gradcam"))


# =========================================================================== 2. CAM layers and small images
CAM_NAMES = list(A.LAYER_METHODS)


@pytest.mark.parametrize("name", CAM_NAMES)
def test_cam_on_a_1x1_layer_names_the_layer_its_size_and_the_valid_layers(name):
    model, x = tiny_net(), tiny_images(2)
    before = state(model)
    with pytest.raises(ValueError, match=r"layer 'gap' outputs 1x1 feature maps .* for images of 12x12 px.*"
                                         r"valid \(spatial\) layers.*'conv3' \(6x6\).*'relu2' \(6x6\)"):
        call(name, model, x, layer="gap")
    with pytest.raises(ValueError, match=r"layer 'fc' outputs shape \(2, 5\).*not feature maps.*'relu2' \(6x6\)"):
        call(name, model, x, layer="fc")
    # 2x2 images: the default layer relu2 (stride 2) is 1x1; the 2x2 layers before it are valid
    with pytest.raises(ValueError, match=r"'relu2' outputs 1x1 .* images of 2x2 px.*'conv2' \(2x2\)") as info:
        call(name, model, tiny_images(2, size=2))
    assert "'conv3'" not in str(info.value)                            # conv3 is 1x1 there too
    assert_untouched(model, before)


def test_no_spatial_layer_at_all_says_use_larger_images():
    model = course_model("resnet").eval()
    model.vislib_input_size = 64
    with pytest.raises(
ValueError, match=r"no layer of this model has a feature map larger than 1x1 at 1x1 px: "
                                         r"use larger images \(the model was built for 64x64 px\)"):
        A.gradcam(model, torch.rand(1, 3, 1, 1))
    assert hooks.hook_count(model) == 0


def test_gradcam_keeps_its_numbers_down_to_the_smallest_valid_size():
    """Hand-computed Grad-CAM (features/head of the tiny net) at 12 px and at 3 px, where relu2 is 2x2."""
    model = tiny_net()
    for size in (12, 3):
        x = tiny_images(2, size=size)
        a = model.features(x).detach().requires_grad_()
        logits = model.head(a)
        c = logits.argmax(1)
        (g,) = torch.autograd.grad(logits.gather(1, c[:, None]).sum(), a)
        cam = torch.einsum("bk,bkhw->bhw", g.mean((2, 3)), a).clamp(min=0)
        expected = torch.nn.functional.interpolate(cam[:, None], size=(size, size), mode="bilinear")[:, 0]
        assert a.shape[-2:] == ((6, 6) if size == 12 else (2, 2))
        torch.testing.assert_close(A.gradcam(model, x), expected.detach())


def test_images_too_small_for_the_network_give_the_minimum_size():
    vgg = course_model("vgg").eval()                      # three 2x2 max-pools: 8 px is the least
    before = state(vgg)
    for run in (lambda: A.gradient(vgg, torch.rand(1, 3, 4, 4)),
                lambda: A.gradcam(vgg, torch.rand(2, 3, 5, 7)),
                lambda: pixel_perturbation(vgg, torch.rand(2, 3, 4, 4), torch.rand(2, 4, 4), 0.5)):
        with pytest.raises(ValueError, match=r"images of \d+x\d+ px are too small for this model.*"
                                             r"Output size is too small.*smallest square input it runs on is 8x8 px"):
            run()
    assert_untouched(vgg, before)
    with torch.no_grad():                                 # the minimum, checked independently
        vgg(torch.zeros(1, 3, 8, 8))
        with pytest.raises(RuntimeError):
            vgg(torch.zeros(1, 3, 7, 7))
    assert A.gradient(vgg, torch.rand(1, 3, 8, 8)).shape == (1, 8, 8)


def test_other_forward_errors_keep_their_message_and_gain_the_shape():
    linear = LinearNet(size=12).double()                 # runs at exactly one size: 12 px
    with pytest.raises(RuntimeError, match=r"failed on images of shape \(1, 3, 8, 8\) \(8x8 px\): mat1 and mat2"):
        A.gradient(linear, tiny_images(1, size=8))
    boom = Exploding(tiny_net(), at=1)                   # fails whatever the size: still RuntimeError, 'boom'
    with pytest.raises(RuntimeError, match="boom"):
        A.gradient(boom, tiny_images(1))
    assert hooks.hook_count(boom) == 0


# =========================================================================== 3. arguments up front
@pytest.mark.parametrize("name", [n for n in NAMES if n not in MODEL_FREE])
def test_a_string_target_is_refused_before_any_forward_pass(name):
    model = Counting(tiny_net())
    with pytest.raises(TypeError, match=r"got the string 'doctor': class names are not accepted"):
        call(name, model, tiny_images(2), "doctor")
    for bad, what in ((1.0, r"the float 1\.0 \(use int\(1\.0\)\)"), (True, "the bool"),
                      ([1, "2"], "element 1 of the target is '2'"), (torch.tensor([0.0, 1.0]), "integer class indices")):
        with pytest.raises(TypeError, match=what):
            call(name, model, tiny_images(2), bad)
    assert model.calls == 0 and hooks.hook_count(model) == 0


def test_integer_targets_of_every_kind_give_the_same_maps():
    model, x = tiny_net(), tiny_images(2)
    reference = A.gradcam(model, x, torch.tensor([1, 3]))
    for target in ([1, 3], (1, 3), np.array([1, 3]), [np.int64(1), np.int64(3)], [torch.tensor(1), torch.tensor(3)]):
        torch.testing.assert_close(A.gradcam(model, x, target), reference)
    torch.testing.assert_close(A.gradcam(model, x, np.int64(3)), A.gradcam(model, x, 3))


@pytest.mark.parametrize("name", ["ablation_cam", "occlusion", "smoothgrad", "integrated_gradients", "score_cam"])
def test_a_float_batch_size_is_a_type_error(name):
    model = tiny_net()
    with pytest.raises(TypeError, match=r"batch_size must be an int >= 1, got float 4\.0 \(use int\(4\.0\)\)"):
        call(name, model, tiny_images(1), batch_size=4.0)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        call(name, model, tiny_images(1), batch_size=0)
    assert hooks.hook_count(model) == 0


def test_evaluations_check_batch_sizes_and_targets_before_any_forward_pass():
    model, x = Counting(tiny_net()), tiny_images(4)
    m = torch.rand(4, 12, 12)
    cases = [
        (lambda: pixel_perturbation(model, x, m, 0.5, batch_size=2.5), TypeError, "batch_size must be an int"),
        (lambda: pixel_perturbation(model, x, "gradient", 0.5, map_batch_size=0), ValueError, "map_batch_size"),
        (lambda: pixel_perturbation(model, x, "random", 0.5, n_seeds=1.5), TypeError, "n_seeds must be an int"),
        (lambda: pixel_perturbation(model, x, m, 0.5, target="doctor"), TypeError, "the string 'doctor'"),
        (lambda: pixel_perturbation(model, x, m, 0.5, fill="road", noise=math.nan), ValueError, "noise is NaN"),
        (lambda: compute_maps(model, x, "gradient", batch_size=2.0), TypeError, "batch_size must be an int"),
        (lambda: compute_maps(model, x, "gradient", target="doctor"), TypeError, "the string 'doctor'"),
        (lambda: compute_maps(model, x, "gradient", options=["n", 3]), TypeError, "must be a dict"),
        (lambda: cascading_randomization(model, x, "gradient", "doctor", progress=False), TypeError, "string"),
        (lambda: cascading_randomization(model, x, "gradient", batch_size=0.5, progress=False), TypeError,
         "batch_size"),
        (lambda: cascading_randomization(model, x, "gradient", method_options={"gradcam": {}}, progress=False),
         ValueError, r"method_options names \['gradcam'\], which are not among the methods \['gradient'\]"),
    ]
    for run, error, message in cases:
        with pytest.raises(error, match=message):
            run()
    assert model.calls == 0 and hooks.hook_count(model) == 0


@pytest.mark.parametrize("bad", [math.nan, -1.0, "2"])
def test_nan_and_bad_numbers_are_refused(bad):
    model, x = tiny_net(), tiny_images(1)
    error = TypeError if isinstance(bad, str) else ValueError
    message = "is NaN" if isinstance(bad, float) and math.isnan(bad) else "must be"
    runs = [lambda: A.smoothgrad(model, x, sigma=bad, n=2), lambda: A.ablation_cam(model, x, eps=bad),
            lambda: A.occlusion(model, x, patch=4, fill="blur", blur_sigma=bad),
            lambda: A.integrated_gradients(model, x, baseline="blur", blur_sigma=bad, steps=2),
            lambda: noisy_linear_imputation(x, torch.ones(1, 12, 12, dtype=torch.bool), noise=bad),
            lambda: fill_pixels(x, torch.ones(1, 12, 12, dtype=torch.bool), "road", noise=bad),
            lambda: maps.normalize(torch.rand(1, 4, 4), eps=bad)]
    for run in runs:
        with pytest.raises(error, match=message):
            run()
    if not isinstance(bad, str):
        with pytest.raises(ValueError, match="fill"):
            A.occlusion(model, x, patch=4, fill=math.nan if math.isnan(bad) else math.inf)
    assert hooks.hook_count(model) == 0


def test_numpy_maps_get_the_conversion_as_a_hint():
    model, x = tiny_net(), tiny_images(2)
    array = np.random.default_rng(0).random((2, 12, 12))
    mask = np.ones((2, 12, 12), dtype=bool)
    hint = r"got a NumPy array of shape \(2, 12, 12\): convert it with torch\.from_numpy"
    for run in (lambda: pixel_perturbation(model, x, array, 0.5), lambda: pointing_game(array, torch.from_numpy(mask)),
                lambda: pointing_game(torch.from_numpy(array), mask), lambda: energy_share(array, mask),
                lambda: saliency_rank(array), lambda: removal_mask(array, 0.5), lambda: maps.normalize(array),
                lambda: maps.upsample(array, 24), lambda: spearman_similarity(array, array),
                lambda: dilate(mask, 1)):
        with pytest.raises(TypeError, match=hint):
            run()
    with pytest.raises(TypeError, match=r"torch\.from_numpy\(images\)"):
        A.gradient(model, np.zeros((2, 12, 12, 3), dtype=np.uint8))
    with pytest.raises(TypeError, match="name .* or a callable"):     # the old message's promise is kept
        pixel_perturbation(model, x, array, 0.5)
    # the same maps as tensors give the same numbers as before
    torch.testing.assert_close(maps.normalize(torch.from_numpy(array)).max(), torch.tensor(1.0, dtype=torch.float64))


def test_size_zero_and_bad_sizes():
    m = torch.rand(2, 3, 3)
    for size in (0, (0, 4), (4,), 2.5, (4, -1)):
        with pytest.raises(ValueError, match=r"size must be a positive int or a pair \(H, W\)"):
            maps.upsample(m, size)
    # valid sizes keep their numbers: bilinear upsampling of a constant is that constant,
    # and one size or a pair give the same
    torch.testing.assert_close(maps.upsample(torch.full((1, 2, 2), 0.25), 5), torch.full((1, 5, 5), 0.25))
    torch.testing.assert_close(maps.upsample(m, 6), maps.upsample(m, (6, 6)))
    torch.testing.assert_close(maps.upsample(m, torch.Size([6, 6])), maps.upsample(m, (6, 6)))


# --------------------------------------------------------------------------- ROAR before the first retraining
SIZE = 8


def toy_roar_data(n: int, seed: int) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, SIZE, SIZE, generator=gen)
    labels = torch.randint(0, 2, (n,), generator=gen)
    images[:, :, 2:4, 2:4] = torch.where(labels.view(-1, 1, 1, 1) == 1, 0.9, 0.1)
    return images, labels


def linear_model() -> nn.Module:
    return nn.Sequential(Normalize((0.5, 0.5, 0.5), (0.29, 0.29, 0.29)), nn.Flatten(), nn.Linear(3 * SIZE * SIZE, 2))


def oracle(model, images, target=None):
    out = torch.zeros(len(images), SIZE, SIZE)
    out[:, 2:4, 2:4] = 1.0
    return out


def test_roar_checks_methods_maps_and_options_before_the_first_retraining():
    train_set, test_set = toy_roar_data(16, 0), toy_roar_data(16, 1)
    built = []

    def model_fn():
        built.append(1)
        return linear_model()

    kwargs = {"model_fn": model_fn, "train_kwargs": {"epochs": 1}, "progress": False, "fractions": (0.5,)}
    original = linear_model()
    np_pair = (np.zeros((16, SIZE, SIZE)), np.zeros((16, SIZE, SIZE)))
    nan_pair = (torch.full((16, SIZE, SIZE), math.nan), torch.zeros(16, SIZE, SIZE))

    def failing(model, images, target=None):
        raise RuntimeError("this method fails")

    cases = [
        ({"methods": ["gradient", "gradcamm"]}, ValueError, r"unknown method 'gradcamm'; valid names: \[.*'gradcam'"),
        ({"methods": {"given": np_pair}}, TypeError, "NumPy array.*torch.from_numpy"),
        ({"methods": {"given": nan_pair}}, ValueError, "train maps of 'given' contain NaN"),
        ({"methods": {"given": (torch.zeros(16, 4, 4), torch.zeros(16, 4, 4))}}, ValueError, "must have shapes"),
        ({"methods": [oracle], "method_options": {"orcale": {}}}, ValueError, r"method_options names \['orcale'\]"),
        ({"methods": [oracle], "train_kwargs": {"epoch": 1}}, ValueError, r"train_kwargs \['epoch'\] are not options"),
        ({"methods": [oracle], "train_kwargs": {"seed": 1}}, ValueError, r"train_kwargs \['seed'\].*seeds="),
        ({"methods": [oracle], "map_batch_size": 8.0}, TypeError, "map_batch_size must be an int"),
        ({"methods": [oracle], "noise": math.nan}, ValueError, "noise is NaN"),
        ({"methods": [oracle, failing]}, RuntimeError, "this method fails"),     # maps come before training
    ]
    for extra, error, message in cases:
        with pytest.raises(error, match=message):
            roar(original, train_set, test_set, **{**kwargs, **extra})
        assert built == [], message                                             # not one retraining started
    # valid input: the callable and its precomputed maps give the same accuracies, and the
    # k = 50 % cell equals a retraining done by hand on the same filled images
    from vislib.evaluation import dataset_mean
    from vislib.train import accuracy, train
    by_callable = roar(original, train_set, test_set, [oracle], random_control=False, **kwargs)
    given = (oracle(None, train_set[0]), oracle(None, test_set[0]))
    by_maps = roar(original, train_set, test_set, {"oracle": given}, random_control=False, **kwargs)
    assert torch.equal(by_callable.accuracy["oracle"], by_maps.accuracy["oracle"])
    colour = dataset_mean(original)
    filled = [fill_pixels(x, removal_mask(m, 0.5, "most", seed), "mean", mean=colour)
              for x, m, seed in ((train_set[0], given[0], 0), (test_set[0], given[1], 1))]
    torch.manual_seed(0)
    fresh = linear_model()
    train(fresh, filled[0], train_set[1], seed=0, epochs=1, batch_size=32, lr=5e-3, progress=False)
    assert by_callable.accuracy["oracle"][1, 0].item() == pytest.approx(accuracy(fresh, filled[1], test_set[1]))


# --------------------------------------------------------------------------- pointing game tolerance
def corner_case() -> tuple[Tensor, Tensor]:
    """Max at (0, 0), mask only at (7, 7): the distance is 7 sqrt(2) = 9.899 px."""
    m = torch.zeros(1, 8, 8)
    m[0, 0, 0] = 1.0
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[0, 7, 7] = True
    return m, mask


def test_pointing_game_tolerance_by_hand_and_capped_at_the_diagonal():
    m, mask = corner_case()
    assert pointing_game(m, mask, tolerance=9.8).hits.item() == 0.0
    assert pointing_game(m, mask, tolerance=9.9).hits.item() == 1.0
    diagonal = math.hypot(8, 8)
    for huge in (1e9, math.inf, diagonal):
        result = pointing_game(m, mask, tolerance=huge)
        assert result.hits.item() == 1.0 and result.chance.item() == 1.0
        assert result.tolerance == pytest.approx(diagonal)
    assert torch.equal(dilate(mask, 1e12), torch.ones_like(mask))


@pytest.mark.parametrize("bad, error, message", [(math.nan, ValueError, "tolerance is NaN"),
                                                 (-1, ValueError, "non-negative"),
                                                 ("2", TypeError, "tolerance must be a number")])
def test_pointing_game_refuses_bad_tolerances(bad, error, message):
    m, mask = corner_case()
    with pytest.raises(error, match=message):
        pointing_game(m, mask, tolerance=bad)


def test_neuron_gradient_checks_its_channel_and_position_types():
    model, x = tiny_net(), tiny_images(1)
    with pytest.raises(TypeError, match=r"channel must be an int >= 0, got float 1\.0 \(use int\(1\.0\)\)"):
        A.neuron_gradient(model, x, "conv3", 1.0)
    with pytest.raises(TypeError, match=r"position must be None or a pair \(row, column\) of ints"):
        A.neuron_gradient(model, x, "conv3", 1, (1.5, 2))
    assert hooks.hook_count(model) == 0
    # valid input keeps its numbers: the unit's gradient, by hand
    xi = x.clone().requires_grad_()
    captured = {}
    handle = model.conv3.register_forward_hook(lambda m, i, o: captured.setdefault("a", o))
    try:
        model(xi)
    finally:
        handle.remove()
    (g,) = torch.autograd.grad(captured["a"][0, 1, 2, 3], xi)
    torch.testing.assert_close(A.neuron_gradient(model, x, "conv3", 1, (2, 3)), g)
