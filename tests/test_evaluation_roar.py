"""ROAR on a toy task whose informative pixels are known: the oracle map must beat random."""
from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from vislib.evaluation import fresh_copy, plot_roar, roar
from vislib.models import Normalize

SIZE = 16


@pytest.fixture(autouse=True)
def one_thread():
    """The toy models are tiny: a second intra-op thread only adds overhead, and on a busy
    2-core machine its spinning makes these trainings 20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

REGION = (slice(6, 10), slice(6, 10))  # the only informative pixels: 16 of 256
TRAIN = {"epochs": 4, "batch_size": 32, "lr": 1e-2}


def toy_data(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """Noise everywhere; the class is the brightness of a fixed 4x4 patch (0.8 or 0.2)."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, SIZE, SIZE, generator=gen)
    labels = torch.randint(0, 2, (n,), generator=gen)
    patch = torch.where(labels.view(-1, 1, 1, 1) == 1, 0.8, 0.2) + 0.05 * torch.randn(n, 3, 4, 4, generator=gen)
    images[:, :, REGION[0], REGION[1]] = patch
    return images.clamp(0, 1), labels


def linear_model() -> nn.Module:
    return nn.Sequential(Normalize((0.5, 0.5, 0.5), (0.29, 0.29, 0.29)), nn.Flatten(), nn.Linear(3 * SIZE * SIZE, 2))


class Oracle:
    """The region's indicator as a 'method'; counts how often it is asked for maps."""

    __name__ = "oracle"

    def __init__(self) -> None:
        self.calls = 0
        self.images = 0

    def __call__(self, model: nn.Module, images: Tensor, target=None) -> Tensor:
        self.calls += 1
        self.images += len(images)
        maps = torch.zeros(len(images), SIZE, SIZE)
        maps[:, REGION[0], REGION[1]] = 1.0
        return maps


@pytest.mark.parametrize("fill", ["mean", "road"])
def test_quick_roar_ranks_the_oracle_map_above_random(fill):
    train_set, test_set = toy_data(256, 0), toy_data(256, 1)
    oracle = Oracle()
    builds = []

    def model_fn():
        builds.append(1)
        return linear_model()

    original = linear_model()
    before = {k: v.clone() for k, v in original.state_dict().items()}
    result = roar(original, train_set, test_set, [oracle], fractions=(0.25, 0.5), seeds=(0, 1), fill=fill,
                  model_fn=model_fn, train_kwargs=TRAIN, map_batch_size=100, progress=False)
    assert result.methods == ["oracle", "random"]
    assert result.fractions.tolist() == [0.0, 0.25, 0.5]
    acc_oracle, acc_random = result.accuracy["oracle"], result.accuracy["random"]
    assert acc_oracle.shape == acc_random.shape == (3, 2)
    assert (acc_oracle[0] > 0.95).all() and torch.equal(acc_oracle[0], acc_random[0])  # k = 0, shared
    # Removing the oracle's top 25 % fills the whole patch: nothing is left to learn.
    assert (acc_oracle[1:] < 0.65).all()
    # Random removal of 25-50 % leaves part of the patch: still learnable.
    assert (acc_random[1:] > 0.85).all()
    # Maps computed once per set (in batches), reused for every k and seed; one fresh model per training.
    assert oracle.calls == 3 + 3 and oracle.images == 512
    assert len(builds) == 2 * (1 + 2 * 2)
    assert all(torch.equal(v, before[k]) for k, v in original.state_dict().items())


def test_table_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train_set, test_set = toy_data(128, 2), toy_data(128, 3)
    result = roar(linear_model(), train_set, test_set, {"oracle": Oracle()}, fractions=(0.5,), seeds=(0, 1),
                  model_fn=linear_model, train_kwargs=TRAIN, progress=False)
    rows = result.table()
    assert [(r["method"], r["k"]) for r in rows] == [("oracle", 0.0), ("oracle", 0.5), ("random", 0.0), ("random", 0.5)]
    row = rows[1]
    assert row["mean"] == pytest.approx(sum(row["accuracies"]) / 2)
    assert row["sd"] == pytest.approx(torch.tensor(row["accuracies"]).std().item())
    text = result.format_table()
    assert "k=50%" in text and "±" in text and "oracle" in text
    fig = plot_roar(result)
    ax = fig.axes[0]
    assert "mean" in ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert len(ax.collections) == 2  # one band per method (two seeds)
    plt.close(fig)
    assert set(result.seconds) >= {"maps", "fill", "train", "total"}


def test_precomputed_maps_and_the_default_fresh_copy():
    train_set, test_set = toy_data(64, 4), toy_data(64, 5)
    maps_train, maps_test = Oracle()(None, train_set[0]), Oracle()(None, test_set[0])
    original = linear_model()
    fresh = fresh_copy(original)
    assert not torch.equal(fresh[2].weight, original[2].weight) and fresh[2].weight.shape == original[2].weight.shape
    result = roar(original, train_set, test_set, {"oracle": (maps_train, maps_test)}, fractions=(0.5,), seeds=(0,),
                  train_kwargs={"epochs": 1, "batch_size": 32}, random_control=False, progress=False)
    assert result.methods == ["oracle"] and result.accuracy["oracle"].shape == (2, 1)


def test_bad_input_gives_clear_errors():
    train_set, test_set = toy_data(8, 0), toy_data(8, 1)
    kwargs = {"model_fn": linear_model, "train_kwargs": {"epochs": 1}, "progress": False}
    with pytest.raises(ValueError, match="unknown fill"):
        roar(linear_model(), train_set, test_set, [Oracle()], fill="noise", **kwargs)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        roar(linear_model(), train_set, test_set, [Oracle()], fractions=(30, 50), **kwargs)
    with pytest.raises(ValueError, match="maps of 'oracle' must have shapes"):
        roar(linear_model(), train_set, test_set, {"oracle": (torch.rand(8, 4, 4), torch.rand(8, 4, 4))}, **kwargs)
    with pytest.raises(ValueError, match="8 images but 7 labels"):
        roar(linear_model(), (train_set[0], train_set[1][:7]), test_set, [Oracle()], **kwargs)
