"""FullGrad (Srinivas & Fleuret, NeurIPS 2019, arXiv 1905.00780): input- and bias-gradients.

**The decomposition.** A ReLU network built from affine layers, max/avg pooling, residual
additions and eval-mode BatchNorm is positively homogeneous in its input ``x`` and all its biases
``b_l`` together, so the class score splits exactly (completeness)::

    S(x) = sum_chw x * dS/dx  +  sum_l sum_{c,...} b_l[c] * dS/dz_l[c, ...]

with ``z_l`` the output of bias layer ``l``. :func:`fullgrad_decomposition` returns every term.
The bias layers, each keyed by its module (its dotted name), never by order:

* ``Conv*d`` with a bias: ``b[c]`` broadcast over space (``bias=False`` adds nothing);
* ``BatchNorm*d`` (eval mode is affine): ``b = beta - gamma * running_mean / sqrt(running_var + eps)``
  (``gamma = 1``, ``beta = 0`` when ``affine=False``);
* :class:`vislib.models.Normalize` (the pixel-space models' first layer ``(x - mean) / std``):
  ``b = -mean / std``. Counting it makes the identity hold in pixel space; its term is spatial,
  so it also enters the FullGrad map like a convolution's (the reference's rule: every bias term
  with the image's rank is drawn);
* ``Linear`` with a bias: counts for completeness, has no spatial extent, is not drawn.

A module called several times (a reused block) contributes one term per call, keyed
``"name[call]"``. The identity fails, by design, for train-mode BatchNorm, smooth activations
(SiLU, GELU: their "implicit biases" are not counted) and softmax outputs.

**The maps** follow the reference code (``idiap/fullgrad-saliency``)::

    psi(T)   = |T| rescaled per image to [0, 1] over all its C x H x W values (min-max, eps 1e-6),
               upsampled bilinearly (align_corners=True) to the input size
    FullGrad = sum_c psi(x * dS/dx) + sum_{spatial bias layers l} sum_c psi(b_l * dS/dz_l)

Simple FullGrad uses ``dS/dz_l`` in place of ``b_l * dS/dz_l``. Both need one forward and one
backward pass for all layers at once.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from ..checks import TargetSpec
from ..maps import upsample
from ..models import Normalize
from ._base import explaining, finish, grad


def layer_bias(module: nn.Module) -> Tensor | None:
    """The bias ``module`` adds to its output (per output channel), or None if it adds none."""
    if isinstance(module, Normalize):
        return module.bias
    if isinstance(module, _BatchNorm):
        if module.running_mean is None or module.running_var is None:
            raise ValueError(f"{type(module).__name__} without running statistics "
                             "(track_running_stats=False) is not an affine map; FullGrad needs one")
        gamma = module.weight if module.affine else torch.ones_like(module.running_var)
        beta = module.bias if module.affine else torch.zeros_like(module.running_mean)
        return beta - gamma * module.running_mean / torch.sqrt(module.running_var + module.eps)
    if isinstance(module, (_ConvNd, nn.Linear)):
        return module.bias
    return None


def bias_layers(model: nn.Module) -> list[str]:
    """Dotted names of the layers that add a bias (see the module docstring)."""
    return [name for name, m in model.named_modules() if name and layer_bias(m) is not None]


def _shaped_like(bias: Tensor, output: Tensor, module: nn.Module) -> Tensor:
    """``bias`` reshaped to broadcast over ``output`` (channels on dim 1; last dim for Linear)."""
    if isinstance(module, nn.Linear) or output.dim() < 2:
        return bias
    return bias.view(1, -1, *([1] * (output.dim() - 2)))


@dataclass
class FullGradDecomposition:
    """The full-gradient decomposition of each image's target score (tensors are ``[B, ...]``)."""

    input_gradient: Tensor              #: ``dS/dx``, ``[B, 3, H, W]``
    input_term: Tensor                  #: ``x * dS/dx``, ``[B, 3, H, W]``
    bias_gradients: dict[str, Tensor]   #: ``dS/dz_l`` at each bias layer's output
    bias_terms: dict[str, Tensor]       #: ``b_l * dS/dz_l``, shaped like the layer's output
    scores: Tensor                      #: the decomposed scores ``S`` (target logits), ``[B]``
    classes: Tensor                     #: the target classes, ``[B]``

    def total(self, exclude: tuple[str, ...] = ()) -> Tensor:
        """Input term plus all bias terms (but those named in ``exclude``), summed per image."""
        total = self.input_term.flatten(1).sum(1)
        for name, term in self.bias_terms.items():
            if name not in exclude:
                total = total + term.flatten(1).sum(1)
        return total

    def gap(self) -> Tensor:
        """``S - total()`` per image: zero (up to rounding) when completeness holds."""
        return self.scores - self.total()


@contextlib.contextmanager
def _buffers_kept(model: nn.Module) -> Iterator[None]:
    """Restore every buffer (BatchNorm running statistics) after the body."""
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def _decompose(model, images, target, eval_mode=True) -> tuple[Tensor, Tensor, dict, dict, Tensor, Tensor]:
    """The decomposition on the model's device: (dS/dx, x, {key: dS/dz}, {key: bias}, S, classes)."""
    names = bias_layers(model)
    modules = dict(model.named_modules())
    keep = contextlib.nullcontext() if eval_mode else _buffers_kept(model)
    # Read before the pass: in train mode the forward pass updates BatchNorm's running statistics.
    layer_biases = {name: layer_bias(modules[name]).detach().clone() for name in names}
    with keep, explaining(model, images, target, layers=names, input_grad=True, eval_mode=eval_mode) as p:
        keys, outputs, biases = [], [], []
        for name in names:
            calls = p.recorder.outputs[name]
            for call, output in enumerate(calls):
                keys.append(name if len(calls) == 1 else f"{name}[{call}]")
                outputs.append(output)
                biases.append(_shaped_like(layer_biases[name], output, modules[name]))
        grads = grad(p.score(), [p.inputs] + outputs)
        scores = p.scores().detach()
    return grads[0], p.inputs.detach(), dict(zip(keys, grads[1:])), dict(zip(keys, biases)), scores, p.classes


def fullgrad_decomposition(model: nn.Module, images: Tensor, target: TargetSpec = None, *,
                           eval_mode: bool = True) -> FullGradDecomposition:
    """The full-gradient decomposition of the target score: input term and one term per bias layer.

    ``dec.total()`` equals ``dec.scores`` (completeness) for ReLU networks in eval mode; check it
    with ``dec.gap()``. By default the model is put in eval mode for the call (and restored);
    ``eval_mode=False`` decomposes it in the mode it is in, e.g. after ``model.train()``, where
    BatchNorm uses batch statistics and completeness fails (running statistics are restored).
    """
    g_x, x, g_layers, biases, scores, classes = _decompose(model, images, target, eval_mode)
    def out(t: Tensor) -> Tensor:
        return finish(t, images, check=False)

    return FullGradDecomposition(
        input_gradient=out(g_x),
        input_term=out(g_x * x),
        bias_gradients={key: out(g) for key, g in g_layers.items()},
        bias_terms={key: out(g * biases[key]) for key, g in g_layers.items()},
        scores=out(scores),
        classes=classes.to(images.device),
    )


def psi(tensor: Tensor, size: tuple[int, int], eps: float = 1e-6) -> Tensor:
    """The reference post-processing of a ``[B, C, h, w]`` tensor, summed over channels.

    ``|T|``, rescaled per image by its min and max over all C x h x W values
    (``(|T| - min) / (max - min + eps)``), upsampled bilinearly (``align_corners=True``) to
    ``size``, summed over channels. Rescaling and upsampling are linear and the same for every
    channel, so the channels are summed first, ``(sum_c |T| - C min) / (max - min + eps)``, and
    one map per image is upsampled: the reference's numbers at a fraction of its cost.
    """
    t = tensor.abs()
    lo, hi = torch.aminmax(t.flatten(1), dim=1)
    lo, hi = lo.view(-1, 1, 1), hi.view(-1, 1, 1)
    summed = (t.sum(dim=1) - t.shape[1] * lo) / (hi - lo + eps)
    return upsample(summed, size, align_corners=True)


def _aggregate(input_term: Tensor, layer_tensors: dict[str, Tensor], size) -> Tensor:
    saliency = psi(input_term, size)
    for tensor in layer_tensors.values():
        if tensor.dim() == 4:  # spatial layers only; linear layers are not drawn
            saliency = saliency + psi(tensor, size)
    return saliency


def fullgrad(model: nn.Module, images: Tensor, target: TargetSpec = None) -> Tensor:
    """FullGrad saliency: ``sum_c psi(x * dS/dx) + sum_l sum_c psi(b_l * dS/dz_l)`` (module docstring)."""
    g_x, x, g_layers, biases, _, _ = _decompose(model, images, target)
    terms = {key: g * biases[key] for key, g in g_layers.items()}
    return finish(_aggregate(g_x * x, terms, images.shape[-2:]), images)


def simple_fullgrad(model: nn.Module, images: Tensor, target: TargetSpec = None) -> Tensor:
    """Simple FullGrad: :func:`fullgrad` with the raw gradient ``dS/dz_l`` at each bias layer's
    output instead of ``b_l * dS/dz_l`` (no completeness guarantee)."""
    g_x, x, g_layers, _, _, _ = _decompose(model, images, target)
    return finish(_aggregate(g_x * x, g_layers, images.shape[-2:]), images)
