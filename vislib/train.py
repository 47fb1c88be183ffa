"""vislib's own seeded training loop, and the command that rebuilds the course checkpoints.

    python -m vislib.train vgg        # rebuilds data/models/vgg.pt and its manifest entry
    python -m vislib.train resnet

Training is deterministic for a given seed on a given machine (CPU kernels); the manifest
records the held-out accuracy, the wall time and the exact command.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from .checks import model_device
from .progress import progress_bar


@dataclass
class History:
    """Per-epoch training loss and (if a validation set was given) validation accuracy."""

    loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generator and return a dedicated generator for data order."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int = 512) -> Tensor:
    """Logits of ``model`` (in eval mode) for ``images``, computed in batches."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    try:
        outs = [model(images[i:i + batch_size].to(device)).float().cpu()
                for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0)


def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 512) -> float:
    """Fraction of ``images`` whose predicted class equals ``labels``."""
    return (predict(model, images, batch_size).argmax(1) == labels.cpu()).float().mean().item()


def _schedule(opt: torch.optim.Optimizer, lr: float, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """One-cycle learning rate (warm-up over the first quarter of the steps, then cosine decay).

    A one-cycle schedule needs at least one step in each phase: with 4 steps or fewer its
    warm-up phase is empty (torch divides by zero), so such tiny runs train at a constant ``lr``.
    """
    if steps <= 4:
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.25)


def train(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 3e-3,
    weight_decay: float = 5e-4,
    seed: int = 0,
    val: tuple[Tensor, Tensor] | None = None,
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Train ``model`` in place with AdamW and a one-cycle learning rate; return its history.

    ``images`` are pixel-space tensors ``[N, 3, H, W]``; the model normalises inside. The data
    order, the initial dropout masks and ``augment`` draw from generators seeded by ``seed``, so
    a run is repeatable on one machine. A progress bar shows epochs and the running loss.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    gen = seed_everything(seed)
    device = torch.device(device) if device is not None else model_device(model)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = _schedule(opt, lr, epochs * math.ceil(len(images) / batch_size))
    loss_fn = nn.CrossEntropyLoss()
    history = History()
    start = time.perf_counter()
    bar = progress_bar(range(epochs), progress=progress, desc=desc)
    for _ in bar:
        model.train()
        order = torch.randperm(len(images), generator=gen)
        total, count = 0.0, 0
        for i in range(0, len(images), batch_size):
            idx = order[i:i + batch_size]
            x, y = images[idx], labels[idx]
            if augment is not None:
                x = augment(x, gen)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            count += len(idx)
        history.loss.append(total / max(count, 1))
        postfix = {"loss": f"{history.loss[-1]:.3f}"}
        if val is not None:
            history.val_accuracy.append(accuracy(model, *val))
            postfix["val_acc"] = f"{history.val_accuracy[-1]:.3f}"
        bar.set_postfix(postfix)
    model.eval()
    history.seconds = time.perf_counter() - start
    return history


# --------------------------------------------------------------------------- course checkpoints
#: How each committed course model is trained. Changing a recipe means rebuilding its checkpoint.
RECIPES = {
    "vgg": {"arch": "vgg", "kwargs": {"width": 12}, "epochs": 5, "lr": 3e-3, "batch_size": 128},
    "resnet": {"arch": "resnet", "kwargs": {"width": 16}, "epochs": 5, "lr": 3e-3, "batch_size": 128},
}


def initial_model(name: str, seed: int = 0) -> nn.Module:
    """Course model ``name`` as its recipe builds it, with weights initialised from ``seed``.

    torch seeds its global generator differently in every process, so an unseeded
    initialisation would make every rebuild of a checkpoint a different network.
    """
    from . import data, models

    recipe = RECIPES[name]
    torch.manual_seed(seed)
    return models.course_model(recipe["arch"], len(data.SHAPE_CLASSES), **recipe["kwargs"])


def build_course_model(name: str, *, seed: int = 0, image_size: int = 64, progress: bool = True,
                       out: str | Path | None = None) -> dict:
    """Train course model ``name`` from scratch, save it under ``out`` (default ``data/models``,
    the committed checkpoints) and update the ``manifest.json`` there; return its entry."""
    from . import data, models

    folder = Path(out) if out is not None else models.MODELS_DIR
    manifest_file = folder / models.MANIFEST.name

    if name not in RECIPES:
        raise ValueError(f"unknown course model {name!r}; valid: {sorted(RECIPES)}")
    recipe = RECIPES[name]
    train_ds = data.course_split("train", size=image_size)
    test_ds = data.course_split("test", size=image_size)
    model = initial_model(name, seed)
    history = train(model, train_ds.images, train_ds.labels, epochs=recipe["epochs"], lr=recipe["lr"],
                    batch_size=recipe["batch_size"], seed=seed, progress=progress, desc=f"training {name}")
    acc = accuracy(model, test_ds.images, test_ds.labels)
    folder.mkdir(parents=True, exist_ok=True)
    file = f"{name}.pt"
    torch.save(model.state_dict(), folder / file)
    entry = {
        "file": file,
        "sha256": models.sha256_file(folder / file),  # load_course_model refuses a file that differs
        "arch": recipe["arch"],
        "kwargs": recipe["kwargs"],
        "num_classes": len(data.SHAPE_CLASSES),
        "classes": list(data.SHAPE_CLASSES),
        "image_size": image_size,
        "mean": list(data.SHAPES_MEAN),
        "std": list(data.SHAPES_STD),
        "train_split": {"seed": data.SPLITS["train"][0], "n": len(train_ds)},
        "test_split": {"seed": data.SPLITS["test"][0], "n": len(test_ds)},
        "epochs": recipe["epochs"],
        "seed": seed,
        "test_accuracy": round(acc, 4),
        "train_seconds": round(history.seconds, 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "command": f"python -m vislib.train {name}",
    }
    man = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
    man[name] = entry
    manifest_file.write_text(json.dumps(man, indent=2) + "\n")
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild the committed course checkpoints.")
    parser.add_argument("names", nargs="+", choices=sorted(RECIPES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help="folder for the checkpoints and their manifest (default: data/models, the committed ones)")
    args = parser.parse_args(argv)
    for name in args.names:
        entry = build_course_model(name, seed=args.seed, out=args.out)
        print(f"{name}: test accuracy {entry['test_accuracy']:.4f}, {entry['train_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
