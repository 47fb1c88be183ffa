"""Measuring the bias: accuracy per group, flipped predictions, and saliency share per part."""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .dataset import BiasDataset


def group_accuracy(model: nn.Module, dataset: BiasDataset, batch_size: int = 256) -> dict[str, dict]:
    """Accuracy of ``model`` on each group of ``dataset``, and on all images.

    Returns ``{group: {'accuracy': correct / n, 'correct': correct, 'n': n}}`` for every name in
    ``dataset.groups`` (female doctor, male doctor, female nurse, male nurse), then ``'all'``;
    the accuracy of an empty group is NaN. The prediction is the argmax of the logits, computed
    in eval mode (the model's train/eval flag is restored). On a balanced test set, the gap
    between the best and the worst group is what the bias costs.
    """
    from ..train import predict

    correct = predict(model, dataset.images, batch_size).argmax(1) == dataset.labels.cpu()
    group = dataset.group
    out = {}
    for k, name in enumerate(dataset.groups):
        sel = group == k
        n, c = int(sel.sum()), int(correct[sel].sum())
        out[name] = {"accuracy": c / n if n else float("nan"), "correct": c, "n": n}
    n, c = len(correct), int(correct.sum())
    out["all"] = {"accuracy": c / n if n else float("nan"), "correct": c, "n": n}
    return out


def flip_count(model: nn.Module, original: Tensor, edited: Tensor, batch_size: int = 256) -> int:
    """How many of the ``original`` images ``[N, 3, H, W]`` get another predicted class when edited.

    ``edited`` holds the same figures after a change (e.g. ``dataset.redraw(tie=False).images``);
    the prediction is the argmax of the logits, in eval mode (the model's train/eval flag is
    restored). A counterfactual that flips many predictions shows a cue the model *needs*.
    """
    from ..train import predict

    if original.shape != edited.shape:
        raise ValueError(f"original and edited images differ in shape: {tuple(original.shape)} vs "
                         f"{tuple(edited.shape)}")
    before = predict(model, original, batch_size).argmax(1)
    after = predict(model, edited, batch_size).argmax(1)
    return int((before != after).sum())


def group_table(results: Mapping[str, Mapping[str, Mapping]]) -> str:
    """Several :func:`group_accuracy` results side by side as a text table.

    ``results``: column title (e.g. ``'biased'``) -> result. Each cell reads ``accuracy %
    (correct/n)``; the last row, ``gap``, is the best minus the worst group accuracy in
    percentage points (the ``'all'`` row left out).
    """
    titles = list(results)
    rows = list(next(iter(results.values())))
    width = max(16, *(len(t) for t in titles)) + 2

    def cell(r):
        return f"{100 * r['accuracy']:.1f}% ({r['correct']}/{r['n']})"

    lines = [f"{'group':<15}" + "".join(f"{t:>{width}}" for t in titles)]
    for name in rows:
        lines.append(f"{name:<15}" + "".join(f"{cell(results[t][name]):>{width}}" for t in titles))
    gaps = []
    for t in titles:
        accs = [r["accuracy"] for g, r in results[t].items() if g != "all" and r["n"] > 0]
        gaps.append(f"{100 * (max(accs) - min(accs)):.1f} pts" if accs else "-")
    lines.append(f"{'gap':<15}" + "".join(f"{g:>{width}}" for g in gaps))
    return "\n".join(lines)


@dataclass
class PartShare:
    """Per image, the share of saliency mass on each part and the part's area (chance level).

    ``share[part]`` and ``area[part]`` are ``[N]`` tensors. ``share / area`` above 1 means that
    the map favours that part more than a map spread evenly over the image would.
    """

    share: dict[str, Tensor]
    area: dict[str, Tensor]

    def ratio(self) -> dict[str, Tensor]:
        """``share / area`` per image (NaN where the part is absent)."""
        nan = torch.tensor(float("nan"))
        return {k: self.share[k] / self.area[k].where(self.area[k] > 0, nan) for k in self.share}

    def mean(self, select: Tensor | None = None, *, present_only: bool = True) -> dict[str, tuple[float, float]]:
        """Mean ``(share, area)`` per part over the images in ``select`` (a bool ``[N]``; all if None).

        With ``present_only`` a part is averaged only over the images where it is visible (the
        tie's share among the figures that wear one); NaN when no selected image shows it.
        Images with NaN shares (maps without positive mass) are left out.
        """
        out = {}
        for k in self.share:
            sel = torch.ones_like(self.area[k], dtype=torch.bool) if select is None else select.clone().bool()
            if present_only:
                sel &= self.area[k] > 0
            sel &= ~torch.isnan(self.share[k])
            out[k] = ((self.share[k][sel].mean().item(), self.area[k][sel].mean().item()) if sel.any()
                      else (float("nan"), float("nan")))
        return out

    def by_group(self, dataset: BiasDataset, *, present_only: bool = True) -> dict[str, dict[str, tuple[float, float]]]:
        """:meth:`mean` for each group of ``dataset``: ``{group: {part: (share, area)}}``."""
        return {name: self.mean(dataset.in_group(name), present_only=present_only) for name in dataset.groups}


def part_saliency_share(maps: Tensor, parts: Mapping[str, Tensor]) -> PartShare:
    """Share of each map's non-negative mass that lies on each part, with the part's area.

    For a map ``M`` (negative values set to 0: only evidence *for* the class counts) and a part
    mask ``P``, per image::

        share = sum(M * P) / sum(M)        area = sum(P) / (H * W)

    ``area`` is the chance level: the share that a map spread evenly over the image would give.
    When the masks partition the image (the generated :data:`PARTS` do), the shares of an image
    sum to 1. ``maps``: ``[N, H, W]`` (upsampled bilinearly to the masks' size if they differ);
    ``parts``: name -> ``[N, H, W]`` bool (e.g. ``dataset.parts``). An image whose map has no
    positive mass gets NaN shares, with a warning.
    """
    from ..maps import upsample

    if maps.dim() != 3:
        raise ValueError(f"maps must be [N, H, W], got shape {tuple(maps.shape)}")
    if not parts:
        raise ValueError("parts is empty")
    first = next(iter(parts.values()))
    if first.dim() != 3 or first.shape[0] != maps.shape[0]:
        raise ValueError(f"{maps.shape[0]} maps but masks of shape {tuple(first.shape)}")
    maps = upsample(maps.detach().float().cpu(), tuple(first.shape[-2:])).clamp_min(0)
    total = maps.sum((1, 2))
    empty = total <= 0
    if empty.any():
        warnings.warn(f"{int(empty.sum())} map(s) have no positive mass; their shares are NaN", stacklevel=2)
    denom = total.where(~empty, torch.tensor(float("nan")))
    share, area = {}, {}
    for name, mask in parts.items():
        if mask.shape != first.shape:
            raise ValueError(f"mask {name!r} has shape {tuple(mask.shape)}, expected {tuple(first.shape)}")
        m = mask.detach().cpu().float()
        share[name] = (maps * m).sum((1, 2)) / denom
        area[name] = m.mean((1, 2))
    return PartShare(share, area)
