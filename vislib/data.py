"""The course data: generated offline, deterministic from a seed, with ground-truth masks.

* :func:`make_shapes` draws coloured shapes of 8 classes (random size, position, colour and
  rotation) on backgrounds cut from real photographs that ship inside scikit-image,
  matplotlib and scikit-learn. Every image comes with its label and the exact mask of the
  drawn object, so localisation can be measured instead of eyeballed.
* :func:`two_object_image` puts two shapes of different classes in one picture, each with its
  own mask, for the class-discriminativeness demos (Grad-CAM's "cat and dog").
* :func:`photos` returns the offline photographs (cat, coffee, astronaut, ...) as tensors.
* :func:`load_image_folder` reads a user's own ``root/<class>/<image>`` folder (it lives in
  :mod:`vislib.image_files`, with :func:`read_image`, and is importable from here).

Images are float32 tensors in [0, 1], shape ``[N, 3, H, W]``.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from .datasets import ImageDataset
# Reading a user's own files lives in vislib.image_files; these names stay importable from here.
from .image_files import (IMAGE_EXTENSIONS, ImageFolderData, ImageTooLargeError, UnreadableImageError,
                          load_image_folder, read_image, read_images)

#: The 8 course classes, in label order.
SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring", "crescent", "arrow")
#: Channel mean and std of the course dataset (64 px, seed 0, 10 000 images; see the tests).
SHAPES_MEAN: tuple[float, float, float] = (0.4781, 0.4131, 0.3849)
SHAPES_STD: tuple[float, float, float] = (0.2382, 0.2097, 0.2165)

#: The standard splits of the course: (seed, number of images).
SPLITS = {"train": (0, 12000), "val": (1, 2000), "test": (2, 2000)}


# --------------------------------------------------------------------------- photographs
def _to_rgb_float(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if np.issubdtype(img.dtype, np.integer):  # scale by the data type's range, never by the values
        img = img.astype(np.float32) / float(np.iinfo(img.dtype).max)
    img = img.astype(np.float32)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.clip(img[..., :3], 0.0, 1.0)


def _photo_loaders() -> dict:
    import matplotlib.cbook
    import matplotlib.image
    import skimage.data
    from sklearn.datasets import load_sample_image

    def mpl(name):
        def load():
            with matplotlib.cbook.get_sample_data(name) as f:
                return matplotlib.image.imread(f)
        return load

    return {
        "cat": skimage.data.chelsea,
        "coffee": skimage.data.coffee,
        "astronaut": skimage.data.astronaut,
        "rocket": skimage.data.rocket,
        "motorcycle": lambda: skimage.data.stereo_motorcycle()[0],
        "grace_hopper": mpl("grace_hopper.jpg"),
        "china": lambda: load_sample_image("china.jpg"),
        "flower": lambda: load_sample_image("flower.jpg"),
        "camera": skimage.data.camera,
        "coins": skimage.data.coins,
        "immunohistochemistry": skimage.data.immunohistochemistry,
        "hubble": skimage.data.hubble_deep_field,
    }


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    loaders = _photo_loaders()
    if name not in loaders:
        raise ValueError(f"unknown photo {name!r}; available: {sorted(loaders)}")
    return _to_rgb_float(loaders[name]())


#: Photos used as backgrounds of the course dataset (colour and grey, indoor and outdoor).
BACKGROUND_PHOTOS = ("cat", "coffee", "astronaut", "rocket", "motorcycle", "grace_hopper",
                     "china", "flower", "camera", "coins", "immunohistochemistry")
#: Photos with a clear ImageNet object, for the ImageNet parts of the notebooks.
OBJECT_PHOTOS = ("cat", "coffee", "astronaut", "rocket", "motorcycle", "grace_hopper")


def photo_names() -> list[str]:
    """Names accepted by :func:`photo`."""
    return sorted(_photo_loaders())


def photo(name: str, size: int | None = 224) -> Tensor:
    """One offline photograph as a ``[3, H, W]`` float tensor in [0, 1].

    With ``size`` the photo is centre-cropped to a square and resized to ``size`` x ``size``.
    """
    img = _photo(name)
    if size is not None:
        h, w = img.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        img = cv2.resize(img[top:top + s, left:left + s], (size, size), interpolation=cv2.INTER_AREA)
        img = np.clip(img, 0.0, 1.0)  # resampling can overshoot [0, 1] by a rounding error
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).contiguous()


def photos(names: Sequence[str] = OBJECT_PHOTOS, size: int = 224) -> dict[str, Tensor]:
    """The offline photographs as a dict ``name -> [3, size, size]`` tensor."""
    return {name: photo(name, size) for name in names}


# --------------------------------------------------------------------------- shapes
def _circle(n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], 1)


def _regular(k: int, start: float = -np.pi / 2) -> np.ndarray:
    t = start + np.arange(k) * 2 * np.pi / k
    return np.stack([np.cos(t), np.sin(t)], 1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    t = -np.pi / 2 + np.arange(2 * points) * np.pi / points
    r = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def _cross(a: float = 0.33) -> np.ndarray:
    return np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a], [a, 1], [-a, 1],
                     [-a, a], [-1, a], [-1, -a], [-a, -a]], dtype=float)


def _arrow() -> np.ndarray:
    return np.array([[-1, -0.3], [0.15, -0.3], [0.15, -0.8], [1, 0], [0.15, 0.8], [0.15, 0.3],
                     [-1, 0.3]], dtype=float)


# Each class: a list of (polygon in unit coordinates, sign); sign -1 cuts a hole.
_SHAPES: dict[str, list[tuple[np.ndarray, int]]] = {
    "circle": [(_circle(), 1)],
    "square": [(np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * 0.82, 1)],
    "triangle": [(_regular(3) * 1.05 + [0, 0.2], 1)],
    "star": [(_star(), 1)],
    "cross": [(_cross(), 1)],
    "ring": [(_circle(), 1), (_circle() * 0.55, -1)],
    "crescent": [(_circle(), 1), (_circle() * 0.85 + [0.45, -0.1], -1)],
    "arrow": [(_arrow(), 1)],
}


def _shape_mask(cls: str, size: int, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    """Binary mask (uint8 0/1) of shape ``cls`` centred at (cx, cy) with the given radius/angle."""
    mask = np.zeros((size, size), np.uint8)
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    shift = 4  # sub-pixel precision of cv2.fillPoly: coordinates in 1/16 pixel
    for poly, sign in _SHAPES[cls]:
        pts = poly @ rot.T * radius + [cx, cy]
        pts = np.round(pts * (1 << shift)).astype(np.int32)
        layer = np.zeros_like(mask)
        cv2.fillPoly(layer, [pts], 1, lineType=cv2.LINE_8, shift=shift)
        mask = np.maximum(mask, layer) if sign > 0 else mask * (1 - layer)
    return mask


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """A saturated random colour (HSV with S, V in [0.6, 1])."""
    h, s, v = rng.uniform(0, 1), rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], np.float32)


@functools.lru_cache(maxsize=8)
def _background_pool(size: int) -> tuple[np.ndarray, ...]:
    """Background photos, pre-shrunk so that random crops of them are about ``size`` wide."""
    pool = []
    for name in BACKGROUND_PHOTOS:
        img = _photo(name)
        h, w = img.shape[:2]
        scale = (3.0 * size) / min(h, w)  # crops cover a third to a whole of the short side
        pool.append(cv2.resize(img, (max(size, round(w * scale)), max(size, round(h * scale))),
                               interpolation=cv2.INTER_AREA))
    return tuple(pool)


def _background(rng: np.random.Generator, size: int, pool: Sequence[np.ndarray], contrast: float) -> np.ndarray:
    src = pool[rng.integers(len(pool))]
    h, w = src.shape[:2]
    crop = int(rng.integers(size, min(h, w, 3 * size) + 1))
    top, left = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
    patch = src[top:top + crop, left:left + crop]
    if crop != size:
        patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    mean = patch.mean(axis=(0, 1), keepdims=True)
    return np.clip(mean + contrast * (patch - mean), 0, 1)


@dataclass
class ShapesDataset(ImageDataset):
    """Images ``[N, 3, H, W]`` in [0, 1], labels ``[N]`` and object masks ``[N, H, W]`` (bool).

    Indexing returns ``(image, label)`` so it plugs into a ``DataLoader``; ``masks`` and
    ``params`` (per image: class, centre, radius, angle, colour) are attributes.
    :meth:`subset` (from :class:`~vislib.datasets.ImageDataset`) keeps them aligned.
    """

    masks: Tensor
    classes: tuple[str, ...] = SHAPE_CLASSES
    params: list[dict] | None = None


def _draw(rng: np.random.Generator, cls: int, size: int, canvas: np.ndarray, region=None,
          radius_range=(0.2, 0.34)) -> tuple[np.ndarray, dict]:
    """Draw one object of class ``cls`` on ``canvas`` (in place); return its mask and params."""
    x0, y0, x1, y1 = region if region is not None else (0, 0, size, size)
    span = min(x1 - x0, y1 - y0)
    radius = rng.uniform(*radius_range) * span
    margin = radius * 1.05
    cx = rng.uniform(x0 + margin, x1 - margin)
    cy = rng.uniform(y0 + margin, y1 - margin)
    angle = rng.uniform(0, 2 * np.pi)
    colour = _random_colour(rng)
    mask = _shape_mask(SHAPE_CLASSES[cls], size, cx, cy, radius, angle).astype(bool)
    # A soft left-to-right shading makes objects look less flat; it never leaves the mask.
    ramp = np.linspace(0.85, 1.0, size, dtype=np.float32)[None, :, None]
    if rng.random() < 0.5:
        ramp = ramp[:, ::-1]
    canvas[mask] = (colour[None, None, :] * ramp * np.ones((size, 1, 1), np.float32))[mask]
    params = {"class": SHAPE_CLASSES[cls], "label": int(cls), "center": (float(cx), float(cy)),
              "radius": float(radius), "angle": float(angle), "colour": tuple(float(c) for c in colour)}
    return mask, params


def make_shapes(n: int, size: int = 64, seed: int = 0, *, classes: Sequence[int] | None = None,
                contrast: float = 0.7) -> ShapesDataset:
    """Generate ``n`` course images of ``size`` x ``size`` pixels, deterministically from ``seed``.

    Each image shows one shape of a random class (or of ``classes[i]`` when given) with random
    size (radius 20-34 % of the side), position, colour and rotation, on a random crop of a real
    photograph whose contrast is scaled by ``contrast``. Labels index :data:`SHAPE_CLASSES`;
    ``masks[i]`` is True exactly on the pixels painted with the object.
    """
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    rng = np.random.default_rng(seed)
    pool = _background_pool(size)
    labels = (np.asarray(classes, dtype=np.int64) if classes is not None
              else rng.integers(len(SHAPE_CLASSES), size=n))
    if len(labels) != n:
        raise ValueError(f"classes has {len(labels)} entries for n={n} images")
    images = np.empty((n, size, size, 3), np.float32)
    masks = np.empty((n, size, size), bool)
    params = []
    for i in range(n):
        canvas = _background(rng, size, pool, contrast).astype(np.float32)
        masks[i], p = _draw(rng, int(labels[i]), size, canvas)
        images[i] = canvas
        params.append(p)
    return ShapesDataset(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        labels=torch.from_numpy(labels.astype(np.int64)),
        masks=torch.from_numpy(masks),
        params=params,
    )


def course_split(split: str, size: int = 64, n: int | None = None) -> ShapesDataset:
    """The standard course split ``'train'``, ``'val'`` or ``'test'`` (fixed seeds, see SPLITS).

    ``n`` generates only ``n`` images from the split's seed. They are NOT the first ``n`` images of
    the full split (labels are drawn for all images first, so the random stream differs); use
    ``course_split(split).subset(slice(0, n))`` for a prefix.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {sorted(SPLITS)}")
    seed, count = SPLITS[split]
    return make_shapes(count if n is None else n, size=size, seed=seed)


def two_object_image(first: int | str = "circle", second: int | str = "star", size: int = 64,
                     seed: int = 0, contrast: float = 0.7) -> tuple[Tensor, Tensor, tuple[int, int]]:
    """One image with two objects of different classes, left and right, each with its own mask.

    Returns ``(image [1, 3, H, W], masks [2, H, W] bool, (label_first, label_second))``.
    """
    a = SHAPE_CLASSES.index(first) if isinstance(first, str) else int(first)
    b = SHAPE_CLASSES.index(second) if isinstance(second, str) else int(second)
    if a == b:
        raise ValueError("the two objects must be of different classes")
    rng = np.random.default_rng(seed)
    canvas = _background(rng, size, _background_pool(size), contrast).astype(np.float32)
    half = size // 2
    m1, _ = _draw(rng, a, size, canvas, region=(0, 0, half, size), radius_range=(0.36, 0.44))
    m2, _ = _draw(rng, b, size, canvas, region=(half, 0, size, size), radius_range=(0.36, 0.44))
    image = torch.from_numpy(canvas).permute(2, 0, 1).unsqueeze(0).contiguous()
    return image, torch.from_numpy(np.stack([m1, m2])), (a, b)


__all__ = ["BACKGROUND_PHOTOS", "IMAGE_EXTENSIONS", "OBJECT_PHOTOS", "SHAPES_MEAN", "SHAPES_STD", "SHAPE_CLASSES",
           "SPLITS", "ImageFolderData", "ImageTooLargeError", "ShapesDataset", "UnreadableImageError", "course_split",
           "load_image_folder", "make_shapes", "photo", "photo_names", "photos", "read_image", "read_images",
           "two_object_image"]
