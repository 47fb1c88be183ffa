"""Your own photographs of doctors and nurses, read into a :class:`BiasDataset` without losing any."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..image_files import folder_entries, images_below, read_images
from .dataset import BiasDataset
from .study import BIAS_CLASSES, GENDERS


def _match(dirs: list[Path], names: tuple[str, ...], where: Path) -> tuple[dict[str, Path], list[Path]]:
    """Folders of ``dirs`` whose name is one of ``names`` (any case) -> ``{name: folder}``, and the rest.

    Two folders for one name (``Female/`` and ``female/``) are an error: which one was meant?
    """
    found: dict[str, Path] = {}
    other = []
    for d in dirs:
        key = d.name.lower()
        if key not in names:
            other.append(d)
        elif key in found:
            raise ValueError(f"{where} has both {found[key].name}/ and {d.name}/: folder names are read "
                             f"case-insensitively, so merge them into one {key}/ folder")
        else:
            found[key] = d
    return found, other


def _refuse_stray(dirs: list[Path], valid: str) -> None:
    """Folders other than the valid ones are fine when empty of images, an error otherwise."""
    for d in dirs:
        stray = images_below(d)
        if stray:
            raise ValueError(f"{d} holds {len(stray)} image(s) (e.g. {stray[0].name}) but is not one of the folders "
                             f"read here ({valid}); rename it or move its images out")


def _sample(paths: list[Path], k: int = 3) -> str:
    return ", ".join(p.name for p in paths[:k]) + (f" and {len(paths) - k} more" if len(paths) > k else "")


def load_bias_folder(root: str | Path, size: int | None = 64, *, max_pixels: float | None = None) -> BiasDataset:
    """Your own photographs instead of the generated figures.

    Layout ``root/doctor/<images>`` and ``root/nurse/<images>``. With the sub-folders
    ``root/doctor/female/``, ``root/doctor/male/``, ``root/nurse/female/`` and
    ``root/nurse/male/`` the gender is known and :func:`group_accuracy` reports the four groups;
    otherwise it reports the two classes. Folder names are matched in any case (``Female/``).
    Images are read by :func:`vislib.image_files.read_images` (EXIF orientation applied, hidden and
    AppleDouble files skipped, a pixel limit ``max_pixels`` checked before decoding) and resized to
    ``size`` x ``size`` (None: keep their size, which must then be the same for all).

    No photo is dropped without a word. These raise an error that names the files or folders:
    image files directly in ``root`` or next to ``female/`` and ``male/`` (their class or gender
    is unknown); one class split by gender and the other not; other folders holding images;
    ``Female/`` next to ``female/``; a class without images. A gender folder that is missing or
    empty gives an empty group, with a warning (its accuracy is NaN in :func:`group_accuracy`).

    There are no part masks, ties or cue flags, so :func:`part_saliency_share` needs masks you draw
    yourself. ``files`` records the file of each image.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"bias folder {root} does not exist")
    loose, dirs = folder_entries(root)
    classes, other = _match(dirs, BIAS_CLASSES, root)
    missing = [c for c in BIAS_CLASSES if c not in classes]
    if missing:
        raise FileNotFoundError(f"{root} needs the sub-folders {BIAS_CLASSES}; missing {missing}")
    if loose:
        raise ValueError(f"{root} holds image files outside doctor/ and nurse/ ({_sample(loose)}): their class is "
                         f"unknown; move them into {root}/doctor/ or {root}/nurse/")
    _refuse_stray(other, "doctor/, nurse/")

    layout = {}   # class -> (loose images, {gender: folder})
    for cls in BIAS_CLASSES:
        images, subdirs = folder_entries(classes[cls])
        genders, other = _match(subdirs, GENDERS, classes[cls])
        _refuse_stray(other, "female/, male/" if genders else "none: images go directly in the class folder")
        layout[cls] = images, genders
    split = [cls for cls in BIAS_CLASSES if layout[cls][1]]
    if split and len(split) < len(BIAS_CLASSES):
        flat = [c for c in BIAS_CLASSES if c not in split]
        raise ValueError(f"{classes[split[0]]} is split into female/ and male/ but {classes[flat[0]]} is not: use one "
                         f"layout for both classes (gender folders in both, or images directly in both)")

    files, labels, female = [], [], []
    for label, cls in enumerate(BIAS_CLASSES):
        images, genders = layout[cls]
        if split and images:
            raise ValueError(f"{classes[cls]} holds image files next to its gender folders ({_sample(images)}): their "
                             f"gender is unknown; move them into female/ or male/")
        if not split:
            if not images:
                raise ValueError(f"{classes[cls]} holds no image files; every class needs images")
            files += images
            labels += [label] * len(images)
            continue
        groups = {}
        for gender in GENDERS:
            folder = genders.get(gender)
            if folder is not None:
                groups[gender], deeper = folder_entries(folder)
                _refuse_stray(deeper, "none: images go directly in the gender folder")
            else:
                groups[gender] = []
        if not any(groups.values()):
            raise ValueError(f"{classes[cls]} holds no image files in female/ or male/; every class needs images")
        for gender, group_files in groups.items():
            if not group_files:
                warnings.warn(f"no images of {gender} {cls}s ({classes[cls]}/{gender}/ is "
                              f"{'empty' if gender in genders else 'missing'}): that group is empty and its "
                              f"accuracy will be NaN", stacklevel=2)
            files += group_files
            labels += [label] * len(group_files)
            female += [gender == "female"] * len(group_files)
    images = read_images(files, size, max_pixels=max_pixels)
    return BiasDataset(images=images, labels=torch.tensor(labels, dtype=torch.long),
                       female=torch.tensor(female, dtype=torch.bool) if split else None, files=files)
