"""Model-parameter randomisation (Adebayo et al.): order, cumulation, copies and similarities."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torch import Tensor, nn

import vislib.style
from vislib.evaluation import (cascading_randomization, independent_randomization, plot_sanity,
                               randomization_steps, randomized_copy, spearman_similarity, ssim_similarity)
from vislib.evaluation import sanity
from vislib.hooks import hook_count
from vislib.models import Normalize


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.normalize = Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(4)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.bn1(self.conv1(self.normalize(x))))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(self.gap(x).flatten(1))


def trained_net(seed: int = 0) -> SmallNet:
    torch.manual_seed(seed)
    net = SmallNet()
    with torch.no_grad():  # non-default BN statistics, as after training
        for bn in (net.bn1, net.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
    return net.eval()


def input_gradient(model: nn.Module, images: Tensor, target=None) -> Tensor:
    x = images.clone().requires_grad_(True)
    logits = model(x)
    classes = logits.argmax(1) if target is None else torch.as_tensor(target).view(-1).expand(len(x))
    (grad,) = torch.autograd.grad(logits.gather(1, classes.view(-1, 1)).sum(), x)
    return grad.abs().sum(1)


def edge_detector(model: nn.Module, images: Tensor, target=None) -> Tensor:
    """Ignores the model entirely: the horizontal intensity difference of the image."""
    gray = images.mean(1)
    return torch.nn.functional.pad((gray[:, :, 1:] - gray[:, :, :-1]).abs(), (0, 1))


IMAGES = torch.rand(6, 3, 12, 12, generator=torch.Generator().manual_seed(0))


def test_spearman_matches_scipy_and_abs_hides_sign_flips():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(3, 5, 5, generator=gen), torch.randn(3, 5, 5, generator=gen)
    a[0, :2] = 0.0  # ties
    for i in range(3):
        expected = stats.spearmanr(a[i].flatten().numpy(), b[i].flatten().numpy()).statistic
        assert spearman_similarity(a, b)[i].item() == pytest.approx(expected, abs=1e-12)
        expected_abs = stats.spearmanr(a[i].abs().flatten().numpy(), b[i].abs().flatten().numpy()).statistic
        assert spearman_similarity(a, b, abs=True)[i].item() == pytest.approx(expected_abs, abs=1e-12)
    assert torch.allclose(spearman_similarity(a, -a), torch.full((3,), -1.0, dtype=torch.float64))
    assert torch.allclose(spearman_similarity(a, -a, abs=True), torch.ones(3, dtype=torch.float64))
    assert torch.isnan(spearman_similarity(torch.zeros(1, 5, 5), a[:1])).all()
    with pytest.raises(ValueError, match="same shape"):
        spearman_similarity(torch.zeros(1, 4, 4), a[:1])


def test_ssim_is_one_for_the_same_map_up_to_scale_and_lower_otherwise():
    a = torch.rand(2, 12, 12, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(ssim_similarity(a, 3 * a + 1), torch.ones(2, dtype=torch.float64))
    assert (ssim_similarity(a, a.flip(-1)) < 0.5).all()


def test_steps_group_each_weight_layer_with_its_batchnorm():
    assert randomization_steps(SmallNet()) == [("conv1", ["conv1", "bn1"]), ("conv2", ["conv2", "bn2"]),
                                               ("fc", ["fc"])]


def _probe(trained_state: dict, log: list):
    """A 'method' that records which layers differ from the trained ones when it is called."""
    def probe(model: nn.Module, images: Tensor, target=None) -> Tensor:
        state = model.state_dict()
        changed = sorted({k.split(".")[0] for k, v in state.items() if not torch.equal(v, trained_state[k])})
        log.append((changed, None if target is None else torch.as_tensor(target).clone()))
        return images.mean(1)
    return probe


@pytest.mark.parametrize("mode", ["cascading", "independent"])
def test_layers_are_randomised_from_the_output_down_on_a_copy(mode):
    net = trained_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    log: list = []
    run = cascading_randomization if mode == "cascading" else independent_randomization
    result = run(net, IMAGES, {"probe": _probe(before, log)}, progress=False)
    expected = ([[], ["fc"], ["bn2", "conv2", "fc"], ["bn1", "bn2", "conv1", "conv2", "fc"]] if mode == "cascading"
                else [[], ["fc"], ["bn2", "conv2"], ["bn1", "conv1"]])
    assert [changed for changed, _ in log] == expected
    assert result.steps == ["original", "fc", "conv2", "conv1"]
    # The target is fixed from the trained model's prediction at every step.
    predicted = net(IMAGES).argmax(1)
    assert all(torch.equal(t, predicted) for _, t in log)
    # The caller's model is untouched.
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert not net.training and hook_count(net) == 0


def test_batchnorm_is_reset_to_identity_statistics():
    net = trained_net()
    seen = {}

    def grab(model, images, target=None):
        seen["bn2"] = (model.bn2.running_mean.clone(), model.bn2.running_var.clone(), model.bn2.weight.clone())
        return images.mean(1)

    cascading_randomization(net, IMAGES, {"grab": grab}, progress=False)
    mean, var, weight = seen["bn2"]
    assert torch.equal(mean, torch.zeros(4)) and torch.equal(var, torch.ones(4)) and torch.equal(weight, torch.ones(4))


def test_randomized_copy_resets_only_the_named_layers_of_a_copy():
    import copy

    net = trained_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    clone = randomized_copy(net, ["fc", "bn2"], seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)           # global random state untouched
    assert clone is not net and all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    changed = sorted({k.split(".")[0] for k, v in clone.state_dict().items() if not torch.equal(v, before[k])})
    assert changed == ["bn2", "fc"]
    # BatchNorm back to the identity statistics, by hand
    assert torch.equal(clone.bn2.weight, torch.ones(4)) and torch.equal(clone.bn2.bias, torch.zeros(4))
    assert torch.equal(clone.bn2.running_mean, torch.zeros(4)) and torch.equal(clone.bn2.running_var, torch.ones(4))
    # the same values as deepcopy + manual_seed + reset_parameters, done by hand
    by_hand = copy.deepcopy(net)
    torch.manual_seed(5)
    by_hand.fc.reset_parameters()
    assert torch.equal(clone.fc.weight, by_hand.fc.weight) and torch.equal(clone.fc.bias, by_hand.fc.bias)
    assert not torch.equal(randomized_copy(net, "fc", seed=6).fc.weight, clone.fc.weight)
    with pytest.raises(ValueError, match="no module named"):
        randomized_copy(net, "fc9")


def test_a_model_independent_map_passes_through_and_the_gradient_does_not():
    net = trained_net()
    result = cascading_randomization(net, IMAGES, [edge_detector, input_gradient], progress=False)
    for metric in ("spearman_abs", "spearman", "ssim"):
        assert torch.allclose(result.similarity[metric]["edge_detector"], torch.ones(4, 6, dtype=torch.float64))
        assert torch.allclose(result.similarity[metric]["input_gradient"][0], torch.ones(6, dtype=torch.float64))
    # Once conv1 is random the input gradient no longer looks like the trained one.
    assert result.mean("spearman_abs", "input_gradient")[-1] < 0.8
    rows = result.summary()
    assert len(rows) == 3 * 2 * 4 and {r["layer"] for r in rows} == set(result.steps)


def test_randomisation_is_seeded():
    net = trained_net()
    a = cascading_randomization(net, IMAGES, [input_gradient], seed=3, progress=False)
    b = cascading_randomization(net, IMAGES, [input_gradient], seed=3, progress=False)
    c = cascading_randomization(net, IMAGES, [input_gradient], seed=4, progress=False)
    assert torch.equal(a.similarity["ssim"]["input_gradient"], b.similarity["ssim"]["input_gradient"])
    assert not torch.equal(a.similarity["ssim"]["input_gradient"], c.similarity["ssim"]["input_gradient"])


def test_plot_has_one_panel_per_similarity():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = cascading_randomization(trained_net(), IMAGES[:3], [edge_detector, input_gradient], progress=False)
    fig = plot_sanity(result)
    assert len(fig.axes) == 3
    assert all(len(ax.get_lines()) >= 2 for ax in fig.axes)
    assert [ax.get_title() for ax in fig.axes] == [sanity.SIMILARITY_LABELS[m] for m in sanity.SIMILARITIES]
    assert "weights" in fig.axes[0].get_ylabel() and "↓" in fig.axes[0].get_ylabel()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["trained"] + result.steps[1:]
    plt.close(fig)
    net = trained_net()
    fig = plot_sanity(result, ["ssim"], model=net)        # human layer names on the ticks with the model
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == (
        ["trained"] + [vislib.style.layer_name(net, s) for s in result.steps[1:]])
    assert fig.get_size_inches()[0] == pytest.approx(7.0)
    plt.close(fig)
    assert np.isfinite(result.mean("ssim", "edge_detector").numpy()).all()
