"""Wrong answers to the exercises of notebook 03, each with words its check's message must contain."""
import torch
from torch import nn


def _grad(model, x, target, score=None):
    x = x.detach().clone().requires_grad_(True)
    logits = model(x)
    s = score(logits) if score else logits.gather(1, target[:, None]).squeeze(1)
    (g,) = torch.autograd.grad(s.sum(), x)
    return g, x.detach()


def gradient_signed(model, x, target):               # forgot the absolute value
    return _grad(model, x, target)[0].amax(dim=1)


def gradient_sum_over_colours(model, x, target):
    return _grad(model, x, target)[0].abs().sum(dim=1)


def gradient_of_probability(model, x, target):      # softmax before picking the class
    g, _ = _grad(model, x, target, lambda s: s.softmax(1).gather(1, target[:, None]).squeeze(1))
    return g.abs().amax(dim=1)


def gradient_of_prediction(model, x, target):       # ignores `target`
    g, _ = _grad(model, x, target, lambda s: s.max(1).values)
    return g.abs().amax(dim=1)


def gradient_on_callers_images(model, x, target):   # requires_grad_ on the argument itself
    x.requires_grad_(True)
    s = model(x).gather(1, target[:, None]).squeeze(1)
    (g,) = torch.autograd.grad(s.sum(), x)
    return g.abs().amax(dim=1)


def gxi_absolute(model, x, target):                 # took the absolute value
    g, x = _grad(model, x, target)
    return (g * x).sum(dim=1).abs()


def gxi_without_input(model, x, target):
    return _grad(model, x, target)[0].sum(dim=1)


def gxi_max_over_colours(model, x, target):
    g, x = _grad(model, x, target)
    return (g * x).amax(dim=1)


def gxi_not_reduced(model, x, target):              # forgot the sum over colours
    g, x = _grad(model, x, target)
    return g * x


def relu_active_at_zero(h, g, rule):                # h >= 0 instead of h > 0
    masks = {"backprop": h >= 0, "deconvnet": g > 0, "guided": (h >= 0) & (g > 0)}
    return g * masks[rule]


def relu_deconvnet_forward_mask(h, g, rule):        # deconvnet with the forward mask
    masks = {"backprop": h > 0, "deconvnet": h > 0, "guided": (h > 0) & (g > 0)}
    return g * masks[rule]


def relu_guided_one_mask(h, g, rule):               # guided with the backward mask only
    masks = {"backprop": h > 0, "deconvnet": g > 0, "guided": g > 0}
    return g * masks[rule]


def relu_returns_mask(h, g, rule):                  # the mask, not the gradient
    masks = {"backprop": h > 0, "deconvnet": g > 0, "guided": (h > 0) & (g > 0)}
    return masks[rule].float()


def _geometry(m):
    if isinstance(m, nn.Conv2d):
        return m.kernel_size[0], m.stride[0], m.padding[0]
    if isinstance(m, nn.MaxPool2d):
        return m.kernel_size, m.stride, m.padding
    return None


def rf_size_without_jump(layers):                   # size += k - 1
    size, jump, start = 1, 1, 0.0
    for m in layers:
        if _geometry(m):
            k, s, p = _geometry(m)
            size += k - 1
            start += ((k - 1) / 2 - p) * jump
            jump *= s
    return size, jump, start


def rf_ignores_pooling(layers):                     # only Conv2d layers counted
    size, jump, start = 1, 1, 0.0
    for m in layers:
        if isinstance(m, nn.Conv2d):
            k, s, p = _geometry(m)
            size += (k - 1) * jump
            start += ((k - 1) / 2 - p) * jump
            jump *= s
    return size, jump, start


def rf_jump_first(layers):                          # jump updated before size and start
    size, jump, start = 1, 1, 0.0
    for m in layers:
        if _geometry(m):
            k, s, p = _geometry(m)
            jump *= s
            size += (k - 1) * jump
            start += ((k - 1) / 2 - p) * jump
    return size, jump, start


def rf_ignores_padding(layers):
    size, jump, start = 1, 1, 0.0
    for m in layers:
        if _geometry(m):
            k, s, p = _geometry(m)
            size += (k - 1) * jump
            start += (k - 1) / 2 * jump
            jump *= s
    return size, jump, start


MISTAKES = {
    "03-vanilla-gradient": [
        (gradient_signed, "*signed*"),
        (gradient_sum_over_colours, "takes the max"),
        (gradient_of_probability, "softmax probability"),
        (gradient_of_prediction, "predicted class"),
        (gradient_on_callers_images, "requires_grad"),
    ],
    "03-input-x-gradient": [
        (gxi_absolute, "keep the sign"),
        (gxi_without_input, "without the input"),
        (gxi_max_over_colours, "sums them"),
        (gxi_not_reduced, "reduce over the colour channels"),
    ],
    "03-relu-backward": [
        (relu_active_at_zero, "h >= 0"),
        (relu_deconvnet_forward_mask, "'backprop' rule"),
        (relu_guided_one_mask, "'deconvnet' rule"),
        (relu_returns_mask, "mask of 0s and 1s"),
    ],
    "03-receptive-field": [
        (rf_size_without_jump, "(k - 1) · jump"),
        (rf_ignores_pooling, "max-pooling"),
        (rf_jump_first, "before"),
        (rf_ignores_padding, "padding"),
    ],
}
