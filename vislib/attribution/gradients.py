"""Gradient maps: vanilla gradient, gradient x input, one neuron's gradient, guided backprop, deconvnet.

Each takes one forward and one backward pass. ``S`` is the pre-softmax score of the target class,
``x`` the pixel-space image, ``k`` runs over its colour channels.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from ..checks import TargetSpec, check_positive_int
from ..hooks import LayerSpec
from ._base import ForwardHook, explaining, finish, grad


def gradient(model: nn.Module, images: Tensor, target: TargetSpec = None) -> Tensor:
    """Vanilla gradient saliency (Simonyan, Vedaldi & Zisserman 2014, arXiv 1312.6034).

    ``M[i, j] = max_k |dS / dx[k, i, j]|``: the largest absolute gradient over the colour
    channels.
    """
    with explaining(model, images, target, input_grad=True) as p:
        (g,) = grad(p.score(), [p.inputs])
    return finish(g.abs().amax(dim=1), images)


def input_x_gradient(model: nn.Module, images: Tensor, target: TargetSpec = None) -> Tensor:
    """Gradient times input (Shrikumar et al. 2016, arXiv 1605.01713), signed.

    ``M[i, j] = sum_k x[k, i, j] * dS / dx[k, i, j]`` with ``x`` the pixel-space image.
    """
    with explaining(model, images, target, input_grad=True) as p:
        (g,) = grad(p.score(), [p.inputs])
    return finish((g * p.inputs.detach()).sum(dim=1), images)


# --------------------------------------------------------------------------- guided backprop
#: The three ReLU backward rules of Springenberg et al. (2015), Table 1: which masks pass ``g``.
RELU_RULES = ("backprop", "deconvnet", "guided")


def relu_backward(h: Tensor, g: Tensor, rule: str = "guided") -> Tensor:
    """What a ReLU sends back under one of three backward rules, elementwise.

    ``h`` is the ReLU's input in the forward pass and ``g`` the gradient arriving from above
    (same shape). ``"backprop"``: ``g · 1[h > 0]`` (the true gradient); ``"deconvnet"``:
    ``g · 1[g > 0]`` (Zeiler & Fergus 2014); ``"guided"``: ``g · 1[h > 0] · 1[g > 0]`` (guided
    backpropagation). At ``h = 0`` the unit counts as inactive. Returns a new tensor like ``g``.
    """
    if rule not in RELU_RULES:
        raise ValueError(f"rule must be one of {RELU_RULES}, got {rule!r}")
    if h.shape != g.shape:
        raise ValueError(f"h and g must have the same shape, got {tuple(h.shape)} and {tuple(g.shape)}")
    zero = torch.zeros((), dtype=g.dtype, device=g.device)
    out = g
    if rule in ("backprop", "guided"):
        out = torch.where(h > 0, out, zero)
    if rule in ("deconvnet", "guided"):
        out = torch.where(g > 0, out, zero)
    return out.clone() if out is g else out


class _PositiveGradient(torch.autograd.Function):
    """Identity forward (a copy); the backward pass lets only positive gradients through."""

    @staticmethod
    def forward(ctx, output: Tensor) -> Tensor:
        return output.clone()

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        return grad_output.clamp(min=0)


def _guide(module: nn.Module, inputs: tuple, output: Tensor) -> Tensor:
    # The ReLU's own backward multiplies by 1[x > 0]; this adds 1[grad > 0] in front of it.
    return _PositiveGradient.apply(output)


def guided_relu_hooks(model: nn.Module) -> list[ForwardHook]:
    """Forward hooks that turn every ``nn.ReLU`` module of ``model`` into a guided ReLU.

    The hook applies :class:`_PositiveGradient` to the ReLU's output, so that the backward pass
    through the ReLU becomes ``grad_in = grad_out * 1[x > 0] * 1[grad_out > 0]``. The modules
    themselves are never replaced, so in-place ReLUs, ReLUs called several times and hooks that
    others put on them keep working. Functional ``F.relu`` / ``torch.relu`` calls inside a
    ``forward`` are **not** guided (they are not modules), so a model that uses them gets the
    plain gradient there: check your model (the course models and torchvision's use modules).
    """
    return [(m, _guide) for m in model.modules() if isinstance(m, nn.ReLU)]


def _guided_input_gradient(model: nn.Module, images: Tensor, target: TargetSpec) -> Tensor:
    with explaining(model, images, target, input_grad=True, hooks=guided_relu_hooks(model)) as p:
        (g,) = grad(p.score(), [p.inputs])
    return g


def guided_backprop(model: nn.Module, images: Tensor, target: TargetSpec = None) -> Tensor:
    """Guided backpropagation (Springenberg et al. 2015, arXiv 1412.6806).

    The gradient ``dS/dx`` computed with every ReLU's backward replaced by
    ``grad_in = grad_out * 1[x > 0] * 1[grad_out > 0]`` (only positive gradients where the
    input was positive), reduced like :func:`gradient`: ``max_k |.|`` over colour channels. Only ``nn.ReLU`` modules
    are guided (see :func:`guided_relu_hooks`); the model's modules are left in place.
    """
    g = _guided_input_gradient(model, images, target)
    return finish(g.abs().amax(dim=1), images)


# --------------------------------------------------------------------------- deconvnet
class _DeconvReLU(torch.autograd.Function):
    """ReLU forward; backward ``clamp(g, 0)`` whatever the forward input was (the deconvnet rule)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        return grad_output.clamp(min=0)


@contextlib.contextmanager
def deconvnet_relus(model: nn.Module) -> Iterator[None]:
    """Within the block, every ``nn.ReLU`` module of ``model`` sends back ``clamp(g, 0)``.

    The deconvnet rule ignores the forward input, so the ReLU's own backward (which multiplies
    by ``1[x > 0]``) must be bypassed, not amended: a pre-hook keeps the ReLU's input (and hands
    an in-place ReLU a copy to overwrite), and a forward hook replaces the output by
    :class:`_DeconvReLU` of that input (same values). Modules are never replaced; the hooks go
    when the block ends, also on an error. Like :func:`guided_relu_hooks`, functional ReLUs are
    not covered.
    """
    inputs_seen: list[Tensor] = []

    def keep_input(module: nn.Module, args: tuple):
        inputs_seen.append(args[0])
        return (args[0].clone(), *args[1:]) if getattr(module, "inplace", False) else None

    def deconvnet_output(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        return _DeconvReLU.apply(inputs_seen.pop())

    handles = []
    try:
        for m in model.modules():
            if isinstance(m, nn.ReLU):
                handles.append(m.register_forward_pre_hook(keep_input))
                handles.append(m.register_forward_hook(deconvnet_output))
        yield
    finally:
        for handle in handles:
            handle.remove()


def deconvnet(model: nn.Module, images: Tensor, target: TargetSpec = None) -> Tensor:
    """Deconvnet (Zeiler & Fergus 2014, arXiv 1311.2901; as a backward rule: Springenberg et al.
    2015, Table 1).

    The gradient ``dS/dx`` computed with every ReLU's backward replaced by
    ``grad_in = grad_out * 1[grad_out > 0]``: only positive signals go down, whatever the unit
    did in the forward pass (guided backprop also requires ``x > 0``; plain backprop only that).
    Reduced like :func:`gradient`: ``max_k |.|`` over colour channels. Only ``nn.ReLU`` modules
    follow the rule (see :func:`deconvnet_relus`); max-pooling switches are kept, as in the paper.
    """
    with deconvnet_relus(model), explaining(model, images, target, input_grad=True) as p:
        (g,) = grad(p.score(), [p.inputs])
    return finish(g.abs().amax(dim=1), images)


# --------------------------------------------------------------------------- one neuron
def neuron_gradient(
    model: nn.Module,
    images: Tensor,
    layer: LayerSpec,
    channel: int,
    position: tuple[int, int] | None = None,
    *,
    guided: bool = False,
) -> Tensor:
    """The gradient of one neuron with respect to the input, ``Tensor[B, 3, H, W]`` (not reduced).

    The neuron is ``A[channel, i, j]`` of ``layer``'s output ``A`` with ``position=(i, j)``, or
    the channel's mean activation ``mean_ij A[channel, i, j]`` when ``position`` is None. For a
    layer with flat output ``[B, F]`` (a linear layer) it is unit ``channel``. With
    ``guided=True`` the ReLUs are guided as in :func:`guided_backprop`. Reduce it for display
    like :func:`gradient` (``.abs().amax(1)``) or show it as a colour image.
    """
    check_positive_int(channel, "channel", least=0)
    if position is not None and not (isinstance(position, (tuple, list)) and len(position) == 2
                                     and all(isinstance(v, int) and not isinstance(v, bool) for v in position)):
        raise TypeError(f"position must be None or a pair (row, column) of ints, got {position!r}")
    hooks = guided_relu_hooks(model) if guided else []
    with explaining(model, images, None, layers=[layer], input_grad=True, hooks=hooks) as p:
        act = p.output(layer)
        if act.dim() < 2 or not 0 <= channel < act.shape[1]:
            raise ValueError(f"channel {channel} is out of range for layer output {tuple(act.shape)}")
        unit = act[:, channel]
        if position is not None:
            if unit.dim() != 3:
                raise ValueError(f"position needs a spatial layer; this one outputs {tuple(act.shape)}")
            i, j = position
            if not (0 <= i < unit.shape[1] and 0 <= j < unit.shape[2]):
                raise ValueError(f"position {position} is outside the {tuple(unit.shape[1:])} feature map")
            unit = unit[:, i, j]
        elif unit.dim() > 1:
            unit = unit.flatten(1).mean(dim=1)
        (g,) = grad(unit.sum(), [p.inputs])
    return finish(g, images)

