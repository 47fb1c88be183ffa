"""vislib.train: the training loop behind the course checkpoints and every ROAR retraining."""
import pytest
import torch
from torch import nn

from vislib import train as training


def toy_problem(n: int = 64, seed: int = 0):
    """Two linearly separable classes of 3×4×4 'images': class 1 is brighter in channel 0."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = torch.rand(n, 3, 4, 4, generator=gen) * 0.5
    images[:, 0] += 0.5 * labels[:, None, None]
    return images, labels


def toy_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 2))


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 8])
def test_tiny_runs_train_without_a_scheduler_error(steps):
    # batch 16 on 16·steps images for one epoch = `steps` optimiser steps; one-cycle needs > 4.
    images, labels = toy_problem(16 * steps)
    model = toy_model()
    before = [p.detach().clone() for p in model.parameters()]
    history = training.train(model, images, labels, epochs=1, batch_size=16, progress=False)
    assert len(history.loss) == 1
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_schedule_is_one_cycle_with_peak_lr_or_constant_for_tiny_runs():
    def lrs(steps):
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
        sched = training._schedule(opt, 0.1, steps)
        seen = []
        for _ in range(steps):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return seen

    assert lrs(4) == [0.1] * 4
    cycle = lrs(40)
    peak = max(range(40), key=cycle.__getitem__)
    assert cycle[peak] == pytest.approx(0.1)
    assert peak == 9                                     # pct_start 0.25: warm-up ends at step 0.25·40 - 1
    assert cycle[0] < 0.01 and cycle[-1] < 1e-4          # starts low (max_lr / 25), ends near zero
    assert all(a <= b for a, b in zip(cycle[:peak], cycle[1:peak + 1]))
    assert all(a >= b for a, b in zip(cycle[peak:], cycle[peak + 1:]))


def test_training_learns_a_separable_problem_and_leaves_eval_mode():
    images, labels = toy_problem(256)
    test_images, test_labels = toy_problem(256, seed=1)
    model = toy_model()
    chance = training.accuracy(model, test_images, test_labels)
    history = training.train(model, images, labels, epochs=8, batch_size=32, lr=1e-2,
                             val=(test_images, test_labels), progress=False)
    assert not model.training
    assert len(history.loss) == len(history.val_accuracy) == 8
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert history.val_accuracy[-1] == training.accuracy(model, test_images, test_labels) > 0.95 > chance + 0.2


def test_same_seed_same_weights_other_seed_other_weights():
    images, labels = toy_problem(96)

    def weights(seed):
        model = toy_model()                               # same initial weights every time
        training.train(model, images, labels, epochs=2, batch_size=16, seed=seed, progress=False)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(weights(0), weights(0))
    assert not torch.allclose(weights(0), weights(1))


def test_mismatched_images_and_labels_are_a_clear_error():
    images, labels = toy_problem(32)
    with pytest.raises(ValueError, match="32 images but 31 labels"):
        training.train(toy_model(), images, labels[:31], progress=False)


@pytest.mark.parametrize("name", sorted(training.RECIPES))
def test_course_model_initialisation_depends_only_on_the_seed(name):
    # torch seeds its global generator anew in every process: a rebuild must not depend on it.
    torch.manual_seed(12345)
    a = training.initial_model(name, seed=0)
    torch.seed()                                          # a random global state in between
    b = training.initial_model(name, seed=0)
    c = training.initial_model(name, seed=1)
    for pa, pb, pc in zip(a.state_dict().values(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.state_dict().values(), c.state_dict().values()))
