"""Checks for the exercises of notebook 08 (evaluating saliency maps).

Each check runs the student's function on small inputs of its own and compares the result with
an answer obtained another way than the model solution: the removal mask against
``vislib.evaluation.removal_mask`` and, where maps have ties, against the condition that no kept
pixel is less (more) salient than a removed one; the fill against ``vislib.evaluation.fill_pixels``
and the pixel values it must have; AFOC and the KL divergence against formulas written out in
NumPy float64 (``exp`` and sums, no ``softmax``) and ``vislib.evaluation.perturbation_metrics``,
plus values known by hand.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from vislib import evaluation as ev

from .feedback import attempt, expect_close, expect_equal, expect_shape, expect_tensor, fail, passed
from .registry import exercise

NOTEBOOK = "08_evaluation"


# --------------------------------------------------------------------------- removal mask
def _as_mask(out, shape: tuple[int, ...], what: str) -> Tensor:
    got = expect_tensor(out, what)
    expect_shape(got, shape, what, hint="one True/False per pixel of each map: reshape the flat mask back to "
                                        "[B, H, W] (all colour channels are removed together, so no colour axis)")
    if got.dtype != torch.bool:
        if not bool(((got == 0) | (got == 1)).all()):
            fail(what, f"should be a mask of True/False (or 0/1) values, yours has values such as "
                 f"{got[(got != 0) & (got != 1)].flatten()[0].item():.4g}",
                 "return the boolean mask of the removed pixels, not the maps or the filled images")
        got = got != 0
    return got.cpu()


def _check_mask(fn: Callable, maps: Tensor, k: float, mode: str, *, ties: bool, label: str | None = None) -> None:
    b, h, w = maps.shape
    what = f"removal_mask({label or f'maps [{b}, {h}, {w}]'}, k={k:g}, mode={mode!r})"
    got = _as_mask(attempt(fn, maps, k, mode), (b, h, w), what)
    n = math.floor(k * h * w + 0.5)                        # round half up, written out here
    counts = got.flatten(1).sum(1)
    if not bool((counts == n).all()):
        exact = k * h * w
        if bool((counts == counts[0]).all()):
            c = int(counts[0])
            if n == 0 and c == h * w:
                problem = (f"removes all {c} pixels for k = 0; expected none. Careful with x[-n:]: for n = 0 it is "
                           "x[0:], the whole axis")
            elif exact % 1 == 0.5 and c == math.floor(exact):
                problem = (f"removes {c} pixels per map; k·H·W = {exact:g} must be rounded half up to {n}: int() "
                           f"rounds down, and Python's round() rounds half to even ({exact:g} -> {round(exact)})")
            elif c == math.floor(exact):
                problem = (f"removes {c} pixels per map; k·H·W = {exact:g} must be rounded half up to {n}: "
                           "int() rounds down")
            elif c == math.floor(k * b * h * w + 0.5):
                problem = (f"removes {c} pixels per map, k times the pixels of the whole batch; expected "
                           f"round(k·H·W) = {n} per map")
            else:
                problem = f"removes {c} pixels per map, expected round(k·H·W) = round({exact:g}) = {n}"
        else:
            problem = (f"the number of removed pixels differs between the maps ({counts.tolist()}); every map "
                       f"loses exactly round(k·H·W) = {n}. Did you rank the whole batch together (rank each map on "
                       "its own, along dim 1 of maps.flatten(1)), or select by a threshold value, which takes "
                       "every tied pixel?")
        fail(what, problem, "n = int(k * H * W + 0.5) pixels per map (half rounded up), the same for every map")
    flat, mask = maps.flatten(1), got.flatten(1)
    for i in range(b):
        if n in (0, h * w):
            continue
        removed, kept = flat[i][mask[i]], flat[i][~mask[i]]
        wrong = bool(removed.max() > kept.min()) if mode == "least" else bool(removed.min() < kept.max())
        if not wrong:
            continue
        other = "most" if mode == "least" else "least"
        if not ties and torch.equal(got, ev.removal_mask(maps, k, other).cpu()):
            fail(what, f"removes the {other} salient pixels instead of the {mode} salient ones",
                 "argsort sorts ascending: the first n indices are the least salient pixels, the last n the most "
                 "salient (or use descending=True for 'most')")
        r, kp = (removed.max(), kept.min()) if mode == "least" else (removed.min(), kept.max())
        fail(what, f"in map {i} a pixel with saliency {r.item():.4g} is removed while one with saliency "
             f"{kp.item():.4g} is kept: with mode={mode!r} every removed pixel must be "
             f"{'at most' if mode == 'least' else 'at least'} as salient as every kept one",
             "sort the pixels of each map by saliency (argsort of maps.flatten(1) along dim 1) and take the "
             f"{'first' if mode == 'least' else 'last'} n")
    if not ties:   # unique ranking: it must be exactly vislib's mask
        expect_equal(got, ev.removal_mask(maps, k, mode).cpu(), what)


@exercise("08-removal-mask", NOTEBOOK, "removal_mask",
          "mask of the round(k·H·W) least or most salient pixels of each map", points=2)
def removal_mask(fn: Callable) -> None:
    g = torch.Generator().manual_seed(8)
    ramp = torch.arange(20, dtype=torch.float64).view(1, 4, 5)          # by hand: pixel i has saliency i
    by_hand = torch.zeros(1, 4, 5, dtype=torch.bool)
    by_hand[0, 0, :3] = True                                            # 0.125·20 = 2.5 -> 3 pixels: 0, 1, 2
    assert torch.equal(ev.removal_mask(ramp, 0.125, "least"), by_hand)
    _check_mask(fn, ramp, 0.125, "least", ties=False, label="a ramp map 0, 1, ..., 19 [1, 4, 5]")
    tie_free = torch.rand(3, 4, 5, generator=g, dtype=torch.float64)
    wide = torch.rand(2, 6, 7, generator=g, dtype=torch.float64)
    for maps, k, mode in ((ramp, 0.125, "most"), (tie_free, 0.125, "least"), (tie_free, 0.3, "most"),
                          (wide, 0.1, "least"), (wide, 0.55, "most"), (wide, 0.0, "least"), (wide, 0.0, "most"),
                          (wide, 1.0, "most")):
        _check_mask(fn, maps, k, mode, ties=False)
    cam = (torch.randn(3, 6, 6, generator=g, dtype=torch.float64) * 2).round().clamp_min(0)   # ReLU'd, many ties
    cam[2] = 0                                                                                # a flat map
    for k, mode in ((0.25, "least"), (0.4, "most"), (0.75, "least")):
        _check_mask(fn, cam, k, mode, ties=True)
    passed("removal masks", "right count round(k·H·W) per map and the right pixels, on a ramp, random maps "
           "and maps with ties")


# --------------------------------------------------------------------------- fill
@exercise("08-fill-removed", NOTEBOOK, "fill_removed",
          "fill the removed pixels in pixel space: black (0) or the dataset's mean colour", points=2)
def fill_removed(fn: Callable) -> None:
    g = torch.Generator().manual_seed(9)
    images = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64)
    mask = torch.rand(2, 4, 5, generator=g) < 0.4
    mask[0, 0, 0], mask[0, 0, 1] = True, False                      # one removed and one kept pixel, by hand
    mean = torch.tensor([0.48, 0.43, 0.37], dtype=torch.float64)    # three different channel means
    axes = ["image", "channel", "row", "column"]
    for fill in ("black", "mean"):
        what = f"fill_removed(images, mask, fill={fill!r}, mean)"
        got = expect_tensor(attempt(fn, images, mask, fill, mean), what)
        expect_shape(got, images.shape, what, "return images of the same shape [B, 3, H, W]")
        got = got.detach().double().cpu()
        value = torch.zeros(3, dtype=torch.float64) if fill == "black" else mean
        keep = ~mask[:, None].expand_as(images)
        if torch.allclose(got[keep], value.view(1, 3, 1, 1).expand_as(images)[keep]) and \
                torch.allclose(got[~keep], images[~keep]):
            fail(what, "filled the pixels where the mask is False and kept the others",
                 "True in the mask means removed: torch.where(mask[:, None], fill value, images)")
        if not torch.allclose(got[keep], images[keep], atol=1e-9):
            i = int((got - images).abs().masked_fill(~keep, 0).flatten().argmax())
            pos = np.unravel_index(i, tuple(images.shape))
            fail(what, f"changed a pixel that is not removed: at image={pos[0]}, channel={pos[1]}, row={pos[2]}, "
                 f"column={pos[3]} yours {got.flatten()[i].item():.4g}, the image has "
                 f"{images.flatten()[i].item():.4g}", "only the pixels where mask is True get the fill value")
        pixel = got[0, :, 0, 0]                                         # removed, all three channels
        if not torch.allclose(pixel, value, atol=1e-9):
            if fill == "black" and torch.allclose(pixel, mean, atol=1e-9):
                fail(what, "the black fill gives the mean colour", "black is 0 in pixel space")
            filled = (pixel - value).abs() < 1e-9
            if filled.any():
                fail(what, f"a removed pixel has colour {[round(v, 4) for v in pixel.tolist()]}, expected "
                     f"{[round(v, 4) for v in value.tolist()]}: only some of its colour channels were filled",
                     "a removed pixel loses all three colour channels: broadcast the mask over dim 1 "
                     "(mask[:, None])")
            if fill == "mean":
                own = images[0].mean(dim=(1, 2))
                if torch.allclose(pixel, own, atol=1e-6) or torch.allclose(pixel, images.mean(dim=(0, 2, 3)),
                                                                           atol=1e-6):
                    fail(what, "fills with the mean colour of the images it was given; the fill is the dataset's "
                         "mean colour, the argument `mean`", "use mean.view(1, 3, 1, 1), the training set's mean")
                if torch.allclose(pixel, torch.full((3,), float(mean.mean()), dtype=torch.float64), atol=1e-9):
                    fail(what, f"fills every channel with the grey {float(mean.mean()):.4g}: each channel gets its "
                         "own mean", "mean has one value per colour channel: mean.view(1, 3, 1, 1)")
        expect_close(got, ev.fill_pixels(images, mask, fill, mean=mean), what, atol=1e-9, axes=axes,
                     hint=f"removed pixels (mask True) become {'(0, 0, 0)' if fill == 'black' else 'mean'} in all "
                          "three channels, the others stay as they are")
    passed("black and mean fills", "the removed pixels get (0, 0, 0) or the dataset's mean colour in all three "
           "channels, the others are unchanged")


# --------------------------------------------------------------------------- AFOC and KL
def _probabilities(logits: Tensor) -> np.ndarray:
    s = logits.detach().double().numpy()
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _logits(g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Clean and perturbed logits [7, 5] and the clean targets [7]; rows 0-2 are known by hand."""
    clean = torch.randn(7, 5, generator=g, dtype=torch.float64) * 2
    perturbed = clean + torch.randn(7, 5, generator=g, dtype=torch.float64) * 1.5
    clean[0] = 1.0
    perturbed[0] = torch.tensor([1 + math.log(4), 1, 1, 1, 1])              # p_0: 0.2 -> 0.5
    perturbed[1] = clean[1]                                                 # unchanged
    perturbed[2] = clean[2] + 3.0                                           # a constant shift: same p
    target = clean.argmax(1)
    target[0] = 0
    clean[3, 1] = clean[3].max() + 1.0                                      # clean prediction 1 ...
    perturbed[3, 1], perturbed[3, 4] = clean[3, 1] - 3, clean[3, 1] + 2     # ... flips to 4 after removal
    target[3] = 1
    assert int(perturbed[3].argmax()) == 4
    return clean, perturbed, target


@exercise("08-afoc", NOTEBOOK, "afoc",
          "absolute fractional output change |p_c(x~) - p_c(x)| / p_c(x) of the clean class", points=2)
def afoc(fn: Callable) -> None:
    clean, perturbed, target = _logits(torch.Generator().manual_seed(10))
    p0, p1 = _probabilities(clean), _probabilities(perturbed)
    rows = np.arange(len(target))
    t = target.numpy()
    expected = np.abs(p1[rows, t] - p0[rows, t]) / p0[rows, t]
    assert np.isclose(expected[0], 1.5) and expected[1] == 0 and abs(expected[2]) < 1e-12   # by hand
    assert np.allclose(expected, ev.perturbation_metrics(clean, perturbed, target)["afoc"].numpy())
    what = "afoc(clean_logits, perturbed_logits, target)"
    got = expect_tensor(attempt(fn, clean, perturbed, target), what)
    if got.shape == clean.shape:
        fail(what, f"has shape {tuple(got.shape)}, one value per image and class; expected one per image "
             f"({len(target)},)", "pick the target class of each row: p.gather(1, target[:, None])[:, 0] or "
             "p[torch.arange(N), target]")
    expect_shape(got, target.shape, what)
    a = got.detach().double().cpu().numpy()
    if np.all(np.isfinite(a)) and not np.allclose(a, expected, atol=1e-6, rtol=1e-4):
        def near(v):
            return np.allclose(a, v, atol=1e-6, rtol=1e-4)
        s0, s1 = clean.numpy(), perturbed.numpy()
        reread = perturbed.argmax(1).numpy()
        if near(np.abs(p1[rows, t] - p0[rows, t]) / p1[rows, t]):
            fail(what, "divides by p_c(x~), the perturbed probability; AFOC divides by the clean p_c(x)",
                 "|p_c(x~) - p_c(x)| / p_c(x)")
        if near(np.abs(s1[rows, t] - s0[rows, t]) / np.abs(s0[rows, t])) or near(
                np.abs(s1[rows, t] - s0[rows, t]) / s0[rows, t]):
            fail(what, "is the fractional change of the logits; AFOC uses the probabilities "
                 "p = softmax(logits) over the classes", "p = logits.softmax(dim=1), then pick class c")
        if near(np.abs(p1[rows, reread] - p0[rows, t]) / p0[rows, t]) or near(
                np.abs(p1[rows, reread] - p0[rows, reread]) / p0[rows, reread]):
            fail(what, "uses the class the model predicts on the perturbed image (image 3 flips from class 1 to "
                 "4); the class c is fixed from the clean image: use `target` for both probabilities",
                 "Pitfall 5: re-reading the class after removal hides exactly the images that changed most")
        if near(np.abs(p1[rows, t] - p0[rows, t])):
            fail(what, "is |p_c(x~) - p_c(x)|, not divided by p_c(x) (a *fractional* change)",
                 "divide by the clean probability of class c")
        q0, q1 = (np.exp(s) / np.exp(s).sum(0, keepdims=True) for s in (s0, s1))
        if near(np.abs(q1[rows, t] - q0[rows, t]) / q0[rows, t]):
            fail(what, "takes the softmax over the images (dim 0); the probabilities are over the classes",
                 "softmax(dim=1): each row (image) of the logits sums to 1 after it")
        if a[0] != 0 and abs(a[0] - 1.5) > 1e-6:
            fail(what, f"on the image whose probability of class 0 goes from 0.2 to 0.5 yours gives {a[0]:.4g}; "
                 "AFOC = |0.5 - 0.2| / 0.2 = 1.5", "AFOC = |p_c(x~) - p_c(x)| / p_c(x) with p = softmax(logits)")
    expect_close(got, torch.from_numpy(expected), what, atol=1e-6, axes=["image"],
                 hint="AFOC = |p_c(x~) - p_c(x)| / p_c(x): softmax over the classes, class c = target[i] for both")
    passed("AFOC", "on 7 images, among them 0.2 -> 0.5 (AFOC 1.5), an unchanged and a shifted output (0) and "
           "a prediction that flips")


@exercise("08-kl-divergence", NOTEBOOK, "kl_divergence",
          "KL(p(x) || p(x~)) of the clean and perturbed output distributions, per image", points=2)
def kl_divergence(fn: Callable) -> None:
    clean, perturbed, _ = _logits(torch.Generator().manual_seed(11))
    p0, p1 = _probabilities(clean), _probabilities(perturbed)
    expected = (p0 * (np.log(p0) - np.log(p1))).sum(1)
    swapped = (p1 * (np.log(p1) - np.log(p0))).sum(1)
    by_hand = 0.2 * math.log(0.2 / 0.5) + 0.8 * math.log(0.2 / 0.125)      # p: 0.2 each; p~: 0.5, 0.125 x 4
    assert np.isclose(expected[0], by_hand) and abs(expected[1]) < 1e-12 and abs(expected[2]) < 1e-12
    assert np.allclose(expected, ev.perturbation_metrics(clean, perturbed, torch.zeros(7))["kl"].numpy())
    what = "kl_divergence(clean_logits, perturbed_logits)"
    got = expect_tensor(attempt(fn, clean, perturbed), what)
    if got.numel() == 1 and len(expected) > 1:
        fail(what, f"returned a single number ({got.flatten()[0].item():.4g}); expected one KL per image, shape "
             f"({len(expected)},)", "sum over the classes only (dim=1); with F.kl_div use reduction='none' and "
             "then .sum(dim=1)")
    expect_shape(got, (len(expected),), what, "one value per image: sum over the classes (dim=1)")
    a = got.detach().double().cpu().numpy()
    if np.all(np.isfinite(a)) and not np.allclose(a, expected, atol=1e-6, rtol=1e-4):
        def near(v):
            return np.allclose(a, v, atol=1e-6, rtol=1e-4)
        if near(swapped):
            fail(what, "is KL(p(x~) || p(x)), the arguments swapped; the notebook's KL is KL(p(x) || p(x~)), "
                 "weighted by the clean p(x)", "F.kl_div(input, target) computes KL(target || exp(input)): "
                 "input = log p(x~), target = log p(x) with log_target=True (Pitfall 4), or write the sum out")
        if near((p0 * (np.log(p0) - p1)).sum(1)):
            fail(what, "passes probabilities where F.kl_div wants log-probabilities (its `input`): the result "
                 "is not a divergence", "input = F.log_softmax(perturbed_logits, dim=1)")
        if abs(a[2]) > 1e-6:
            fail(what, f"two logit vectors that differ by a constant (3.0) give the same probabilities, so their "
                 f"KL divergence is 0; yours gives {a[2]:.4g}. The logits are not log-probabilities",
                 "turn logits into log-probabilities with F.log_softmax(logits, dim=1)")
        if abs(a[1]) > 1e-6:
            fail(what, f"for identical outputs the KL divergence is 0; yours gives {a[1]:.4g}")
    expect_close(got, torch.from_numpy(expected), what, atol=1e-6, axes=["image"],
                 hint="KL = Σ_j p_j(x) (log p_j(x) - log p_j(x~)), with log p = F.log_softmax(logits, dim=1)")
    # A confident model: float32 logits with a gap of 120. softmax(...) underflows to exactly 0 there, and
    # 0 · log 0 = 0 · (-inf) is NaN; log_softmax has no such problem.
    confident = torch.tensor([[120.0, 0, 0, 0, 0], [3.0, 1, 0, 0, 0]])
    shifted = torch.tensor([[2.0, 1, 0, 0, 0], [2.0, 2, 0, 0, 0]])
    q0, q1 = _probabilities(confident), _probabilities(shifted)
    expected = (q0 * (np.log(np.maximum(q0, 1e-300)) - np.log(q1))).sum(1)
    what = "kl_divergence on float32 logits of a confident model (a logit gap of 120)"
    got = expect_tensor(attempt(fn, confident, shifted), what)
    expect_shape(got, (2,), what)
    if not torch.isfinite(got).all():
        fail(what, f"gives {got.tolist()}: softmax underflows to exactly 0 for the unlikely classes, and "
             "0 · log 0 = 0 · (-inf) is NaN", "compute log p with F.log_softmax (never softmax(...).log()), and "
             "p as its exp()")
    expect_close(got, torch.from_numpy(expected), what, atol=1e-4, rtol=1e-4, axes=["image"],
                 hint="use F.log_softmax for log p; converting to float64 first (.double()) also helps")
    passed("KL(p(x) || p(x~))", "on 7 images, among them one by hand (KL 0.1927), unchanged and shifted outputs "
           "(KL 0) and a confident float32 model")
