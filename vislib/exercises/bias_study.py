"""Checks for the exercises of notebook 09 (the doctor/nurse bias study).

Each check runs the student's function on small hand-made inputs and compares the result with an
answer computed another way than the model solution: the group accuracies and the part
enrichment by explicit loops over images and pixels, the flipped predictions by a loop that
multiplies each image with the weights of a tiny linear model and takes the larger score.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .feedback import attempt, expect_close, expect_equal, expect_tensor, fail, passed, same
from .registry import exercise

NOTEBOOK = "09_bias_study"


# --------------------------------------------------------------------------- group accuracy
def _loop_group_accuracy(pred: Tensor, labels: Tensor, group: Tensor, n_groups: int) -> Tensor:
    correct, total = [0] * n_groups, [0] * n_groups
    for p, y, g in zip(pred.tolist(), labels.tolist(), group.tolist()):
        total[g] += 1
        correct[g] += int(p == y)
    return torch.tensor([c / t for c, t in zip(correct, total)], dtype=torch.float64)


@exercise("09-group-accuracy", NOTEBOOK, "group_accuracy",
          "per group, the fraction of correct predictions", points=2)
def group_accuracy(fn: Callable) -> None:
    what = "group_accuracy(pred, labels, group, n_groups)"
    # The groups of notebook 09 (0 female doctor, 1 male doctor, 2 female nurse, 3 male nurse), of
    # unequal size and interleaved; by hand: 1 of 4, 2 of 2, 3 of 3 and 2 of 5 are right.
    group = torch.tensor([0, 3, 1, 2, 0, 3, 3, 2, 0, 1, 3, 2, 0, 3])
    labels = group // 2
    pred = labels.clone()
    pred[[0, 4, 8]] = 1                                  # three female doctors called nurses
    pred[[1, 5, 6]] = 0                                  # three male nurses called doctors
    by_hand = torch.tensor([0.25, 1.0, 1.0, 0.4], dtype=torch.float64)
    g = torch.Generator().manual_seed(9)
    group2 = torch.randint(0, 3, (40,), generator=g)
    group2[:3] = torch.arange(3)                         # every group has at least one image
    labels2 = torch.randint(0, 2, (40,), generator=g)
    pred2 = torch.where(torch.rand(40, generator=g) < 0.3, 1 - labels2, labels2)
    cases = [((pred, labels, group, 4), by_hand), ((pred2, labels2, group2, 3), None)]
    for args, expected in cases:
        pred_, labels_, group_, n = args
        if expected is None:
            expected = _loop_group_accuracy(pred_, labels_, group_, n)
        got = expect_tensor(attempt(fn, *args), what)
        if got.dim() == 1 and len(got) == len(pred_) != n:
            fail(what, f"returned one value per image ({len(got)}); the answer has one value per group ({n})",
                 "for each group g, average (pred == labels) over the images with group == g")
        if got.shape == expected.shape:
            correct = (pred_ == labels_)
            counts = torch.tensor([float(correct[group_ == k].sum()) for k in range(n)], dtype=torch.float64)
            if same(got, 1 - expected, atol=1e-6):
                fail(what, "it is 1 - accuracy, the fraction of *wrong* predictions in each group",
                     "count the images where pred == labels")
            if same(got, counts, atol=1e-6):
                fail(what, "these are the numbers of correct predictions per group, not fractions",
                     "divide by the size of each group, (group == g).sum()")
            if same(got, counts / len(pred_), atol=1e-6):
                fail(what, "you divided the correct predictions of each group by the number of all images",
                     "divide by the number of images in the group, (group == g).sum()")
            if same(got, torch.full_like(expected, float(correct.double().mean())), atol=1e-6):
                fail(what, "every group got the overall accuracy",
                     "select the images of one group first (group == g), then average pred == labels over them")
        expect_close(got, expected, what, atol=1e-6, axes=["group"],
                     hint="accuracy of group g = (number of images with group == g and pred == labels) / "
                          "(number of images with group == g)")
    passed("accuracy per group", "checked on 4 groups of unequal size by hand and on 40 random predictions")


# --------------------------------------------------------------------------- part enrichment
def _loop_enrichment(maps: Tensor, mask: Tensor, *, clamp: str = "relu") -> Tensor:
    out = []
    for m, p in zip(maps.tolist(), mask.tolist()):
        values = [v for row in m for v in row]
        inside = [b for row in p for b in row]
        if clamp == "relu":
            values = [max(v, 0.0) for v in values]
        elif clamp == "abs":
            values = [abs(v) for v in values]
        total = sum(values)
        on_part = sum(v for v, b in zip(values, inside) if b)
        area = sum(inside) / len(inside)
        out.append((on_part / total) / area)
    return torch.tensor(out, dtype=torch.float64)


@exercise("09-part-enrichment", NOTEBOOK, "part_enrichment",
          "share of a map's positive mass on a part, divided by the part's area", points=2)
def part_enrichment(fn: Callable) -> None:
    what = "part_enrichment(maps, mask)"
    g = torch.Generator().manual_seed(10)
    n, h, w = 5, 6, 6
    maps = torch.randn(n, h, w, generator=g, dtype=torch.float64)
    mask = torch.rand(n, h, w, generator=g) < 0.3
    mask[:, 0, 0] = True                                        # no empty part
    maps[0] = 2.0                                               # the same everywhere: enrichment exactly 1
    maps[1] = torch.rand(h, w, generator=g, dtype=torch.float64) * mask[1]      # all mass on the part
    maps[2] = maps[2].abs() + 0.1                               # positive off the part ...
    maps[2][mask[2]] = -3.0                                     # ... negative on it: no evidence *for* the part
    expected = _loop_enrichment(maps, mask)
    got = expect_tensor(attempt(fn, maps, mask), what)
    if got.shape == (n,):
        area0 = float(mask[0].double().mean())
        if abs(float(got[0]) - 1) > 1e-6:
            problem = (f"a map that is the same at every pixel (image 0) must give enrichment 1 (its share on the "
                       f"part equals the part's area), yours gives {float(got[0]):.4g}")
            if abs(float(got[0]) - area0) < 1e-6:
                problem += f", which equals the part's area ({area0:.4g}): you returned the share, not yet divided by the area"
            elif abs(float(got[0]) - 1 / (h * w)) < 1e-6:
                problem += ": is the area a number of pixels instead of a fraction of the image?"
            fail(what, problem, "enrichment = share / area, with area = (pixels in the mask) / (pixels in the image)")
        if same(got, _loop_enrichment(maps, mask, clamp="none"), atol=1e-6):
            fail(what, "it keeps the negative values of the map (image 2 is negative on the part and positive "
                 "elsewhere: its enrichment must be 0)",
                 "set negative saliency to 0 first (maps.clamp(min=0)): only evidence *for* the class counts")
        if same(got, _loop_enrichment(maps, mask, clamp="abs"), atol=1e-6):
            fail(what, "it uses |map|: image 2 is negative on the part, so its enrichment must be 0, not large",
                 "negative saliency is evidence against the class: set it to 0 (clamp(min=0)) instead of "
                 "flipping its sign")
    expect_close(got, expected, what, atol=1e-6, axes=["image"],
                 hint="per image: share = Σ max(M, 0)·P / Σ max(M, 0) over all pixels, area = mean of P; "
                      "return share / area")
    passed("enrichment of saliency on a part", "checked on 5 maps, among them a constant map (1), a map on the "
           "part only (1 / area) and a map negative on the part (0)")


# --------------------------------------------------------------------------- flipped predictions
def _tiny_model(weight: Tensor) -> nn.Module:
    with torch.random.fork_rng():                               # the notebook's random state stays as it was
        model = nn.Sequential(OrderedDict(flatten=nn.Flatten(), linear=nn.Linear(weight.shape[1], weight.shape[0],
                                                                                   bias=False)))
    with torch.no_grad():
        model.linear.weight.copy_(weight)
    return model.eval()


def _loop_predictions(weight: Tensor, images: Tensor) -> list[int]:
    rows = weight.tolist()
    out = []
    for x in images.reshape(len(images), -1).tolist():
        scores = [sum(wi * xi for wi, xi in zip(row, x)) for row in rows]
        out.append(max(range(len(scores)), key=scores.__getitem__))
    return out


@exercise("09-flip-count", NOTEBOOK, "flip_count",
          "the number of predictions that change when the images are edited", points=2)
def flip_count(fn: Callable) -> None:
    what = "flip_count(model, original, edited)"
    g = torch.Generator().manual_seed(11)
    # A model that predicts the colour channel with the largest sum: class k scores the pixels of channel k.
    weight = torch.zeros(3, 3, 2, 2)
    for k in range(3):
        weight[k, k] = 1.0
    weight = weight.flatten(1)
    model = _tiny_model(weight)
    dominant = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    original = 0.2 * torch.rand(10, 3, 2, 2, generator=g)
    original[torch.arange(10), dominant] += 0.5               # image n is predicted as class dominant[n]
    hint = ("the prediction of each image is the class with the largest logit, model(images).argmax(dim=1); "
            "count the images where the two predictions differ and return that number (an int)")

    n = len(original)

    def count(edited: Tensor, expected: int, diagnose: bool = True) -> object:
        got = attempt(fn, model, original, edited)
        if isinstance(got, torch.Tensor) and got.numel() != 1:
            fail(what, f"returned a tensor of shape {tuple(got.shape)}; expected one number, the count", hint)
        got = got.item() if isinstance(got, torch.Tensor) else got
        if diagnose and isinstance(got, (int, float)) and not isinstance(got, bool) and got != expected:
            if got == n - expected:
                fail(what, f"yours is {got}, the number of predictions that stayed the same; expected the number "
                     f"that changed, {expected}", hint)
            if isinstance(got, float) and 0 < got < 1 and abs(got * n - expected) < 1e-6:
                fail(what, f"yours is {got:g}, the fraction of flipped predictions; return their number, "
                     f"{expected}", hint)
        return got

    got = count(original.clone(), 0)
    if got != 0:
        fail(what, f"the same images edited in no way must flip no prediction, yours counts {got!r}", hint)
    got = count(2 * original, 0, diagnose=False)   # n flips here: logits compared, or predictions kept
    if got != 0:
        fail(what, f"yours counts {got!r} flips when every image is multiplied by 2. For this model (linear, no "
             "bias) that doubles the logits but keeps the class with the largest one: 0 predictions change. "
             "Compare the predicted classes (argmax over the classes), not the logits", hint)
    edited = original.clone()
    rolled = torch.tensor([0, 2, 3, 5, 7, 8])
    edited[rolled] = original[rolled].roll(1, dims=1)         # colour channels shifted: another class
    edited[9] += 0.05 * torch.rand(3, 2, 2, generator=g)      # other logits, the same class
    before, after = _loop_predictions(weight, original), _loop_predictions(weight, edited)
    expected = sum(a != b for a, b in zip(before, after))
    got = count(edited, expected)
    expect_equal(got, expected, what, hint)
    passed("number of flipped predictions", f"checked on 10 images of a tiny linear model: no edit (0), "
           f"doubled images (0) and six images with their colour channels shifted ({expected})")
