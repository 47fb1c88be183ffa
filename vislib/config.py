"""Project-wide settings, read in exactly one place.

``VISLIB_QUICK=1`` in the environment switches every experiment of the course to its
quick mode (fewer images, fewer seeds, fewer epochs) so that CI can execute all notebooks
in minutes. Without it the notebooks run the real experiment.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

#: Root of the repository (the folder that holds ``vislib/``, ``data/`` and ``figs/``).
ROOT: Path = Path(__file__).resolve().parent.parent
#: Committed course data: model checkpoints and their manifest.
DATA_DIR: Path = Path(os.environ.get("VISLIB_DATA", ROOT / "data"))
#: Where :func:`vislib.plot.savefig` writes report figures.
FIGS_DIR: Path = Path(os.environ.get("VISLIB_FIGS", ROOT / "figs"))

#: True when the environment variable ``VISLIB_QUICK`` is set to a true value.
QUICK: bool = os.environ.get("VISLIB_QUICK", "0").strip().lower() in {"1", "true", "yes", "on"}


def quick(quick_value, full_value):
    """Return ``quick_value`` in quick mode and ``full_value`` otherwise.

    Notebooks size their experiments with it, e.g. ``n_seeds = quick(2, 5)``.
    """
    return quick_value if QUICK else full_value


def default_device() -> torch.device:
    """The GPU when one is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
