"""Models in pixel space: the two course networks, any user model, and torchvision's ImageNet nets.

Every model vislib hands out takes float images in [0, 1] of shape ``[B, 3, H, W]`` and
normalises them in its first module (:class:`Normalize`). So black is 0, a "mean" fill is the
dataset's mean colour, and a saliency map can be laid over the image as it is.

The normalisation ``(x - mean) / std`` is an affine layer with bias ``-mean / std``; FullGrad's
completeness identity counts that bias (see :mod:`vislib.attribution`).
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from . import config

#: ImageNet channel statistics (torchvision's).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, as the first layer of a model.

    Equivalent to ``torchvision.transforms.Normalize`` but part of the network, so the network
    itself takes pixel-space images.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} channels but std has {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    @property
    def scale(self) -> Tensor:
        """Per-channel multiplier ``1 / std`` of the affine map."""
        return 1.0 / self.std.flatten()

    @property
    def bias(self) -> Tensor:
        """Per-channel bias ``-mean / std`` of the affine map (counted by FullGrad)."""
        return (-self.mean / self.std).flatten()

    def extra_repr(self) -> str:
        mean = ", ".join(f"{v:.3f}" for v in self.mean.flatten().tolist())
        std = ", ".join(f"{v:.3f}" for v in self.std.flatten().tolist())
        return f"mean=({mean}), std=({std})"


def with_normalization(model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> nn.Sequential:
    """Wrap ``model`` so that it takes pixel-space images: ``Sequential(normalize, net)``.

    Layer names of the wrapped model gain the prefix ``net.`` (``layer4`` becomes
    ``net.layer4``). Attributes vislib reads (``vislib_default_layer``, ``classes``) are carried
    over with that prefix.
    """
    wrapped = nn.Sequential(OrderedDict(normalize=Normalize(mean, std), net=model))
    default = getattr(model, "vislib_default_layer", None)
    if default is not None:
        wrapped.vislib_default_layer = f"net.{default}"
    for attr in ("classes", "vislib_input_size"):
        if hasattr(model, attr):
            setattr(wrapped, attr, getattr(model, attr))
    return wrapped


# --------------------------------------------------------------------------- course networks
def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class CourseVGG(nn.Module):
    """The small 9-layer VGG of remove-and-retrain experiments: 6 conv-BN-ReLU + 3 linear.

    ``features``: three blocks of two 3x3 conv-BN-ReLU layers (widths w, 2w, 4w), each followed
    by 2x2 max-pooling; ``pool``: adaptive average pooling to 4x4 (so 32 px and 64 px inputs
    both work); ``classifier``: linear-ReLU-dropout, linear-ReLU-dropout, linear.
    """

    def __init__(self, num_classes: int = 8, width: int = 16, hidden: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        w = width
        layers: list[nn.Module] = []
        for cin, cout in ((3, w), (w, 2 * w), (2 * w, 4 * w)):
            layers += _conv_bn_relu(cin, cout) + _conv_bn_relu(cout, cout) + [nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(4 * w * 16, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        # The last ReLU of the features, before the final max-pool: Grad-CAM's usual choice.
        self.vislib_default_layer = f"features.{len(layers) - 2}"

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)))


class CourseResNet(nn.Module):
    """A small ResNet ending in global average pooling and one linear layer (CAM needs that).

    Stem conv-BN-ReLU with stride 2, then three stages of two torchvision ``BasicBlock``s (widths w, 2w, 4w;
    stride 2 at the start of stages 2 and 3), ``gap`` = adaptive average pooling to 1x1,
    ``fc`` = linear. Its blocks reuse one ReLU module twice, as torchvision's ResNets do.
    """

    def __init__(self, num_classes: int = 8, width: int = 16) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w),
                                  nn.ReLU(inplace=True))
        self.layer1 = self._stage(w, w, stride=1)
        self.layer2 = self._stage(w, 2 * w, stride=2)
        self.layer3 = self._stage(2 * w, 4 * w, stride=2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * w, num_classes)
        self.vislib_default_layer = "layer3"

    @staticmethod
    def _stage(cin: int, cout: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or cin != cout:
            downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        return nn.Sequential(BasicBlock(cin, cout, stride, downsample), BasicBlock(cout, cout))

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(self.flatten(self.gap(x)))


ARCHITECTURES = {"vgg": CourseVGG, "resnet": CourseResNet}


def course_model(arch: str, num_classes: int = 8, *, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, **kwargs) -> nn.Sequential:
    """A fresh (untrained) course network wrapped in pixel-space normalisation.

    ``arch`` is ``'vgg'`` or ``'resnet'``; ``mean``/``std`` default to the course dataset's.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; valid: {sorted(ARCHITECTURES)}")
    if mean is None or std is None:
        from .data import SHAPES_MEAN, SHAPES_STD
        mean, std = SHAPES_MEAN, SHAPES_STD
    net = ARCHITECTURES[arch](num_classes=num_classes, **kwargs)
    return with_normalization(net, mean, std)


# --------------------------------------------------------------------------- checkpoints
MODELS_DIR = config.DATA_DIR / "models"
MANIFEST = MODELS_DIR / "manifest.json"


def manifest() -> dict:
    """The committed checkpoints' manifest: accuracy, training time, rebuild command per model."""
    if not MANIFEST.exists():
        return {}
    return json.loads(MANIFEST.read_text())


def load_course_model(name: str = "vgg", device: str | torch.device | None = None) -> nn.Sequential:
    """Load a committed course model (``'vgg'`` or ``'resnet'``) in eval mode, offline.

    The checkpoint is read with ``torch.load(..., weights_only=True)``; the architecture and
    its arguments come from the manifest. ``model.classes`` holds the class names.
    """
    entries = manifest()
    if name not in entries:
        raise FileNotFoundError(
            f"no committed course model {name!r} in {MANIFEST}; available: {sorted(entries)}. "
            "Rebuild with: python -m vislib.train " + name
        )
    entry = entries[name]
    path = MODELS_DIR / entry["file"]
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} is missing; rebuild with: {entry['command']}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = course_model(entry["arch"], entry["num_classes"], mean=entry["mean"], std=entry["std"],
                         **entry.get("kwargs", {}))
    model.load_state_dict(state)
    model.classes = list(entry["classes"])
    model.vislib_input_size = entry["image_size"]
    model.eval()
    return model.to(device) if device is not None else model


# --------------------------------------------------------------------------- ImageNet models
_IMAGENET = {
    "vgg16": ("vgg16", "VGG16_Weights"),
    "vgg16_bn": ("vgg16_bn", "VGG16_BN_Weights"),
    "resnet18": ("resnet18", "ResNet18_Weights"),
    "resnet50": ("resnet50", "ResNet50_Weights"),
}


def _imagenet_weights(name: str):
    import torchvision.models as tvm

    if name not in _IMAGENET:
        raise ValueError(f"unknown ImageNet model {name!r}; valid: {sorted(_IMAGENET)}")
    builder_name, weights_name = _IMAGENET[name]
    weights = getattr(tvm, weights_name).IMAGENET1K_V1
    return getattr(tvm, builder_name), weights


def _checkpoint_path(weights) -> Path:
    hub_dir = Path(torch.hub.get_dir())
    return hub_dir / "checkpoints" / os.path.basename(weights.url)


def imagenet_available(name: str = "resnet18") -> bool:
    """True when the ImageNet weights of ``name`` are in the local torch cache (no network)."""
    _, weights = _imagenet_weights(name)
    return _checkpoint_path(weights).exists()


def imagenet(name: str = "resnet18", *, download: bool = False, pretrained: bool = True) -> nn.Sequential:
    """A torchvision ImageNet classifier in pixel space (wrapped with :func:`with_normalization`).

    With ``pretrained=True`` the weights must be in the torch cache (``torch.hub.get_dir()``)
    unless ``download=True``; otherwise this raises at once, without touching the network, an
    error that names the missing file and how to get it. ``pretrained=False`` gives random
    weights (the tests use that). ``model.classes`` holds the 1000 ImageNet class names.
    """
    builder, weights = _imagenet_weights(name)
    if not pretrained:
        net = builder(weights=None)
    else:
        path = _checkpoint_path(weights)
        if not path.exists() and not download:
            raise FileNotFoundError(
                f"ImageNet weights for {name} are not cached: expected {path}. On a machine with "
                f"internet access run `python -c \"import vislib.models as m; m.imagenet('{name}', "
                f"download=True)\"` (or download {weights.url} into {path.parent})."
            )
        net = builder(weights=weights)
    net.classes = list(weights.meta["categories"])
    net.vislib_input_size = 224
    model = with_normalization(net, IMAGENET_MEAN, IMAGENET_STD)
    return model.eval()
