"""How easily a classifier is fooled: adversarial perturbations (FGSM, PGD) and common corruptions.

Adversarial examples (Szegedy et al. 2014, arXiv 1312.6199). With a loss ``L(x, c)`` of class ``c``
(cross-entropy of the logits, or the margin ``max_{k != c} S_k - S_c``):

* **FGSM**, the fast gradient sign method (Goodfellow, Shlens & Szegedy 2015, arXiv 1412.6572),
  one step in the L-inf ball of radius ``eps``::

      untargeted (move away from label y):   x' = clip_[0,1](x + eps * sign(grad_x L(x, y)))
      targeted   (move toward class t):      x' = clip_[0,1](x - eps * sign(grad_x L(x, t)))

  On a linear model ``S = W x`` with the margin loss the targeted step is
  ``x + eps * sign(w_t - w_c)`` (``c`` the strongest other class): the answer is known by hand.
* **PGD**, projected gradient descent (Kurakin et al. 2017, arXiv 1607.02533; Madry et al. 2018,
  arXiv 1706.06083): ``steps`` FGSM steps of size ``alpha``, each followed by the projection
  ``x' = clip_[0,1](clip_[x - eps, x + eps](x'))`` back into the ball and the image range.
* :func:`minimal_epsilon` searches a grid of radii for the smallest that flips each image to its
  target, and reports the perturbation's L-inf and L2 norms.

Common corruptions (Hendrycks & Dietterich 2019, *Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations*, ICLR, arXiv 1903.12261): :func:`corrupt` applies Gaussian noise,
Gaussian blur, contrast reduction or JPEG compression (OpenCV's ``cv2.imencode``) at severity
1..5; severity 0 is the identity. ImageNet-C's parameters are for 224-pixel images; the blur and
noise levels of :data:`SEVERITIES` are scaled for the course's 64-pixel images (see the table).

Every function takes images ``[B, 3, H, W]`` in [0, 1] and returns images in [0, 1] (clamped: they
are pixel-space images). None changes the model (parameters, ``requires_grad``, train/eval flags)
or leaves a hook behind; attacks run the model in eval mode.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attribution._base import prepare_images
from .attribution.core import gaussian_blur as gaussian_blur_of_images
from .checks import TargetSpec, check_images, resolve_target
from .hooks import frozen
from .progress import progress_bar

__all__ = ["LOSSES", "CORRUPTIONS", "SEVERITIES", "AttackResult", "attack_loss", "fgsm", "pgd", "project_linf",
           "minimal_epsilon", "corrupt", "blur", "gaussian_noise", "gaussian_blur", "contrast", "jpeg"]

#: Losses an attack can use: cross-entropy of the logits, or the logit margin (Carlini & Wagner 2017).
LOSSES = ("ce", "margin")


# --------------------------------------------------------------------------- adversarial attacks
def attack_loss(logits: Tensor, classes: Tensor, loss: str = "ce") -> Tensor:
    """Per-image loss ``[B]`` of ``classes``: ``'ce'`` = ``-log softmax(S)_c``,
    ``'margin'`` = ``max_{k != c} S_k - S_c`` (negative once ``c`` is the top class)."""
    if loss == "ce":
        return F.cross_entropy(logits, classes, reduction="none")
    if loss == "margin":
        own = logits.gather(1, classes[:, None]).squeeze(1)
        others = logits.masked_fill(F.one_hot(classes, logits.shape[1]).bool(), float("-inf"))
        return others.max(dim=1).values - own
    raise ValueError(f"unknown loss {loss!r}; valid: {list(LOSSES)}")


def _per_image(value: float | Tensor, x: Tensor, name: str) -> Tensor:
    """A radius given as a number or ``B`` numbers, as a tensor ``[B, 1, 1, 1]``; checked >= 0."""
    v = torch.as_tensor(value, dtype=x.dtype, device=x.device).flatten()
    if v.numel() == 1:
        v = v.expand(x.shape[0])
    if v.numel() != x.shape[0]:
        raise ValueError(f"{name} must be one number or one per image ({x.shape[0]}), got {v.numel()} values")
    if not torch.isfinite(v).all() or (v < 0).any():
        raise ValueError(f"{name} must be finite and >= 0 (pixel units, images in [0, 1]), got {v.tolist()}")
    return v.view(-1, 1, 1, 1)


def _classes(model: nn.Module, x: Tensor, target: TargetSpec, labels: TargetSpec) -> tuple[Tensor, bool]:
    """The classes the loss is taken of and whether the attack is targeted."""
    if target is not None and labels is not None:
        raise ValueError("give either target= (a targeted attack toward it) or labels= (an untargeted attack "
                         "away from them), not both")
    with torch.no_grad():
        logits = model(x)
    if target is not None:
        return resolve_target(target, logits), True
    return resolve_target(labels, logits), False          # labels=None: away from the predicted class


def _signed_step(model: nn.Module, x: Tensor, classes: Tensor, targeted: bool, loss: str) -> Tensor:
    """``sign`` of the direction that lowers (targeted) or raises (untargeted) the loss."""
    with torch.enable_grad():                     # also when the caller runs under torch.no_grad()
        x = x.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(attack_loss(model(x), classes, loss).sum(), x)
    return -g.sign() if targeted else g.sign()


def project_linf(adversarial: Tensor, images: Tensor, eps: float | Tensor) -> Tensor:
    """Project onto the L-inf ball of radius ``eps`` around ``images`` and onto [0, 1]:
    ``clip_[0,1](clip_[x - eps, x + eps](x'))``. ``eps``: a number or one per image."""
    e = _per_image(eps, images, "eps")
    return torch.maximum(torch.minimum(adversarial, images + e), images - e).clamp(0.0, 1.0)


def fgsm(model: nn.Module, images: Tensor, eps: float | Tensor, target: TargetSpec = None, *,
         labels: TargetSpec = None, loss: str = "ce") -> Tensor:
    """The fast gradient sign method (Goodfellow et al. 2015): one step of size ``eps`` per pixel.

    ``target`` given: targeted, ``x' = clip(x - eps * sign(grad_x L(x, t)))``; otherwise untargeted
    away from ``labels`` (default: the predicted class), ``x' = clip(x + eps * sign(grad_x L(x, y)))``.
    ``eps`` is one number or one per image (pixel units; images are in [0, 1]). Returns ``[B, 3, H, W]``.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: {list(LOSSES)}")
    with frozen(model):
        x = prepare_images(model, images)
        e = _per_image(eps, x, "eps")
        classes, targeted = _classes(model, x, target, labels)
        step = _signed_step(model, x, classes, targeted, loss)
        out = (x + e * step).clamp(0.0, 1.0)
    return out.to(device=images.device, dtype=images.dtype)


def pgd(model: nn.Module, images: Tensor, eps: float | Tensor, target: TargetSpec = None, *,
        labels: TargetSpec = None, steps: int = 10, step_size: float | Tensor | None = None,
        random_start: bool = False, seed: int = 0, loss: str = "ce") -> Tensor:
    """Projected gradient descent in the L-inf ball (Kurakin et al. 2017; Madry et al. 2018).

    ``steps`` iterations of ``x' <- project(x' -/+ alpha * sign(grad L(x', c)))`` (see :func:`fgsm`
    for the sign and :func:`project_linf` for the projection), with ``alpha = step_size`` or by
    default ``2.5 * eps / steps`` (Madry et al.), from ``x`` or, with ``random_start``, from a
    uniform point of the ball (seeded by ``seed``). Every iterate stays in the ball and in [0, 1].
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: {list(LOSSES)}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    with frozen(model):
        x = prepare_images(model, images)
        e = _per_image(eps, x, "eps")
        alpha = 2.5 * e / steps if step_size is None else _per_image(step_size, x, "step_size")
        classes, targeted = _classes(model, x, target, labels)
        adv = x.clone()
        if random_start:
            gen = torch.Generator().manual_seed(int(seed))
            noise = torch.rand(x.shape, generator=gen, dtype=torch.float64).to(x) * 2 - 1
            adv = project_linf(x + e * noise, x, e)
        for _ in range(steps):
            adv = project_linf(adv + alpha * _signed_step(model, adv, classes, targeted, loss), x, e)
    return adv.detach().to(device=images.device, dtype=images.dtype)


@dataclass
class AttackResult:
    """The smallest radius on a grid that flips each image to its target (:func:`minimal_epsilon`).

    ``eps`` ``[B]`` (inf where no radius of the grid succeeded), ``success`` ``[B]`` bool,
    ``adversarial`` ``[B, 3, H, W]`` (the clean image where it failed), ``predicted`` ``[B]`` (the
    class of the adversarial image), ``linf`` and ``l2`` ``[B]`` the norms of the perturbation
    actually applied (after clamping to [0, 1]; NaN where it failed), ``target`` ``[B]``.
    """

    method: str
    eps: Tensor
    success: Tensor
    adversarial: Tensor
    predicted: Tensor
    target: Tensor
    linf: Tensor
    l2: Tensor

    @property
    def success_rate(self) -> float:
        return self.success.float().mean().item()


def minimal_epsilon(model: nn.Module, images: Tensor, target: TargetSpec, eps_grid: Sequence[float], *,
                    method: str = "fgsm", steps: int = 10, loss: str = "ce",
                    progress: bool | None = None) -> AttackResult:
    """For each image, the smallest ``eps`` of ``eps_grid`` whose ``method`` attack (``'fgsm'`` or
    ``'pgd'``) makes the model predict ``target``; a targeted attack on every image.

    The radii are tried in increasing order and each image stops at its first success, so the
    cost falls as images are fooled. FGSM's direction does not depend on ``eps``: one gradient,
    then one forward pass per radius. Reports the L-inf and L2 norms (over all 3·H·W values) of the
    perturbation ``x' - x``.
    """
    if method not in ("fgsm", "pgd"):
        raise ValueError(f"unknown method {method!r}; valid: ['fgsm', 'pgd']")
    grid = sorted(float(e) for e in eps_grid)
    if not grid or grid[0] <= 0 or not all(math.isfinite(e) for e in grid):
        raise ValueError(f"eps_grid must hold positive finite radii, got {list(eps_grid)}")
    with frozen(model):
        x = prepare_images(model, images)
        with torch.no_grad():
            classes = resolve_target(target, model(x))
        b = x.shape[0]
        eps = torch.full((b,), math.inf, dtype=torch.float64)
        adv = x.clone()
        predicted = torch.full((b,), -1, dtype=torch.long)
        direction = _signed_step(model, x, classes, True, loss) if method == "fgsm" else None
        for e in progress_bar(grid, progress=progress, desc=f"{method} radii"):
            todo = torch.isinf(eps).nonzero().flatten()
            if len(todo) == 0:
                break
            xi, ci = x[todo], classes[todo]
            if method == "fgsm":
                trial = (xi + e * direction[todo]).clamp(0.0, 1.0)
            else:
                trial = pgd(model, xi, e, ci, steps=steps, loss=loss)
            with torch.no_grad():
                pred = model(trial).argmax(1)
            hit = (pred == ci).cpu()
            eps[todo[hit]] = e
            adv[todo[hit]] = trial[hit.to(trial.device)]
        with torch.no_grad():
            predicted = model(adv).argmax(1).cpu()
    success = torch.isfinite(eps)
    delta = (adv - x).flatten(1).double().cpu()
    nan = torch.full((b,), math.nan, dtype=torch.float64)
    linf = torch.where(success, delta.abs().amax(1), nan)
    l2 = torch.where(success, delta.norm(dim=1), nan)
    return AttackResult(method, eps, success, adv.to(device=images.device, dtype=images.dtype), predicted,
                        classes.cpu(), linf, l2)


# --------------------------------------------------------------------------- common corruptions
#: Parameters per severity 1..5. Noise: standard deviation of N(0, c^2) (ImageNet-C: .08 .. .38);
#: blur: Gaussian sigma in pixels (ImageNet-C 1..6 at 224 px, here scaled for 64 px);
#: contrast: factor c of (x - mean) (ImageNet-C's values); jpeg: OpenCV quality (ImageNet-C's values).
SEVERITIES: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.04, 0.08, 0.12, 0.18, 0.26),
    "gaussian_blur": (0.5, 0.75, 1.0, 1.5, 2.0),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    "jpeg": (25, 18, 15, 10, 7),
}


def _check_severity(name: str, severity: int) -> None:
    if not isinstance(severity, (int, np.integer)) or not 0 <= severity <= 5:
        raise ValueError(f"severity of {name!r} must be an integer 0..5 (0 = clean), got {severity!r}")


def gaussian_noise(images: Tensor, severity: int, *, seed: int = 0) -> Tensor:
    """``clip(x + c·z)``, ``z ~ N(0, 1)`` per value, drawn from ``seed`` (the same ``z`` at every
    severity, so the distortion grows with ``c``)."""
    _check_severity("gaussian_noise", severity)
    check_images(images)
    if severity == 0:
        return images.clone()
    c = SEVERITIES["gaussian_noise"][severity - 1]
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(images.shape, generator=gen, dtype=torch.float64).to(images)
    return (images + c * z).clamp(0.0, 1.0)


def blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``[B, C, H, W]`` with ``sigma`` pixels: kernel
    ``k(t) ∝ exp(-t²/(2σ²))`` for ``|t| <= ceil(3σ)``, normalised to sum 1, edges reflected.
    ``sigma = 0`` returns a copy."""
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be finite and >= 0 pixels, got {sigma!r}")
    if sigma == 0:
        return images.clone()
    if max(1, math.ceil(3 * sigma)) >= min(images.shape[-2:]):
        raise ValueError(f"sigma {sigma} is too large for images of {tuple(images.shape[-2:])} pixels")
    return gaussian_blur_of_images(images, sigma, padding="reflect")


def gaussian_blur(images: Tensor, severity: int) -> Tensor:
    """:func:`blur` with sigma ``c`` pixels of :data:`SEVERITIES` (kernel radius ``ceil(3c)``)."""
    _check_severity("gaussian_blur", severity)
    check_images(images)
    if severity == 0:
        return images.clone()
    return blur(images, SEVERITIES["gaussian_blur"][severity - 1]).clamp(0.0, 1.0)


def contrast(images: Tensor, severity: int) -> Tensor:
    """``(x - m)·c + m`` with ``m`` each image's mean over pixels and channels (ImageNet-C)."""
    _check_severity("contrast", severity)
    check_images(images)
    if severity == 0:
        return images.clone()
    c = SEVERITIES["contrast"][severity - 1]
    m = images.mean(dim=(1, 2, 3), keepdim=True)
    return ((images - m) * c + m).clamp(0.0, 1.0)


def jpeg(images: Tensor, severity: int) -> Tensor:
    """JPEG compression at quality ``q`` with OpenCV (``cv2.imencode`` / ``cv2.imdecode``), 8-bit."""
    import cv2

    _check_severity("jpeg", severity)
    check_images(images)
    if severity == 0:
        return images.clone()
    q = int(SEVERITIES["jpeg"][severity - 1])
    arr = (images.detach().permute(0, 2, 3, 1).cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)
    out = np.empty_like(arr)
    for i, img in enumerate(arr):
        ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), q])   # OpenCV is BGR
        if not ok:
            raise RuntimeError("OpenCV could not encode the image as JPEG")
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(device=images.device, dtype=images.dtype) / 255.0


#: The corruptions by name: ``CORRUPTIONS[name](images, severity)``.
CORRUPTIONS = {"gaussian_noise": gaussian_noise, "gaussian_blur": gaussian_blur, "contrast": contrast,
               "jpeg": jpeg}


def corrupt(images: Tensor, name: str, severity: int, *, seed: int = 0) -> Tensor:
    """``images`` under corruption ``name`` (one of :data:`CORRUPTIONS`) at ``severity`` 0..5."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; valid: {list(CORRUPTIONS)}")
    if name == "gaussian_noise":
        return gaussian_noise(images, severity, seed=seed)
    return CORRUPTIONS[name](images, severity)
