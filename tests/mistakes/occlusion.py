"""Wrong answers to the exercises of notebook 04, each with words its check's message must contain."""
import math

import torch


def windows_floor(side, patch, stride):           # rounds down: loses the clipped last window
    return (side - min(patch, side)) // stride + 1


def windows_without_plus_one(side, patch, stride):  # counts the steps, not the windows
    return math.ceil((side - min(patch, side)) / stride)


def windows_without_min(side, patch, stride):     # a patch larger than the image gives 0 windows
    return math.ceil((side - patch) / stride) + 1


def windows_of_the_image(side, patch, stride):    # the old notebook helper: rows x columns
    return (math.ceil((side - min(patch, side)) / stride) + 1) ** 2


def _drops(model, image, target, patch, stride, fill, *, n=None, sign=1.0, fill_value=None, clone=True,
           score_only=False):
    _, _, height, width = image.shape
    n_rows, n_cols = n or (math.ceil((height - patch) / stride) + 1, math.ceil((width - patch) / stride) + 1)
    drops = torch.zeros(n_rows, n_cols, dtype=image.dtype)
    with torch.no_grad():
        clean = model(image)[0, target]
        for r in range(n_rows):
            for c in range(n_cols):
                occluded = image.clone() if clone else image
                saved = image[:, :, r * stride:r * stride + patch, c * stride:c * stride + patch].clone()
                occluded[:, :, r * stride:r * stride + patch, c * stride:c * stride + patch] = (
                    fill if fill_value is None else fill_value)
                score = model(occluded)[0, target]
                drops[r, c] = score if score_only else sign * (clean - score)
                if not clone:
                    image[:, :, r * stride:r * stride + patch, c * stride:c * stride + patch] = saved
    return drops


def drops_floor(model, image, target, patch, stride, fill):   # the clipped windows are missing
    _, _, height, width = image.shape
    return _drops(model, image, target, patch, stride, fill,
                  n=((height - patch) // stride + 1, (width - patch) // stride + 1))


def drops_rise(model, image, target, patch, stride, fill):    # occluded - clean
    return _drops(model, image, target, patch, stride, fill, sign=-1.0)


def drops_black(model, image, target, patch, stride, fill):   # ignores the fill
    return _drops(model, image, target, patch, stride, fill, fill_value=0.0)


def drops_scores(model, image, target, patch, stride, fill):  # the occluded scores, not the drops
    return _drops(model, image, target, patch, stride, fill, score_only=True)


def drops_in_place(model, image, target, patch, stride, fill):  # writes the fill into the caller's image
    _, _, height, width = image.shape
    n_rows, n_cols = math.ceil((height - patch) / stride) + 1, math.ceil((width - patch) / stride) + 1
    drops = torch.zeros(n_rows, n_cols, dtype=image.dtype)
    with torch.no_grad():
        clean = model(image)[0, target]
        for r in range(n_rows):
            for c in range(n_cols):
                image[:, :, r * stride:r * stride + patch, c * stride:c * stride + patch] = fill
                drops[r, c] = clean - model(image)[0, target]
    return drops


def drops_predicted_class(model, image, target, patch, stride, fill):  # explains class 0 instead of target
    return _drops(model, image, 0, patch, stride, fill)


def _sum_and_count(drops, height, width, patch, stride):
    total = torch.zeros(height, width, dtype=drops.dtype)
    count = torch.zeros(height, width, dtype=drops.dtype)
    for r in range(drops.shape[0]):
        for c in range(drops.shape[1]):
            total[r * stride:r * stride + patch, c * stride:c * stride + patch] += drops[r, c]
            count[r * stride:r * stride + patch, c * stride:c * stride + patch] += 1
    return total, count


def map_sum(drops, height, width, patch, stride):          # forgot to divide by the count
    return _sum_and_count(drops, height, width, patch, stride)[0]


def map_nan(drops, height, width, patch, stride):          # 0 / 0 where no window covers a pixel
    total, count = _sum_and_count(drops, height, width, patch, stride)
    return total / count


def map_constant_count(drops, height, width, patch, stride):  # divides by (patch / stride)² everywhere
    total, _ = _sum_and_count(drops, height, width, patch, stride)
    return total / (patch / stride) ** 2


def map_stride_blocks(drops, height, width, patch, stride):   # each window covers only a stride x stride block
    out = torch.zeros(height, width, dtype=drops.dtype)
    for r in range(drops.shape[0]):
        for c in range(drops.shape[1]):
            out[r * stride:(r + 1) * stride, c * stride:(c + 1) * stride] = drops[r, c]
    return out


MISTAKES = {
    "04-n-windows": [
        (windows_floor, "clipped at the border"),
        (windows_without_plus_one, "the window at 0 counts too"),
        (windows_without_min, "exactly one window"),
        (windows_of_the_image, "along one side"),
    ],
    "04-window-drops": [
        (drops_floor, "the last row and column of windows are missing"),
        (drops_rise, "wrong sign"),
        (drops_black, "black fill"),
        (drops_scores, "not the drops"),
        (drops_in_place, "changed one of the tensors"),
        (drops_predicted_class, "drops of class 0"),
    ],
    "04-drops-to-map": [
        (map_sum, "you summed the drops"),
        (map_nan, "covered by no window"),
        (map_constant_count, "number of windows that cover it"),
        (map_stride_blocks, "covers rows r·stride"),
    ],
}
