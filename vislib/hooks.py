"""Hooks: record what layers output, take gradients with respect to it, leave no trace.

Every method in :mod:`vislib.attribution` stands on three small pieces defined here:

* :func:`get_layer` turns a dotted name (as listed by ``model.named_modules()``) or a module
  into ``(name, module)``, with an error that lists the valid names;
* :class:`Recorder` keeps the outputs of chosen layers during a forward pass. Gradients with
  respect to them come from ``torch.autograd.grad(score, recorder.output(name))``, never from
  module backward hooks (which break on in-place ReLUs, see pytorch/pytorch#61519);
* :func:`preserve_state` restores train/eval flags, ``requires_grad`` and ``.grad`` of every
  parameter however its body ends.

Why the recorder hands a *clone* downstream
-------------------------------------------
An in-place ReLU after a convolution (``nn.ReLU(inplace=True)``, torchvision's ``out += identity``)
overwrites the convolution's output tensor and re-attaches it to the autograd graph as the ReLU's
output. A recorded tensor would then hold post-ReLU values and the gradient *after* the ReLU.
The forward hook therefore keeps the layer's own output and returns ``output.clone()`` to the
rest of the network: in-place operations downstream modify the clone, the recorded tensor keeps
its values, and ``autograd.grad`` with respect to it is the gradient at the layer's output.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Union

import torch
from torch import Tensor, nn

LayerSpec = Union[str, nn.Module]


class LayerNotFoundError(ValueError):
    """A layer name that is not in ``model.named_modules()``."""


def layer_names(model: nn.Module) -> list[str]:
    """Dotted names of all sub-modules of ``model`` (the model itself excluded), in order."""
    return [name for name, _ in model.named_modules() if name]


def _format_names(names: Sequence[str], limit: int = 60) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more)"
    return shown


def get_layer(model: nn.Module, layer: LayerSpec) -> tuple[str, nn.Module]:
    """Return ``(dotted_name, module)`` for ``layer``, a dotted name or a sub-module of ``model``.

    Raises :class:`LayerNotFoundError` naming the valid layers when the name is unknown, and
    when a module is given that is not part of ``model``.
    """
    if isinstance(layer, str):
        modules = dict(model.named_modules())
        if layer and layer in modules:
            return layer, modules[layer]
        raise LayerNotFoundError(
            f"unknown layer {layer!r} for {type(model).__name__}; valid layer names are: "
            f"{_format_names(layer_names(model))}"
        )
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name, module
        raise LayerNotFoundError(
            f"the module {type(layer).__name__} given as layer is not part of the model; pass one of "
            f"its sub-modules or a name: {_format_names(layer_names(model))}"
        )
    raise TypeError(f"layer must be a dotted name (str) or an nn.Module, got {type(layer).__name__}")


def hook_count(model: nn.Module) -> int:
    """Number of hooks of any kind registered on ``model`` and its sub-modules (for tests)."""
    total = 0
    for m in model.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                     "_backward_pre_hooks", "_state_dict_hooks", "_load_state_dict_pre_hooks"):
            total += len(getattr(m, attr, {}))
    return total


class Recorder:
    """Records the outputs of chosen layers; use it as a context manager.

    >>> with Recorder(model, ["features.3", "fc"]) as rec:
    ...     logits = model(x)
    ...     grad = torch.autograd.grad(logits[:, 0].sum(), rec.output("features.3"))[0]

    ``rec.outputs[name]`` lists the layer's output at every call (a module used several times in
    one forward, like the shared ReLU of a torchvision ResNet block, records several tensors);
    ``rec.output(name)`` is the last one. The recorded tensors stay in the autograd graph, so
    gradients with respect to them can be taken; downstream layers receive a clone (see the
    module docstring). With ``detach=True`` the recorder keeps detached copies instead and hands
    the original output on untouched (cheaper; for activations only).

    ``transform`` optionally replaces each output before it is handed downstream: it receives
    ``(name, output)`` and returns the tensor the rest of the network sees (Ablation-CAM and
    guided backprop use it). All hooks are removed on exit, also when the body raises.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Iterable[LayerSpec],
        *,
        detach: bool = False,
        transform: Callable[[str, Tensor], Tensor] | None = None,
    ) -> None:
        self.model = model
        resolved = [get_layer(model, layer) for layer in layers]
        self.names: list[str] = [name for name, _ in resolved]
        self._modules = [module for _, module in resolved]
        self.detach = detach
        self.transform = transform
        self.outputs: dict[str, list[Tensor]] = {name: [] for name in self.names}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook_for(self, name: str) -> Callable:
        def hook(module: nn.Module, inputs: tuple, output):
            if not isinstance(output, Tensor):
                raise TypeError(
                    f"layer {name!r} ({type(module).__name__}) returns {type(output).__name__}, "
                    "not a tensor; choose a layer whose output is a single tensor"
                )
            if self.detach:
                self.outputs[name].append(output.detach().clone())
                passed_on = output
            else:
                self.outputs[name].append(output)
                passed_on = output.clone()
            if self.transform is not None:
                passed_on = self.transform(name, passed_on)
            return passed_on

        return hook

    def __enter__(self) -> "Recorder":
        try:
            for name, module in zip(self.names, self._modules):
                self._handles.append(module.register_forward_hook(self._hook_for(name)))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook this recorder registered (idempotent)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def output(self, layer: LayerSpec) -> Tensor:
        """The last recorded output of ``layer`` (a name or module given to the recorder)."""
        name = layer if isinstance(layer, str) else get_layer(self.model, layer)[0]
        if name not in self.outputs:
            raise KeyError(f"layer {name!r} is not recorded; recorded layers: {self.names}")
        if not self.outputs[name]:
            raise RuntimeError(
                f"layer {name!r} did not run in the forward pass; is it part of the forward path?"
            )
        return self.outputs[name][-1]

    def clear(self) -> None:
        """Forget recorded outputs (hooks stay registered)."""
        for outs in self.outputs.values():
            outs.clear()


@contextlib.contextmanager
def preserve_state(model: nn.Module) -> Iterator[nn.Module]:
    """Restore the model's train/eval flags and its parameters' ``requires_grad`` and ``.grad``.

    Every vislib method runs inside it, so an explanation never changes the model it explains,
    also when it raises half-way.
    """
    training = [(m, m.training) for m in model.modules()]
    params = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    try:
        yield model
    finally:
        for module, flag in training:
            module.training = flag
        for param, requires_grad, grad in params:
            param.requires_grad_(requires_grad)
            param.grad = grad


@contextlib.contextmanager
def frozen(model: nn.Module, *, eval_mode: bool = True) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients for the body, restored afterwards.

    Explanations differentiate with respect to inputs and activations only; freezing the
    parameters saves the memory and time of their gradients.
    """
    with preserve_state(model):
        if eval_mode:
            model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        yield model


@dataclass
class Call:
    """One module call seen by :func:`trial_forward`, in the order the calls finished."""

    name: str              #: dotted name of the module
    module: nn.Module
    inputs: tuple          #: the positional inputs the module received
    output: object         #: what it returned


def trial_forward(model: nn.Module, *, size: int | None = None, default_size: int = 224) -> list[Call]:
    """Run ``model`` once on a zero image and return every sub-module call, in finishing order.

    The one probe pass behind :func:`default_layer` and
    :func:`vislib.activations.penultimate_layer`: a ``[1, 3, s, s]`` zero image with
    ``s = size``, else the model's ``vislib_input_size`` attribute, else ``default_size``, on the
    model's device and in its dtype (:func:`vislib.checks.model_device`,
    :func:`vislib.checks.model_dtype`), in eval mode under ``no_grad``. The model's flags are
    restored and the hooks removed, also when the pass raises. A container finishes after its
    children, so it comes after them in the list.
    """
    from .checks import model_device, model_dtype

    calls: list[Call] = []

    def probe(name):
        def hook(module, inputs, output):
            calls.append(Call(name, module, inputs, output))
        return hook

    side = size if size is not None else getattr(model, "vislib_input_size", default_size)
    handles = []
    try:
        handles = [m.register_forward_hook(probe(n)) for n, m in model.named_modules() if n]
        with torch.no_grad(), preserve_state(model):
            model.eval()
            model(torch.zeros(1, 3, side, side, device=model_device(model), dtype=model_dtype(model)))
    finally:
        for h in handles:
            h.remove()
    return calls


_POOLING = (nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d)


def default_layer(model: nn.Module) -> str:
    """The last layer that outputs a spatial map: the default for CAM-style methods.

    A model may name it in an attribute ``vislib_default_layer`` (the course models do).
    Otherwise a probe forward pass (:func:`trial_forward`, 224 px unless the model's
    ``vislib_input_size`` says otherwise) finds, in execution order, the last module whose output
    is a 4-D tensor larger than 1x1 that is not the output of a pooling layer. For a torchvision
    ResNet that is ``'layer4'`` (after the last residual addition and ReLU), for VGG-16 the
    last ReLU of ``features`` (``'features.29'``), before the final max-pool.
    """
    attr = getattr(model, "vislib_default_layer", None)
    if attr is not None:
        return attr
    calls = [c for c in trial_forward(model, default_size=224) if isinstance(c.output, Tensor)]
    pooled = {id(c.output) for c in calls if isinstance(c.module, _POOLING)}
    candidates = [
        c.name for c in calls
        if c.output.dim() == 4 and c.output.shape[-1] * c.output.shape[-2] > 1
        and not isinstance(c.module, _POOLING) and id(c.output) not in pooled
    ]
    if not candidates:
        raise ValueError("the model has no layer with a spatial (4-D, larger than 1x1) output; "
                         "pass layer= explicitly")
    return candidates[-1]
