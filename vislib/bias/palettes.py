"""Colour palettes of the generated figures (RGB in [0, 1]) and the jittered pick from one."""
from __future__ import annotations

import numpy as np

#: Skin, hair, tie, shirt, wall, stethoscope tube, pen and clipboard colours; every figure picks one of
#: each with a small jitter (:func:`pick`), whatever its class and gender.
SKIN = np.array([(0.97, 0.84, 0.73), (0.93, 0.76, 0.63), (0.85, 0.65, 0.50),
                 (0.72, 0.52, 0.38), (0.56, 0.38, 0.26), (0.42, 0.28, 0.19)])
HAIR = np.array([(0.10, 0.07, 0.06), (0.24, 0.14, 0.08), (0.42, 0.26, 0.13),
                 (0.62, 0.32, 0.13), (0.86, 0.72, 0.42), (0.62, 0.60, 0.58)])
TIE = np.array([(0.80, 0.10, 0.12), (0.12, 0.18, 0.55), (0.10, 0.50, 0.22),
                (0.48, 0.12, 0.52), (0.55, 0.05, 0.16), (0.15, 0.40, 0.85), (0.85, 0.45, 0.05)])
SHIRT = np.array([(0.70, 0.82, 0.95), (0.95, 0.95, 0.95), (0.95, 0.80, 0.82),
                  (0.75, 0.75, 0.78), (0.78, 0.90, 0.78)])
WALL = np.array([(0.88, 0.84, 0.76), (0.78, 0.85, 0.90), (0.82, 0.82, 0.82),
                 (0.80, 0.88, 0.80), (0.90, 0.82, 0.80)])
TUBE = np.array([(0.08, 0.08, 0.08), (0.22, 0.22, 0.24), (0.10, 0.12, 0.35), (0.35, 0.08, 0.10)])
PEN = np.array([(0.10, 0.15, 0.55), (0.75, 0.10, 0.10), (0.08, 0.08, 0.08), (0.10, 0.45, 0.20)])
BOARD = np.array([(0.55, 0.36, 0.18), (0.45, 0.28, 0.14), (0.20, 0.35, 0.60), (0.30, 0.30, 0.32)])
SILVER = [0.78, 0.78, 0.80]
PAPER = [0.99, 0.99, 0.96]


def pick(rng: np.random.Generator, palette: np.ndarray, jitter: float = 0.03) -> list[float]:
    """A random colour of ``palette`` with a uniform jitter of up to ``jitter`` per channel."""
    colour = palette[rng.integers(len(palette))] + rng.uniform(-jitter, jitter, 3)
    return np.clip(colour, 0.0, 1.0).tolist()

