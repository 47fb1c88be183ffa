"""Saliency methods behind one call: ``METHODS[name](model, images, target=None, **options)``.

Every method takes float images ``[B, 3, H, W]`` in [0, 1] (pixel space; values outside raise a
``ValueError`` with a hint, unless the call runs inside :func:`vislib.checks.any_pixel_range`) and returns a map
``Tensor[B, H, W]`` at input resolution, on the images' device and in their dtype, **not
normalised** (use :func:`vislib.normalize`). ``target``: None = each image's predicted class,
an int for all images, or B classes. Scores are pre-softmax logits. Methods that read a layer
take ``layer=`` (a module or a dotted name; default :func:`vislib.hooks.default_layer`).

A method never changes the model (parameters, ``requires_grad``, train/eval flags, module
objects) and never leaves a hook behind, also when it raises.

The registry comes from one table, :data:`CATALOGUE` (:mod:`vislib.attribution.catalogue`):
adding a method is one function and one record. The shared machinery (a layer's activations and
gradients in one pass, the weighted channel sum, batched scoring of perturbed inputs) is public in
:mod:`vislib.attribution.core`.

========================  ===================================================  ========================
name                      method                                               cost
========================  ===================================================  ========================
``gradient``              max_k |dS/dx| (Simonyan et al. 2014)                 1 forward + 1 backward
``input_x_gradient``      sum_k x * dS/dx                                      1 forward + 1 backward
``guided_backprop``       guided ReLU backward (Springenberg et al. 2015)      1 forward + 1 backward
``deconvnet``             ReLU backward passes clamp(g, 0) (Zeiler & Fergus)   1 forward + 1 backward
``smoothgrad``            mean gradient of noisy copies (Smilkov et al.)       n forwards + backwards
``integrated_gradients``  path integral of the gradient (Sundararajan)         steps forwards + backwards
``occlusion``             score drop under a sliding patch (Zeiler & Fergus)   B * windows forwards
``cam``                   fc weights x feature maps (Zhou et al. 2016)         1 forward
``gradcam``               mean gradient x feature maps (Selvaraju et al.)      backward to the layer
``guided_gradcam``        guided_backprop * gradcam                            both
``gradcam_pp``            Grad-CAM++ (Chattopadhyay et al. 2018)               backward to the layer
``xgradcam``              activation-weighted gradient (Fu et al. 2020)        backward to the layer
``layercam``              ReLU(gradient) x activation per position (Jiang)     backward to the layer
``hirescam``              gradient x activation per position (Draelos)         backward to the layer
``ablation_cam``          relative score drop per zeroed channel (Desai)       K ablations, after layer
``score_cam``             score of the image masked by each channel (Wang)     K masked forwards
``eigencam``              first principal component of the layer (Muhammad)    1 forward + SVD
``fullgrad``              input- and bias-gradients (Srinivas & Fleuret)       1 forward + 1 backward
``simple_fullgrad``       FullGrad without the bias factor                     1 forward + 1 backward
``random``                seeded uniform noise (baseline)                      none
``sobel``                 Sobel edge map of the image (control)                none
========================  ===================================================  ========================

Also :func:`neuron_gradient` (one neuron's input gradient), :func:`fullgrad_decomposition`
(every term of the completeness identity) and :func:`relu_backward` (the three ReLU backward rules
on given tensors, for teaching).
"""
from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from .baselines import random, sobel
from .cams import (ablation_cam, cam, gradcam, gradcam_pp, gradcam_pp_weights, gradcam_weights, guided_gradcam,
                   weighted_map)
from .fullgrad import FullGradDecomposition, bias_layers, fullgrad, fullgrad_decomposition, layer_bias, simple_fullgrad
from .gradients import (RELU_RULES, deconvnet, deconvnet_relus, gradient, guided_backprop, guided_relu_hooks,
                        input_x_gradient, neuron_gradient, relu_backward)
from .occlusion import occlusion
from .averaged import integrated_gradients, quadrature, smoothgrad
from .cam_variants import eigencam, hirescam, layercam, score_cam, xgradcam
from .catalogue import CATALOGUE, RECORDS, MethodRecord, method_table
from . import core

#: Every method by name: ``fn(model, images, target=None, **options) -> Tensor[B, H, W]``
#: (derived from :data:`CATALOGUE`).
METHODS: dict[str, Callable[..., Tensor]] = {r.name: r.fn for r in CATALOGUE}

#: Methods that read one layer and take ``layer=`` (derived from :data:`CATALOGUE`).
LAYER_METHODS: tuple[str, ...] = tuple(r.name for r in CATALOGUE if r.takes_layer)

__all__ = [
    "CATALOGUE", "RECORDS", "MethodRecord", "method_table", "core", "integrated_gradients", "quadrature",
    "smoothgrad", "eigencam", "hirescam", "layercam", "score_cam", "xgradcam",
    "METHODS", "LAYER_METHODS", "FullGradDecomposition", "ablation_cam", "bias_layers", "cam",
    "fullgrad", "fullgrad_decomposition", "gradcam", "gradcam_pp", "gradcam_pp_weights", "gradcam_weights",
    "deconvnet", "deconvnet_relus", "gradient", "guided_backprop",
    "guided_gradcam", "guided_relu_hooks", "input_x_gradient", "layer_bias", "neuron_gradient",
    "occlusion", "random", "relu_backward", "RELU_RULES", "simple_fullgrad", "sobel", "weighted_map",
]
