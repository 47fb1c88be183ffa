"""Pixel perturbation with known answers: a model that looks only at one known region."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import Tensor, nn

from vislib.evaluation import (compare_methods, perturbation_metrics, pixel_count, pixel_perturbation,
                               plot_curves, summarize)
from vislib.hooks import hook_count
from vislib.models import Normalize

SIZE = 16
REGION = (slice(4, 8), slice(6, 10))  # 4x4 = 16 of 256 pixels
MEAN = (0.3, 0.4, 0.5)
STD = (0.2, 0.25, 0.3)


class RegionModel(nn.Module):
    """Logits ``[a * (m - 0.5), 0, -1]`` with ``m`` the mean pixel value of a fixed region.

    It looks at nothing else, so the region's indicator is the oracle map. It counts the
    images it sees and the calls, and checks that it runs without gradients.
    """

    def __init__(self, scale: float = 10.0) -> None:
        super().__init__()
        self.normalize = Normalize(MEAN, STD)  # the mean colour for fill='mean'
        self.scale = nn.Parameter(torch.tensor(scale))
        self.calls = 0
        self.images_seen = 0
        self.batch_sizes: list[int] = []
        self.grad_enabled: list[bool] = []

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        self.images_seen += len(x)
        self.batch_sizes.append(len(x))
        self.grad_enabled.append(torch.is_grad_enabled())
        m = x[:, :, REGION[0], REGION[1]].mean(dim=(1, 2, 3))
        s = self.scale * (m - 0.5)
        return torch.stack([s, torch.zeros_like(s), -torch.ones_like(s)], dim=1)


def region_map(n: int) -> Tensor:
    maps = torch.zeros(n, SIZE, SIZE)
    maps[:, REGION[0], REGION[1]] = 1.0
    return maps


def images_with_bright_region(n: int = 6, seed: int = 0) -> Tensor:
    x = torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))
    x[:, :, REGION[0], REGION[1]] = 0.9
    return x


def softmax_list(logits):
    z = [math.exp(v) for v in logits]
    return [v / sum(z) for v in z]


# --------------------------------------------------------------------------- metrics by hand
def test_metrics_match_a_hand_computation():
    clean = torch.tensor([[2.0, 0.0, -1.0]])
    pert = torch.tensor([[0.5, 1.0, 0.0]])
    p, q = softmax_list([2.0, 0.0, -1.0]), softmax_list([0.5, 1.0, 0.0])
    kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    out = perturbation_metrics(clean, pert, torch.tensor([0]))
    assert out["kl"].item() == pytest.approx(kl, rel=1e-12)
    assert out["afoc"].item() == pytest.approx(abs(q[0] - p[0]) / p[0], rel=1e-12)
    assert out["pcuo"].item() == pytest.approx(100 * (0.5 - 2.0) / 2.0, rel=1e-12)
    assert out["afoc_logit"].item() == pytest.approx(1.5 / 2.0, rel=1e-12)
    # The classic slip: KL the other way round (or F.kl_div with swapped arguments) differs.
    reverse = sum(qi * math.log(qi / pi) for pi, qi in zip(p, q))
    assert abs(reverse - kl) > 0.05
    right = F.kl_div(F.log_softmax(pert.double(), 1), F.softmax(clean.double(), 1), reduction="sum")
    assert right.item() == pytest.approx(kl, rel=1e-12)


def test_pcuo_is_undefined_for_a_zero_logit():
    out = perturbation_metrics(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    assert torch.isnan(out["pcuo"]).all() and torch.isfinite(out["afoc"]).all()


# --------------------------------------------------------------------------- the oracle model
@pytest.mark.parametrize("fill", ["black", "mean", "road"])
def test_removing_the_least_salient_pixels_of_the_oracle_map_changes_nothing(fill):
    model = RegionModel()
    images = images_with_bright_region()
    fractions = [0.0, 0.1, 0.5, 0.9, 240 / 256]  # up to every pixel outside the region
    result = pixel_perturbation(model, images, region_map(6), fractions, mode="least", fill=fill)
    for metric in ("afoc", "kl", "pcuo", "afoc_logit"):
        assert torch.equal(result.values(metric), torch.zeros(5, 6, dtype=torch.float64)), metric


def test_removing_the_most_salient_pixels_of_the_oracle_map_gives_the_hand_computed_change():
    model = RegionModel(scale=10.0)
    images = images_with_bright_region()
    result = pixel_perturbation(model, images, region_map(6), [16 / 256, 0.5], mode="most", fill="black")
    # clean: m = 0.9, s = 4; the region blackened: m = 0, s = -5.
    p = softmax_list([4.0, 0.0, -1.0])[0]
    q = softmax_list([-5.0, 0.0, -1.0])[0]
    assert torch.allclose(result.afoc, torch.full((2, 6), abs(q - p) / p, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(result.pcuo, torch.full((2, 6), 100 * (-5.0 - 4.0) / 4.0, dtype=torch.float64), atol=1e-4)
    assert (result.afoc > 0.95).all() and (result.target == 0).all()


def test_the_target_class_is_fixed_from_the_clean_image():
    # Blackening the region flips the prediction to class 1; the metrics stay on class 0.
    model = RegionModel()
    result = pixel_perturbation(model, images_with_bright_region(), region_map(6), [0.5], mode="most")
    assert (result.target == 0).all()
    assert (result.pcuo < -100).all()  # class 0's logit fell from 4 to -5
    explicit = pixel_perturbation(model, images_with_bright_region(), region_map(6), [0.5], mode="most", target=2)
    assert (explicit.target == 2).all() and torch.allclose(explicit.pcuo, torch.zeros(1, 6, dtype=torch.float64))


def test_mean_fill_puts_the_dataset_mean_into_the_region():
    model = RegionModel(scale=10.0)
    result = pixel_perturbation(model, images_with_bright_region(), region_map(6), [16 / 256], mode="most",
                                fill="mean")
    m = sum(MEAN) / 3  # the region becomes the Normalize mean colour
    assert torch.allclose(result.pcuo, torch.full((1, 6), 100 * (10 * (m - 0.5) - 4.0) / 4.0,
                                                  dtype=torch.float64), atol=1e-4)
    explicit = pixel_perturbation(model, images_with_bright_region(), region_map(6), [16 / 256], mode="most",
                                  fill="mean", mean=(0.5, 0.5, 0.5))
    assert torch.allclose(explicit.pcuo, torch.full((1, 6), -100.0, dtype=torch.float64), atol=1e-4)


class BlackPixelCounter(nn.Module):
    """Logit 0 = 1 + (number of black pixels) / (H*W): reads how many pixels were removed."""

    def __init__(self) -> None:
        super().__init__()
        self.normalize = Normalize(MEAN, STD)

    def forward(self, x: Tensor) -> Tensor:
        black = (x == 0).all(dim=1).flatten(1).sum(1).double()
        s = 1.0 + black / (x.shape[-1] * x.shape[-2])
        return torch.stack([s, torch.zeros_like(s)], dim=1).float()


@pytest.mark.parametrize("maps", ["tensor", "random"])
def test_exactly_round_k_hw_pixels_are_removed(maps):
    images = torch.rand(4, 3, 10, 10) * 0.9 + 0.05  # no black pixel
    fractions = [0.0, 0.005, 0.025, 0.333, 1.0]
    spec = torch.rand(4, 10, 10).round(decimals=1) if maps == "tensor" else "random"
    result = pixel_perturbation(BlackPixelCounter(), images, spec, fractions, fill="black")
    removed = result.per_seed["pcuo"] if maps == "random" else result.pcuo.unsqueeze(0)
    counts = torch.tensor([pixel_count(k, 10, 10) for k in fractions], dtype=torch.float64)
    assert torch.allclose(removed, counts.view(1, -1, 1).expand_as(removed), atol=1e-3)  # pcuo = 100 n / 100
    assert counts.tolist() == [0, 1, 3, 33, 100] == result.counts.tolist()


def test_random_baseline_averages_five_seeds_by_default():
    model = RegionModel()
    result = pixel_perturbation(model, images_with_bright_region(), "random", [0.1, 0.5], mode="most")
    assert result.n_seeds == 5 and result.per_seed["afoc"].shape == (5, 2, 6)
    assert torch.allclose(result.afoc, result.per_seed["afoc"].mean(0))
    assert not torch.equal(result.per_seed["afoc"][0], result.per_seed["afoc"][1])
    assert result.forward_passes == 6 + 5 * 2 * 6


def test_forward_passes_are_batched_bounded_and_without_gradients():
    model = RegionModel()
    n, fractions = 10, [0.1, 0.3, 0.5]
    model.train()
    result = pixel_perturbation(model, images_with_bright_region(n), region_map(n), fractions, batch_size=8)
    assert model.images_seen == n + n * len(fractions) == result.forward_passes
    assert model.calls == math.ceil(n / 8) + math.ceil(n * len(fractions) / 8)
    assert max(model.batch_sizes) <= 8
    assert not any(model.grad_enabled)
    assert model.training and model.scale.requires_grad and model.scale.grad is None
    assert hook_count(model) == 0


def test_chunking_does_not_change_the_result():
    images, maps = images_with_bright_region(7), torch.rand(7, SIZE, SIZE)
    a = pixel_perturbation(RegionModel(), images, maps, [0.2, 0.6], mode="most", batch_size=3)
    b = pixel_perturbation(RegionModel(), images, maps, [0.2, 0.6], mode="most", batch_size=100)
    assert torch.allclose(a.afoc, b.afoc) and torch.allclose(a.kl, b.kl)


def input_gradient(model: nn.Module, images: Tensor, target=None) -> Tensor:
    """A tiny saliency method for the tests: |d logit / d x| summed over channels."""
    x = images.clone().requires_grad_(True)
    logits = model(x)
    classes = logits.argmax(1) if target is None else torch.as_tensor(target).expand(len(x))
    (grad,) = torch.autograd.grad(logits.gather(1, classes.view(-1, 1)).sum(), x)
    return grad.abs().sum(1)


def test_a_method_given_as_a_callable_equals_its_maps():
    model, images = RegionModel(), images_with_bright_region()
    by_method = pixel_perturbation(model, images, input_gradient, [0.1, 0.5], mode="most")
    by_maps = pixel_perturbation(model, images, input_gradient(model, images), [0.1, 0.5], mode="most")
    assert by_method.method == "input_gradient"
    assert torch.equal(by_method.afoc, by_maps.afoc)
    # The gradient of this model is the region: removing its most salient 16 pixels is the oracle's answer.
    assert (by_method.afoc[0] > 0.95).all()


def test_summary_gives_the_t_interval_over_images():
    result = pixel_perturbation(RegionModel(), images_with_bright_region(8), torch.rand(8, SIZE, SIZE),
                                [0.3, 0.6], mode="most")
    rows = [r for r in result.summary() if r["metric"] == "afoc"]
    for i, row in enumerate(rows):
        values = result.afoc[i].numpy()
        low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
        assert row["mean"] == pytest.approx(values.mean())
        assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
        assert row["n"] == 8 and row["pixels"] == pixel_count(row["k"], SIZE, SIZE)
    records = result.records()
    assert len(records) == 2 * 8 and records[9]["k"] == 0.6 and records[9]["image"] == 1
    assert records[9]["afoc"] == result.afoc[1, 1].item() and records[9]["kl"] == result.kl[1, 1].item()


def test_compare_methods_adds_the_random_baseline_and_plots():
    import matplotlib

    matplotlib.use("Agg")
    model, images = RegionModel(), images_with_bright_region(4)
    results = compare_methods(model, images, {"oracle": region_map(4), "gradient": input_gradient},
                              [0.05, 0.2], mode="most", n_seeds=2, progress=False)
    assert list(results) == ["oracle", "gradient", "random"]
    # The oracle removes the whole region at 20 %, random removal only part of it.
    assert (results["oracle"].afoc[1] > results["random"].afoc[1]).all()
    assert len(summarize(results)) == 3 * 4 * 2
    fig = plot_curves(results, "kl")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 3 and "KL" in ax.get_title() and "black" in ax.get_title()
    assert ax.get_xlabel() and ax.get_ylabel()
    colours = {line.get_label(): matplotlib.colors.to_hex(line.get_color()) for line in ax.get_lines()}
    assert len(set(colours.values())) == 3                    # the unknown 'oracle' is not grey either
    assert colours["Random (2 seeds)"] == "#666666" and ax.get_lines()[2].get_linestyle() == "--"
    import matplotlib.pyplot as plt

    plt.close(fig)


# --------------------------------------------------------------------------- bad input
def test_bad_input_gives_clear_errors():
    model, images = RegionModel(), images_with_bright_region(2)
    with pytest.raises(ValueError, match=r"\[B, H, W\]"):
        pixel_perturbation(model, images, torch.rand(2, SIZE, SIZE + 1))
    with pytest.raises(ValueError, match=r"\[B, H, W\]"):
        pixel_perturbation(model, images, torch.rand(3, SIZE, SIZE))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pixel_perturbation(model, images, region_map(2), [0.1, 1.2])
    with pytest.raises(ValueError, match="unknown fill"):
        pixel_perturbation(model, images, region_map(2), fill="blur")
    with pytest.raises(ValueError, match="unknown mode"):
        pixel_perturbation(model, images, region_map(2), mode="top")
    with pytest.raises(ValueError, match="mean colour"):
        pixel_perturbation(nn.Sequential(nn.Flatten(), nn.Linear(3 * SIZE * SIZE, 2)), images, region_map(2),
                           fill="mean")
    with pytest.raises(TypeError, match="name .* or a callable"):
        pixel_perturbation(model, images, np.zeros((2, SIZE, SIZE)))


def test_t_interval_and_mean_ci_match_scipy_to_float64_precision():
    from vislib.evaluation import mean_ci, t_interval

    rng = np.random.default_rng(3)
    for n in (2, 3, 7, 160):
        values = rng.normal(0.4, 0.2, n)
        low, high = stats.t.interval(0.9, n - 1, loc=values.mean(), scale=stats.sem(values))
        mean, lo, hi = mean_ci(list(values) + [float("nan")], confidence=0.9)    # NaN left out
        assert (mean, lo, hi) == pytest.approx((values.mean(), low, high), rel=1e-13, abs=1e-15)
        # t_interval along a dim: each row its own n (a NaN shortens the second row)
        rows = torch.tensor(np.stack([values, np.r_[values[:-1], np.nan]]))
        m, lo2, hi2 = t_interval(rows, 0.9, dim=1)
        if n > 2:
            short = values[:-1]
            low_s, high_s = stats.t.interval(0.9, n - 2, loc=short.mean(), scale=stats.sem(short))
            assert (lo2[1].item(), hi2[1].item()) == pytest.approx((low_s, high_s), rel=1e-13)
        assert (lo2[0].item(), hi2[0].item()) == pytest.approx((low, high), rel=1e-13)
    assert all(math.isnan(v) for v in mean_ci([0.5])[1:])      # one value: no interval, not a zero-width one


def test_wilson_interval_matches_scipy_and_the_closed_forms_at_the_ends():
    from scipy.stats import binomtest

    from vislib.evaluation import wilson_interval

    for n, k, confidence in [(10, 9, 0.95), (48, 46, 0.95), (500, 123, 0.9), (7, 3, 0.99)]:
        hits = torch.tensor([1.0] * k + [0.0] * (n - k) + [float("nan")])       # NaN left out
        ci = binomtest(k, n).proportion_ci(confidence, method="wilson")
        assert wilson_interval(hits, confidence) == pytest.approx((k / n, ci.low, ci.high), rel=1e-12)
    z2 = stats.norm.ppf(0.975) ** 2
    # all hits: the interval is [n / (n + z²), 1]; no hits: [0, z² / (n + z²)]; never outside [0, 1]
    assert wilson_interval([1] * 48) == pytest.approx((1.0, 48 / (48 + z2), 1.0), rel=1e-12)
    assert wilson_interval([0] * 48) == pytest.approx((0.0, 0.0, z2 / (48 + z2)), rel=1e-12)
    assert wilson_interval([1] * 48)[2] == 1.0 and wilson_interval([0] * 48)[1] == 0.0
    # where the t-interval of 46 hits in 48 leaves [0, 1], Wilson's does not
    hits = [1] * 46 + [0] * 2
    from vislib.evaluation import mean_ci

    assert mean_ci(hits)[2] > 1.0 and 0.0 < wilson_interval(hits)[1] < wilson_interval(hits)[2] < 1.0
    with pytest.raises(ValueError, match="0/1 outcomes .* such as \\[0.5\\]; for fractions use mean_ci"):
        wilson_interval([1, 0.5, 0])
    with pytest.raises(ValueError, match="at least one"):
        wilson_interval([float("nan")])
