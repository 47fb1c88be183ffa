"""The one progress-bar helper: every long loop of vislib (training, ROAR, evaluation over a
dataset, perturbation passes, activations of a test set) draws its bar through :func:`progress_bar`.

``progress=True`` shows the bar, ``False`` hides it, ``None`` shows it only for a long loop (at
least :data:`LONG_LOOP` steps), which is what the attribution methods default to: one call on a
few images stays quiet, a sweep over a dataset does not.
"""
from __future__ import annotations

from collections.abc import Iterable

#: From how many steps on ``progress=None`` shows a bar.
LONG_LOOP = 20


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, progress: bool | None = True,
                 desc: str = "", leave: bool = False):
    """A ``tqdm.auto`` bar over ``iterable`` (or a manual one over ``total`` steps: call ``update``).

    ``progress``: True shows it, False hides it, None shows it when the loop has at least
    :data:`LONG_LOOP` steps (``total``, or ``len(iterable)`` when it has one). The bar is removed
    when it ends unless ``leave``. Hidden bars cost nothing and still work as context managers.
    """
    from tqdm.auto import tqdm

    if progress is None:
        n = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else 0)
        progress = n >= LONG_LOOP
    return tqdm(iterable, total=total, desc=desc, disable=not progress, leave=leave)


__all__ = ["LONG_LOOP", "progress_bar"]
