"""Project-wide settings, read in exactly one place.

``VISLIB_QUICK=1`` in the environment switches every experiment of the course to its
quick mode (fewer images, fewer seeds, fewer epochs) so that CI can execute all notebooks
in minutes. Without it the notebooks run the real experiment.

Where things live. From a checkout (``pip install -e .``): checkpoints in ``data/models/``, figures in
``figs/`` of the checkout, whatever the working folder. Installed (``pip install .``): the checkpoints
ship inside the package (``vislib/course_data/models/``) and figures go to ``./figs`` of the working
folder. ``VISLIB_DATA`` (a folder holding ``models/``) and ``VISLIB_FIGS`` override both.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

#: The installed (or checked-out) ``vislib`` package folder.
PACKAGE_DIR: Path = Path(__file__).resolve().parent
#: Root of the repository (the folder that holds ``vislib/``, ``data/`` and ``figs/``) when vislib
#: runs from a checkout; for an installed vislib this is ``site-packages``, which vislib never writes.
ROOT: Path = PACKAGE_DIR.parent


def _is_checkout(root: Path) -> bool:
    """True when ``root`` is a source checkout of the course: ``pyproject.toml`` and ``data/models`` beside
    ``vislib/`` (an installed vislib sits in ``site-packages``, which has neither)."""
    return (root / "pyproject.toml").is_file() and (root / "data" / "models").is_dir()


def locations(root: Path, package_dir: Path, environ: Mapping[str, str], cwd: Path) -> tuple[bool, Path, Path]:
    """``(from_checkout, data_dir, figs_dir)`` for a vislib whose package folder is ``package_dir``.

    ``data_dir`` (which holds ``models/``): ``$VISLIB_DATA``; else the checkout's ``data/``; else, when
    installed, the copy shipped inside the package, ``package_dir / "course_data"``.
    ``figs_dir``: ``$VISLIB_FIGS``; else the checkout's ``figs/`` (whatever the working folder, so also
    for notebooks run from ``notebooks/``); else, when installed, ``cwd / "figs"``: never site-packages.
    """
    from_checkout = _is_checkout(root)
    data_dir = Path(environ["VISLIB_DATA"]) if environ.get("VISLIB_DATA") else (
        root / "data" if from_checkout else package_dir / "course_data")
    figs_dir = Path(environ["VISLIB_FIGS"]) if environ.get("VISLIB_FIGS") else (
        root / "figs" if from_checkout else cwd / "figs")
    return from_checkout, data_dir, figs_dir


_FROM_CHECKOUT, _DATA_DIR, _FIGS_DIR = locations(ROOT, PACKAGE_DIR, os.environ, Path.cwd())
#: True when vislib runs from the course checkout (``pip install -e .`` or the source folder on the
#: path), False when it is installed (``pip install .``).
FROM_CHECKOUT: bool = _FROM_CHECKOUT
#: Course data: the model checkpoints and their manifest live in ``DATA_DIR / "models"`` (see
#: :func:`locations`).
DATA_DIR: Path = _DATA_DIR
#: The course-model checkpoints and ``manifest.json`` (see :func:`vislib.models.load_course_model`).
MODELS_DIR: Path = DATA_DIR / "models"
#: The command that rebuilds the course checkpoints (and their manifest entries, with SHA-256).
REBUILD_COMMAND: str = ("make models (= python -m vislib.train vgg resnet)" if FROM_CHECKOUT else
                        "pip install --force-reinstall vislib, or python -m vislib.train vgg resnet --out DIR/models "
                        "and set VISLIB_DATA=DIR")
#: Where :func:`vislib.plot.savefig` writes report figures (see :func:`locations`); for an installed
#: vislib the working folder is the one at import time.
FIGS_DIR: Path = _FIGS_DIR

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
