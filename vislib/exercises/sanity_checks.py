"""Checks for the exercises of notebook 10 (sanity checks for saliency maps).

Each check runs the student's function on inputs of its own and compares the result with an
answer computed another way than the model solution: the re-initialised copy with the state of a
tiny model re-initialised step by step (and BatchNorm's identity statistics, known by hand), the
Spearman correlation with ``scipy.stats.spearmanr`` and with maps whose ranks are known.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch
from scipy import stats
from torch import Tensor, nn

from .feedback import attempt, expect_close, expect_tensor, fail, passed
from .registry import exercise

NOTEBOOK = "10_sanity_checks"


# --------------------------------------------------------------------------- one layer re-initialised
def _tiny_model() -> nn.Module:
    """A trained-looking conv-BN-ReLU / pool-linear model with dotted module names, made without
    touching the caller's random state."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(OrderedDict(
            features=nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),
            head=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)),
        ))
        with torch.no_grad():                                  # BatchNorm statistics as after training
            bn = model.features[1]
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.num_batches_tracked.fill_(100)
    return model.eval()


def _layer(key: str, names: list[str]) -> str:
    """The module a state_dict key belongs to (the longest module name that prefixes it)."""
    return max((n for n in names if n and key.startswith(n + ".")), key=len, default=key)


@exercise("10-randomise-layer", NOTEBOOK, "randomise_layer",
          "a copy of a model with one layer re-initialised, the model itself unchanged", points=2)
def randomise_layer(fn: Callable) -> None:
    what = "randomise_layer(model, name, seed)"
    hint = ("clone = copy.deepcopy(model); torch.manual_seed(seed); then call reset_parameters() of the module "
            "named `name` *of the clone* (clone.get_submodule(name)); return the clone")
    model = _tiny_model()
    names = [n for n, _ in model.named_modules()]
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.random.fork_rng():                              # the student's manual_seed stays in here
        for name, seed in (("head.2", 3), ("features.1", 4)):
            out = attempt(fn, model, name, seed)
            changed = [k for k, v in model.state_dict().items() if not torch.equal(v, trained[k])]
            if changed:
                fail(what, f"it changed the model it was given ({', '.join(changed)} of layer "
                     f"{_layer(changed[0], names)} differ from the trained values): every later cell would see a "
                     "damaged model",
                     "re-initialise a copy (copy.deepcopy(model)), never the original, and take the layer from the "
                     "copy")
            if not isinstance(out, nn.Module):
                fail(what, f"should return the re-initialised copy (an nn.Module), got {type(out).__name__}", hint)
            if out is model:
                fail(what, "returned the model it was given, not a copy", hint)
            expected = copy.deepcopy(model)
            torch.manual_seed(seed)
            expected.get_submodule(name).reset_parameters()
            state, reference = out.state_dict(), expected.state_dict()
            if set(state) != set(reference):
                fail(what, "the copy does not have the model's layers (its state_dict keys differ)", hint)
            if name == "features.1":                           # BatchNorm: known by hand after reset_parameters()
                bn = out.get_submodule(name)
                for attr, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
                    if not torch.equal(getattr(bn, attr).detach(), torch.full((4,), value)):
                        fail(what, f"after re-initialising the BatchNorm layer {name!r}, its {attr} should be all "
                             f"{value:g}, yours is {getattr(bn, attr).detach().tolist()}",
                             "BatchNorm's reset_parameters() resets its weight and bias and its running statistics")
            for key in state:
                layer = _layer(key, names)
                if layer != name and not torch.equal(state[key], trained[key]):
                    fail(what, f"layer {layer!r} ({key}) changed too; only {name!r} may be re-initialised", hint)
            for key in state:
                if _layer(key, names) != name or torch.equal(state[key], reference[key]):
                    continue
                if torch.equal(state[key], trained[key]):
                    fail(what, f"{key} still has its trained values: layer {name!r} was not re-initialised", hint)
                fail(what, f"{key} was re-initialised, but not to the values that reset_parameters() gives right "
                     "after torch.manual_seed(seed), so the result is not reproducible",
                     "call torch.manual_seed(seed) immediately before the layer's own reset_parameters() (not "
                     "torch.randn or an nn.init function of your own)")
    passed("one layer re-initialised on a copy", "checked on a tiny conv-BatchNorm-linear model: its linear layer "
           "and its BatchNorm (weight 1, bias 0, mean 0, variance 1); the model itself is untouched")


# --------------------------------------------------------------------------- Spearman rank correlation
def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def _value(got: object, what: str) -> Tensor:
    if isinstance(got, (float, int)) and not isinstance(got, bool):
        return torch.tensor(float(got), dtype=torch.float64)
    got = expect_tensor(got, what)
    if got.numel() != 1:
        fail(what, f"returned a tensor of shape {tuple(got.shape)}; expected one number for the pair of maps",
             "flatten both maps and return a single correlation (a 0-dimensional tensor)")
    return got.reshape(())


@exercise("10-spearman", NOTEBOOK, "spearman", "Spearman rank correlation of two maps without ties", points=2)
def spearman(fn: Callable) -> None:
    what = "spearman(a, b)"
    hint = ("flatten each map, replace every value by its rank among all pixels of its map (0 = smallest), then "
            "take Pearson's correlation of the two rank vectors: Σ(ra - mean)(rb - mean) / (‖ra - mean‖ ‖rb - mean‖)")
    g = torch.Generator().manual_seed(12)
    a = torch.randn(6, 7, generator=g, dtype=torch.float64)
    b = a + 0.8 * torch.randn(6, 7, generator=g, dtype=torch.float64)
    c = torch.randn(5, 5, generator=g, dtype=torch.float64)
    d = 0.5 * c + torch.randn(5, 5, generator=g, dtype=torch.float64)
    cases = [
        ("b = exp(a)", a, a.exp(), 1.0),                       # a monotone transform keeps every rank
        ("b = -a³", a, -a.pow(3), -1.0),                       # a decreasing one reverses them
        ("two correlated 6x7 maps", a, b, None),
        ("two correlated 5x5 maps", c, d, None),
    ]
    for label, x, y, known in cases:
        xf, yf = x.flatten().numpy(), y.flatten().numpy()
        expected = known if known is not None else float(stats.spearmanr(xf, yf).statistic)
        got = _value(attempt(fn, x, y), what)
        value = float(got)
        if abs(value - expected) <= 1e-5:
            continue
        where = f"for {label}: yours is {value:.6g}, expected {expected:.6g}"
        if abs(value - _pearson(xf, yf)) < 1e-6:
            fail(what, f"{where}, which is Pearson's correlation of the values themselves",
                 "rank the values first: Spearman's ρ is Pearson's correlation of the *ranks*")
        if abs(value - _pearson(np.argsort(xf).astype(float), np.argsort(yf).astype(float))) < 1e-6:
            fail(what, f"{where}, which is the correlation of argsort(a) and argsort(b): argsort gives the "
                 "positions of the values in sorted order, not the rank of each value",
                 "the rank of every value is argsort(argsort(x)), or r[x.argsort()] = arange(n)")
        ra, rb = stats.rankdata(xf) - 1, stats.rankdata(yf) - 1
        if abs(value - float((ra * rb).sum() / np.sqrt((ra * ra).sum() * (rb * rb).sum()))) < 1e-6:
            fail(what, f"{where}, which is the cosine of the two rank vectors: subtract the mean rank before correlating",
                 hint)
        rows_a = np.argsort(np.argsort(x.numpy(), axis=-1), axis=-1).astype(float).ravel()
        rows_b = np.argsort(np.argsort(y.numpy(), axis=-1), axis=-1).astype(float).ravel()
        if abs(value - _pearson(rows_a, rows_b)) < 1e-6:
            fail(what, f"{where}: you ranked each row of the map separately",
                 "flatten the maps first, so that every pixel is ranked among all pixels of its map")
        expect_close(got, torch.tensor(expected, dtype=torch.float64), f"{what} {label}", atol=1e-5, hint=hint)
    passed("Spearman rank correlation", "exactly 1 and -1 for monotone transforms, and as scipy.stats.spearmanr "
           "on two pairs of random maps")
