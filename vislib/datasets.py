"""One base class for the course's in-memory datasets (shapes, image folders, the bias study).

Every dataset of vislib holds all its images in memory as tensors: ``images [N, 3, H, W]`` in
[0, 1] and ``labels [N]``, plus per-image extras that differ between datasets (object masks,
part masks, drawing parameters, file names, ...). :class:`ImageDataset` gives them the shared
behaviour once:

* indexing returns ``(image, label)``, so a dataset plugs into a ``DataLoader``;
* :meth:`ImageDataset.subset` picks images and keeps **every** per-image field aligned;
* construction checks that all per-image fields have one entry per image;
* :meth:`ImageDataset.channel_stats` gives the per-channel mean and std (for a model's
  normalisation layer).

Which fields are per image is decided by their type, so a subclass only declares its fields:
tensors, lists, and dicts of tensors hold one entry per image (along their first axis); tuples,
strings, numbers and None are shared by all images (e.g. the class names).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar, Union

import torch
from torch import Tensor

#: What selects images: a slice, a list of positions, a bool mask, or a tensor of either.
Index = Union[slice, Sequence[int], Sequence[bool], Tensor]
D = TypeVar("D", bound="ImageDataset")


def _is_per_image(value) -> bool:
    return isinstance(value, (Tensor, list, dict))


def _length(value) -> set[int]:
    """The lengths (first-axis sizes) found in a per-image field; a dict gives one per entry."""
    if isinstance(value, dict):
        return {len(v) for v in value.values()}
    return {len(value)}


def as_indices(index: Index, n: int) -> Tensor:
    """``index`` (a slice, an int sequence, a bool mask of length ``n`` or an index tensor) as a
    1-D long tensor of non-negative positions in ``range(n)``.

    A plain int is refused (``subset`` keeps the batch axis: write ``[i]``); positions out of
    range and masks of the wrong length raise with the valid range.
    """
    if isinstance(index, slice):
        return torch.arange(n)[index]
    if isinstance(index, (int, bool)) or (isinstance(index, Tensor) and index.dim() == 0):
        raise TypeError(f"index must select a list of images (a slice, a list, a bool mask or an index tensor), "
                        f"got the single index {index!r}; write [{int(index)}] for one image")
    idx = torch.as_tensor(index)
    if idx.dim() != 1:
        raise ValueError(f"index must be 1-D, got shape {tuple(idx.shape)}")
    if idx.dtype == torch.bool:
        if len(idx) != n:
            raise ValueError(f"a bool mask must have one entry per image ({n}), got {len(idx)}")
        return idx.nonzero().flatten()
    if idx.numel() == 0:
        return idx.long()
    if idx.is_floating_point() or idx.is_complex():
        raise TypeError(f"index must hold integers or bools, got dtype {idx.dtype}")
    idx = idx.long()
    bad = (idx < -n) | (idx >= n)
    if bad.any():
        raise IndexError(f"index {int(idx[bad][0])} is out of range for {n} images (valid: {-n} to {n - 1})")
    return torch.where(idx < 0, idx + n, idx)


@dataclass
class ImageDataset(torch.utils.data.Dataset):
    """Base of the in-memory datasets: ``images [N, 3, H, W]`` and ``labels [N]`` plus extras.

    Subclasses are dataclasses that add fields; see the module docstring for which fields are
    per image. ``ds[i]`` is ``(images[i], labels[i])``.
    """

    images: Tensor
    labels: Tensor

    def __post_init__(self) -> None:
        n = len(self.labels)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if _is_per_image(value) and (not isinstance(value, dict) or value):
                lengths = _length(value)
                if lengths != {n}:
                    raise ValueError(f"{type(self).__name__}.{f.name} has {sorted(lengths)} entries but there are "
                                     f"{n} labels: every per-image field needs one entry per image")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]

    def subset(self: D, index: Index) -> D:
        """The images at ``index`` (a slice, a list, a bool mask or a tensor of indices), with every
        per-image field (masks, parameters, file names, ...) picked alike; shared fields are kept.

        Returns a dataset of the same type. The tensors are copies, not views.
        """
        idx = as_indices(index, len(self))
        positions = idx.tolist()

        def pick(value):
            if isinstance(value, Tensor):
                return value[idx.to(value.device)]
            if isinstance(value, list):
                return [value[i] for i in positions]
            if isinstance(value, dict):
                return {k: pick(v) for k, v in value.items()}
            return value

        return dataclasses.replace(self, **{f.name: pick(getattr(self, f.name)) for f in dataclasses.fields(self)
                                            if f.init})

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the images (for ``course_model(..., mean=, std=)``)."""
        return tuple(self.images.mean((0, 2, 3)).tolist()), tuple(self.images.std((0, 2, 3)).tolist())
