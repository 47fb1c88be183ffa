"""``python -m vislib.evaluation``: the course's ROAR experiment with its wall times (see
:func:`vislib.evaluation.roar.main`; ``VISLIB_QUICK=1`` for the quick sizes)."""
import sys

from .roar import main

sys.exit(main())
