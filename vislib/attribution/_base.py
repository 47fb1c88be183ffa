"""The prologue every attribution method shares.

One call of a method runs, in this order:

1. :func:`prepare_images` checks the images (:func:`vislib.checks.check_images`: shape, dtype,
   finite, pixel range [0, 1]) and copies them to the model's device and dtype (a copy: the
   caller's tensor is never touched); the target's type is checked before any pass
   (:func:`vislib.checks.check_target`);
2. :func:`explaining` puts the model in eval mode with frozen parameters
   (:func:`vislib.hooks.frozen`, everything restored afterwards), registers the forward hooks the
   method needs, runs **one** forward pass and resolves the target classes
   (:func:`vislib.checks.resolve_target`: ``None`` = predicted class, an int, or B classes); a
   forward pass that fails because the images are too small for the network says so
   (:func:`vislib.checks.explain_forward_error`);
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

from ..checks import (TargetSpec, check_images, check_logits, check_positive_int, check_target, explain_forward_error,
                      model_device, model_dtype, resolve_target)
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


def spatial_layers(model: nn.Module, inputs: Tensor) -> list[tuple[str, tuple[int, int]]]:
    """``(name, (h, w))`` of every layer whose output on ``inputs`` is a feature map larger than 1x1.

    One probe pass on the first image (eval mode, ``no_grad``, hooks removed afterwards), in the
    order the layers finish: the layers a CAM method can read at this image size.
    """
    found: dict[str, tuple[int, int]] = {}

    def probe(name):
        def hook(module, args, output):
            if isinstance(output, Tensor) and output.dim() == 4 and output.shape[-1] * output.shape[-2] > 1:
                found.setdefault(name, tuple(output.shape[-2:]))
        return hook

    with frozen(model), torch.no_grad(), registered([(m, probe(n)) for n, m in model.named_modules() if n]):
        model(inputs[:1].detach())
    return list(found.items())


def _valid_layers_text(model: nn.Module, inputs: Tensor) -> str:
    try:
        layers = spatial_layers(model, inputs)
    except Exception:                               # noqa: BLE001 - the hint must not hide the error
        return "choose a convolutional layer whose output is larger than 1x1"
    if not layers:
        side = getattr(model, "vislib_input_size", None)
        built = f" (the model was built for {side}x{side} px)" if side else ""
        return (f"no layer of this model has a feature map larger than 1x1 at {inputs.shape[-2]}x{inputs.shape[-1]} "
                f"px: use larger images{built}")
    shown = ", ".join(f"{n!r} ({h}x{w})" for n, (h, w) in layers[-12:])
    more = f" (and {len(layers) - 12} earlier ones)" if len(layers) > 12 else ""
    return f"valid (spatial) layers at this image size, last one = the deepest: {shown}{more}"


def check_spatial(activation: Tensor, name: str, model: nn.Module | None = None,
                  inputs: Tensor | None = None) -> Tensor:
    """A CAM layer must output feature maps ``[B, K, h, w]`` with more than one position.

    A 1x1 map (the output of global average pooling, or any layer when the images are so small
    that its map shrinks to one position) would give a constant CAM: that is an error too. With
    ``model`` and ``inputs`` (the images as the model sees them) the message lists the layers
    that are valid at this image size (:func:`spatial_layers`).
    """
    size = f" for images of {inputs.shape[-2]}x{inputs.shape[-1]} px" if inputs is not None else ""
    if activation.dim() != 4:
        problem = f"layer {name!r} outputs shape {tuple(activation.shape)}{size}, not feature maps [B, K, h, w]"
    elif activation.shape[-1] * activation.shape[-2] == 1:
        problem = (f"layer {name!r} outputs 1x1 feature maps {tuple(activation.shape)}{size}: a CAM of a 1x1 map "
                   "is one number spread over the image (a constant map)")
    else:
        return activation
    hint = (_valid_layers_text(model, inputs) if model is not None and inputs is not None
            else "choose a convolutional layer (e.g. the default layer)")
    raise ValueError(f"{problem}; {hint}")


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
    check_target(target)
    x = prepare_images(model, images)
    names = [get_layer(model, layer)[0] for layer in layers]
    modules = dict(model.named_modules())
    starts = [] if input_grad or not gradients else [
        (modules[name], _start_graph) for name in dict.fromkeys(names)]
    grad_mode = torch.enable_grad() if gradients else torch.no_grad()
    failure = None
    with frozen(model, eval_mode=eval_mode), grad_mode, \
            registered(list(starts) + list(hooks)), Recorder(model, names) as recorder:
        if input_grad and gradients:
            x.requires_grad_(True)
        try:
            output = model(x)
        except RuntimeError as error:
            failure = error
        else:
            logits = check_logits(output)
            classes = resolve_target(target, logits)
            yield Pass(x, logits, classes, recorder)
    if failure is not None:                 # probed with the hooks removed and the model restored
        explained = explain_forward_error(model, x, failure)
        if explained is failure:
            raise failure
        raise explained from failure


def grad(score: Tensor, wrt: Sequence[Tensor]) -> list[Tensor]:
    """``torch.autograd.grad(score, wrt)``, with zeros for tensors the score does not depend on."""
    grads = torch.autograd.grad(score, list(wrt), allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, wrt)]


def check_batch_size(batch_size: int, name: str = "batch_size") -> int:
    """A chunk size for perturbation passes must be a positive int (:func:`vislib.checks.check_positive_int`)."""
    return check_positive_int(batch_size, name)
