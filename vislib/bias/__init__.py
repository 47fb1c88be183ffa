"""The doctor/nurse bias study: generated figures with a spurious cue, and how to measure its cost.

A FullGrad reproduction (UvA FACT-AI course, ``FullGradients/``; see ``reference/evaluation.md``)
scraped photos of doctors and nurses, trained a classifier on 144 doctors (19 female) and 210
nurses (165 female), tested on 36 doctors (19 female) and 33 nurses (18 female), and saw in the
saliency maps that the model looked at ties and at gender rather than at the stethoscope. This
package makes that finding measurable. :func:`make_bias_dataset` draws figures in which

* the **class cue** is an object: doctors wear a *stethoscope* (a thin tube round the neck with
  a round silver chest piece), nurses hold a *clipboard* at their side. Nothing else tells the
  classes apart: both wear the same white coat, and every other attribute (coat tint, shirt,
  skin, hair colour, pose, size, background, accessories) has one distribution for both. As in
  real photos, the object is not always in the picture: a fraction ``1 - cue_rate`` of the
  figures of every group shows no class object at all;
* the **gender cue** is the hair: female figures have long hair falling to the shoulders, male
  figures short hair;
* the **spurious cue** is a tie, worn by a fraction ``tie_rate_male`` of the male figures and
  ``tie_rate_female`` of the female ones, whatever their class. With the study's counts most
  doctors are male, so on the training split "tie" and "short hair" go with "doctor";
* **accessories** that both classes carry alike (breast pocket with pens, name badge, lanyard
  with a card, phone in the hand), so that "some small object on the coat" is not the answer:
  the model has to learn the shapes of the stethoscope and the clipboard.

Why ``cue_rate`` (default 0.85) and not 1: when the class object is in every picture, a course
CNN learns it within a few dozen steps, also from the biased split, and is right on every group
(measured: 100 % on all four groups for the biased and the balanced split). The bias costs
accuracy where the true cue is missing: there, a model trained on the biased split falls back on
the tie and the hair (female doctors become nurses, male nurses with a tie become doctors),
while a model trained on a balanced split has nothing to fall back on and guesses.

Every image comes with an exact mask per part (:data:`PARTS`): True exactly on the pixels where
that part is visible in the final image (parts drawn later cover earlier ones; the masks of all
parts, ``'background'`` included, partition the image). Everything is deterministic from the
seed, and every figure keeps its drawing parameters, so the same figures can be redrawn without
their tie, with the other hair style or with the class object shown (:meth:`BiasDataset.redraw`).

Measuring tools: :func:`group_accuracy` (accuracy per group: female doctors, male doctors,
female nurses, male nurses), :func:`group_table` (the groups side by side for several models),
:func:`flip_count` (predictions changed by a counterfactual redraw) and
:func:`part_saliency_share` (the share of a saliency map's mass on each part, next to the part's
area as the chance level).

Own photographs: :func:`load_bias_folder` reads ``root/doctor/...`` and ``root/nurse/...``
(optionally split into ``female/`` and ``male/`` sub-folders) into the same dataset type, without
part masks.

The modules, one concern each: :mod:`~vislib.bias.study` (classes, groups, parts, the study's
counts), :mod:`~vislib.bias.palettes` (colours), :mod:`~vislib.bias.params` (random drawing
parameters of a figure), :mod:`~vislib.bias.render` (drawing a figure and its part map),
:mod:`~vislib.bias.dataset` (:class:`BiasDataset`), :mod:`~vislib.bias.generate` (the splits),
:mod:`~vislib.bias.loaders` (your photos) and :mod:`~vislib.bias.metrics` (measuring the bias).
Everything public is importable from ``vislib.bias`` itself.
"""
from __future__ import annotations

from .dataset import BiasDataset
from .generate import balanced_test, make_bias_dataset
from .loaders import load_bias_folder
from .metrics import PartShare, flip_count, group_accuracy, group_table, part_saliency_share
from .render import render_figure
from .study import BIAS_CLASSES, GROUPS, PARTS, STUDY_COUNTS

__all__ = ["BIAS_CLASSES", "GROUPS", "PARTS", "STUDY_COUNTS", "BiasDataset", "PartShare", "balanced_test",
           "flip_count", "group_accuracy", "group_table", "load_bias_folder", "make_bias_dataset",
           "part_saliency_share", "render_figure"]
