"""vislib agrees with captum, pytorch-grad-cam and torch-cam: the agreement part of
``benchmarks/compare.py`` on one tiny case (a width-4 course ResNet at 32 px, batch 2), so that
the comparison cannot rot. Needs the peers (``make peers``; ``make test`` installs them).

Where the definitions coincide the maps must be equal (``torch.allclose`` on raw maps, or on
normalised maps where the peer only returns those); where they differ on purpose the maps must
still be strongly correlated, and pytorch-grad-cam's FullGrad must be reproduced exactly from
vislib's decomposition with its own (per-channel) post-processing, and both peers' Grad-CAM++
from vislib's recorded layer gradients with their own weights (grad-cam's eps, torch-cam's
alpha = g^2). If a peer release changes its definition, these rows say so.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("captum")
pytest.importorskip("pytorch_grad_cam")
pytest.importorskip("torchcam")

from _tiny_models import randomize_batchnorm  # noqa: E402
from vislib.models import course_model  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

COMPARE = Path(__file__).resolve().parent.parent / "benchmarks" / "compare.py"


def _load_compare():
    spec = importlib.util.spec_from_file_location("vislib_benchmarks_compare", COMPARE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


compare = _load_compare()

#: Every (method, peer) pair of the issue, plus the rows that rebuild a peer's own definition.
EXPECTED_PAIRS = {
    ("gradient", "captum"), ("guided_backprop", "captum"), ("deconvnet", "captum"), ("occlusion", "captum"),
    ("gradcam", "captum"), ("guided_gradcam", "captum"),
    ("gradcam", "grad-cam"), ("gradcam_pp", "grad-cam"), ("ablation_cam", "grad-cam"),
    ("fullgrad", "grad-cam"), ("cam", "torch-cam"), ("gradcam", "torch-cam"), ("gradcam_pp", "torch-cam"),
    # the peers' own definitions rebuilt from vislib's gradients: these must match exactly
    ("fullgrad (grad-cam def.)", "grad-cam"), ("gradcam_pp (grad-cam def.)", "grad-cam"),
    ("gradcam_pp (torch-cam def.)", "torch-cam"),
    # the methods of issue 12
    ("integrated_gradients", "captum"), ("smoothgrad", "captum"), ("score_cam", "grad-cam"),
    ("xgradcam", "grad-cam"), ("layercam", "grad-cam"), ("hirescam", "grad-cam"), ("eigencam", "grad-cam"),
    ("xgradcam", "torch-cam"), ("layercam", "torch-cam"),
    ("integrated_gradients (trapezoid, captum def.)", "captum"), ("eigencam (grad-cam def.)", "grad-cam"),
}

#: Definitions that coincide up to the peer's post-processing (normalised at layer resolution,
#: then cv2.resize): equal after normalising.
CLOSE_AFTER_NORMALISING = {("gradcam", "grad-cam"), ("ablation_cam", "grad-cam"), ("score_cam", "grad-cam"),
                           ("xgradcam", "grad-cam"), ("layercam", "grad-cam"), ("hirescam", "grad-cam"),
                           ("eigencam (grad-cam def.)", "grad-cam")}

#: Equal up to the sign of a principal component (vislib fixes it, pytorch-grad-cam takes LAPACK's).
SIGN_AMBIGUOUS = {("eigencam", "grad-cam")}

#: Definitions that differ on purpose (see compare.NOTES): the smallest correlation accepted.
DIFFERENT = {("gradcam_pp", "grad-cam"): 0.99, ("gradcam_pp", "torch-cam"): 0.9, ("fullgrad", "grad-cam"): 0.7}


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(0)
    model = randomize_batchnorm(course_model("resnet", width=4)).eval()
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        classes = model(images).argmax(1)
    return model, images, classes


@pytest.fixture(scope="module")
def rows(case):
    model, images, classes = case
    found = compare.agreement_rows(model, images, classes, "net.layer3", "net.fc", patch=8, stride=8)
    return {(pair.method, pair.peer): (pair, agreement) for pair, agreement in found}


def test_every_pair_is_compared(rows):
    assert set(rows) == EXPECTED_PAIRS


@pytest.mark.parametrize("key", sorted(k for k in EXPECTED_PAIRS if k not in CLOSE_AFTER_NORMALISING
                                       and k not in DIFFERENT and k not in SIGN_AMBIGUOUS))
def test_same_definition_same_map(rows, key):
    pair, agreement = rows[key]
    assert pair.exact, "this pair is declared as differing; move it to DIFFERENT with a reason"
    assert agreement.exact, f"{key}: max |diff| of the normalised maps {agreement.max_diff:.2e}"
    assert agreement.pearson > 0.9999


@pytest.mark.parametrize("key", sorted(CLOSE_AFTER_NORMALISING))
def test_same_definition_after_normalising(rows, key):
    _, agreement = rows[key]
    assert agreement.max_diff < 1e-3 and agreement.pearson > 0.9999


def test_eigencam_equal_up_to_the_sign_of_the_component(rows):
    # If LAPACK picks the other sign for an image, vislib's map differs there, and the rebuild with
    # numpy's sign (the peer's definition) must then match: the sign is the only difference.
    _, agreement = rows[("eigencam", "grad-cam")]
    _, rebuilt = rows[("eigencam (grad-cam def.)", "grad-cam")]
    assert rebuilt.max_diff < 1e-3
    assert agreement.pearson > 0.9999 or rebuilt.pearson > 0.9999


def test_new_gradient_methods_equal_captum_in_float64_for_every_rule():
    """integrated_gradients against captum's IntegratedGradients for each quadrature rule (tiny
    net, float64; captum rounds its step sizes to float32), and smoothgrad against NoiseTunnel with
    the noise captum draws."""
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

    from _tiny_models import tiny_images, tiny_net
    from vislib import attribution as A
    model, x = tiny_net(), tiny_images(3)
    classes = torch.tensor([1, 4, 0])
    base = torch.full_like(x, 0.2)
    for rule, method in [("left", "riemann_left"), ("right", "riemann_right"), ("middle", "riemann_middle"),
                         ("gauss_legendre", "gausslegendre"), ("trapezoid", "riemann_trapezoid")]:
        theirs, delta = IntegratedGradients(model).attribute(x, baselines=base, target=classes, n_steps=9,
                                                             method=method, internal_batch_size=7,
                                                             return_convergence_delta=True)
        ours, gap = A.integrated_gradients(model, x, classes, baseline=0.2, steps=9, rule=rule, batch_size=5,
                                           return_gap=True)
        if rule == "trapezoid":        # captum's weights are 1/m halved at the ends: (m - 1)/m of vislib's
            ours = ours * 8 / 9
        else:                          # captum's delta is vislib's gap
            torch.testing.assert_close(gap, delta, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(ours, theirs.sum(1), rtol=1e-6, atol=1e-9)
    for nt_type, kind, absolute in [("smoothgrad", "gradient", False), ("smoothgrad", "abs", True),
                                    ("smoothgrad_sq", "square", False)]:
        torch.manual_seed(5)
        theirs = NoiseTunnel(Saliency(model)).attribute(x, nt_type=nt_type, nt_samples=6, stdevs=0.1,
                                                        target=classes, abs=absolute)
        torch.manual_seed(5)
        noise = torch.normal(0, torch.tensor(0.1).repeat((3 * 6, 3, 12, 12))).view(3, 6, 3, 12, 12)
        ours = A.smoothgrad(model, x, classes, noise=noise, kind=kind, batch_size=4)
        torch.testing.assert_close(ours, theirs.abs().amax(1))


@pytest.mark.parametrize("key", sorted(DIFFERENT))
def test_different_definitions_still_agree_in_shape(rows, key):
    pair, agreement = rows[key]
    assert not pair.exact
    assert agreement.pearson > DIFFERENT[key]


def test_agreement_detects_a_difference(case):
    # The comparison itself must be able to fail: swapping the images' maps breaks it.
    model, images, classes = case
    from vislib.attribution import gradient
    maps = gradient(model, images, classes)
    assert compare.agree(maps, maps.clone(), raw=True).exact
    swapped = compare.agree(maps, maps.flip(0), raw=True)
    assert not swapped.exact and swapped.max_diff > 0.1 and swapped.pearson < 0.9
    assert not compare.agree(maps, maps * 1.01, raw=True).exact          # raw: scale matters
    assert compare.agree(maps, maps * 1.01, raw=False).exact             # normalised: it does not


def test_timing_row_and_table(case):
    # The timing path of the benchmark (one repeat) runs and renders a table row.
    model, images, classes = case
    pair = next(p for p in compare.pairs(model, images, classes, "net.layer3", "net.fc", 8, 8,
                                         peers=("torch-cam",), methods=["gradcam"]))
    floor = compare.floors(model, images, classes, "net.layer3", 8, 8)[pair.floor]
    (row,) = compare.measure("tiny", [pair], floor, len(images), repeats=1, min_time=0)
    assert row.agreement.exact and row.t_vislib > 0 and row.t_peer > 0 and row.t_floor > 0
    assert row.repeats == row.peer_repeats == 1
    table = compare.markdown_table([row])
    assert "| gradcam | torch-cam | 2 |" in table and table.count("\n") == 2
