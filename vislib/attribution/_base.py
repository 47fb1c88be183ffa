"""The prologue every attribution method shares.

One call of a method runs, in this order:

1. :func:`prepare_images` checks the images (:func:`vislib.checks.check_images`) and copies them
   to the model's device and dtype (a copy: the caller's tensor is never touched);
2. :func:`explaining` puts the model in eval mode with frozen parameters
   (:func:`vislib.hooks.frozen`, everything restored afterwards), registers the forward hooks the
   method needs, runs **one** forward pass and resolves the target classes
   (:func:`vislib.checks.resolve_target`: ``None`` = predicted class, an int, or B classes);
3. the method takes gradients of :meth:`Pass.score`, the **sum over the batch** of each image's
   pre-softmax class score. In eval mode the images of a batch do not interact, so one
   ``torch.autograd.grad`` call gives every image the gradient of its own score;
4. :func:`finish` hands the maps back on the input's device, in the input's dtype.

Hooks are always removed, also when the method raises half-way (context managers all the way).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..checks import TargetSpec, check_images, check_logits, model_device, model_dtype, resolve_target
from ..hooks import LayerSpec, Recorder, default_layer, frozen, get_layer

#: A forward hook ``hook(module, inputs, output) -> output or None`` to register for one pass.
ForwardHook = tuple[nn.Module, Callable]


def prepare_images(model: nn.Module, images: Tensor) -> Tensor:
    """Check ``images`` and return a detached copy on the model's device and in its dtype."""
    check_images(images)
    return images.detach().to(device=model_device(model), dtype=model_dtype(model), copy=True)


def finish(maps: Tensor, images: Tensor, *, check: bool = True) -> Tensor:
    """Detach ``maps`` and move them to the device and dtype of the caller's ``images``.

    With ``check`` a map holding NaN or infinite values raises instead of being returned.
    """
    maps = maps.detach().to(device=images.device, dtype=images.dtype)
    if check and not torch.isfinite(maps).all():
        raise FloatingPointError("the attribution contains NaN or infinite values; "
                                 "check the model's outputs for this input")
    return maps


def class_scores(logits: Tensor, classes: Tensor) -> Tensor:
    """``logits[b, classes[b]]`` for every image b: a tensor ``[B]``."""
    return logits.gather(1, classes[:, None]).squeeze(1)


def spatial_layer(model: nn.Module, layer: LayerSpec | None) -> str:
    """Resolve ``layer`` to a dotted name; ``None`` picks :func:`vislib.hooks.default_layer`."""
    if layer is None:
        layer = default_layer(model)
    return get_layer(model, layer)[0]


def check_spatial(activation: Tensor, name: str) -> Tensor:
    """A CAM layer must output feature maps ``[B, K, h, w]``; say so clearly otherwise."""
    if activation.dim() != 4:
        raise ValueError(f"layer {name!r} outputs shape {tuple(activation.shape)}, not feature maps "
                         "[B, K, h, w]; choose a convolutional layer (e.g. the default layer)")
    return activation


@dataclass
class Pass:
    """What one forward pass of :func:`explaining` leaves for the method."""

    inputs: Tensor             #: the images on the model's device (requires grad if asked)
    logits: Tensor             #: pre-softmax outputs ``[B, num_classes]``
    classes: Tensor            #: the resolved target class of each image ``[B]``
    recorder: Recorder         #: outputs of the recorded layers (:class:`vislib.hooks.Recorder`)

    def scores(self) -> Tensor:
        """Each image's target-class logit, ``[B]``."""
        return class_scores(self.logits, self.classes)

    def score(self) -> Tensor:
        """The sum of :meth:`scores`: its gradient holds every image's own gradient."""
        return self.scores().sum()

    def output(self, layer: LayerSpec) -> Tensor:
        """The last recorded output of ``layer``."""
        return self.recorder.output(layer)


def _start_graph(module: nn.Module, inputs: tuple, output):
    """Forward hook: make a layer's output a leaf that requires grad.

    When neither the images nor the parameters require grad, autograd records nothing before
    this layer, and the backward pass of ``autograd.grad(score, output)`` stops here.
    """
    if isinstance(output, Tensor) and not output.requires_grad:
        return output.detach().requires_grad_()
    return None


@contextlib.contextmanager
def registered(hooks: Iterable[ForwardHook]) -> Iterator[None]:
    """Register forward hooks for the body and remove them afterwards, whatever happens."""
    handles = []
    try:
        for module, hook in hooks:
            handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def explaining(
    model: nn.Module,
    images: Tensor,
    target: TargetSpec = None,
    *,
    layers: Sequence[LayerSpec] = (),
    input_grad: bool = False,
    hooks: Iterable[ForwardHook] = (),
    eval_mode: bool = True,
    gradients: bool = True,
) -> Iterator[Pass]:
    """Run the shared prologue and one forward pass; yield a :class:`Pass`.

    ``layers`` are recorded with :class:`vislib.hooks.Recorder` (outputs kept in the graph, a
    clone handed downstream, so in-place ReLUs cannot overwrite them). ``input_grad=True`` makes
    the images require grad; otherwise the graph starts at the recorded layers, so that a
    backward pass to them stops there. ``hooks`` are extra forward hooks for this pass only.
    ``gradients=False`` runs the pass under ``torch.no_grad`` (activations only).
    """
    x = prepare_images(model, images)
    names = [get_layer(model, layer)[0] for layer in layers]
    modules = dict(model.named_modules())
    starts = [] if input_grad or not gradients else [
        (modules[name], _start_graph) for name in dict.fromkeys(names)]
    grad_mode = torch.enable_grad() if gradients else torch.no_grad()
    with frozen(model, eval_mode=eval_mode), grad_mode, \
            registered(list(starts) + list(hooks)), Recorder(model, names) as recorder:
        if input_grad and gradients:
            x.requires_grad_(True)
        logits = check_logits(model(x))
        classes = resolve_target(target, logits)
        yield Pass(x, logits, classes, recorder)


def grad(score: Tensor, wrt: Sequence[Tensor]) -> list[Tensor]:
    """``torch.autograd.grad(score, wrt)``, with zeros for tensors the score does not depend on."""
    grads = torch.autograd.grad(score, list(wrt), allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, wrt)]


def check_batch_size(batch_size: int) -> int:
    """A chunk size for perturbation passes must be a positive int."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size
