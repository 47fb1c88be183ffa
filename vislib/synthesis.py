"""What the network wants to see: class model visualisation by gradient ascent on the input.

Simonyan, Vedaldi & Zisserman (2014), *Deep Inside Convolutional Networks*, Sec. 2 (arXiv
1312.6034): find an image that maximises a class's pre-softmax score under an L2 penalty,

    x* = argmax_x  S_c(x) - λ ||x - x0||²,

by gradient ascent from a grey image ``x0``. Plain ascent yields high-frequency patterns that no
one recognises; Yosinski et al. (2015), *Understanding Neural Networks Through Deep
Visualization* (arXiv 1506.06579) add regularisers, which :func:`class_visualisation` uses:

* **jitter**: each step sees the image rolled by a random offset of up to ``jitter`` pixels, so
  the image must raise the score wherever it is shifted (fewer pixel-exact patterns);
* **L2 decay**: after each step ``x <- x0 + (1 - decay)(x - x0)``, which is a gradient step on the
  penalty ``λ ||x - x0||²`` (``decay = 2 λ · step``);
* **blur**: every ``blur_every`` steps a Gaussian blur of ``blur_sigma`` pixels removes the highest
  frequencies;
* each step has the size ``lr`` in mean absolute pixel value (the gradient divided by its mean
  absolute value, per image), and the image is clamped to [0, 1] (pixel space).

Recognisability is measured, not eyeballed: :func:`class_mean_masks` averages the dataset's
object masks per class, and :func:`map_mask_correlation` correlates a map of each generated image
(e.g. :func:`deviation_map`, where it departs from grey) with every class's mean mask; the
correlation with its own class is compared with the others' (chance).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .checks import model_device, model_dtype
from .hooks import frozen
from .progress import progress_bar
from .robustness import blur

__all__ = ["ClassVisualisation", "class_visualisation", "deviation_map", "class_mean_masks",
           "map_mask_correlation"]


@dataclass
class ClassVisualisation:
    """Generated images ``[C, 3, H, W]`` in [0, 1], one per class of ``target``, with each image's
    own class score at the start (grey image) and at the end, and the final logits ``[C, K]``."""

    images: Tensor
    target: Tensor
    score_start: Tensor
    score_end: Tensor
    logits: Tensor

    @property
    def confidence(self) -> Tensor:
        """Softmax probability of each image's own class, ``[C]``."""
        return self.logits.softmax(1).gather(1, self.target[:, None]).squeeze(1)


def class_visualisation(model: nn.Module, target: int | Sequence[int] | Tensor, *, size: int = 64,
                        steps: int = 200, lr: float = 0.01, decay: float = 0.01, jitter: int = 4,
                        blur_every: int = 4, blur_sigma: float = 0.5, start: float = 0.5, seed: int = 0,
                        progress: bool | None = None) -> ClassVisualisation:
    """Gradient ascent on the input for each class in ``target`` (one image per class, batched).

    From ``x0 = start`` plus a little seeded noise (±0.01), repeat ``steps`` times: roll by a random
    offset in ``[-jitter, jitter]``², take ``g = dS_c/dx`` (pre-softmax score), step
    ``x <- x + lr · g / mean|g|``, decay ``x <- x0 + (1 - decay)(x - x0)``, clamp to [0, 1], and
    every ``blur_every`` steps blur by ``blur_sigma`` pixels (``blur_every=0``: never).
    The model is left as it was (eval mode inside).
    """
    if steps < 1 or lr <= 0 or not 0 <= decay < 1 or jitter < 0 or blur_every < 0 or not 0 <= start <= 1:
        raise ValueError(f"need steps >= 1, lr > 0, 0 <= decay < 1, jitter >= 0, blur_every >= 0, 0 <= start <= 1; "
                         f"got steps={steps}, lr={lr}, decay={decay}, jitter={jitter}, blur_every={blur_every}, "
                         f"start={start}")
    device, dtype = model_device(model), model_dtype(model)
    target = torch.as_tensor(target, dtype=torch.long).flatten().to(device)
    gen = torch.Generator().manual_seed(int(seed))
    x0 = torch.full((len(target), 3, size, size), float(start), dtype=dtype, device=device)
    x = (x0 + 0.02 * (torch.rand(x0.shape, generator=gen, dtype=torch.float64).to(x0) - 0.5)).clamp(0, 1)
    with frozen(model):
        with torch.no_grad():
            logits = model(x)
        if int(target.min()) < 0 or int(target.max()) >= logits.shape[1]:
            raise ValueError(f"target classes must lie in 0..{logits.shape[1] - 1}, got {target.tolist()}")
        rows = torch.arange(len(target), device=device)
        score_start = logits[rows, target].detach().cpu()
        for step in progress_bar(range(steps), progress=progress, desc="gradient ascent"):
            dy, dx = (torch.randint(-jitter, jitter + 1, (2,), generator=gen).tolist() if jitter else (0, 0))
            with torch.enable_grad():
                xr = torch.roll(x, shifts=(dy, dx), dims=(2, 3)).requires_grad_(True)
                (g,) = torch.autograd.grad(model(xr)[rows, target].sum(), xr)
            g = torch.roll(g, shifts=(-dy, -dx), dims=(2, 3))
            g = g / g.abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
            x = x0 + (1 - decay) * (x + lr * g - x0)
            if blur_every and (step + 1) % blur_every == 0:
                x = blur(x, blur_sigma)
            x = x.clamp(0.0, 1.0).detach()
        with torch.no_grad():
            logits = model(x)
    return ClassVisualisation(x.detach(), target.cpu(), score_start, logits[rows, target].detach().cpu(),
                              logits.detach().cpu())


def deviation_map(images: Tensor, reference: float = 0.5) -> Tensor:
    """Where an image departs from a grey ``reference``: ``sqrt(Σ_k (x_k - reference)²)``, ``[B, H, W]``."""
    return (images - reference).pow(2).sum(dim=1).sqrt()


def class_mean_masks(masks: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """The mean object mask of each class over a dataset: ``[num_classes, H, W]`` in [0, 1].

    A class without images raises: its mean mask is undefined."""
    labels = torch.as_tensor(labels).cpu()
    masks = masks.float().cpu()
    counts = torch.bincount(labels, minlength=num_classes)
    if (counts == 0).any():
        missing = (counts == 0).nonzero().flatten().tolist()
        raise ValueError(f"no masks for classes {missing}: use more images")
    sums = torch.zeros(num_classes, *masks.shape[1:]).index_add_(0, labels, masks)
    return sums / counts.view(-1, 1, 1)


def map_mask_correlation(maps: Tensor, class_masks: Tensor) -> Tensor:
    """Pearson correlation of every map ``[N, H, W]`` with every mask ``[C, H, W]``: ``[N, C]``.

    0 for a constant map or mask (no NaN)."""
    a = maps.detach().double().cpu().flatten(1)
    b = class_masks.detach().double().cpu().flatten(1)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    corr = (a @ b.T) / (na * nb.T).clamp_min(1e-300)
    return torch.where((na > 1e-12) & (nb.T > 1e-12), corr, torch.zeros_like(corr))
