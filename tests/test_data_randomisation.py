"""Data-randomisation test (Adebayo et al. 2018, Sec. 4): permuted labels, the random-label model,
and the comparison of its maps with the true-label model's."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from scipy import stats
from skimage.metrics import structural_similarity
from torch import nn

from vislib import models, train
from vislib.evaluation import cascading_randomization, sanity
from vislib.hooks import hook_count


# --------------------------------------------------------------------------- permuted labels
def test_permuted_labels_keep_every_class_count_and_are_seeded():
    labels = torch.arange(8).repeat_interleave(1000)[torch.randperm(8000, generator=torch.Generator().manual_seed(3))]
    state = torch.get_rng_state()
    a = sanity.permuted_labels(labels, seed=0)
    assert torch.equal(torch.get_rng_state(), state)             # the global random state is untouched
    assert torch.equal(torch.bincount(a, minlength=8), torch.bincount(labels, minlength=8))
    assert torch.equal(a, sanity.permuted_labels(labels, seed=0))
    assert not torch.equal(a, sanity.permuted_labels(labels, seed=1))
    assert torch.equal(a, labels[torch.randperm(8000, generator=torch.Generator().manual_seed(0))])
    # A plain permutation, not a derangement: about the chance share Σ p_c² = 1/8 of the images keep a
    # label of their class (binomial sd sqrt(1/8 · 7/8 / 8000) = 0.0037).
    kept = (a == labels).double().mean().item()
    assert abs(kept - 0.125) < 0.02
    # Independent of the image: the label of each class's images is spread over all classes.
    table = torch.zeros(8, 8)
    table.index_put_((labels, a), torch.ones(8000), accumulate=True)
    assert (table / 1000).sub(0.125).abs().max().item() < 0.05


def test_permuted_labels_refuse_what_is_not_a_label_vector():
    with pytest.raises(ValueError, match="1-D tensor of class indices"):
        sanity.permuted_labels(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="integer class indices"):
        sanity.permuted_labels(torch.tensor([0.0, 1.0]))


# --------------------------------------------------------------------------- training on permuted labels
def quadrant_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 noise images; the class (0-3) is the quadrant that is brighter: an easy rule to learn."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(4).repeat(n // 4)
    images = torch.rand(n, 3, 8, 8, generator=g) * 0.6
    for i, c in enumerate(labels.tolist()):
        r, col = divmod(c, 2)
        images[i, :, 4 * r:4 * r + 4, 4 * col:4 * col + 4] += 0.4
    return images, labels


def mlp() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(192, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 4))
    return models.with_normalization(net, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def test_a_model_trained_on_permuted_labels_fits_them_and_is_at_chance_on_the_test_set():
    train_x, train_y = quadrant_data(400, seed=0)
    test_x, test_y = quadrant_data(800, seed=1)
    # Control: on the true labels the rule is learnt (so a chance result below is not a failure to train).
    real = mlp()
    train.train(real, train_x, train_y, epochs=10, batch_size=32, lr=3e-3, progress=False)
    assert train.accuracy(real, test_x, test_y) > 0.9

    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    shuffled_model, shuffled, history = sanity.random_label_model(model, train_x, train_y, seed=0, epochs=60,
                                                                  lr=3e-3, batch_size=32, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # the caller's model is untouched
    assert torch.equal(shuffled, sanity.permuted_labels(train_y, 0))
    assert shuffled_model.net[3].p == 0.2                                            # dropout restored
    assert not shuffled_model.training and len(history.loss) == 60
    assert train.accuracy(shuffled_model, train_x, shuffled) > 0.95                   # memorised
    # At chance (1/4) on the true test labels. The spread is not only the test set's binomial sd (0.015):
    # the network also learns the quadrant -> label mix of its 100 training images per class, which differs
    # from uniform by chance (over seeds 0-3 the test accuracy was 0.21, 0.23, 0.24, 0.30).
    assert abs(train.accuracy(shuffled_model, test_x, test_y) - 0.25) < 0.1


# --------------------------------------------------------------------------- comparing the maps
def two_models() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    a = models.course_model("vgg", width=4).eval()
    torch.manual_seed(1)
    b = models.course_model("vgg", width=4).eval()
    return a, b


def test_data_randomization_equals_an_independent_computation():
    a, b = two_models()
    images = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    result = sanity.data_randomization(a, b, images, ["gradient", "input_x_gradient"])
    with torch.no_grad():
        target = a(images).argmax(1)
    assert torch.equal(result.target, target)                 # fixed from the true-label model, for both

    def grads(model):
        x = images.clone().requires_grad_(True)
        score = model(x).gather(1, target[:, None]).sum()
        (g,) = torch.autograd.grad(score, x)
        return g

    for method, make in [("gradient", lambda g: g.abs().amax(1)), ("input_x_gradient", lambda g: (g * images).sum(1))]:
        ma, mb = make(grads(a)), make(grads(b))
        assert torch.allclose(result.maps[method][0], ma, atol=1e-6)
        assert torch.allclose(result.maps[method][1], mb, atol=1e-6)
        for i in range(len(images)):
            x, y = ma[i].flatten().double().numpy(), mb[i].flatten().double().numpy()
            signed = stats.spearmanr(x, y).statistic
            assert result.similarity["spearman"][method][i].item() == pytest.approx(signed, abs=1e-9)
            assert result.similarity["spearman_abs"][method][i].item() == pytest.approx(
                stats.spearmanr(np.abs(x), np.abs(y)).statistic, abs=1e-9)
            na = (x - x.min()) / (x.max() - x.min())
            nb = (y - y.min()) / (y.max() - y.min())
            ssim = structural_similarity(na.reshape(32, 32), nb.reshape(32, 32), data_range=1.0, win_size=7)
            assert result.similarity["ssim"][method][i].item() == pytest.approx(ssim, abs=1e-6)
        mean, low, high = result.mean("spearman_abs", method)
        values = result.similarity["spearman_abs"][method].numpy()
        assert mean == pytest.approx(values.mean())
        half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
        assert (low, high) == pytest.approx((values.mean() - half, values.mean() + half))
    assert hook_count(a) == 0 and hook_count(b) == 0


def test_a_model_compared_with_itself_is_similar_one():
    a, _ = two_models()
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    result = sanity.data_randomization(a, a, images, ["gradient"], target=2)
    for metric in sanity.SIMILARITIES:
        assert torch.allclose(result.similarity[metric]["gradient"], torch.ones(3, dtype=torch.float64))
    assert result.target.tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="unknown similarity"):
        result.mean("pearson", "gradient")
    with pytest.raises(ValueError, match="unknown method"):
        result.mean("ssim", "gradcam")


def test_plot_has_one_panel_per_similarity_and_the_cascade_reference():
    a, b = two_models()
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    result = sanity.data_randomization(a, b, images, ["gradient", "gradcam"])
    cascade = cascading_randomization(a, images, ["gradient", "gradcam"], progress=False)
    fig = sanity.plot_data_randomization(result, reference=cascade)
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == [sanity.SIMILARITY_LABELS[m] for m in sanity.SIMILARITIES]
    assert "labels" in fig.axes[0].get_ylabel() and "↓" in fig.axes[0].get_ylabel()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["Gradient", "Grad-CAM"]
    with pytest.raises(ValueError, match="unknown similarity"):
        sanity.plot_data_randomization(result, ["nope"])
