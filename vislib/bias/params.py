"""The random drawing parameters of one figure (pose, clothes, cues, accessories, background)."""
from __future__ import annotations

import numpy as np

from .palettes import BOARD, HAIR, PEN, SHIRT, SKIN, TIE, TUBE, WALL, pick


def sample_figure(rng: np.random.Generator, label: int, female: bool, tie: bool, cue: bool) -> dict:
    """The drawing parameters of one figure. Every attribute is drawn whether it is used or not,
    so a figure can be redrawn with a tie, the other hair style or its class object."""
    return {
        "label": int(label), "female": bool(female), "tie": bool(tie), "long_hair": bool(female),
        "cue": bool(cue), "cue_size": 1.0, "accessories": True, "noise": 0.0,
        # pose: horizontal centre, scale, head height; coat half-width
        "cx": rng.uniform(0.44, 0.56), "s": rng.uniform(0.92, 1.06), "hy": rng.uniform(0.26, 0.31),
        "coat_w": rng.uniform(0.28, 0.32),
        # background: a wall colour with the texture of a low-contrast photo crop
        "wall": pick(rng, WALL, 0.04), "photo": int(rng.integers(1 << 16)),
        "crop": (rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, 1)), "flip": bool(rng.random() < 0.5),
        "bg_contrast": rng.uniform(0.25, 0.45),
        # clothes, skin, hair
        "coat": np.clip(rng.uniform(0.88, 0.97) + rng.uniform(-0.025, 0.025, 3), 0, 1).tolist(),
        "shirt": pick(rng, SHIRT), "skin": pick(rng, SKIN), "hair": pick(rng, HAIR, 0.04),
        "hair_len": rng.uniform(0.0, 1.0),
        # tie
        "tie_colour": pick(rng, TIE), "tie_len": rng.uniform(0.85, 1.1), "tie_w": rng.uniform(0.9, 1.15),
        # stethoscope: tube colour, side of the chest piece, lengths of the two ends
        "tube": pick(rng, TUBE, 0.02), "steth_side": int(rng.choice([-1, 1])),
        "steth_len": (rng.uniform(0.85, 1.1), rng.uniform(0.85, 1.1)),
        # clipboard: board colour, side, height, tilt (degrees)
        "board": pick(rng, BOARD), "board_side": int(rng.choice([-1, 1])),
        "board_y": rng.uniform(0.74, 0.84), "board_angle": rng.uniform(-20, 20),
        # accessories, for both classes alike
        "pocket": bool(rng.random() < 0.6), "pocket_side": int(rng.choice([-1, 1])),
        "pens": [pick(rng, PEN, 0.02) for _ in range(int(rng.integers(1, 3)))],
        "badge": bool(rng.random() < 0.5), "badge_colour": pick(rng, TIE, 0.05),
        "lanyard": bool(rng.random() < 0.4), "lanyard_colour": pick(rng, np.concatenate([TUBE, TIE]), 0.03),
        "phone": bool(rng.random() < 0.4), "phone_side": int(rng.choice([-1, 1])),
        "phone_y": rng.uniform(0.74, 0.86),
        # sensor noise (used when "noise" > 0): its own seed, so a redraw gets the same noise
        "noise_seed": int(rng.integers(1 << 31)),
    }

