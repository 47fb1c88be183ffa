"""Evaluating saliency maps: do they find what the model uses, and what the object is?

* :mod:`~vislib.evaluation.perturbation`: pixel perturbation, remove the k % least/most
  salient pixels (AFOC, KL, logit change) with a random baseline and confidence intervals;
* :mod:`~vislib.evaluation.roar`: remove and retrain (Hooker et al.), mean or ROAD fill;
* :mod:`~vislib.evaluation.localisation`: pointing game, energy share and "segmentation for free"
  (thresholded or GrabCut-refined maps, IoU) against object masks;
* :mod:`~vislib.evaluation.sanity`: model-parameter and data randomisation (Adebayo et al.);
* :mod:`~vislib.evaluation.removal` and :mod:`~vislib.evaluation.imputation`: the shared pixel
  ranking (seeded tie-breaking), masks and fills (black, mean, ROAD noisy linear imputation);
* :func:`mean_ci` / :func:`t_interval`: a mean and its Student-t confidence interval, the error bars
  of every figure; :func:`wilson_interval` for a rate of 0/1 outcomes (pointing-game hits).

Methods are given as callables ``fn(model, images, target=None, **options) -> Tensor[B, H, W]``
or by name in ``vislib.attribution.METHODS``.
"""
from ._common import mean_ci, t_interval, wilson_interval
from .imputation import noisy_linear_imputation
from .localisation import (THRESHOLDS, EnergyResult, PointingResult, SegmentationResult, chance_iou, dilate,
                           energy_share, grabcut_refine, iou, pointing_game, segmentation_iou, threshold_maps)
from .perturbation import (ALL_METRICS, DEFAULT_FRACTIONS, FACT_METRICS, METRICS, TOP_OTHERS, PerturbationResult, compare_methods, format_summary,
                           perturbation_metrics, pixel_perturbation, plot_curves, summarize)
from .removal import (FILLS, check_fractions, dataset_mean, fill_pixels, pixel_count, random_mask, random_rank,
                      removal_mask, saliency_rank)
from .roar import RoarResult, default_settings, fresh_copy, plot_roar, roar
from .sanity import (SIMILARITIES, DataRandomizationResult, SanityResult, cascading_randomization, data_randomization,
                     independent_randomization, map_similarities, permuted_labels, plot_data_randomization, plot_sanity,
                     random_label_model, randomization_steps, randomized_copy, spearman_similarity, ssim_similarity)

__all__ = [
    "mean_ci", "t_interval", "wilson_interval",
    "noisy_linear_imputation",
    "EnergyResult", "PointingResult", "dilate", "energy_share", "pointing_game",
    "THRESHOLDS", "SegmentationResult", "chance_iou", "grabcut_refine", "iou", "segmentation_iou", "threshold_maps",
    "ALL_METRICS", "DEFAULT_FRACTIONS", "FACT_METRICS", "METRICS", "TOP_OTHERS", "PerturbationResult", "compare_methods", "format_summary",
    "perturbation_metrics", "pixel_perturbation", "plot_curves", "summarize",
    "FILLS", "check_fractions", "dataset_mean", "fill_pixels", "pixel_count", "random_mask", "random_rank",
    "removal_mask", "saliency_rank",
    "RoarResult", "default_settings", "fresh_copy", "plot_roar", "roar",
    "SIMILARITIES", "SanityResult", "cascading_randomization", "independent_randomization", "plot_sanity",
    "randomization_steps", "randomized_copy", "spearman_similarity", "ssim_similarity",
    "DataRandomizationResult", "data_randomization", "map_similarities", "permuted_labels", "plot_data_randomization",
    "random_label_model",
]
