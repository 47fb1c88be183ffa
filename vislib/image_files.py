"""Reading a user's own image files: one image, a list of them, a ``root/<class>/<image>`` folder.

Images come back as float32 tensors ``[3, H, W]`` in [0, 1] (grey becomes RGB, alpha is dropped).
What the reader does so that no photo is read wrong or lost without a word:

* **orientation**: a JPEG's (or TIFF's) EXIF orientation tag is applied
  (``PIL.ImageOps.exif_transpose``), so a phone photo stands the way it is shown;
* **bit depth**: values are scaled by the range of the file's data type, not guessed from the
  values: 8 bit / 255, 16 bit / 65535, 32-bit integers / (2**31 - 1); float images (TIFF mode
  ``'F'``) are taken as they are and must lie in [0, 1];
* **size limit**: the header's width x height is checked *before* decoding; an image of more than
  :data:`MAX_IMAGE_PIXELS` pixels is refused with :class:`ImageTooLargeError` (raise the limit
  with ``max_pixels=``);
* **what counts as an image**: a regular file with an extension in :data:`IMAGE_EXTENSIONS`
  whose name does not start with a dot (hidden files and macOS' AppleDouble ``._x.jpg`` files are
  skipped), never a directory called ``x.jpg``;
* every file that cannot be decoded raises :class:`UnreadableImageError` naming the file, and
  images of different sizes read without ``size`` name two offending files.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from .datasets import ImageDataset

#: File extensions read as images (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: The largest image (width x height, in pixels) read without ``max_pixels=``: 40 M pixels,
#: e.g. 8000 x 5000, which decodes to 480 MB as float32 RGB. Checked before decoding.
MAX_IMAGE_PIXELS = 40_000_000


class UnreadableImageError(OSError):
    """An image file that cannot be decoded (or holds values that are not an image in [0, 1])."""


class ImageTooLargeError(ValueError):
    """An image file whose header announces more pixels than the limit (checked before decoding)."""


def is_image_file(path: str | Path) -> bool:
    """True for a regular, non-hidden file with an image extension (:data:`IMAGE_EXTENSIONS`).

    Hidden files (``.x.png``), AppleDouble files (``._x.jpg``) and directories are not images.
    """
    path = Path(path)
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()


def folder_entries(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """``(image files, sub-folders)`` directly inside ``folder``, each sorted by name.

    Hidden entries (names starting with a dot, e.g. ``.ipynb_checkpoints``, ``._x.jpg``) and
    ``__MACOSX`` folders are left out; other files that are not images are ignored.
    """
    images, dirs = [], []
    for entry in sorted(Path(folder).iterdir()):
        if entry.name.startswith(".") or entry.name == "__MACOSX":
            continue
        if entry.is_dir():
            dirs.append(entry)
        elif is_image_file(entry):
            images.append(entry)
    return images, dirs


def images_below(folder: str | Path) -> list[Path]:
    """Image files anywhere below ``folder`` (sorted), leaving out hidden entries and ``__MACOSX``
    at any depth: what a loader would lose if it read only the top level."""
    folder = Path(folder)
    return [f for f in sorted(folder.rglob("*")) if is_image_file(f)
            and not any(p.startswith(".") or p == "__MACOSX" for p in f.relative_to(folder).parts)]


def _check_size(size: int | None) -> None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"size must be a positive int (pixels of the square output) or None (keep the "
                         f"files' size), got {size!r}")


def _limit(max_pixels: float | None) -> float:
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if not limit > 0:
        raise ValueError(f"max_pixels must be positive, got {max_pixels!r}")
    return limit


def _open(path: Path, limit: float) -> Image.Image:
    """Open ``path`` lazily (header only) and refuse it if it has more than ``limit`` pixels."""
    if not path.is_file():
        raise UnreadableImageError(f"cannot read image file {path}: it does not exist or is not a file")
    try:
        with warnings.catch_warnings():  # vislib's own limit below decides, not Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(f"image file {path} is too large for Pillow: {e}. To read it anyway raise "
                                 f"PIL.Image.MAX_IMAGE_PIXELS as well as vislib's max_pixels=") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UnreadableImageError(f"cannot read image file {path}: not an image Pillow can decode ({e}); "
                                   f"supported: {', '.join(IMAGE_EXTENSIONS)} with 8/16-bit or float grey "
                                   f"channels") from e
    w, h = im.size
    if w * h > limit:
        im.close()
        raise ImageTooLargeError(
            f"image file {path} is {w} x {h} = {w * h / 1e6:.1f} M pixels, over the limit of {limit / 1e6:g} M "
            f"pixels (checked before decoding, to keep memory bounded). If you trust the file, pass "
            f"max_pixels={int(w * h)} (or more), or set vislib.image_files.MAX_IMAGE_PIXELS")
    return im


def _to_array(im: Image.Image, path: Path) -> np.ndarray:
    """Pixel values of ``im`` as float32 ``[H, W, 3]`` in [0, 1], scaled by the data type's range."""
    mode = im.mode
    if mode.startswith("I;16"):                      # 16-bit grey (PNG, TIFF)
        arr = np.asarray(im).astype(np.float32) / 65535.0
    elif mode == "I":                                # 32-bit integer grey (or a 16-bit PNG in old Pillow)
        raw = np.asarray(im)
        top = 65535.0 if im.format == "PNG" else float(np.iinfo(np.int32).max)
        if raw.min() < 0:
            raise UnreadableImageError(f"image file {path} holds negative integers (min {raw.min()}); "
                                       f"save it as an 8- or 16-bit image")
        arr = raw.astype(np.float64) / top
    elif mode == "F":                                # float grey: taken as it is, must be in [0, 1]
        arr = np.asarray(im, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise UnreadableImageError(f"float image file {path} holds NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise UnreadableImageError(f"float image file {path} holds values in [{lo:g}, {hi:g}], but a float "
                                       f"image must lie in [0, 1] (vislib does not guess a scale); rescale it")
    elif mode == "1":
        arr = np.asarray(im, dtype=np.float32)
    else:                                            # 8-bit modes: L, P, RGB, RGBA, LA, CMYK, YCbCr, ...
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    arr = np.clip(arr.astype(np.float32), 0.0, 1.0)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return arr


def _decode(path: Path, limit: float) -> np.ndarray:
    im = _open(path, limit)
    try:
        with im:
            im.load()
            oriented = ImageOps.exif_transpose(im)
            return _to_array(oriented, path)
    except UnreadableImageError:
        raise
    except Exception as e:  # a truncated file, a broken EXIF block, ...: always name the file
        raise UnreadableImageError(f"cannot decode image file {path}: {type(e).__name__}: {e}") from e


def read_image(path: str | Path, size: int | None = None, *, max_pixels: float | None = None) -> Tensor:
    """Read one image file as a ``[3, H, W]`` float32 tensor in [0, 1] (grey becomes RGB).

    ``size`` resizes to ``size`` x ``size`` (area interpolation; the aspect ratio is not kept);
    None keeps the file's size. EXIF orientation is applied; values are scaled by the range of
    the file's data type (see the module docstring). Raises :class:`UnreadableImageError` naming
    the file when it cannot be decoded, :class:`ImageTooLargeError` when its header announces more
    than ``max_pixels`` pixels (default :data:`MAX_IMAGE_PIXELS`).
    """
    _check_size(size)
    img = _decode(Path(path), _limit(max_pixels))
    if size is not None:
        img = np.clip(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA), 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).contiguous()


def read_images(files: Sequence[str | Path], size: int | None = None, *,
                max_pixels: float | None = None) -> Tensor:
    """Read several image files into one ``[N, 3, H, W]`` tensor (see :func:`read_image`).

    Without ``size`` all files must have the same size; otherwise the error names the first file
    and the first one that differs from it, with both sizes.
    """
    _check_size(size)
    limit = _limit(max_pixels)
    if not files:
        raise ValueError("no image files to read")
    images = []
    for f in files:
        img = read_image(f, size, max_pixels=limit)
        if images and img.shape != images[0].shape:
            (_, h0, w0), (_, h, w) = images[0].shape, img.shape
            raise ValueError(f"images differ in size: {files[0]} is {w0} x {h0} but {f} is {w} x {h} (width x "
                             f"height); pass size=... to resize every image to one square size")
        images.append(img)
    return torch.stack(images)


@dataclass
class ImageFolderData(ImageDataset):
    """Images of a ``root/<class>/<file>`` folder, all read (and resized) up front.

    ``classes``: the class folder names in label order; ``files``: the file of each image.
    """

    classes: tuple[str, ...] = ()
    files: list[Path] | None = None


def load_image_folder(root: str | Path, size: int | None = 64, *,
                      max_pixels: float | None = None) -> ImageFolderData:
    """Load a user's own images laid out as ``root/<class name>/<image file>``.

    Every image is resized to ``size`` x ``size`` (None: keep the files' size, which must then be
    the same for all). Classes are the sub-folders, sorted by name; hidden entries are skipped
    (:func:`folder_entries`). No image is dropped without a word: image files lying directly in
    ``root``, or in folders below a class folder, raise an error that names them, as do an
    unreadable file (:class:`UnreadableImageError`), a too-large one (:class:`ImageTooLargeError`)
    and a class folder without images.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    loose, class_dirs = folder_entries(root)
    if not class_dirs:
        raise ValueError(f"{root} has no class sub-folders; expected root/<class>/<image files>")
    if loose:
        raise ValueError(f"{root} holds image files outside the class folders ({_some(loose)}); every image must "
                         f"lie in a class folder root/<class>/, so move them there (or out of {root})")
    files, labels = [], []
    for label, d in enumerate(class_dirs):
        images, subdirs = folder_entries(d)
        nested = [f for s in subdirs for f in images_below(s)]
        if nested:
            raise ValueError(f"class folder {d} has image files in sub-folders ({_some(nested)}), which "
                             f"load_image_folder does not read: images must lie directly in root/<class>/")
        if not images:
            raise ValueError(f"class folder {d} holds no image files ({', '.join(IMAGE_EXTENSIONS)}); remove "
                             f"it or add images")
        files += images
        labels += [label] * len(images)
    images = read_images(files, size, max_pixels=max_pixels)
    return ImageFolderData(images, torch.tensor(labels), tuple(d.name for d in class_dirs), files)


def _some(paths: Sequence[Path], k: int = 3) -> str:
    """The first ``k`` paths and how many more, for error messages."""
    shown = ", ".join(str(p) for p in paths[:k])
    return shown + (f" and {len(paths) - k} more" if len(paths) > k else "")
