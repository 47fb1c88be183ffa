"""Checks for the exercises of notebook 04 (occlusion).

Each check runs the student's function on inputs of its own and compares the result with an
answer computed another way than the model solution: the number of windows by stepping a window
along the side until it reaches the border, the drop of each window in closed form on a linear
model (the drop is ``Σ w · (x - fill)`` over the window), and the per-pixel mean by a loop over
pixels that lists the windows covering each one.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .feedback import attempt, expect_close, expect_equal, expect_shape, expect_tensor, fail, passed
from .registry import exercise

NOTEBOOK = "04_occlusion"


def _count_by_stepping(side: int, patch: int, stride: int) -> int:
    """Windows start at 0, s, 2s, ...; the first one that reaches the border is the last."""
    start, n = 0, 1
    while start + patch < side:
        start += stride
        n += 1
    return n


@exercise("04-n-windows", NOTEBOOK, "n_windows", "number of window positions along one side of the image",
          points=1)
def n_windows(fn: Callable) -> None:
    # (side, patch, stride): the notebook's setting first, then clipped last windows, a patch as
    # large as the side and one larger than it.
    cases = [(64, 8, 4), (10, 4, 4), (7, 3, 2), (10, 4, 3), (64, 32, 16), (9, 1, 1), (8, 8, 4), (5, 8, 2)]
    for side, patch, stride in cases:
        what = f"n_windows(side={side}, patch={patch}, stride={stride})"
        expected = _count_by_stepping(side, patch, stride)
        got = attempt(fn, side, patch, stride)
        if isinstance(got, (int, float)) and not isinstance(got, bool) and got != expected:
            last = (expected - 1) * stride
            if patch >= side:
                fail(what, f"yours is {got!r}, expected {expected}: a patch at least as large as the side covers "
                     "the whole side, so there is exactly one window",
                     "use min(patch, side) as the patch size in the formula")
            if got == expected ** 2:
                fail(what, f"yours is {got!r}, the number of windows of a square image; expected {expected}, the "
                     "number along one side", "count the positions along one side only")
            if got == expected - 1 and last + patch > side:
                fail(what, f"yours is {got!r}, expected {expected}: the last window is missing. It starts at "
                     f"{last} and is clipped at the border (it covers {side - last} of its {patch} px)",
                     "windows start at 0, s, 2s, ... until one reaches the border; rounding (side - patch) / "
                     "stride down drops the clipped one: use math.ceil, then + 1")
            if got == expected - 1:
                fail(what, f"yours is {got!r}, expected {expected}: one window too few. The windows start at 0, "
                     f"{stride}, ..., {last}; the window at 0 counts too",
                     "(side - patch) / stride counts the steps between windows; the number of windows is one more")
            if got == expected + 1:
                fail(what, f"yours is {got!r}, expected {expected}: one window too many. The window starting at "
                     f"{last} already reaches the border, so it is the last one",
                     "n = ceil((side - patch) / stride) + 1")
        expect_equal(got, expected, what, hint="n = ceil((side - min(patch, side)) / stride) + 1")
    passed("number of windows along a side", f"{len(cases)} settings, with clipped last windows and patches as "
           "large as the image")


def _linear_model(weight: Tensor, bias: Tensor) -> nn.Module:
    """A linear classifier on flattened images: S = W · x + b, in float64."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(weight.shape[1], weight.shape[0])).double().eval()
    with torch.no_grad():
        model[1].weight.copy_(weight)
        model[1].bias.copy_(bias)
    return model


def _closed_form_drops(weight: Tensor, image: Tensor, fill: Tensor, target: int, patch: int, stride: int) -> Tensor:
    """For S = W x + b the drop of a window is Σ_window W[target] · (x - fill): no forward pass needed."""
    _, channels, height, width = image.shape
    contribution = (weight[target].view(channels, height, width) * (image[0] - fill[0])).sum(0)   # [H, W]
    n_rows, n_cols = _count_by_stepping(height, patch, stride), _count_by_stepping(width, patch, stride)
    drops = torch.zeros(n_rows, n_cols, dtype=torch.float64)
    for r in range(n_rows):
        for c in range(n_cols):
            drops[r, c] = contribution[r * stride:r * stride + patch, c * stride:c * stride + patch].sum()
    return drops


def _diagnose_drops(got: Tensor, model: nn.Module, image: Tensor, fill: Tensor, target: int, patch: int, stride: int,
                    what: str) -> None:
    """Name the likely mistake when ``got`` matches a wrong variant of the drops of a linear ``model``."""
    if not torch.isfinite(got).all():
        return
    weight, got64 = model[1].weight.detach(), got.detach().double()
    expected = _closed_form_drops(weight, image, fill, target, patch, stride)
    with torch.no_grad():
        clean = float(model(image)[0, target])
    if not torch.allclose(got64, expected, atol=1e-8) and torch.allclose(got64, clean - expected, atol=1e-8):
        fail(what, "these are the scores of the occluded images, not the drops",
             f"subtract each from the clean image's score S_target(x) = {clean:.4g}")
    if (fill != 0).any() and torch.allclose(got64, _closed_form_drops(weight, image, torch.zeros_like(fill), target,
                                                                      patch, stride), atol=1e-8):
        fail(what, "your drops are those of a black fill (zeros), not of the given fill colour",
             "put `fill` into the window (occluded[:, :, rows, cols] = fill), not zeros")
    for other in range(weight.shape[0]):
        if other == target:
            continue
        theirs = _closed_form_drops(weight, image, fill, other, patch, stride)
        if theirs.abs().max() > 0 and torch.allclose(got64, theirs, atol=1e-8) and not torch.allclose(
                got64, expected, atol=1e-8):
            fail(what, f"these are the drops of class {other}'s score; the target is class {target}",
                 "read the score of class `target`: model(occluded)[0, target]")


@exercise("04-window-drops", NOTEBOOK, "occlusion_drops", "the drop of the class score for every occluding window",
          points=2)
def occlusion_drops(fn: Callable) -> None:
    what = "occlusion_drops(model, image, target, patch, stride, fill)"
    height, width, patch, stride = 8, 10, 3, 2          # 4 x 5 windows, the last row and column clipped
    n_rows, n_cols = _count_by_stepping(height, patch, stride), _count_by_stepping(width, patch, stride)
    # 1. By hand: the score is the sum of all pixel values, the image is all ones, the fill black:
    #    a window drops the score by the number of values it hides, 3 * 3 * 3 = 27 inside the image.
    counting = _linear_model(torch.ones(2, 3 * height * width, dtype=torch.float64) * torch.tensor([[1.0], [0.0]],
                             dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    ones, black = torch.ones(1, 3, height, width, dtype=torch.float64), torch.zeros(1, 3, 1, 1, dtype=torch.float64)
    got = expect_tensor(attempt(fn, counting, ones, 0, patch, stride, black), what)
    expected = _closed_form_drops(counting[1].weight.detach(), ones, black, 0, patch, stride)
    if got.dim() == 2 and got.shape == (n_rows - 1, n_cols - 1):
        fail(what, f"has shape {tuple(got.shape)}, expected {(n_rows, n_cols)} for an {height} x {width} image, "
             f"patch {patch}, stride {stride}: the last row and column of windows are missing. Those windows start "
             f"at row {(n_rows - 1) * stride} and column {(n_cols - 1) * stride} and are clipped at the border",
             "n = ceil((side - patch) / stride) + 1 windows along a side (your n_windows), not floor")
    if got.dim() == 2 and got.shape == (n_rows + 1, n_cols + 1):
        fail(what, f"has shape {tuple(got.shape)}, expected {(n_rows, n_cols)}: one window too many along each "
             "side (the window that reaches the border is the last one)", "n = ceil((side - patch) / stride) + 1")
    expect_shape(got, (n_rows, n_cols), what, hint="one drop per window: [n_rows, n_cols], rows first, "
                 "n_rows along the image's height and n_cols along its width")
    _diagnose_drops(got, counting, ones, black, 0, patch, stride, what)
    if torch.isfinite(got).all() and abs(abs(float(got[0, 0])) - 27) > 1e-6:
        fail(what, "the score here is the sum of all pixel values, the image is all ones and the fill black, so "
             f"window (0, 0) hides 3 x 3 pixels x 3 channels and must drop the score by 27; yours gives "
             f"{float(got[0, 0]):.6g}", "drop = score of the clean image - score of the occluded copy, with all "
             "three channels of the window set to the fill")
    expect_close(got, expected, what + " (score = sum of the pixels, image of ones, black fill)", atol=1e-8,
                 axes=["window row", "window column"],
                 hint=f"the last windows are clipped at the border: window ({n_rows - 1}, {n_cols - 1}) covers "
                      f"only 2 x 2 pixels and drops the score by 12")
    # 2. A random linear model, a random image, a colour fill, a class other than 0.
    g = torch.Generator().manual_seed(4)
    weight = torch.randn(3, 3 * height * width, generator=g, dtype=torch.float64)
    model = _linear_model(weight, torch.randn(3, generator=g, dtype=torch.float64))
    image = torch.rand(1, 3, height, width, generator=g, dtype=torch.float64)
    colour = torch.tensor([0.5, 0.4, 0.3], dtype=torch.float64).view(1, 3, 1, 1)
    got = expect_tensor(attempt(fn, model, image, 2, patch, stride, colour), what)
    expected = _closed_form_drops(weight, image, colour, 2, patch, stride)
    expect_shape(got, (n_rows, n_cols), what)
    _diagnose_drops(got, model, image, colour, 2, patch, stride, what)
    expect_close(got, expected, what + " (random linear model, colour fill, target class 2)", atol=1e-8,
                 axes=["window row", "window column"],
                 hint="window (r, c) covers rows r·stride ... r·stride + patch - 1 and the same for the columns "
                      "(clipped at the border); drop = S_target(x) - S_target(x with that window set to fill)")
    passed("score drop of every window", f"{n_rows} x {n_cols} windows on an {height} x {width} image, clipped at "
           "the border; checked against the closed form Σ w·(x - fill) of a linear model")


def _mean_over_windows_by_pixel(drops: Tensor, height: int, width: int, patch: int, stride: int) -> Tensor:
    """A loop over pixels: the mean of the drops of the windows that cover each one, 0 if none does."""
    n_rows, n_cols = drops.shape
    out = torch.zeros(height, width, dtype=torch.float64)
    for i in range(height):
        rows = [r for r in range(n_rows) if r * stride <= i < r * stride + patch]
        for j in range(width):
            cols = [c for c in range(n_cols) if c * stride <= j < c * stride + patch]
            covering = [float(drops[r, c]) for r in rows for c in cols]
            out[i, j] = sum(covering) / len(covering) if covering else 0.0
    return out


@exercise("04-drops-to-map", NOTEBOOK, "drops_to_map",
          "per pixel, the mean drop of the windows that cover it (the occlusion map)", points=2)
def drops_to_map(fn: Callable) -> None:
    what = "drops_to_map(drops, height, width, patch, stride)"
    height, width, patch, stride = 8, 10, 3, 2          # 4 x 5 windows; pixels covered by 1 to 4 of them
    n_rows, n_cols = _count_by_stepping(height, patch, stride), _count_by_stepping(width, patch, stride)
    # 1. By hand: every window dropped the score by 1, so the mean at every pixel is 1.
    ones = torch.ones(n_rows, n_cols, dtype=torch.float64)
    got = expect_tensor(attempt(fn, ones, height, width, patch, stride), what)
    expect_shape(got, (height, width), what, hint="one value per pixel: [height, width]")
    if torch.isfinite(got).all() and not torch.allclose(got.double(), torch.ones(height, width, dtype=torch.float64)):
        count = torch.zeros(height, width, dtype=torch.float64)
        for r in range(n_rows):
            for c in range(n_cols):
                count[r * stride:r * stride + patch, c * stride:c * stride + patch] += 1
        i, j = divmod(int((got.double() - 1).abs().flatten().argmax()), width)
        if torch.allclose(got.double(), count):
            fail(what, "every window dropped the score by 1, so every pixel's mean is 1; yours is the number of "
                 f"windows that cover the pixel (e.g. {float(got[i, j]):.4g} at row {i}, column {j}): you summed "
                 "the drops", "divide the sum at each pixel by the number of windows that cover it")
        fail(what, "every window dropped the score by 1, so every pixel's mean is 1; yours is "
             f"{float(got[i, j]):.6g} at row {i}, column {j}",
             "the map is a mean over the windows that cover the pixel: divide the sum of their drops by the number "
             "of windows that cover it (4 inside the image here, fewer at the borders)")
    # 2. Random drops on the same grid.
    g = torch.Generator().manual_seed(7)
    drops = torch.randn(n_rows, n_cols, generator=g, dtype=torch.float64)
    got = expect_tensor(attempt(fn, drops, height, width, patch, stride), what)
    expect_close(got, _mean_over_windows_by_pixel(drops, height, width, patch, stride), what + " (random drops)",
                 atol=1e-9, axes=["row", "column"],
                 hint="window (r, c) covers rows r·stride ... r·stride + patch - 1 and columns c·stride ... "
                      "c·stride + patch - 1 (clipped at the border); a pixel's value is the mean of the drops of "
                      "the windows that cover it")
    # 3. A stride larger than the patch: some pixels are covered by no window and must be 0.
    h2, p2, s2 = 8, 2, 3                                 # windows at 0, 3, 6: rows and columns 2 and 5 uncovered
    n2 = _count_by_stepping(h2, p2, s2)
    drops2 = torch.randn(n2, n2, generator=g, dtype=torch.float64)
    got = expect_tensor(attempt(fn, drops2, h2, h2, p2, s2), what)
    expect_shape(got, (h2, h2), what)
    if not torch.isfinite(got).all():
        fail(what, f"with patch {p2} and stride {s2} the rows and columns 2 and 5 are covered by no window, and "
             "your map has NaN (0 / 0) there; they must be 0",
             "divide only where the count is positive, e.g. torch.where(count > 0, total / count.clamp(min=1), 0)")
    expect_close(got, _mean_over_windows_by_pixel(drops2, h2, h2, p2, s2), what + f" (patch {p2}, stride {s2})",
                 atol=1e-9, axes=["row", "column"],
                 hint="pixels that no window covers get 0; the others the mean of the drops of their windows")
    passed("occlusion map from the window drops", "the mean over the covering windows, checked by a loop over "
           "pixels, with clipped windows and uncovered pixels")
