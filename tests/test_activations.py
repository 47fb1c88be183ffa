"""Activations over a dataset, dead-channel counts, linear templates, t-SNE helpers."""
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from vislib import activations as act  # noqa: E402
from vislib.hooks import hook_count  # noqa: E402
from vislib.models import course_model, with_normalization  # noqa: E402


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 3, 3, padding=1),
                         nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(12, 5),
                         nn.ReLU(), nn.Linear(5, 3))


def test_collected_activations_equal_the_layers_computed_by_hand_in_any_batch_size():
    net = _net().double()
    x = torch.rand(7, 3, 8, 8, dtype=torch.float64)
    got = act.collect_activations(net, x, ["0", "1", "7"], batch_size=3, progress=False)
    conv = net[0](x)
    # "0" is the conv output before the in-place ReLU overwrites it; "1" is after it.
    assert torch.allclose(got["0"].double(), conv.float().double(), atol=1e-6)
    assert (got["0"] < 0).any()
    assert torch.allclose(got["1"].double(), conv.clamp(min=0), atol=1e-6)
    assert torch.allclose(got["7"].double(), net[:8](x), atol=1e-6)
    assert got["0"].dtype == torch.float32 and got["0"].shape == (7, 4, 8, 8)
    assert hook_count(net) == 0


def test_pooling_averages_blocks_and_the_model_is_left_as_found():
    net = _net()
    net.train()
    x = torch.rand(5, 3, 8, 8)
    got = act.collect_activations(net, x, "1", batch_size=2, pool=2, progress=False)["1"]
    full = torch.relu(net[0](x))
    expected = full.reshape(5, 4, 2, 4, 2, 4).mean(dim=(3, 5))  # 4x4 blocks of an 8x8 map
    assert torch.allclose(got, expected, atol=1e-6)
    assert net.training and all(m.training for m in net.modules())
    assert hook_count(net) == 0


def test_penultimate_layer_is_the_input_of_the_last_linear_layer():
    assert act.penultimate_layer(_net()) == "7"
    vgg = course_model("vgg", width=4)
    name = act.penultimate_layer(vgg)
    assert name == "net.classifier.6"
    resnet = course_model("resnet", width=4)
    assert act.penultimate_layer(resnet) == "net.flatten"
    # The recorded features, fed to the last linear layer, give the logits.
    x = torch.rand(3, 3, 32, 32)
    feats = act.collect_activations(resnet, x, "net.flatten", progress=False)["net.flatten"]
    resnet.eval()
    with torch.no_grad():
        assert torch.allclose(resnet.net.fc(feats), resnet(x), atol=1e-5)


def test_channel_stats_counts_match_a_hand_made_layer():
    # An identity "layer" whose output we choose: 2 channels of 2x2, 3 images.
    out = torch.tensor([
        [[[0., 0.], [0., 0.]], [[1., 2.], [3., 4.]]],   # ch0 dead, ch1 always on
        [[[0., 5.], [0., 0.]], [[1., 0.], [3., 4.]]],   # ch0 1/4 active, ch1 3/4 active
        [[[0., 0.], [0., 0.]], [[0., 0.], [0., 0.]]],   # both dead
    ])
    net = nn.Sequential(nn.Identity())
    stats = act.channel_stats(net, out, "0", batch_size=2, progress=False)["0"]
    assert stats.n_images == 3 and len(stats) == 2
    assert torch.allclose(stats.never_active, torch.tensor([2 / 3, 1 / 3], dtype=torch.float64))
    assert torch.allclose(stats.always_active, torch.tensor([0.0, 1 / 3], dtype=torch.float64))
    assert torch.allclose(stats.active_fraction, torch.tensor([(0 + 0.25 + 0) / 3, (1 + 0.75 + 0) / 3],
                                                               dtype=torch.float64))
    assert torch.allclose(stats.mean, torch.tensor([5 / 12, (10 + 8) / 12], dtype=torch.float64))
    assert stats.dead(2 / 3).tolist() == [0]
    assert stats.dead(1.0).tolist() == []


def test_channel_stats_of_a_linear_layer_judge_each_unit():
    net = nn.Sequential(nn.Identity())
    h = torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    stats = act.channel_stats(net, h.reshape(2, 3, 1, 1), "0", progress=False)["0"]
    flat = act.channel_stats(nn.Sequential(nn.Flatten()), h.reshape(2, 3, 1, 1), "0", progress=False)["0"]
    assert torch.equal(stats.never_active, flat.never_active)
    assert flat.never_active.tolist() == [1.0, 0.0, 0.5]
    assert flat.dead().tolist() == [0]


def test_linear_templates_reproduce_the_logits_in_pixel_space():
    torch.manual_seed(0)
    mean, std = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)
    model = with_normalization(nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 4)), mean, std).double()
    x = torch.rand(5, 3, 6, 6, dtype=torch.float64)
    w, b = act.linear_templates(model)
    assert w.shape == (4, 3, 6, 6) and b.shape == (4,)
    assert torch.allclose(torch.einsum("kchw,nchw->nk", w, x) + b, model(x), atol=1e-12)
    # Channel c of the template is the raw weight divided by std_c.
    raw = model.net[1].weight.reshape(4, 3, 6, 6)
    assert torch.allclose(w[:, 1], raw[:, 1] / 0.2)
    with pytest.raises(ValueError, match="one nn.Linear"):
        act.linear_templates(_net())


def test_knn_same_class_on_a_hand_made_line():
    # Points on a line: 0, 1, 2 (class 0) and 10, 11, 30 (class 1).
    x = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [30.0]])
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    k1 = act.knn_same_class(x, y, k=1, chunk=4)
    # Nearest neighbours: 1, 0 (or 2), 1, 11, 10, 11 -> all same class.
    assert k1.tolist() == [1.0] * 6
    k2 = act.knn_same_class(x, y, k=2, chunk=4)
    # Point 2's two nearest are 1 and 0; point 3 (10) has 11 and 2; point 5 (30) has 11 and 10.
    assert torch.allclose(k2, torch.tensor([1.0, 1.0, 1.0, 0.5, 0.5, 1.0], dtype=torch.float64))
    # Agreement with scikit-learn's neighbour search on random data.
    from sklearn.neighbors import NearestNeighbors
    g = np.random.default_rng(0)
    f, lab = g.normal(size=(60, 5)), g.integers(3, size=60)
    idx = NearestNeighbors(n_neighbors=6).fit(f).kneighbors(f, return_distance=False)[:, 1:]
    expected = (lab[idx] == lab[:, None]).mean(1)
    assert np.allclose(act.knn_same_class(f, lab, k=5, chunk=7).numpy(), expected)


def test_tsne_is_repeatable_and_keeps_separated_clusters_apart():
    g = np.random.default_rng(0)
    centres = g.normal(size=(3, 20)) * 20
    y = np.repeat(np.arange(3), 30)
    f = centres[y] + g.normal(size=(90, 20))
    a = act.tsne_embedding(f, perplexity=10, random_state=0, pca_components=5, max_iter=300)
    b = act.tsne_embedding(f, perplexity=10, random_state=0, pca_components=5, max_iter=300)
    assert a.shape == (90, 2)
    assert np.allclose(a, b)
    assert act.knn_same_class(a, y, k=10).mean() == 1.0
    with pytest.raises(ValueError, match="perplexity"):
        act.tsne_embedding(f[:5], perplexity=30)


def test_spread_subset_keeps_points_apart_and_respects_the_limit():
    g = np.random.default_rng(1)
    xy = g.uniform(0, 10, size=(300, 2))
    idx = act.spread_subset(xy, 25, min_distance=1.5, seed=0)
    assert len(idx) <= 25 and len(set(idx.tolist())) == len(idx)
    d = np.linalg.norm(xy[idx, None] - xy[None, idx], axis=-1) + np.eye(len(idx)) * 99
    assert d.min() >= 1.5
    # Every point left out is closer than min_distance to a kept one, unless the limit was hit.
    few = act.spread_subset(xy, 1000, min_distance=3.0, seed=0)
    rest = np.setdiff1d(np.arange(300), few)
    assert (np.linalg.norm(xy[rest, None] - xy[None, few], axis=-1).min(1) < 3.0).all()


def test_thumbnail_scatter_draws_one_box_per_thumbnail_and_a_legend():
    xy = np.random.default_rng(2).uniform(size=(40, 2))
    labels = np.arange(40) % 4
    images = torch.rand(40, 3, 8, 8)
    fig, ax = plt.subplots()
    act.thumbnail_scatter(xy, labels, ["a", "b", "c", "d"], images, ax=ax, n_thumbnails=6, min_distance=0.05)
    from matplotlib.offsetbox import AnnotationBbox
    boxes = [a for a in ax.artists if isinstance(a, AnnotationBbox)]
    assert len(boxes) == 6
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c", "d"]
    markers = [tuple(map(tuple, c.get_paths()[0].vertices.round(3))) for c in ax.collections]
    assert len(set(markers)) == 4                            # one marker per class, as well as one colour
    assert len(set(act.class_colours(8))) == 8 and len(set(act.class_markers(8))) == 8
    plt.close(fig)


def test_neighbour_probabilities_equal_the_formula_on_three_points():
    # Points 0, 1 and 3 on a line, each with its own width.
    x = torch.tensor([[0.0], [1.0], [3.0]])
    sigma = torch.tensor([1.0, 2.0, 0.5])
    p = act.neighbour_probabilities(x, sigma)
    sq = [[0, 1, 9], [1, 0, 4], [9, 4, 0]]
    for i in range(3):
        w = [0.0 if j == i else math.exp(-sq[i][j] / (2 * sigma[i].item() ** 2)) for j in range(3)]
        for j in range(3):
            assert p[i, j].item() == pytest.approx(w[j] / sum(w), rel=1e-12, abs=1e-300)
    assert p.dtype == torch.float64 and torch.allclose(p.sum(1), torch.ones(3, dtype=torch.float64))
    # Far apart points and a small width: exp alone underflows to 0 / 0, the softmax does not.
    far = act.neighbour_probabilities(torch.tensor([[0.0], [100.0], [300.0]]), 1.0)
    assert torch.isfinite(far).all()
    assert far.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    with pytest.raises(ValueError, match="one per point"):
        act.neighbour_probabilities(x, torch.ones(2))


def test_perplexity_bandwidths_give_each_row_the_perplexity():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(80, 6, generator=g) * torch.linspace(0.1, 10, 80)[:, None]   # very different densities
    for perplexity in (5.0, 20.0):
        sigma = act.perplexity_bandwidths(x, perplexity)
        p = act.neighbour_probabilities(x, sigma)
        assert torch.allclose(torch.special.entr(p).sum(1).exp(), torch.full((80,), perplexity, dtype=torch.float64),
                              rtol=1e-8)
    # A larger perplexity needs wider Gaussians.
    assert (act.perplexity_bandwidths(x, 20.0) > act.perplexity_bandwidths(x, 5.0)).all()
    with pytest.raises(ValueError, match="perplexity"):
        act.perplexity_bandwidths(x, 80.0)
