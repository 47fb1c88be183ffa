"""The dataset of the bias study: images with group, tie, cue and part masks, and counterfactual redraws."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor

from ..datasets import ImageDataset
from .render import render_all
from .study import BIAS_CLASSES, GROUPS


@dataclass(repr=False)
class BiasDataset(ImageDataset):
    """Doctor/nurse images with their group and (for generated figures) a mask per part.

    * ``images``: ``[N, 3, H, W]`` float in [0, 1]; ``labels``: ``[N]`` (0 = doctor, 1 = nurse);
    * ``female``: ``[N]`` bool, or None when the gender is unknown (an image folder without
      ``female/`` and ``male/`` sub-folders);
    * ``tie``: ``[N]`` bool, who wears a tie; ``cue``: ``[N]`` bool, whose class object
      (stethoscope or clipboard) is in the picture; None for image folders;
    * ``parts``: part name (:data:`PARTS`) -> ``[N, H, W]`` bool masks (empty for image
      folders). A part absent from an image has an all-False mask;
    * ``params``: the drawing parameters of each figure (for :meth:`redraw`), or None;
    * ``files``: the file of each image for photos read by :func:`load_bias_folder`, else None.

    Indexing returns ``(image, label)``, so it plugs into a ``DataLoader``; :meth:`subset` and
    :meth:`channel_stats` come from :class:`~vislib.datasets.ImageDataset`.
    ``group`` indexes :attr:`groups` (:data:`GROUPS` when the gender is known, else the classes).
    """

    images: Tensor
    labels: Tensor
    female: Tensor | None = None
    tie: Tensor | None = None
    cue: Tensor | None = None
    parts: dict[str, Tensor] = field(default_factory=dict)
    classes: tuple[str, ...] = BIAS_CLASSES
    params: list[dict] | None = None
    files: list[Path] | None = None

    def __repr__(self) -> str:
        h, w = self.images.shape[-2:]
        counts = ", ".join(f"{k}: {v}" for k, v in self.counts().items())
        return f"BiasDataset({len(self)} images {h}x{w}; {counts})"

    @property
    def groups(self) -> tuple[str, ...]:
        """Names of the groups: :data:`GROUPS`, or the class names when the gender is unknown."""
        return GROUPS if self.female is not None else tuple(self.classes)

    @property
    def group(self) -> Tensor:
        """``[N]`` index into :attr:`groups` (``2 * label + is_male`` when the gender is known)."""
        if self.female is None:
            return self.labels.clone()
        return 2 * self.labels + (~self.female).long()

    @property
    def group_names(self) -> list[str]:
        """The group name of each image."""
        return [self.groups[g] for g in self.group.tolist()]

    def in_group(self, name: str) -> Tensor:
        """``[N]`` bool: which images belong to group ``name`` (e.g. ``'female doctor'``)."""
        if name not in self.groups:
            raise ValueError(f"unknown group {name!r}; valid: {self.groups}")
        return self.group == self.groups.index(name)

    def counts(self) -> dict[str, int]:
        """Number of images per group."""
        return {name: int(self.in_group(name).sum()) for name in self.groups}

    def describe(self) -> str:
        """A small text table per group: images, how many wear a tie, how many show their class object."""
        lines = [f"{'group':<15}{'images':>8}{'tie':>8}{'object':>8}"]
        rows = [(name, self.in_group(name)) for name in self.groups]
        rows.append(("all", torch.ones(len(self), dtype=torch.bool)))
        for name, sel in rows:
            tie = int((self.tie & sel).sum()) if self.tie is not None else "-"
            cue = int((self.cue & sel).sum()) if self.cue is not None else "-"
            lines.append(f"{name:<15}{int(sel.sum()):>8}{tie:>8}{cue:>8}")
        return "\n".join(lines)

    def redraw(self, *, omit: Sequence[str] = (), tie: bool | None = None, long_hair: bool | None = None,
               cue: bool | None = None) -> "BiasDataset":
        """The same figures drawn again with a change: counterfactual images for the bias study.

        ``omit`` leaves parts out (e.g. ``('tie',)``, or the class object); ``tie=True/False``
        gives every figure a tie / none; ``long_hair=True/False`` long / short hair for all;
        ``cue=True/False`` shows / hides every figure's class object. Labels and ``female`` stay
        as they were; ``tie``, ``cue`` and the masks follow the new drawing.
        """
        if self.params is None:
            raise ValueError("only generated figures can be redrawn (this dataset has no params)")
        params = [dict(p) for p in self.params]
        for p in params:
            if tie is not None:
                p["tie"] = bool(tie)
            if long_hair is not None:
                p["long_hair"] = bool(long_hair)
            if cue is not None:
                p["cue"] = bool(cue)
            if "tie" in omit:
                p["tie"] = False
            if BIAS_CLASSES[p["label"]] == "doctor" and "stethoscope" in omit:
                p["cue"] = False
            if BIAS_CLASSES[p["label"]] == "nurse" and "clipboard" in omit:
                p["cue"] = False
        images, parts = render_all(params, self.images.shape[-1], omit)
        return replace(self, images=images, parts=parts, params=params,
                       tie=torch.tensor([p["tie"] for p in params], dtype=torch.bool),
                       cue=torch.tensor([p["cue"] for p in params], dtype=torch.bool))

