"""Wrong answers to the exercises of notebook 08, each with words its check's message must contain."""
import torch
import torch.nn.functional as F


def _mask_from_order(order, n, b, h, w):
    return torch.zeros(b, h * w, dtype=torch.bool).scatter(1, order[:, :n], True).view(b, h, w)


def mask_truncates(maps, k, mode):                # int(k·H·W) rounds 2.5 down to 2
    b, h, w = maps.shape
    order = maps.flatten(1).argsort(1, descending=mode == "most")
    return _mask_from_order(order, int(k * h * w), b, h, w)


def mask_python_round(maps, k, mode):             # round() rounds half to even: 2.5 -> 2
    b, h, w = maps.shape
    order = maps.flatten(1).argsort(1, descending=mode == "most")
    return _mask_from_order(order, round(k * h * w), b, h, w)


def mask_modes_swapped(maps, k, mode):            # descending sort for 'least'
    b, h, w = maps.shape
    order = maps.flatten(1).argsort(1, descending=mode == "least")
    return _mask_from_order(order, int(k * h * w + 0.5), b, h, w)


def mask_whole_batch(maps, k, mode):              # one ranking over all maps of the batch
    b, h, w = maps.shape
    n = b * int(k * h * w + 0.5)
    order = maps.flatten().argsort(descending=mode == "most")
    return torch.zeros(b * h * w, dtype=torch.bool).scatter(0, order[:n], True).view(b, h, w)


def mask_flat(maps, k, mode):                     # forgot to reshape back to [B, H, W]
    b, h, w = maps.shape
    order = maps.flatten(1).argsort(1, descending=mode == "most")
    return _mask_from_order(order, int(k * h * w + 0.5), b, h, w).flatten(1)


def mask_negative_slice(maps, k, mode):           # order[:, -n:] is everything when n = 0
    b, h, w = maps.shape
    n = int(k * h * w + 0.5)
    order = maps.flatten(1).argsort(1)
    chosen = order[:, :n] if mode == "least" else order[:, -n:]
    return torch.zeros(b, h * w, dtype=torch.bool).scatter(1, chosen, True).view(b, h, w)


def mask_threshold(maps, k, mode):                # a value threshold takes every tied pixel
    b, h, w = maps.shape
    n = max(int(k * h * w + 0.5), 1)
    flat = maps.flatten(1)
    if mode == "least":
        mask = flat <= flat.sort(1).values[:, n - 1:n]
    else:
        mask = flat >= flat.sort(1, descending=True).values[:, n - 1:n]
    return mask.view(b, h, w) & (k > 0)


def fill_in_place(images, mask, fill, mean):      # writes into the caller's images
    colour = torch.zeros(3, dtype=images.dtype) if fill == "black" else mean.to(images.dtype)
    images.permute(0, 2, 3, 1)[mask] = colour
    return images


def fill_inverted(images, mask, fill, mean):      # fills the kept pixels
    colour = (torch.zeros(3) if fill == "black" else mean).to(images.dtype).view(1, 3, 1, 1)
    return torch.where(mask[:, None], images, colour)


def fill_first_channel(images, mask, fill, mean):  # only the red channel of a removed pixel
    out = images.clone()
    out[:, 0][mask] = 0.0 if fill == "black" else mean[0].item()
    return out


def fill_image_mean(images, mask, fill, mean):    # each image's own mean colour instead of the dataset's
    colour = torch.zeros_like(images[:, :, :1, :1]) if fill == "black" else images.mean(dim=(2, 3), keepdim=True)
    return torch.where(mask[:, None], colour, images)


def fill_grey(images, mask, fill, mean):          # one grey value for all three channels
    value = 0.0 if fill == "black" else mean.mean().item()
    return images.masked_fill(mask[:, None], value)


def fill_black_is_mean(images, mask, fill, mean):  # black and mean branches swapped
    colour = (mean if fill == "black" else torch.zeros(3)).to(images.dtype).view(1, 3, 1, 1)
    return torch.where(mask[:, None], colour, images)


def _pc(logits, target):
    return logits.softmax(1).gather(1, target.long()[:, None])[:, 0]


def afoc_signed(clean, perturbed, target):        # no absolute value
    return (_pc(perturbed, target) - _pc(clean, target)) / _pc(clean, target)


def afoc_logits(clean, perturbed, target):        # on logits instead of probabilities
    c = target.long()[:, None]
    s0, s1 = clean.gather(1, c)[:, 0], perturbed.gather(1, c)[:, 0]
    return (s1 - s0).abs() / s0.abs()


def afoc_reread_target(clean, perturbed, target):  # class re-read from the perturbed image
    return (_pc(perturbed, perturbed.argmax(1)) - _pc(clean, target)).abs() / _pc(clean, target)


def afoc_divided_by_perturbed(clean, perturbed, target):
    return (_pc(perturbed, target) - _pc(clean, target)).abs() / _pc(perturbed, target)


def afoc_softmax_dim0(clean, perturbed, target):  # softmax over the images
    c = target.long()[:, None]
    p0, p1 = clean.softmax(0).gather(1, c)[:, 0], perturbed.softmax(0).gather(1, c)[:, 0]
    return (p1 - p0).abs() / p0


def afoc_not_fractional(clean, perturbed, target):
    return (_pc(perturbed, target) - _pc(clean, target)).abs()


def kl_swapped(clean, perturbed):                 # F.kl_div with the arguments in the written order
    return F.kl_div(F.log_softmax(clean, 1), F.log_softmax(perturbed, 1), reduction="none", log_target=True).sum(1)


def kl_probabilities_as_input(clean, perturbed):  # F.kl_div's input must be log-probabilities
    return F.kl_div(perturbed.softmax(1), clean.softmax(1), reduction="none").sum(1)


def kl_raw_logits(clean, perturbed):              # logits used as log-probabilities
    return (clean.exp() * (clean - perturbed)).sum(1)


def kl_batchmean(clean, perturbed):               # one number for the whole batch
    return F.kl_div(F.log_softmax(perturbed, 1), F.log_softmax(clean, 1), reduction="batchmean", log_target=True)


def kl_softmax_log(clean, perturbed):             # softmax(...).log() underflows for a confident model
    p, q = clean.softmax(1), perturbed.softmax(1)
    return (p * (p.log() - q.log())).sum(1)


MISTAKES = {
    "08-removal-mask": [
        (mask_truncates, "int() rounds down"),
        (mask_python_round, "rounds half to even"),
        (mask_modes_swapped, "removes the most salient pixels instead of the least"),
        (mask_whole_batch, "whole batch"),
        (mask_flat, "reshape the flat mask back"),
        (mask_negative_slice, "x[-n:]"),
        (mask_threshold, "threshold"),
    ],
    "08-fill-removed": [
        (fill_in_place, "changed one of the tensors"),
        (fill_inverted, "True in the mask means removed"),
        (fill_first_channel, "only some of its colour channels"),
        (fill_image_mean, "dataset's mean colour"),
        (fill_grey, "each channel gets its own mean"),
        (fill_black_is_mean, "black is 0 in pixel space"),
    ],
    "08-afoc": [
        (afoc_signed, "signs are wrong"),
        (afoc_logits, "uses the probabilities"),
        (afoc_reread_target, "fixed from the clean image"),
        (afoc_divided_by_perturbed, "divides by p_c(x~)"),
        (afoc_softmax_dim0, "over the classes"),
        (afoc_not_fractional, "not divided by p_c(x)"),
    ],
    "08-kl-divergence": [
        (kl_swapped, "arguments swapped"),
        (kl_probabilities_as_input, "log-probabilities"),
        (kl_raw_logits, "not log-probabilities"),
        (kl_batchmean, "one KL per image"),
        (kl_softmax_log, "F.log_softmax"),
    ],
}
