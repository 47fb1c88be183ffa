"""Tiny models for the attribution tests: small enough for exact checks in float64."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from vislib.models import Normalize

MEAN = (0.5, 0.4, 0.3)
STD = (0.25, 0.2, 0.3)


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters (so its bias matters)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(c, generator=g) * 0.3)
    return model


class TinyNet(nn.Module):
    """Normalize, conv-BN-ReLU-conv-BN-ReLU (one in-place ReLU module used twice), a strided
    conv-BN and its own in-place ReLU (``relu2``, the CAM layer), GAP, one linear layer.

    ``features(x)`` gives the CAM layer's output and ``head(a)`` the logits from it, so tests
    can compute CAM formulas without hooks.
    """

    def __init__(self, num_classes: int = 5, width: int = 4, act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        w = width
        make = (lambda: act(inplace=True)) if act is nn.ReLU else act
        self.normalize = Normalize(MEAN, STD)
        self.conv1 = nn.Conv2d(3, w, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = make()
        self.conv2 = nn.Conv2d(w, w, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(w)
        self.conv3 = nn.Conv2d(w, 2 * w, 3, padding=1, stride=2)
        self.bn3 = nn.BatchNorm2d(2 * w)
        self.relu2 = make()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * w, num_classes)
        self.vislib_default_layer = "relu2"
        randomize_batchnorm(self)

    def features(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(self.normalize(x))))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.relu2(self.bn3(self.conv3(x)))

    def head(self, a: Tensor) -> Tensor:
        return self.fc(self.gap(a).flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class ShuffledNet(nn.Module):
    """Layers registered in another order than they run, and one conv called twice."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(6, num_classes)
        self.bn_b = nn.BatchNorm2d(6)
        self.conv_b = nn.Conv2d(3, 6, 3, padding=1, stride=2)
        self.shared = nn.Conv2d(3, 3, 3, padding=1)          # used twice
        self.bn_a = nn.BatchNorm2d(3, affine=False)
        self.relu = nn.ReLU()
        self.normalize = Normalize(MEAN, STD)
        self.vislib_default_layer = "bn_b"
        randomize_batchnorm(self, seed=1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.normalize(x)
        x = self.relu(self.shared(x))
        x = self.relu(self.bn_a(self.shared(x)))
        x = self.relu(self.bn_b(self.conv_b(x)))
        return self.fc(x.mean(dim=(2, 3)))


class Exploding(nn.Module):
    """Wraps a model; its forward raises from call number ``at`` on (1 = the first), after the
    model ran, or its backward raises (``at=0``) through a function on the logits."""

    def __init__(self, model: nn.Module, at: int = 1) -> None:
        super().__init__()
        self.model = model
        self.at = at
        self.calls = 0
        if hasattr(model, "vislib_default_layer"):
            self.vislib_default_layer = "model." + model.vislib_default_layer

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        out = self.model(x)
        if self.at and self.calls >= self.at:
            raise RuntimeError("boom")
        return NoBackward.apply(out) if self.at == 0 else out


class NoBackward(torch.autograd.Function):
    """Identity whose backward raises: marks a part of a network no backward pass may reach."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("backward reached a part it must not reach")


class Blocked(nn.Module):
    """``NoBackward`` as a module."""

    def forward(self, x: Tensor) -> Tensor:
        return NoBackward.apply(x)


class LinearNet(nn.Module):
    """A linear classifier on the raw pixels: ``S = W x + b``."""

    def __init__(self, size: int, num_classes: int = 3) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(3 * size * size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.flatten(x))


class GuidedToy(nn.Module):
    """Flatten, linear 3-3, ReLU, linear 3-2, the same in-place ReLU, linear 2-2 (for 1x1 images).

    Weights are fixed so that guided backprop can be computed by hand (see the test).
    """

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(3, 3, bias=False)
        self.fc2 = nn.Linear(3, 2, bias=False)
        self.fc3 = nn.Linear(2, 2, bias=False)
        self.relu = nn.ReLU(inplace=True)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, -1]]))
            self.fc2.weight.copy_(torch.tensor([[1.0, -1, 1], [1, 1, 1]]))
            self.fc3.weight.copy_(torch.tensor([[1.0, -1], [2, 1]]))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc3(self.relu(self.fc2(self.relu(self.fc1(self.flatten(x))))))


def tiny_images(n: int = 3, size: int = 12, seed: int = 0, dtype=torch.float64) -> Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def tiny_net(dtype=torch.float64, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return TinyNet(**kwargs).to(dtype).eval()
