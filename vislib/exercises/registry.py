"""The table of exercises: one record per exercise, filled by the ``@exercise`` decorator on each check.

Each notebook's checks live in a module of this package (``weights_activations`` for notebook 01,
``saliency`` for 03, ...). A check is registered once, with the ``grade_id`` of its nbgrader
solution cell, the notebook that holds it and the name of the function the student writes; the
notebook's check cell calls it as ``check.<name>(<name>)``. The tests read this table to run every
solution and every kept wrong answer through its check, and to make sure that notebooks and
table agree (no exercise without a check, no check without an exercise).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["EXERCISES", "Exercise", "exercise"]


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it is, what the student writes, and the check that grades it."""

    grade_id: str              #: nbgrader ``grade_id`` of the solution cell, e.g. ``"01-colour-share"``
    notebook: str              #: notebook stem, e.g. ``"01_weights_activations"``
    function: str              #: the name of the function the student defines
    check: Callable[[Callable], None]  #: ``check(fn)`` raises ExerciseError or prints that fn is correct
    points: int                #: nbgrader points of the check cell
    title: str                 #: one line: what the student computes

    @property
    def check_id(self) -> str:
        """``grade_id`` of the check cell that follows the solution cell."""
        return f"{self.grade_id}-check"


#: Every exercise of the course by the grade_id of its solution cell, in registration order.
EXERCISES: dict[str, Exercise] = {}


def exercise(grade_id: str, notebook: str, function: str, title: str, points: int = 1):
    """Register the decorated ``check(fn)`` as the check of one exercise (see :class:`Exercise`)."""
    def register(check: Callable[[Callable], None]) -> Callable[[Callable], None]:
        if grade_id in EXERCISES:
            raise ValueError(f"exercise {grade_id!r} is registered twice")
        EXERCISES[grade_id] = Exercise(grade_id, notebook, function, check, points, title)
        check.exercise = EXERCISES[grade_id]
        return check
    return register
