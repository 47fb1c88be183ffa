"""Rendering a figure from its parameters: the image and, per pixel, the part it shows."""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

from .palettes import PAPER, SILVER
from .study import PARTS

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


def photo_pool(size: int) -> tuple[np.ndarray, ...]:
    from ..data import _background_pool  # the course dataset's photos, shrunk for this size

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
        pool = photo_pool(size)
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
        pt.ellipse(end, (0.6 * r, 0.6 * r), SILVER, "stethoscope")
    # 8. clipboard (nurses): a tilted board with a sheet of paper, three lines and a clip
    if draw["clipboard"] and p["label"] == 1 and p["cue"]:
        centre = np.array([cx + p["board_side"] * (W - 0.03 * s), p["board_y"]])
        a = math.radians(p["board_angle"])
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])

        def board(x0, y0, x1, y1):
            return (np.array(_rect(x0, y0, x1, y1)) * s * k) @ rot.T + centre

        pt.polygon(board(-0.08, -0.11, 0.08, 0.11), p["board"], "clipboard")
        pt.polygon(board(-0.06, -0.075, 0.06, 0.095), PAPER, "clipboard")
        for y in (-0.035, 0.005, 0.045):
            pt.line(board(-0.04, y, 0.04, y)[:2], [0.55, 0.55, 0.6], "clipboard")
        pt.polygon(board(-0.035, -0.125, 0.035, -0.085), [0.35, 0.35, 0.38], "clipboard")
    if p["noise"] > 0:
        noise = np.random.default_rng(p["noise_seed"]).normal(0.0, p["noise"], pt.image.shape)
        pt.image = np.clip(pt.image + noise.astype(np.float32), 0.0, 1.0)
    return pt.image, pt.part


def render_all(params: Sequence[dict], size: int, omit: Sequence[str] = ()) -> tuple[Tensor, dict[str, Tensor]]:
    pool = photo_pool(size)
    n = len(params)
    images = np.empty((n, size, size, 3), np.float32)
    part_index = np.empty((n, size, size), np.uint8)
    for i, p in enumerate(params):
        images[i], part_index[i] = render_figure(p, size, omit=omit, pool=pool)
    idx = torch.from_numpy(part_index)
    parts = {name: idx == k for k, name in enumerate(PARTS)}
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), parts

