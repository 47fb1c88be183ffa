"""vislib: seeing inside convolutional image classifiers.

The helper package of the course: pixel-space models and offline data (:mod:`vislib.models`,
:mod:`vislib.data`), hooks (:mod:`vislib.hooks`), saliency methods behind one API
(:mod:`vislib.attribution`), their evaluation (:mod:`vislib.evaluation`), plotting
(:mod:`vislib.plot`) and the notebooks' widgets (:mod:`vislib.widgets`).
"""
from .config import QUICK, quick
from .maps import normalize, upsample

__version__ = "0.1.0"
__all__ = ["QUICK", "quick", "normalize", "upsample", "__version__"]
