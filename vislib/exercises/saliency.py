"""Checks for the exercises of notebook 03 (saliency maps from gradients).

Each check runs the student's function on inputs of its own and compares the result with an
answer computed another way than the model solution: the gradient maps in closed form on a
bias-free linear model (whose gradient is its weight row) and with ``vislib.attribution`` on a
tiny conv net in float64; the ReLU backward rules by hand on a few numbers, by autograd and by a
loop over elements; the receptive field from where the gradient of one unit is non-zero in a
probe network with the same geometry.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .. import attribution
from .feedback import attempt, expect_close, expect_equal, expect_shape, expect_tensor, fail, passed, recognise, same
from .registry import exercise

NOTEBOOK = "03_saliency"


# --------------------------------------------------------------------------- tiny models
def _linear_model() -> nn.Module:
    """``S = W flatten(x)``, no bias: ``dS_y/dx = W[y]`` reshaped to the image."""
    torch.manual_seed(31)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5, bias=False)).double().eval()


def _conv_model() -> nn.Module:
    torch.manual_seed(32)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 5)
                         ).double().eval()


def _input_gradient(model: nn.Module, x: Tensor, score: Callable[[Tensor], Tensor]) -> Tensor:
    """d(sum over images of score(logits))/dx on a copy of x."""
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(score(model(x)).sum(), x)
    return g


def _images(seed: int, size: int) -> Tensor:
    return torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _not_predicted(model: nn.Module, x: Tensor) -> Tensor:
    """Per image the class with the lowest logit: never the predicted one."""
    with torch.no_grad():
        return model(x).argmin(1)


def _call_map(fn: Callable, model: nn.Module, x: Tensor, target: Tensor, what: str, name: str) -> Tensor:
    got = expect_tensor(attempt(fn, model, x, target, name=name), what)
    if x.requires_grad:
        fail(what, "switched on requires_grad of the images it was given (x.requires_grad_() on the argument); "
             "every later use of those images (plotting, another method) would then track gradients",
             "work on a copy: x = x.detach().clone().requires_grad_(True)")
    b, _, h, w = x.shape
    if tuple(got.shape) == tuple(x.shape):
        fail(what, f"has shape {tuple(got.shape)}, one value per colour channel; expected one value per pixel, "
             f"shape {(b, h, w)}", "reduce over the colour channels (dim 1)")
    expect_shape(got, (b, h, w), what)
    return got.detach().double()


# --------------------------------------------------------------------------- 1. vanilla gradient
def _gradient_diagnoses(got: Tensor, model: nn.Module, x: Tensor, target: Tensor, expected: Tensor, what: str) -> None:
    if same(got, expected, atol=1e-10):
        return
    g = _input_gradient(model, x, lambda s: s.gather(1, target[:, None]).squeeze(1))
    variants = [
        (g.amax(1), "it is the largest *signed* gradient over the colours; the map takes the largest absolute value",
         "reduce |dS/dx|: grad.abs().amax(dim=1)"),
        (g.abs().sum(1), "it sums |dS/dx| over the colour channels; the vanilla gradient takes the max over them",
         "grad.abs().amax(dim=1)"),
        (g.abs().mean(1), "it averages |dS/dx| over the colour channels; the vanilla gradient takes the max over them",
         "grad.abs().amax(dim=1)"),
        (_input_gradient(model, x, lambda s: s.softmax(1).gather(1, target[:, None]).squeeze(1)).abs().amax(1),
         "it is the gradient of the softmax probability p_y; the map uses the logit S_y",
         "take the class score straight from model(x), without softmax"),
        (_input_gradient(model, x, lambda s: s.gather(1, s.argmax(1, keepdim=True)).squeeze(1)).abs().amax(1),
         "it explains each image's predicted class, not the class in `target`",
         "pick the scores with logits.gather(1, target[:, None])"),
        (_input_gradient(model, x, lambda s: s.sum(1)).abs().amax(1),
         "it is the gradient of the sum of *all* class scores, not of the target class's score",
         "pick the scores with logits.gather(1, target[:, None]) and differentiate their sum"),
    ]
    recognise(got, variants, what, expected=expected, atol=1e-10)


@exercise("03-vanilla-gradient", NOTEBOOK, "vanilla_gradient",
          "max over colour channels of |dS_y/dx|, for a batch of images", points=2)
def vanilla_gradient(fn: Callable) -> None:
    # By hand: for the bias-free linear model S = W x the gradient of S_y is the weight row W[y].
    model = _linear_model()
    x = _images(31, 4)
    target = _not_predicted(model, x)
    weight = model[1].weight.detach().reshape(5, 3, 4, 4)
    expected = weight[target].abs().amax(1)
    what = "vanilla_gradient(model, x, target) on a linear model S = W·x"
    got = _call_map(fn, model, x, target, what, "vanilla_gradient")
    _gradient_diagnoses(got, model, x, target, expected, what)
    expect_close(got, expected, what, atol=1e-10, axes=["image", "row", "column"],
                 hint="for S_y = W[y]·x the gradient is W[y] itself: max over colours of |W[y]| at each pixel")
    # A small conv net, against vislib.
    model = _conv_model()
    x = _images(32, 6)
    target = _not_predicted(model, x)
    expected = attribution.gradient(model, x, target).double()
    what = "vanilla_gradient(model, x, target) on a small conv net"
    got = _call_map(fn, model, x, target, what, "vanilla_gradient")
    _gradient_diagnoses(got, model, x, target, expected, what)
    expect_close(got, expected, what, atol=1e-10, axes=["image", "row", "column"],
                 hint="scores = model(x).gather(1, target[:, None]); the gradient of scores.sum() with respect "
                      "to x; then .abs().amax(dim=1)")
    passed("vanilla gradient map", "checked against the closed form of a linear model and vislib's on a conv net, "
           "for classes that are not the predicted ones")


# --------------------------------------------------------------------------- 2. gradient x input
def _input_x_gradient_diagnoses(got: Tensor, model: nn.Module, x: Tensor, target: Tensor, expected: Tensor,
                                what: str) -> None:
    if same(got, expected, atol=1e-10):
        return
    g = _input_gradient(model, x, lambda s: s.gather(1, target[:, None]).squeeze(1))
    variants = [
        (g.sum(1), "it is the gradient summed over colours, without the input", "multiply the gradient by x "
         "elementwise before summing over the colour channels"),
        ((g * x).amax(1), "it takes the max of x·dS/dx over the colour channels; gradient × input sums them",
         "(grad * x).sum(dim=1)"),
        ((g * x).abs().sum(1), "it sums |x·dS/dx|: gradient × input is signed, keep the sign",
         "(grad * x).sum(dim=1), no abs"),
        ((g.abs() * x).sum(1), "it multiplies x by |dS/dx|: gradient × input is signed, keep the gradient's sign",
         "(grad * x).sum(dim=1), no abs"),
    ]
    recognise(got, variants, what, expected=expected, atol=1e-10)


@exercise("03-input-x-gradient", NOTEBOOK, "input_x_gradient",
          "gradient x input summed over colour channels (signed)", points=2)
def input_x_gradient(fn: Callable) -> None:
    # By hand: for S = W x without bias the map is W[y] ⊙ x summed over colours, and it adds up to S_y.
    model = _linear_model()
    x = _images(33, 4)
    target = _not_predicted(model, x)
    weight = model[1].weight.detach().reshape(5, 3, 4, 4)
    expected = (weight[target] * x).sum(1)
    what = "input_x_gradient(model, x, target) on a linear model S = W·x"
    got = _call_map(fn, model, x, target, what, "input_x_gradient")
    _input_x_gradient_diagnoses(got, model, x, target, expected, what)
    expect_close(got, expected, what, atol=1e-10, axes=["image", "row", "column"],
                 hint="for S_y = W[y]·x the gradient is W[y]: the map is (W[y] * x) summed over the colour channels")
    with torch.no_grad():
        logits = model(x).gather(1, target[:, None]).squeeze(1)
    expect_close(got.sum(dim=(1, 2)), logits, "the sum of your map over all pixels (a bias-free linear model: "
                 "it must equal the logit S_y)", atol=1e-10, axes=["image"])
    model = _conv_model()
    x = _images(34, 6)
    target = _not_predicted(model, x)
    expected = attribution.input_x_gradient(model, x, target).double()
    what = "input_x_gradient(model, x, target) on a small conv net"
    got = _call_map(fn, model, x, target, what, "input_x_gradient")
    _input_x_gradient_diagnoses(got, model, x, target, expected, what)
    expect_close(got, expected, what, atol=1e-10, axes=["image", "row", "column"],
                 hint="the gradient of model(x).gather(1, target[:, None]).sum() with respect to x, times x, "
                      "summed over dim 1")
    passed("gradient × input", "it equals W[y]·x and adds up to the logit on a bias-free linear model, and matches "
           "vislib's on a conv net")


# --------------------------------------------------------------------------- 3. ReLU backward rules
_RULE_TEXT = {"backprop": "g · 1[h > 0]", "deconvnet": "g · 1[g > 0]", "guided": "g · 1[h > 0] · 1[g > 0]"}


def _rule_loop(h: Tensor, g: Tensor, rule: str, *, strict: bool = True) -> Tensor:
    """The rule elementwise, with Python ifs."""
    out = []
    for hv, gv in zip(h.flatten().tolist(), g.flatten().tolist()):
        active = hv > 0 if strict else hv >= 0
        keep = {"backprop": active, "deconvnet": gv > 0, "guided": active and gv > 0}[rule]
        out.append(gv if keep else 0.0)
    return torch.tensor(out, dtype=g.dtype).reshape(g.shape)


@exercise("03-relu-backward", NOTEBOOK, "relu_backward",
          "the backprop, deconvnet and guided-backprop rules of a ReLU's backward pass", points=2)
def relu_backward(fn: Callable) -> None:
    five_h = torch.tensor([1.0, -1.0, 5.0, -3.0, 2.0])
    five_g = torch.tensor([-2.0, 3.0, -1.0, 4.0, 3.0])
    by_hand = {"backprop": [-2.0, 0.0, -1.0, 0.0, 3.0], "deconvnet": [0.0, 3.0, 0.0, 4.0, 3.0],
               "guided": [0.0, 0.0, 0.0, 0.0, 3.0]}
    edge_h = torch.tensor([0.0, 2.0, -1.0, 3.0, 0.0, 0.5])   # h = 0: the unit is not active
    edge_g = torch.tensor([1.0, 0.0, 2.0, -3.0, -1.0, 2.0])
    gen = torch.Generator().manual_seed(35)
    rand_h = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    rand_g = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    h_leaf = rand_h.clone().requires_grad_(True)
    (true_gradient,) = torch.autograd.grad(torch.relu(h_leaf), h_leaf, rand_g)
    for rule in ("backprop", "deconvnet", "guided"):
        cases = [(five_h, five_g, torch.tensor(by_hand[rule]), "the five numbers of the notebook"),
                 (edge_h, edge_g, _rule_loop(edge_h, edge_g, rule), "values with h = 0 and g = 0"),
                 (rand_h, rand_g, true_gradient if rule == "backprop" else _rule_loop(rand_h, rand_g, rule),
                  "a random 4×6 tensor")]
        for h, g, expected, case in cases:
            what = f"relu_backward(h, g, {rule!r}) on {case}"
            got = expect_tensor(attempt(fn, h, g, rule, name="relu_backward"), what)
            expect_shape(got, tuple(g.shape), what, "the result has the shape of g: one value per unit")
            is_bool = got.dtype == torch.bool
            got = got.detach().to(g.dtype)
            if is_bool or (not torch.equal(got, expected) and set(got.unique().tolist()) <= {0.0, 1.0}
                           and not set(g.unique().tolist()) <= {0.0, 1.0}):
                fail(what, "it returns a mask of 0s and 1s; the rule passes the gradient g itself where the mask is 1",
                     f"multiply g by the mask: {_RULE_TEXT[rule]}")
            for other in ("backprop", "deconvnet", "guided"):
                wrong = _rule_loop(h, g, other)
                if other != rule and not torch.equal(wrong, expected) and torch.equal(got, wrong):
                    fail(what, f"that is the {other!r} rule, {_RULE_TEXT[other]}; {rule!r} is {_RULE_TEXT[rule]}",
                         "1[h > 0] is the forward mask (the unit was active), 1[g > 0] the backward one (the signal "
                         "from above is positive)")
            loose = _rule_loop(h, g, rule, strict=False)
            if not torch.equal(loose, expected) and torch.equal(got, loose):
                fail(what, "it lets the gradient through where h = 0; a ReLU with input 0 outputs 0 and counts as "
                     "inactive", "use h > 0, not h >= 0")
            expect_close(got, expected, what, atol=0, rtol=0, axes=None,
                         hint=f"{rule!r}: grad_in = {_RULE_TEXT[rule]}, elementwise")
    passed("the three ReLU backward rules", "checked by hand on the notebook's five numbers, at h = 0 and g = 0, "
           "and against autograd and a loop on random tensors")


# --------------------------------------------------------------------------- 4. receptive field
def _geometry(m: nn.Module) -> tuple[int, int, int] | None:
    """(kernel, stride, padding) of a conv or max-pool layer, None for any other layer."""
    if isinstance(m, nn.Conv2d):
        return m.kernel_size[0], m.stride[0], m.padding[0]
    if isinstance(m, nn.MaxPool2d):
        return int(m.kernel_size), int(m.stride), int(m.padding)
    return None


def _probe_field(layers: Sequence[nn.Module], side: int) -> tuple[int, int, float]:
    """Size, jump and first centre measured from the gradient of two neighbouring output units.

    A one-channel float64 copy of the geometry with all-one conv weights (max-pooling replaced by
    average pooling with the same kernel, stride and padding, which reaches every pixel in its window):
    the gradient of a unit is non-zero exactly on its receptive field.
    """
    probe = []
    for m in layers:
        geo = _geometry(m)
        if geo is None:
            continue
        k, s, p = geo
        if isinstance(m, nn.Conv2d):
            conv = nn.Conv2d(1, 1, k, stride=s, padding=p, bias=False).double()
            nn.init.constant_(conv.weight, 1.0)
            probe.append(conv)
        else:
            probe.append(nn.AvgPool2d(k, stride=s, padding=p))
    net = nn.Sequential(*probe)
    x = torch.zeros(1, 1, side, side, dtype=torch.float64, requires_grad=True)
    out = net(x)
    index = out.shape[-1] // 2
    extent = []
    for i in (index, index + 1):
        (g,) = torch.autograd.grad(out[0, 0, i, i], x, retain_graph=True)
        rows = g[0, 0].abs().sum(1).nonzero().flatten()
        extent.append((rows.min().item(), rows.max().item()))
    (lo, hi), (lo2, _) = extent
    if lo == 0 or hi == side - 1:
        raise RuntimeError("probe image too small for this receptive field")
    jump = lo2 - lo
    return hi - lo + 1, jump, (lo + hi) / 2 - index * jump


def _formula(layers: Sequence[nn.Module], *, pools: bool = True, size_jump: bool = True, jump_first: bool = False,
             padding: bool = True, conv_stride: bool = True) -> tuple[int, int, float]:
    """The recursion with the usual mistakes switched on (only to name a wrong answer)."""
    size, jump, start = 1, 1, 0.0
    for m in layers:
        geo = _geometry(m)
        if geo is None or (isinstance(m, nn.MaxPool2d) and not pools):
            continue
        k, s, p = geo
        if isinstance(m, nn.Conv2d) and not conv_stride:
            s = 1
        before = jump * s if jump_first else jump
        size += (k - 1) * (before if size_jump else 1)
        start += ((k - 1) / 2 - (p if padding else 0)) * before
        jump *= s
    return size, jump, start


def _stack(*spec: str) -> list[nn.Module]:
    """Layers from a short spec: "c3p1" conv 3x3 padding 1, "c5s2p2", "m2" max-pool 2, "m3s2p1", "b", "r"."""
    layers: list[nn.Module] = []
    channels = 3
    for item in spec:
        if item == "r":
            layers.append(nn.ReLU())
        elif item == "b":
            layers.append(nn.BatchNorm2d(channels))
        else:
            kind, rest = item[0], item[1:]
            k = int(rest.split("s")[0].split("p")[0])
            s = int(rest.split("s")[1].split("p")[0]) if "s" in rest else (k if kind == "m" else 1)
            p = int(rest.split("p")[1]) if "p" in rest else 0
            if kind == "c":
                layers.append(nn.Conv2d(channels, 4, k, stride=s, padding=p))
                channels = 4
            else:
                layers.append(nn.MaxPool2d(k, stride=s, padding=p))
    return layers


@exercise("03-receptive-field", NOTEBOOK, "receptive_field",
          "size, jump and first centre of the receptive field after a stack of conv and pooling layers", points=2)
def receptive_field(fn: Callable) -> None:
    block = ["c3p1", "b", "r", "c3p1", "b", "r", "m2"]
    cases = [
        ([], (1, 1, 0.0), "no layers (a unit is one pixel)"),
        (_stack("c3p1"), (3, 1, 0.0), "one 3×3 conv with padding 1"),
        (_stack(*block), (6, 2, 0.5), "one block of the course VGG (conv-BN-ReLU twice, 2×2 max-pool)"),
        (_stack(*block, "c3p1", "b", "r", "c3p1"), None, "two blocks of the course VGG"),
        (_stack("c5s2p2", "r", "m3s2p1", "c3", "r", "c3p1"), None,
         "a 5×5 conv with stride 2, a padded 3×3 max-pool with stride 2, an unpadded conv"),
    ]
    hints = {
        "size": "each conv or pooling layer adds (k - 1) · jump, with the jump *before* that layer",
        "jump": "the jump is the product of the strides of every conv and pooling layer so far",
        "start": "the first centre moves by ((k - 1) / 2 - padding) · jump, with the jump before that layer",
    }
    for layers, by_hand, case in cases:
        what = f"receptive_field(layers) for {case}"
        expected = by_hand or _probe_field(layers, 96)
        out = attempt(fn, nn.Sequential(*layers), name="receptive_field")
        if not (isinstance(out, Sequence) and len(out) == 3):
            fail(what, f"expected a tuple (size, jump, start), got {out!r}")
        size, jump, start = out
        variants = [
            (dict(pools=False), "it ignores the max-pooling layers; a pooling window widens the receptive field and "
             "its stride multiplies the jump, like a conv's"),
            (dict(size_jump=False), "the size grows by k - 1 per layer; after a stride it must grow by "
             "(k - 1) · jump"),
            (dict(jump_first=True), "the jump is multiplied by the stride *before* the layer's size and centre are "
             "updated; a layer's kernel spans units of the previous layer, so use the jump from before it"),
            (dict(padding=False), "the first centre ignores the padding; padding p shifts the first window p units "
             "to the left"),
            (dict(conv_stride=False), "it ignores the stride of the convolutions; a strided conv multiplies the jump "
             "like a pooling layer"),
        ]
        got = (size, jump, start)
        for kwargs, problem in variants:
            wrong = _formula(layers, **kwargs)
            if wrong != tuple(expected) and _close_triple(got, wrong):
                fail(what, f"yours is {tuple(got)}, expected {tuple(expected)}: {problem}")
        for name, value, want in zip(("size", "jump"), (size, jump), expected[:2]):
            expect_equal(_integer(value), int(want), f"{what}: the {name}", hints[name])
        if _number(start) is None or abs(_number(start) - expected[2]) > 1e-9:
            fail(f"{what}: the start", f"yours is {start!r}, expected {expected[2]!r}", hints["start"])
    passed("receptive field size, jump and first centre", "checked by hand on small stacks and against the "
           "gradient of one unit on two VGG blocks and on a stack with strides and padding")


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _integer(value):
    """A whole number given as a float or a one-element tensor, as an int (anything else unchanged)."""
    number = _number(value)
    return int(number) if number is not None and math.isfinite(number) and number == int(number) else value


def _close_triple(got: Sequence, wrong: Sequence) -> bool:
    numbers = [_number(v) for v in got]
    return None not in numbers and all(abs(a - float(b)) < 1e-9 for a, b in zip(numbers, wrong))
