"""The FACT-AI reproduction's pixel-perturbation metrics, on hand-computed distributions.

KL in both directions (the reproduction's D_KL(P_k || P) puts the perturbed distribution
first), its absolute PCUO and the PCUO variant over the most probable *other* classes.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vislib.evaluation import ALL_METRICS, FACT_METRICS, TOP_OTHERS, perturbation_metrics, pixel_perturbation

from test_evaluation_perturbation import RegionModel, images_with_bright_region, region_map


def softmax(logits):
    z = [math.exp(v) for v in logits]
    return [v / sum(z) for v in z]


CLEAN = [4.0, 2.0, -1.0, 0.5]
PERT = [3.0, 3.0, -2.0, 1.0]


def metrics(target=0, **kw):
    return perturbation_metrics(torch.tensor([CLEAN]), torch.tensor([PERT]), torch.tensor([target]), **kw)


def test_kl_in_both_directions_by_hand():
    p, q = softmax(CLEAN), softmax(PERT)
    forward = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))   # D_KL(P || P_k), clean first
    reverse = sum(qi * math.log(qi / pi) for pi, qi in zip(p, q))   # D_KL(P_k || P), the reproduction's
    out = metrics()
    assert out["kl"].item() == pytest.approx(forward, rel=1e-12)
    assert out["kl_reverse"].item() == pytest.approx(reverse, rel=1e-12)
    assert abs(forward - reverse) > 1e-3          # not symmetric: the direction matters
    # torch's F.kl_div(input, target) = KL(target || exp(input)): the reverse direction needs
    # the perturbed distribution as *target*.
    rev_torch = F.kl_div(F.log_softmax(torch.tensor([CLEAN], dtype=torch.float64), 1),
                         F.softmax(torch.tensor([PERT], dtype=torch.float64), 1), reduction="sum")
    assert rev_torch.item() == pytest.approx(reverse, rel=1e-12)


def test_kl_directions_swap_when_clean_and_perturbed_swap():
    a, b = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    t = torch.zeros(5, dtype=torch.long)
    ab, ba = perturbation_metrics(a, b, t), perturbation_metrics(b, a, t)
    assert torch.allclose(ab["kl_reverse"], ba["kl"], rtol=1e-12)
    assert torch.allclose(ab["kl"], ba["kl_reverse"], rtol=1e-12)
    same = perturbation_metrics(a, a, t)
    assert torch.allclose(same["kl"], torch.zeros(5, dtype=torch.float64), atol=1e-15)
    assert torch.allclose(same["kl_reverse"], torch.zeros(5, dtype=torch.float64), atol=1e-15)
    assert (ab["kl"] > 0).all() and (ab["kl_reverse"] > 0).all()


def test_pcuo_absolute_and_over_the_other_classes_by_hand():
    out = metrics()
    assert out["pcuo_abs"].item() == pytest.approx(100 * 1.0 / 4.0, rel=1e-12)     # |3 - 4| / 4
    assert out["pcuo"].item() == pytest.approx(-25.0, rel=1e-12)                   # the signed one
    # Other classes by clean logit: 1 (2.0), 3 (0.5), 2 (-1.0): changes 50 %, 100 %, 100 %.
    assert metrics(top_others=1)["pcuo_others"].item() == pytest.approx(50.0, rel=1e-12)
    assert metrics(top_others=2)["pcuo_others"].item() == pytest.approx(75.0, rel=1e-12)
    # 10 (the reproduction's number) > C - 1 = 3: all other classes.
    assert TOP_OTHERS == 10
    assert out["pcuo_others"].item() == pytest.approx(250 / 3, rel=1e-12)
    # With class 1 as the target, the other classes are 0 (4.0), 3 (0.5), 2: 25 %, 100 %.
    assert metrics(target=1, top_others=2)["pcuo_others"].item() == pytest.approx(62.5, rel=1e-12)
    assert metrics(target=1)["pcuo_abs"].item() == pytest.approx(50.0, rel=1e-12)


def test_pcuo_others_leaves_out_a_zero_logit_and_is_nan_if_all_are():
    clean = torch.tensor([[3.0, 0.0, 1.0]])
    out = perturbation_metrics(clean, torch.tensor([[2.0, 5.0, 3.0]]), torch.tensor([0]))
    assert out["pcuo_others"].item() == pytest.approx(200.0, rel=1e-12)            # only class 2: |3 - 1| / 1
    none = perturbation_metrics(torch.tensor([[3.0, 0.0]]), torch.tensor([[2.0, 5.0]]), torch.tensor([0]))
    assert torch.isnan(none["pcuo_others"]).all() and torch.isfinite(none["pcuo_abs"]).all()


def test_metrics_keep_the_leading_fraction_axis():
    clean = torch.randn(4, 8)
    pert = torch.randn(3, 4, 8)
    out = perturbation_metrics(clean, pert, clean.argmax(1))
    for m in ALL_METRICS:
        assert out[m].shape == (3, 4), m
    one = perturbation_metrics(clean, pert[1], clean.argmax(1))
    for m in ALL_METRICS:
        assert torch.allclose(out[m][1], one[m], equal_nan=True), m


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_top_others_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="top_others"):
        metrics(top_others=bad)


def test_pixel_perturbation_carries_the_new_metrics():
    model = RegionModel(scale=10.0)
    result = pixel_perturbation(model, images_with_bright_region(), region_map(6), [16 / 256], mode="most",
                                fill="black")
    # clean logits [4, 0, -1], blackened region [-5, 0, -1]: the other classes do not move.
    p, q = softmax([4.0, 0.0, -1.0]), softmax([-5.0, 0.0, -1.0])
    reverse = sum(qi * math.log(qi / pi) for pi, qi in zip(p, q))
    assert torch.allclose(result.kl_reverse, torch.full((1, 6), reverse, dtype=torch.float64), rtol=1e-5)
    assert torch.allclose(result.pcuo_abs, torch.full((1, 6), 225.0, dtype=torch.float64), rtol=1e-5)
    # class 1's logit is 0 (left out), class 2's stays at -1: 0 % change
    assert torch.allclose(result.pcuo_others, torch.zeros(1, 6, dtype=torch.float64), atol=1e-6)
    rows = result.summary(["kl_reverse", "pcuo_abs", "pcuo_others"])
    assert [r["metric"] for r in rows] == ["kl_reverse", "pcuo_abs", "pcuo_others"]


def test_records_carry_every_metric_and_summary_defaults_to_the_four_base_ones():
    result = pixel_perturbation(RegionModel(), images_with_bright_region(2), region_map(2), [0.1], mode="most")
    assert set(FACT_METRICS) <= set(result.records()[0])
    assert {r["metric"] for r in result.summary()} == {"afoc", "kl", "pcuo", "afoc_logit"}
    with pytest.raises(ValueError, match="kl_reverse"):
        result.values("kl_backwards")
