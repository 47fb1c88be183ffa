"""Saliency methods behind one call: ``METHODS[name](model, images, target=None, **options)``.

Every method takes float images ``[B, 3, H, W]`` in [0, 1] (pixel space) and returns a map
``Tensor[B, H, W]`` at input resolution, on the images' device and in their dtype, **not
normalised** (use :func:`vislib.normalize`). ``target``: None = each image's predicted class,
an int for all images, or B classes. Scores are pre-softmax logits. Methods that read a layer
take ``layer=`` (a module or a dotted name; default :func:`vislib.hooks.default_layer`).

A method never changes the model (parameters, ``requires_grad``, train/eval flags, module
objects) and never leaves a hook behind, also when it raises.

=====================  ==================================================  ======================
name                   method                                              cost
=====================  ==================================================  ======================
``gradient``           max_k |dS/dx| (Simonyan et al. 2014)                1 forward + 1 backward
``input_x_gradient``   sum_k x * dS/dx                                     1 forward + 1 backward
``guided_backprop``    guided ReLU backward (Springenberg et al. 2015)     1 forward + 1 backward
``occlusion``          score drop under a sliding patch (Zeiler & Fergus)  B * windows forwards
``cam``                fc weights x feature maps (Zhou et al. 2016)        1 forward
``gradcam``            mean gradient x feature maps (Selvaraju et al.)     backward to the layer
``guided_gradcam``     guided_backprop * gradcam                           both
``gradcam_pp``         Grad-CAM++ (Chattopadhyay et al. 2018)              backward to the layer
``ablation_cam``       relative score drop per zeroed channel (Desai)      K ablations, after layer
``fullgrad``           input- and bias-gradients (Srinivas & Fleuret)      1 forward + 1 backward
``simple_fullgrad``    FullGrad without the bias factor                    1 forward + 1 backward
``random``             seeded uniform noise (baseline)                     none
``sobel``              Sobel edge map of the image (control)               none
=====================  ==================================================  ======================

Also :func:`neuron_gradient` (one neuron's input gradient) and :func:`fullgrad_decomposition`
(every term of the completeness identity).
"""
from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from .baselines import random, sobel
from .cams import ablation_cam, cam, gradcam, gradcam_pp, guided_gradcam, weighted_map
from .fullgrad import FullGradDecomposition, bias_layers, fullgrad, fullgrad_decomposition, layer_bias, simple_fullgrad
from .gradients import gradient, guided_backprop, guided_relu_hooks, input_x_gradient, neuron_gradient
from .occlusion import occlusion

#: Every method by name: ``fn(model, images, target=None, **options) -> Tensor[B, H, W]``.
METHODS: dict[str, Callable[..., Tensor]] = {
    "gradient": gradient,
    "input_x_gradient": input_x_gradient,
    "guided_backprop": guided_backprop,
    "occlusion": occlusion,
    "cam": cam,
    "gradcam": gradcam,
    "guided_gradcam": guided_gradcam,
    "gradcam_pp": gradcam_pp,
    "ablation_cam": ablation_cam,
    "fullgrad": fullgrad,
    "simple_fullgrad": simple_fullgrad,
    "random": random,
    "sobel": sobel,
}

#: Methods that read one layer and take ``layer=``.
LAYER_METHODS = ("cam", "gradcam", "guided_gradcam", "gradcam_pp", "ablation_cam")

__all__ = [
    "METHODS", "LAYER_METHODS", "FullGradDecomposition", "ablation_cam", "bias_layers", "cam",
    "fullgrad", "fullgrad_decomposition", "gradcam", "gradcam_pp", "gradient", "guided_backprop",
    "guided_gradcam", "guided_relu_hooks", "input_x_gradient", "layer_bias", "neuron_gradient",
    "occlusion", "random", "simple_fullgrad", "sobel", "weighted_map",
]
