"""Generating the doctor/nurse figures with the study's group counts (or yours), deterministically."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from .dataset import BiasDataset
from .params import sample_figure
from .render import render_all
from .study import BIAS_CLASSES, GENDERS, STREAMS, STUDY_COUNTS


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
        if cls not in BIAS_CLASSES or gender not in GENDERS:
            raise ValueError(f"unknown group {key!r}; classes {BIAS_CLASSES}, genders {GENDERS}")
        if int(n) < 0:
            raise ValueError(f"count of {key} must be non-negative, got {n}")
        out[(cls, gender)] = int(n)
    missing = {(c, g) for c in BIAS_CLASSES for g in GENDERS} - set(out)
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
        for gender in GENDERS:
            n = groups[(cls, gender)]
            labels += [BIAS_CLASSES.index(cls)] * n
            female += [gender == "female"] * n
            tie += _exactly(rng, n, tie_rate_female if gender == "female" else tie_rate_male).tolist()
            cue += _exactly(rng, n, cue_rate).tolist()
    params = [sample_figure(rng, labels[i], female[i], tie[i], cue[i]) for i in rng.permutation(len(labels))]
    for p in params:
        p.update(cue_size=float(cue_size), accessories=bool(accessories), noise=float(noise))
        if background == "plain":
            p["bg_contrast"] = 0.0
    images, parts = render_all(params, size)

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
    return _generate(STREAMS[split], groups, size, seed, tie_rate_male=tie_rate_male,
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
    groups = {(c, g): int(n_per_group) for c in BIAS_CLASSES for g in GENDERS}
    return _generate(STREAMS["balanced_test"], groups, size, seed, **{**defaults, **options})

