"""Models in pixel space: the two course networks, any user model, and torchvision's ImageNet nets.

Every model vislib hands out takes float images in [0, 1] of shape ``[B, 3, H, W]`` and
normalises them in its first module (:class:`Normalize`). So black is 0, a "mean" fill is the
dataset's mean colour, and a saliency map can be laid over the image as it is.

The normalisation ``(x - mean) / std`` is an affine layer with bias ``-mean / std``; FullGrad's
completeness identity counts that bias (see :mod:`vislib.attribution`).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

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


# --------------------------------------------------------------------------- receptive field
class ReceptiveField(NamedTuple):
    """Geometry of the units after a stack of layers, in input pixels (see :func:`receptive_field`)."""

    size: int     #: side of the square of input pixels a unit depends on
    jump: int     #: distance in input pixels between the centres of two neighbouring units
    start: float  #: centre of the first unit's receptive field (pixel 0 has its centre at 0)


def _square(value, what: str, module: nn.Module) -> int:
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise ValueError(f"receptive_field needs square {what}s, {type(module).__name__} has {what} {value}")
        value = value[0]
    return int(value)


#: Layers after which a unit has no fixed receptive field (they mix positions depending on the input size).
_MIXES_POSITIONS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Linear, nn.Upsample)


def receptive_field(layers: nn.Module | Sequence[nn.Module]) -> ReceptiveField:
    """Size, jump and first centre of the receptive field of the units after ``layers``.

    ``layers`` runs in order (an ``nn.Sequential`` or a list; containers are walked into).
    ``nn.Conv2d``, ``nn.MaxPool2d`` and ``nn.AvgPool2d`` with kernel ``k`` (dilation ``d``: an
    effective kernel ``d (k - 1) + 1``), stride and padding ``p`` update, in this order,

        ``size += (k - 1) · jump``,  ``start += ((k - 1) / 2 - p) · jump``,  ``jump *= stride``;

    every other layer (ReLU, BatchNorm, dropout) is pointwise and changes nothing. The unit at
    index ``i`` of the output then sees input pixels ``start + i · jump ± (size - 1) / 2`` (clipped
    to the image: padding pixels are not pixels). Only square kernels, strides and paddings, and only
    a plain chain of layers: the parallel branches of a ResNet block are not followed. Adaptive
    pooling, flattening, linear and upsampling layers mix positions in a way that depends on the
    input size: after one there is no such receptive field, and ``ValueError`` says so.
    """
    modules = [layers] if isinstance(layers, nn.Module) else list(layers)
    size, jump, start = 1, 1, 0.0
    for container in modules:
        for m in container.modules():
            if isinstance(m, nn.Conv2d):
                k = _square(m.dilation, "dilation", m) * (_square(m.kernel_size, "kernel_size", m) - 1) + 1
            elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
                dilation = getattr(m, "dilation", 1)
                k = _square(dilation, "dilation", m) * (_square(m.kernel_size, "kernel_size", m) - 1) + 1
            elif isinstance(m, _MIXES_POSITIONS):
                raise ValueError(f"receptive_field: {type(m).__name__} mixes positions depending on the input size, so "
                                 "the units after it have no fixed receptive field; pass the layers before it")
            else:
                continue
            stride, padding = _square(m.stride, "stride", m), m.padding
            if isinstance(padding, str):
                raise ValueError(f"receptive_field needs a numeric padding, {type(m).__name__} has {padding!r}")
            padding = _square(padding, "padding", m)
            size += (k - 1) * jump
            start += ((k - 1) / 2 - padding) * jump
            jump *= stride
    return ReceptiveField(size, jump, start)


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
#: The committed course checkpoints and their manifest (see :mod:`vislib.config` for where they live).
MODELS_DIR = config.MODELS_DIR
MANIFEST = MODELS_DIR / "manifest.json"
#: Keys every manifest entry must have for :func:`load_course_model`.
MANIFEST_KEYS = ("file", "sha256", "arch", "num_classes", "classes", "image_size", "mean", "std")


class CheckpointError(RuntimeError):
    """A course checkpoint or its manifest is missing, malformed, outside its folder or tampered with.

    The message names the file and the command that rebuilds it.
    """


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, as 64 hex digits (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _rebuild(folder: Path) -> str:
    """The rebuild hint for checkpoints in ``folder``."""
    if folder.resolve() == MODELS_DIR.resolve():
        return f"rebuild with: {config.REBUILD_COMMAND}"
    return f"rebuild with: python -m vislib.train vgg resnet --out {folder}"


def manifest(folder: str | Path | None = None) -> dict:
    """The checkpoints' manifest (``folder/manifest.json``, default :data:`MODELS_DIR`): per model its
    file, SHA-256, architecture, accuracy, training time and rebuild command.

    A missing or unreadable manifest is a :class:`CheckpointError` that names the file and the
    rebuild command.
    """
    folder = Path(folder) if folder is not None else MODELS_DIR
    file = folder / MANIFEST.name
    if not file.is_file():
        raise CheckpointError(f"no checkpoint manifest {file}; {_rebuild(folder)}")
    try:
        entries = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"cannot read the checkpoint manifest {file} ({error}); {_rebuild(folder)}") from None
    if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
        raise CheckpointError(f"the checkpoint manifest {file} must map model names to entries (JSON objects); "
                              f"{_rebuild(folder)}")
    return entries


def _checkpoint_file(folder: Path, manifest_file: Path, name: str, file: object) -> Path:
    """The checkpoint path an entry names, which must be a relative path inside ``folder``."""
    hint = _rebuild(folder)
    if not isinstance(file, str) or not file or Path(file).is_absolute() or file.startswith(("/", "\\")) \
            or ".." in Path(file.replace("\\", "/")).parts:
        raise CheckpointError(f"{manifest_file}: model {name!r} names the checkpoint {file!r}; it must be a "
                              f"relative file name inside {folder} (no absolute path, no '..'); {hint}")
    path = folder / file
    if not path.resolve().is_relative_to(folder.resolve()):
        raise CheckpointError(f"{manifest_file}: the checkpoint {file!r} of model {name!r} resolves to "
                              f"{path.resolve()}, outside {folder}; {hint}")
    return path


def load_course_model(name: str = "vgg", device: str | torch.device | None = None, *,
                      folder: str | Path | None = None) -> nn.Sequential:
    """Load a committed course model (``'vgg'`` or ``'resnet'``) in eval mode, offline.

    ``folder`` holds the checkpoints and ``manifest.json`` (default :data:`MODELS_DIR`: the
    checkout's ``data/models``, or the copy installed with the package). The manifest entry names
    the file, which must lie inside ``folder``, and its SHA-256, which must match the file's bytes
    (a flipped byte is refused); the file is then read with ``torch.load(..., weights_only=True)``
    and the architecture and its arguments come from the entry. ``model.classes`` holds the class
    names. Every failure is a :class:`CheckpointError` (a ``FileNotFoundError`` for an unknown
    name or a missing file) that names the file and the rebuild command.
    """
    folder = Path(folder) if folder is not None else MODELS_DIR
    manifest_file = folder / MANIFEST.name
    hint = _rebuild(folder)
    entries = manifest(folder)
    if name not in entries:
        raise FileNotFoundError(f"no course model {name!r} in {manifest_file}; available: {sorted(entries)}; "
                                f"the course models (vgg, resnet) are built by vislib.train: {hint}")
    entry = entries[name]
    missing = [k for k in MANIFEST_KEYS if k not in entry]
    if missing:
        raise CheckpointError(f"{manifest_file}: the entry of model {name!r} lacks {missing} "
                              f"(an entry needs {list(MANIFEST_KEYS)}); {hint}")
    path = _checkpoint_file(folder, manifest_file, name, entry["file"])
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} (model {name!r} in {manifest_file}) is missing; {hint}")
    expected = str(entry["sha256"]).lower()
    actual = sha256_file(path)
    if actual != expected:
        raise CheckpointError(f"checkpoint {path} does not match its manifest: SHA-256 {actual}, but "
                              f"{manifest_file} records {expected}. The file is corrupt or was changed; {hint}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for one cause: a bad file
        raise CheckpointError(f"cannot load checkpoint {path} with torch.load(weights_only=True): "
                              f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}; "
                              f"{hint}") from error
    try:
        model = course_model(entry["arch"], entry["num_classes"], mean=entry["mean"], std=entry["std"],
                             **entry.get("kwargs", {}))
        model.load_state_dict(state)
    except (ValueError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"checkpoint {path} does not fit the architecture its manifest entry in "
                              f"{manifest_file} describes ({entry['arch']!r}, {entry.get('kwargs', {})}): "
                              f"{str(error).splitlines()[0]}; {hint}") from error
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


#: Suffix of the marker file that says a cached checkpoint is a stand-in (random weights).
STANDIN_MARKER = ".vislib-standin"


def _cached_path(name: str) -> Path:
    """Where torchvision keeps (or would keep) the ImageNet weights of ``name``."""
    return _checkpoint_path(_imagenet_weights(name)[1])


def _standin_marker(path: Path) -> Path:
    """The file beside a checkpoint that says it holds stand-in weights."""
    return path.with_name(path.name + STANDIN_MARKER)


def imagenet_available(name: str = "resnet18") -> bool:
    """True when weights for ``name`` are in the local torch cache (no network): real or stand-in."""
    return _cached_path(name).exists()


def imagenet_is_standin(name: str = "resnet18") -> bool:
    """True when the cached weights of ``name`` are stand-ins written by :func:`write_imagenet_standins`."""
    path = _cached_path(name)
    return path.exists() and _standin_marker(path).exists()


def imagenet(name: str = "resnet18", *, download: bool = False, pretrained: bool = True) -> nn.Sequential:
    """A torchvision ImageNet classifier in pixel space (wrapped with :func:`with_normalization`).

    With ``pretrained=True`` the weights must be in the torch cache (``torch.hub.get_dir()``)
    unless ``download=True``; otherwise this raises at once, without touching the network, an
    error that names the missing file and how to get it (``python -m vislib.models download``).
    ``pretrained=False`` gives random weights (the tests use that). ``model.classes`` holds the
    1000 ImageNet class names; ``model.standin`` is True when the cached weights are stand-ins
    (:func:`write_imagenet_standins`), which are *not* ImageNet-trained.
    """
    builder, weights = _imagenet_weights(name)
    standin = False
    if not pretrained:
        net = builder(weights=None)
    else:
        path = _checkpoint_path(weights)
        if not path.exists() and not download:
            raise FileNotFoundError(
                f"ImageNet weights for {name} are not cached: expected {path}. On a machine with "
                f"internet access run `python -m vislib.models download {name}` (or `make imagenet`; "
                f"the same as `vislib.models.imagenet('{name}', download=True)`), or copy {weights.url} "
                f"into {path.parent}."
            )
        standin = imagenet_is_standin(name)
        net = builder(weights=weights)
    net.classes = list(weights.meta["categories"])
    net.vislib_input_size = 224
    model = with_normalization(net, IMAGENET_MEAN, IMAGENET_STD)
    model.standin = standin
    return model.eval()


def imagenet_for_notebook(name: str, device: str | torch.device | None = None) -> nn.Sequential | None:
    """The model for a notebook's ImageNet section, or ``None`` after one line that says why.

    Not cached: says how to get the weights (``make imagenet``) and returns ``None``. Stand-in
    weights (:func:`write_imagenet_standins`, as in the test command): says plainly that they are
    random, not ImageNet, and returns the model, whose ``standin`` is True, so that
    :func:`imagenet_label` and :func:`imagenet_figure_name` mark what the section draws.
    """
    if not imagenet_available(name):
        print(f"ImageNet weights for {name} are not cached — skipping the ImageNet part. On a machine with "
              f"internet: make imagenet (= python -m vislib.models download {name} ...).")
        return None
    net = imagenet(name)
    if net.standin:
        print(f"NOTE: the {name} weights here are STAND-INS (random, not trained on ImageNet). This section only "
              "exercises the code; its maps and predictions mean nothing, and its figures are saved with the "
              "suffix '_standin'.")
    return net.to(device) if device is not None else net


def imagenet_label(name: str, net: nn.Module) -> str:
    """``"resnet18 (ImageNet)"``, or a label that says the weights are stand-ins."""
    return f"{name} (STAND-IN random weights, not ImageNet)" if getattr(net, "standin", False) else f"{name} (ImageNet)"


def imagenet_figure_name(base: str, net: nn.Module) -> str:
    """``base``, or ``base + '_standin'`` for stand-in weights: never overwrites a real run's figure."""
    return base + "_standin" if getattr(net, "standin", False) else base


def write_imagenet_standins(names: Sequence[str], hub_dir: str | Path, seed: int = 0) -> list[Path]:
    """Write random-initialised weights under torchvision's file names in ``hub_dir/checkpoints``.

    For tests and CI, which have no network: with ``TORCH_HOME`` (or ``torch.hub.set_dir``)
    pointing there, :func:`imagenet` loads them through torchvision's real loading code. Each file
    gets a marker beside it, so :func:`imagenet_is_standin` and ``model.standin`` say that the
    weights are *not* ImageNet's. An existing real checkpoint is never overwritten.
    """
    folder = Path(hub_dir) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        builder, weights = _imagenet_weights(name)
        path = folder / os.path.basename(weights.url)
        marker = _standin_marker(path)
        if path.exists() and not marker.exists():
            raise FileExistsError(f"{path} holds real weights; stand-ins are written only into a folder of their own")
        torch.manual_seed(seed)
        torch.save(builder(weights=None).state_dict(), path)
        marker.write_text("random-initialised stand-in weights written by vislib.models.write_imagenet_standins; "
                          "not trained on ImageNet\n")
        written.append(path)
    return written


def download_imagenet(names: Sequence[str], timeout: float = 5.0) -> list[Path]:
    """Download the torchvision weights of ``names`` into the torch cache, through torchvision itself.

    The weights' host is tried first with a ``timeout``-second connection, so that an offline
    machine gets a clear error at once rather than a hang. Returns the cached files.
    """
    import socket
    from urllib.parse import urlparse

    paths = []
    for name in names:
        _, weights = _imagenet_weights(name)               # an unknown name fails before any network
        path = _checkpoint_path(weights)
        if path.exists() and not imagenet_is_standin(name):
            paths.append(path)
            continue
        url = urlparse(weights.url)
        try:
            socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        except OSError as error:
            raise ConnectionError(
                f"cannot reach {url.hostname} to download the {name} weights ({error}). This machine seems "
                f"to be offline: the ImageNet sections of the notebooks will say so and skip. On a machine "
                f"with internet access, run `python -m vislib.models download {name}` there and copy "
                f"{path.name} into {path.parent}.") from None
        if path.exists():                                  # a stand-in: replace it with the real weights
            path.unlink()
            _standin_marker(path).unlink(missing_ok=True)
        imagenet(name, download=True)
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vislib.models download NAME ...`` / ``standins DIR NAME ...`` / ``list``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m vislib.models",
                                     description="ImageNet weights for the notebooks' ImageNet sections.")
    sub = parser.add_subparsers(dest="command", required=True)
    down = sub.add_parser("download", help="download torchvision's ImageNet weights into the torch cache")
    down.add_argument("names", nargs="+", choices=sorted(_IMAGENET))
    stand = sub.add_parser("standins", help="write random stand-in weights (tests, CI) into a torch hub folder")
    stand.add_argument("hub_dir", type=Path)
    stand.add_argument("names", nargs="+", choices=sorted(_IMAGENET))
    sub.add_parser("list", help="which ImageNet weights are cached")
    args = parser.parse_args(argv)
    if args.command == "download":
        try:
            for path in download_imagenet(args.names):
                print(f"cached {path}")
        except ConnectionError as error:
            print(f"error: {error}")
            return 1
    elif args.command == "standins":
        for path in write_imagenet_standins(args.names, args.hub_dir):
            print(f"stand-in (random weights, not ImageNet) {path}")
    else:
        for name in sorted(_IMAGENET):
            state = ("stand-in" if imagenet_is_standin(name) else "cached") if imagenet_available(name) else "missing"
            print(f"{name:10s} {state:9s} {_cached_path(name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
