"""The doctor/nurse bias study: generated figures with a spurious cue, and how to measure its cost.

A FullGrad reproduction (UvA FACT-AI course, ``FullGradients/``; see ``reference/evaluation.md``)
scraped photos of doctors and nurses, trained a classifier on 144 doctors (19 female) and 210
nurses (165 female), tested on 36 doctors (19 female) and 33 nurses (18 female), and saw in the
saliency maps that the model looked at ties and at gender rather than at the stethoscope. This
module makes that finding measurable. :func:`make_bias_dataset` draws figures in which

* the **class cue** is an object: doctors wear a *stethoscope* (a thin tube round the neck with
  a round silver chest piece), nurses hold a *clipboard* at their side. Nothing else tells the
  classes apart: both wear the same white coat, and every other attribute (coat tint, shirt,
  skin, hair colour, pose, size, background, accessories) has one distribution for both. As in
  real photos, the object is not always in the picture: a fraction ``1 - cue_rate`` of the
  figures of every group shows no class object at all;
* the **gender cue** is the hair: female figures have long hair falling to the shoulders, male
  figures short hair;
* the **spurious cue** is a tie, worn by a fraction ``tie_rate_male`` of the male figures and
  ``tie_rate_female`` of the female ones, whatever their class. With the study's counts most
  doctors are male, so on the training split "tie" and "short hair" go with "doctor";
* **accessories** that both classes carry alike (breast pocket with pens, name badge, lanyard
  with a card, phone in the hand), so that "some small object on the coat" is not the answer:
  the model has to learn the shapes of the stethoscope and the clipboard.

Why ``cue_rate`` (default 0.85) and not 1: when the class object is in every picture, a course
CNN learns it within a few dozen steps, also from the biased split, and is right on every group
(measured: 100 % on all four groups for the biased and the balanced split). The bias costs
accuracy where the true cue is missing: there, a model trained on the biased split falls back on
the tie and the hair (female doctors become nurses, male nurses with a tie become doctors),
while a model trained on a balanced split has nothing to fall back on and guesses.

Every image comes with an exact mask per part (:data:`PARTS`): True exactly on the pixels where
that part is visible in the final image (parts drawn later cover earlier ones; the masks of all
parts, ``'background'`` included, partition the image). Everything is deterministic from the
seed, and every figure keeps its drawing parameters, so the same figures can be redrawn without
their tie, with the other hair style or with the class object shown (:meth:`BiasDataset.redraw`).

Measuring tools: :func:`group_accuracy` (accuracy per group: female doctors, male doctors,
female nurses, male nurses), :func:`group_table` (the groups side by side for several models) and
:func:`part_saliency_share` (the share of a saliency map's mass on each part, next to the part's
area as the chance level).

Own photographs: :func:`load_bias_folder` reads ``root/doctor/...`` and ``root/nurse/...``
(optionally split into ``female/`` and ``male/`` sub-folders) into the same dataset type, without
part masks.
"""
from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor, nn

#: Class names in label order: 0 = doctor, 1 = nurse.
BIAS_CLASSES: tuple[str, ...] = ("doctor", "nurse")
#: The four groups, in the order of :attr:`BiasDataset.group` (index = 2 * label + is_male).
GROUPS: tuple[str, ...] = ("female doctor", "male doctor", "female nurse", "male nurse")
#: Part names, in drawing order; the masks of all parts partition each image.
PARTS: tuple[str, ...] = ("background", "body", "hair", "face", "accessories", "tie", "stethoscope", "clipboard")

#: Group counts of the original study: per split, (class, gender) -> number of images.
STUDY_COUNTS: dict[str, dict[tuple[str, str], int]] = {
    "train": {("doctor", "female"): 19, ("doctor", "male"): 125,
              ("nurse", "female"): 165, ("nurse", "male"): 45},
    "test": {("doctor", "female"): 19, ("doctor", "male"): 17,
             ("nurse", "female"): 18, ("nurse", "male"): 15},
}
# Each split draws from its own random stream, so train and test never share figures.
_STREAMS = {"train": 0, "test": 1, "balanced_test": 2}
_GENDERS = ("female", "male")

# --------------------------------------------------------------------------- palettes (RGB in [0, 1])
_SKIN = np.array([(0.97, 0.84, 0.73), (0.93, 0.76, 0.63), (0.85, 0.65, 0.50),
                  (0.72, 0.52, 0.38), (0.56, 0.38, 0.26), (0.42, 0.28, 0.19)])
_HAIR = np.array([(0.10, 0.07, 0.06), (0.24, 0.14, 0.08), (0.42, 0.26, 0.13),
                  (0.62, 0.32, 0.13), (0.86, 0.72, 0.42), (0.62, 0.60, 0.58)])
_TIE = np.array([(0.80, 0.10, 0.12), (0.12, 0.18, 0.55), (0.10, 0.50, 0.22),
                 (0.48, 0.12, 0.52), (0.55, 0.05, 0.16), (0.15, 0.40, 0.85), (0.85, 0.45, 0.05)])
_SHIRT = np.array([(0.70, 0.82, 0.95), (0.95, 0.95, 0.95), (0.95, 0.80, 0.82),
                   (0.75, 0.75, 0.78), (0.78, 0.90, 0.78)])
_WALL = np.array([(0.88, 0.84, 0.76), (0.78, 0.85, 0.90), (0.82, 0.82, 0.82),
                  (0.80, 0.88, 0.80), (0.90, 0.82, 0.80)])
_TUBE = np.array([(0.08, 0.08, 0.08), (0.22, 0.22, 0.24), (0.10, 0.12, 0.35), (0.35, 0.08, 0.10)])
_PEN = np.array([(0.10, 0.15, 0.55), (0.75, 0.10, 0.10), (0.08, 0.08, 0.08), (0.10, 0.45, 0.20)])
_BOARD = np.array([(0.55, 0.36, 0.18), (0.45, 0.28, 0.14), (0.20, 0.35, 0.60), (0.30, 0.30, 0.32)])
_SILVER = [0.78, 0.78, 0.80]
_PAPER = [0.99, 0.99, 0.96]


def _pick(rng: np.random.Generator, palette: np.ndarray, jitter: float = 0.03) -> list[float]:
    colour = palette[rng.integers(len(palette))] + rng.uniform(-jitter, jitter, 3)
    return np.clip(colour, 0.0, 1.0).tolist()


# --------------------------------------------------------------------------- drawing parameters
def _sample_figure(rng: np.random.Generator, label: int, female: bool, tie: bool, cue: bool) -> dict:
    """The drawing parameters of one figure. Every attribute is drawn whether it is used or not,
    so a figure can be redrawn with a tie, the other hair style or its class object."""
    return {
        "label": int(label), "female": bool(female), "tie": bool(tie), "long_hair": bool(female),
        "cue": bool(cue), "cue_size": 1.0, "accessories": True, "noise": 0.0,
        # pose: horizontal centre, scale, head height; coat half-width
        "cx": rng.uniform(0.44, 0.56), "s": rng.uniform(0.92, 1.06), "hy": rng.uniform(0.26, 0.31),
        "coat_w": rng.uniform(0.28, 0.32),
        # background: a wall colour with the texture of a low-contrast photo crop
        "wall": _pick(rng, _WALL, 0.04), "photo": int(rng.integers(1 << 16)),
        "crop": (rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, 1)), "flip": bool(rng.random() < 0.5),
        "bg_contrast": rng.uniform(0.25, 0.45),
        # clothes, skin, hair
        "coat": np.clip(rng.uniform(0.88, 0.97) + rng.uniform(-0.025, 0.025, 3), 0, 1).tolist(),
        "shirt": _pick(rng, _SHIRT), "skin": _pick(rng, _SKIN), "hair": _pick(rng, _HAIR, 0.04),
        "hair_len": rng.uniform(0.0, 1.0),
        # tie
        "tie_colour": _pick(rng, _TIE), "tie_len": rng.uniform(0.85, 1.1), "tie_w": rng.uniform(0.9, 1.15),
        # stethoscope: tube colour, side of the chest piece, lengths of the two ends
        "tube": _pick(rng, _TUBE, 0.02), "steth_side": int(rng.choice([-1, 1])),
        "steth_len": (rng.uniform(0.85, 1.1), rng.uniform(0.85, 1.1)),
        # clipboard: board colour, side, height, tilt (degrees)
        "board": _pick(rng, _BOARD), "board_side": int(rng.choice([-1, 1])),
        "board_y": rng.uniform(0.74, 0.84), "board_angle": rng.uniform(-20, 20),
        # accessories, for both classes alike
        "pocket": bool(rng.random() < 0.6), "pocket_side": int(rng.choice([-1, 1])),
        "pens": [_pick(rng, _PEN, 0.02) for _ in range(int(rng.integers(1, 3)))],
        "badge": bool(rng.random() < 0.5), "badge_colour": _pick(rng, _TIE, 0.05),
        "lanyard": bool(rng.random() < 0.4), "lanyard_colour": _pick(rng, np.concatenate([_TUBE, _TIE]), 0.03),
        "phone": bool(rng.random() < 0.4), "phone_side": int(rng.choice([-1, 1])),
        "phone_y": rng.uniform(0.74, 0.86),
        # sensor noise (used when "noise" > 0): its own seed, so a redraw gets the same noise
        "noise_seed": int(rng.integers(1 << 31)),
    }


# --------------------------------------------------------------------------- rendering
_SHIFT = 4  # cv2 sub-pixel precision: coordinates in 1/16 pixel


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(y [H, 1], x [1, W])`` in unit coordinates."""
    c = (np.arange(size) + 0.5) / size
    return c[:, None], c[None, :]


class _Painter:
    """A canvas plus a part-index map: painting a shape sets its pixels' colour and part.

    Coordinates are in units of the image side (0 = left/top edge, 1 = right/bottom edge).
    Edges are hard (no anti-aliasing), so every pixel shows exactly one part.
    """

    def __init__(self, background: np.ndarray) -> None:
        self.size = background.shape[0]
        self.image = background
        self.part = np.zeros((self.size, self.size), np.uint8)
        self._tmp = np.zeros((self.size, self.size), np.uint8)

    def _pts(self, pts) -> np.ndarray:
        return np.round(np.asarray(pts, float) * self.size * (1 << _SHIFT)).astype(np.int32)

    def fill(self, mask: np.ndarray, colour, part: str) -> None:
        self.image[mask] = colour
        self.part[mask] = PARTS.index(part)

    def polygon(self, pts, colour, part: str) -> None:
        self._tmp[:] = 0
        cv2.fillPoly(self._tmp, [self._pts(pts)], 1, lineType=cv2.LINE_8, shift=_SHIFT)
        self.fill(self._tmp.astype(bool), colour, part)

    def ellipse(self, centre, axes, colour, part: str) -> None:
        yy, xx = _grid(self.size)
        self.fill(((xx - centre[0]) / axes[0]) ** 2 + ((yy - centre[1]) / axes[1]) ** 2 <= 1.0, colour, part)

    def line(self, pts, colour, part: str, thickness: int = 1) -> None:
        self._tmp[:] = 0
        cv2.polylines(self._tmp, [self._pts(pts)], False, 1, thickness=thickness, lineType=cv2.LINE_8,
                      shift=_SHIFT)
        self.fill(self._tmp.astype(bool), colour, part)


def _bezier(p0, p1, p2, n: int = 12) -> np.ndarray:
    """``n`` points of the quadratic Bezier curve from ``p0`` to ``p2`` pulled towards ``p1``."""
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = (np.asarray(p, float) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _photo_pool(size: int) -> tuple[np.ndarray, ...]:
    from .data import _background_pool  # the course dataset's photos, shrunk for this size

    return _background_pool(size)


def _background(p: dict, size: int, pool: Sequence[np.ndarray]) -> np.ndarray:
    """A light wall colour with the texture of a low-contrast crop of a course photo."""
    wall = np.asarray(p["wall"], np.float32)
    if not pool or p["bg_contrast"] <= 0:
        return np.ascontiguousarray(np.broadcast_to(wall, (size, size, 3)))
    src = pool[p["photo"] % len(pool)]
    h, w = src.shape[:2]
    fc, ft, fl = p["crop"]
    crop = int(size + fc * (min(h, w, 3 * size) - size))
    top, left = int(ft * (h - crop)), int(fl * (w - crop))
    patch = src[top:top + crop, left:left + crop]
    if crop != size:
        patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    if p["flip"]:
        patch = patch[:, ::-1]
    grey = patch.mean(axis=2, keepdims=True)  # texture only: the wall gives the colour
    return np.clip(wall + p["bg_contrast"] * (grey - grey.mean()), 0, 1).astype(np.float32)


def render_figure(p: dict, size: int = 64, *, omit: Sequence[str] = (),
                  pool: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw the figure with parameters ``p`` (an entry of :attr:`BiasDataset.params`).

    Returns ``(image [H, W, 3] float32 in [0, 1], part [H, W] uint8)``; ``part`` holds, per
    pixel, the index in :data:`PARTS` of the part visible there. Parts named in ``omit`` are
    not drawn (what lies beneath shows instead). Drawing order: background, long hair (back),
    coat and shirt, neck and head, hair (front), accessories, tie, stethoscope, clipboard.
    """
    unknown = set(omit) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; valid: {PARTS}")
    if pool is None:
        pool = _photo_pool(size)
    pt = _Painter(_background(p, size, pool))
    draw = {name: name not in omit for name in PARTS}
    cx, s, hy = p["cx"], p["s"], p["hy"]
    hx, hyr = 0.10 * s, 0.125 * s            # head semi-axes
    sh = hy + 0.20 * s                        # shoulder line
    W = p["coat_w"] * s                       # coat half-width
    k = p["cue_size"]                         # size factor of the class objects
    thin = max(1, round(size / 56))           # line width of the stethoscope tube
    hair_end = sh + (0.03 + 0.05 * p["hair_len"]) * s

    # 1. long hair, back: an ellipse behind the head reaching the shoulders
    if draw["hair"] and p["long_hair"]:
        pt.ellipse((cx, hy + 0.06 * s), (0.145 * s, hair_end - hy - 0.06 * s), p["hair"], "hair")
    # 2. coat, with a V-shaped opening showing the shirt
    if draw["body"]:
        pt.polygon([(cx - W, 1.02), (cx - W, sh + 0.08 * s), (cx - W + 0.08 * s, sh),
                    (cx + W - 0.08 * s, sh), (cx + W, sh + 0.08 * s), (cx + W, 1.02)], p["coat"], "body")
        pt.polygon([(cx - 0.075 * s, sh - 0.002), (cx + 0.075 * s, sh - 0.002), (cx, sh + 0.19 * s)],
                   p["shirt"], "body")
    # 3. neck and head, with eyes and a mouth
    if draw["face"]:
        skin = np.asarray(p["skin"])
        pt.polygon([(cx - 0.045 * s, hy + 0.08 * s), (cx + 0.045 * s, hy + 0.08 * s), (cx + 0.045 * s, sh + 0.01 * s),
                    (cx, sh + 0.07 * s), (cx - 0.045 * s, sh + 0.01 * s)], (skin * 0.9).tolist(), "face")
        pt.ellipse((cx, hy), (hx, hyr), p["skin"], "face")
        for side in (-1, 1):
            pt.ellipse((cx + side * 0.042 * s, hy + 0.005 * s), (0.016 * s, 0.016 * s), [0.12, 0.09, 0.08], "face")
        pt.line([(cx - 0.03 * s, hy + 0.065 * s), (cx + 0.03 * s, hy + 0.065 * s)], (skin * 0.6).tolist(), "face")
    # 4. hair, front: a cap over the top of the head; long hair also frames the face
    if draw["hair"]:
        yy, xx = _grid(pt.size)
        cap = ((xx - cx) / (1.12 * hx)) ** 2 + ((yy - hy + 0.012 * s) / (1.05 * hyr)) ** 2 <= 1.0
        pt.fill(cap & (yy < hy - 0.045 * s), p["hair"], "hair")
        if p["long_hair"]:
            for side in (-1, 1):
                pt.polygon([(cx + side * 0.07 * s, hy - 0.09 * s), (cx + side * 0.15 * s, hy - 0.04 * s),
                            (cx + side * 0.16 * s, hair_end), (cx + side * 0.10 * s, hair_end),
                            (cx + side * 0.085 * s, hy + 0.03 * s)], p["hair"], "hair")
    # 5. accessories that both classes carry alike
    if draw["accessories"] and p["accessories"]:
        if p["lanyard"]:  # a cord round the neck with a white card
            card = (cx + 0.02 * s, sh + 0.17 * s)
            for side in (-1, 1):
                pt.line([(cx + side * 0.055 * s, sh - 0.01 * s), (card[0] + side * 0.012 * s, card[1])],
                        p["lanyard_colour"], "accessories")
            pt.polygon(_rect(card[0] - 0.03 * s, card[1], card[0] + 0.03 * s, card[1] + 0.07 * s),
                       [0.96, 0.96, 0.96], "accessories")
        if p["pocket"]:  # a breast pocket with one or two pens
            x0, y0 = cx + p["pocket_side"] * 0.16 * s - 0.045 * s, sh + 0.13 * s
            pt.line([(x0, y0), (x0, y0 + 0.08 * s), (x0 + 0.09 * s, y0 + 0.08 * s), (x0 + 0.09 * s, y0)],
                    (np.asarray(p["coat"]) * 0.8).tolist(), "accessories")
            for j, pen in enumerate(p["pens"]):
                x = x0 + (0.025 + 0.035 * j) * s
                pt.line([(x, y0 - 0.045 * s), (x, y0 + 0.02 * s)], pen, "accessories")
        if p["badge"]:  # a name badge on the other side of the chest
            x0, y0 = cx - p["pocket_side"] * 0.16 * s - 0.035 * s, sh + 0.12 * s
            pt.polygon(_rect(x0, y0, x0 + 0.07 * s, y0 + 0.035 * s), p["badge_colour"], "accessories")
        if p["phone"]:  # a phone in the hand
            x, y = cx + p["phone_side"] * (W - 0.06 * s), p["phone_y"]
            pt.polygon(_rect(x - 0.03 * s, y - 0.05 * s, x + 0.03 * s, y + 0.05 * s), [0.12, 0.12, 0.14],
                       "accessories")
    # 6. tie: a knot and a blade in the middle of the chest
    if draw["tie"] and p["tie"]:
        w, L = 0.022 * s * p["tie_w"], 0.26 * s * p["tie_len"]
        pt.polygon([(cx - 1.6 * w, sh), (cx + 1.6 * w, sh), (cx + w, sh + 0.04 * s), (cx - w, sh + 0.04 * s)],
                   p["tie_colour"], "tie")
        pt.polygon([(cx - w, sh + 0.04 * s), (cx + w, sh + 0.04 * s), (cx + 2.1 * w, sh + L - 0.05 * s),
                    (cx, sh + L), (cx - 2.1 * w, sh + L - 0.05 * s)], p["tie_colour"], "tie")
    # 7. stethoscope (doctors): a thin tube hanging on both sides of the neck, a round silver
    #    chest piece at the end of one side and the forked ear pieces at the end of the other
    if draw["stethoscope"] and p["label"] == 0 and p["cue"]:
        side = p["steth_side"]
        l_chest, l_ear = p["steth_len"]
        end = (cx + side * 0.11 * s, sh + 0.20 * s * l_chest * k)
        pt.line(_bezier((cx + side * 0.06 * s, sh - 0.015 * s), (cx + side * 0.13 * s, sh + 0.05 * s), end),
                p["tube"], "stethoscope", thin)
        end2 = (cx - side * 0.10 * s, sh + 0.12 * s * l_ear * k)
        pt.line(_bezier((cx - side * 0.06 * s, sh - 0.015 * s), (cx - side * 0.12 * s, sh + 0.03 * s), end2),
                p["tube"], "stethoscope", thin)
        e = 0.02 * s * k
        pt.line([(end2[0] - e, end2[1] + 1.5 * e), end2, (end2[0] + e, end2[1] + 1.5 * e)],
                p["tube"], "stethoscope", thin)
        r = 0.036 * s * k
        pt.ellipse(end, (r, r), p["tube"], "stethoscope")
        pt.ellipse(end, (0.6 * r, 0.6 * r), _SILVER, "stethoscope")
    # 8. clipboard (nurses): a tilted board with a sheet of paper, three lines and a clip
    if draw["clipboard"] and p["label"] == 1 and p["cue"]:
        centre = np.array([cx + p["board_side"] * (W - 0.03 * s), p["board_y"]])
        a = math.radians(p["board_angle"])
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])

        def board(x0, y0, x1, y1):
            return (np.array(_rect(x0, y0, x1, y1)) * s * k) @ rot.T + centre

        pt.polygon(board(-0.08, -0.11, 0.08, 0.11), p["board"], "clipboard")
        pt.polygon(board(-0.06, -0.075, 0.06, 0.095), _PAPER, "clipboard")
        for y in (-0.035, 0.005, 0.045):
            pt.line(board(-0.04, y, 0.04, y)[:2], [0.55, 0.55, 0.6], "clipboard")
        pt.polygon(board(-0.035, -0.125, 0.035, -0.085), [0.35, 0.35, 0.38], "clipboard")
    if p["noise"] > 0:
        noise = np.random.default_rng(p["noise_seed"]).normal(0.0, p["noise"], pt.image.shape)
        pt.image = np.clip(pt.image + noise.astype(np.float32), 0.0, 1.0)
    return pt.image, pt.part


def _render_all(params: Sequence[dict], size: int, omit: Sequence[str] = ()) -> tuple[Tensor, dict[str, Tensor]]:
    pool = _photo_pool(size)
    n = len(params)
    images = np.empty((n, size, size, 3), np.float32)
    part_index = np.empty((n, size, size), np.uint8)
    for i, p in enumerate(params):
        images[i], part_index[i] = render_figure(p, size, omit=omit, pool=pool)
    idx = torch.from_numpy(part_index)
    parts = {name: idx == k for k, name in enumerate(PARTS)}
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), parts


# --------------------------------------------------------------------------- the dataset
@dataclass(repr=False)
class BiasDataset(torch.utils.data.Dataset):
    """Doctor/nurse images with their group and (for generated figures) a mask per part.

    * ``images``: ``[N, 3, H, W]`` float in [0, 1]; ``labels``: ``[N]`` (0 = doctor, 1 = nurse);
    * ``female``: ``[N]`` bool, or None when the gender is unknown (an image folder without
      ``female/`` and ``male/`` sub-folders);
    * ``tie``: ``[N]`` bool, who wears a tie; ``cue``: ``[N]`` bool, whose class object
      (stethoscope or clipboard) is in the picture; None for image folders;
    * ``parts``: part name (:data:`PARTS`) -> ``[N, H, W]`` bool masks (empty for image
      folders). A part absent from an image has an all-False mask;
    * ``params``: the drawing parameters of each figure (for :meth:`redraw`), or None.

    Indexing returns ``(image, label)``, so it plugs into a ``DataLoader``.
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

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]

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

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the images (for ``course_model(..., mean=, std=)``)."""
        return tuple(self.images.mean((0, 2, 3)).tolist()), tuple(self.images.std((0, 2, 3)).tolist())

    def subset(self, index) -> "BiasDataset":
        """The images at ``index`` (a slice, a list, a bool mask or a tensor of indices)."""
        if not isinstance(index, slice):
            index = torch.as_tensor(index)
            if index.dtype == torch.bool:
                index = index.nonzero().flatten()
        params = None
        if self.params is not None:
            params = self.params[index] if isinstance(index, slice) else [self.params[i] for i in index.tolist()]

        def pick(t):
            return None if t is None else t[index]

        return replace(self, images=self.images[index], labels=self.labels[index], female=pick(self.female),
                       tie=pick(self.tie), cue=pick(self.cue), parts={k: v[index] for k, v in self.parts.items()},
                       params=params)

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
        images, parts = _render_all(params, self.images.shape[-1], omit)
        return replace(self, images=images, parts=parts, params=params,
                       tie=torch.tensor([p["tie"] for p in params], dtype=torch.bool),
                       cue=torch.tensor([p["cue"] for p in params], dtype=torch.bool))


def _normalise_counts(counts: Mapping) -> dict[tuple[str, str], int]:
    """Accept ``{('doctor', 'female'): n, ...}`` or ``{'female doctor': n, ...}``; all 4 groups."""
    out: dict[tuple[str, str], int] = {}
    for key, n in counts.items():
        if isinstance(key, str):
            words = key.split()
            if len(words) != 2:
                raise ValueError(f"group {key!r}: expected e.g. 'female doctor'")
            key = (words[1], words[0])
        cls, gender = key
        if cls not in BIAS_CLASSES or gender not in _GENDERS:
            raise ValueError(f"unknown group {key!r}; classes {BIAS_CLASSES}, genders {_GENDERS}")
        if int(n) < 0:
            raise ValueError(f"count of {key} must be non-negative, got {n}")
        out[(cls, gender)] = int(n)
    missing = {(c, g) for c in BIAS_CLASSES for g in _GENDERS} - set(out)
    if missing:
        raise ValueError(f"counts must give all four groups; missing {sorted(missing)}")
    return out


def _exactly(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """A bool array of length ``n`` with exactly ``round(rate * n)`` True at random places."""
    out = np.zeros(n, bool)
    out[rng.permutation(n)[:int(round(rate * n))]] = True
    return out


def _generate(stream: int, groups: Mapping[tuple[str, str], int], size: int, seed: int, *, tie_rate_male: float,
              tie_rate_female: float, cue_rate: float, cue_size: float, accessories: bool, noise: float,
              background: str) -> BiasDataset:
    if size < 24:
        raise ValueError(f"size must be at least 24 pixels, got {size}")
    if background not in ("photo", "plain"):
        raise ValueError(f"background must be 'photo' or 'plain', got {background!r}")
    for name, rate in (("tie_rate_male", tie_rate_male), ("tie_rate_female", tie_rate_female),
                       ("cue_rate", cue_rate)):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {rate}")
    if cue_size <= 0 or noise < 0:
        raise ValueError(f"cue_size must be positive and noise non-negative, got {cue_size}, {noise}")
    rng = np.random.default_rng([seed, stream])
    labels, female, tie, cue = [], [], [], []
    for cls in BIAS_CLASSES:
        for gender in _GENDERS:
            n = groups[(cls, gender)]
            labels += [BIAS_CLASSES.index(cls)] * n
            female += [gender == "female"] * n
            tie += _exactly(rng, n, tie_rate_female if gender == "female" else tie_rate_male).tolist()
            cue += _exactly(rng, n, cue_rate).tolist()
    params = [_sample_figure(rng, labels[i], female[i], tie[i], cue[i]) for i in rng.permutation(len(labels))]
    for p in params:
        p.update(cue_size=float(cue_size), accessories=bool(accessories), noise=float(noise))
        if background == "plain":
            p["bg_contrast"] = 0.0
    images, parts = _render_all(params, size)

    def column(key):
        return torch.tensor([p[key] for p in params], dtype=torch.bool)

    return BiasDataset(images=images, labels=torch.tensor([p["label"] for p in params], dtype=torch.long),
                       female=column("female"), tie=column("tie"), cue=column("cue"), parts=parts, params=params)


def make_bias_dataset(split: str = "train", size: int = 64, seed: int = 0, *,
                      counts: Mapping | None = None, scale: float = 1.0, balanced: bool = False,
                      tie_rate_male: float = 0.85, tie_rate_female: float = 0.0, cue_rate: float = 0.85,
                      cue_size: float = 1.0, accessories: bool = True, noise: float = 0.0,
                      background: str = "photo") -> BiasDataset:
    """Generate the doctor/nurse figures of ``split`` (``'train'`` or ``'test'``).

    Group counts default to the original study's (:data:`STUDY_COUNTS`): train 144 doctors
    (19 female) and 210 nurses (165 female); test 36 doctors (19 female) and 33 nurses
    (18 female). ``counts`` replaces them (``{('doctor', 'female'): n, ...}`` or
    ``{'female doctor': n, ...}``, all four groups); ``scale`` multiplies them (rounded), keeping
    the proportions; ``balanced=True`` keeps the total but puts a quarter of it in every group,
    so that class and gender (and hence class and tie) are independent.

    In every group exactly ``round(rate * n)`` of the ``n`` figures (chosen at random) wear a tie
    (``tie_rate_male`` / ``tie_rate_female``) and show their class object (``cue_rate``).
    ``cue_size`` scales the stethoscope and the clipboard; ``accessories`` turns the shared
    pocket/pens/badge/lanyard/phone on or off; ``noise`` adds Gaussian pixel noise of that std;
    ``background`` is ``'photo'`` (a wall with a low-contrast photo texture) or ``'plain'``.

    Deterministic from ``(seed, split)``: train and test draw from different random streams, so
    one seed never gives the same figures in both. The images come shuffled (groups mixed).
    About 1 ms per 64 px image.
    """
    if split not in STUDY_COUNTS:
        raise ValueError(f"unknown split {split!r}; valid: {sorted(STUDY_COUNTS)}")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    base = _normalise_counts(counts) if counts is not None else STUDY_COUNTS[split]
    groups = {key: int(round(n * scale)) for key, n in base.items()}
    if balanced:
        per = int(round(sum(groups.values()) / 4))
        groups = {key: per for key in groups}
    return _generate(_STREAMS[split], groups, size, seed, tie_rate_male=tie_rate_male,
                     tie_rate_female=tie_rate_female, cue_rate=cue_rate, cue_size=cue_size,
                     accessories=accessories, noise=noise, background=background)


def balanced_test(n_per_group: int = 100, size: int = 64, seed: int = 0, **options) -> BiasDataset:
    """A test set with ``n_per_group`` figures in each of the four groups, for :func:`group_accuracy`.

    Drawn from its own random stream (never the figures of the train or test split). Ties and
    class objects follow the same rates as in :func:`make_bias_dataset` (``options`` are passed
    on: ``tie_rate_male``, ``cue_rate``, ...), so most male nurses wear a tie and no female
    doctor does: the groups where a model that learned "tie = doctor" goes wrong.
    """
    if n_per_group < 0:
        raise ValueError(f"n_per_group must be non-negative, got {n_per_group}")
    defaults = dict(tie_rate_male=0.85, tie_rate_female=0.0, cue_rate=0.85, cue_size=1.0, accessories=True,
                    noise=0.0, background="photo")
    unknown = set(options) - set(defaults)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}; valid: {sorted(defaults)}")
    groups = {(c, g): int(n_per_group) for c in BIAS_CLASSES for g in _GENDERS}
    return _generate(_STREAMS["balanced_test"], groups, size, seed, **{**defaults, **options})


def load_bias_folder(root: str | Path, size: int = 64) -> BiasDataset:
    """Your own photographs instead of the generated figures.

    Layout ``root/doctor/<images>`` and ``root/nurse/<images>``. With the sub-folders
    ``root/doctor/female/``, ``root/doctor/male/``, ``root/nurse/female/`` and
    ``root/nurse/male/`` the gender is known and :func:`group_accuracy` reports the four groups;
    otherwise it reports the two classes. Images are resized to ``size`` x ``size`` by
    :func:`vislib.data.load_image_folder`. There are no part masks, ties or cue flags, so
    :func:`part_saliency_share` needs masks you draw yourself.
    """
    from .data import load_image_folder

    root = Path(root)
    missing = [c for c in BIAS_CLASSES if not (root / c).is_dir()]
    if missing:
        raise FileNotFoundError(f"{root} needs the sub-folders {BIAS_CLASSES}; missing {missing}")
    if not all((root / c / g).is_dir() for c in BIAS_CLASSES for g in _GENDERS):
        data = load_image_folder(root, size)
        keep = torch.tensor([data.classes[k] in BIAS_CLASSES for k in data.labels.tolist()], dtype=torch.bool)
        labels = torch.tensor([BIAS_CLASSES.index(data.classes[k]) for k in data.labels[keep].tolist()])
        return BiasDataset(images=data.images[keep], labels=labels)
    images, labels, female = [], [], []
    for label, cls in enumerate(BIAS_CLASSES):
        data = load_image_folder(root / cls, size)
        keep = torch.tensor([data.classes[k] in _GENDERS for k in data.labels.tolist()], dtype=torch.bool)
        images.append(data.images[keep])
        labels.append(torch.full((int(keep.sum()),), label, dtype=torch.long))
        female.append(torch.tensor([data.classes[k] == "female" for k in data.labels[keep].tolist()],
                                   dtype=torch.bool))
    return BiasDataset(images=torch.cat(images), labels=torch.cat(labels), female=torch.cat(female))


# --------------------------------------------------------------------------- measuring the bias
def group_accuracy(model: nn.Module, dataset: BiasDataset, batch_size: int = 256) -> dict[str, dict]:
    """Accuracy of ``model`` on each group of ``dataset``, and on all images.

    Returns ``{group: {'accuracy': correct / n, 'correct': correct, 'n': n}}`` for every name in
    ``dataset.groups`` (female doctor, male doctor, female nurse, male nurse), then ``'all'``;
    the accuracy of an empty group is NaN. The prediction is the argmax of the logits, computed
    in eval mode (the model's train/eval flag is restored). On a balanced test set, the gap
    between the best and the worst group is what the bias costs.
    """
    from .train import predict

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
    from .train import predict

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
    from .maps import upsample

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
