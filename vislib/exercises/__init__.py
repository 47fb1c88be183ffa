"""Exercises of the course: the checks behind each notebook's exercise cells, and their builds.

A notebook exercise is a function the student writes (between nbgrader's ``### BEGIN SOLUTION``
and ``### END SOLUTION`` markers) followed by a locked check cell::

    from vislib.exercises import saliency as check      # once, in the notebook's imports
    ...
    check.vanilla_gradient(vanilla_gradient)             # the check cell

The check runs the function on inputs of its own, compares it with an independent answer and
prints that it is correct or raises :class:`~vislib.exercises.feedback.ExerciseError` saying what
is wrong (shape, sign, a value at one position and the expected one, a hint). Later cells of the
notebook use vislib's own functions, never the student's, so an unsolved exercise stops nothing.

Modules: :mod:`~vislib.exercises.feedback` (comparisons and messages),
:mod:`~vislib.exercises.registry` (the table of exercises), :mod:`~vislib.exercises.build`
(student and teacher builds with nbgrader's preprocessors), and one module of checks per notebook.
"""
from . import (bias_study, cam, evaluation, fullgrad, gradcam, occlusion, saliency, sanity_checks, tsne,
               weights_activations, what_the_network_sees)
from .feedback import ExerciseError
from .registry import EXERCISES, Exercise

# In course order (notebook by notebook, each notebook's exercises in the order they appear).
_ordered = sorted(EXERCISES.values(), key=lambda ex: ex.notebook)     # stable: keeps each notebook's order
EXERCISES.clear()
EXERCISES.update((ex.grade_id, ex) for ex in _ordered)

__all__ = ["EXERCISES", "Exercise", "ExerciseError", "bias_study", "cam", "evaluation", "fullgrad", "gradcam",
           "occlusion", "saliency", "sanity_checks", "tsne", "weights_activations", "what_the_network_sees"]
