"""Wrong answers to the exercises of notebook 07, each with words its check's message must contain."""
import torch
import torch.nn.functional as F


def bias_is_beta(bn):                           # the parameter called `bias`
    return bn.bias.detach().clone()


def bias_plus_mean_term(bn):
    return bn.bias + bn.weight * bn.running_mean / torch.sqrt(bn.running_var + bn.eps)


def bias_without_eps(bn):
    return bn.bias - bn.weight * bn.running_mean / torch.sqrt(bn.running_var)


def bias_default_eps(bn):                       # hard-coded PyTorch default instead of bn.eps
    return bn.bias - bn.weight * bn.running_mean / torch.sqrt(bn.running_var + 1e-5)


def bias_over_variance(bn):
    return bn.bias - bn.weight * bn.running_mean / (bn.running_var + bn.eps)


def bias_without_gamma(bn):
    return bn.bias - bn.running_mean / torch.sqrt(bn.running_var + bn.eps)


def bias_in_place(bn):                          # folds the mean into the layer's own bias
    with torch.no_grad():
        bn.bias -= bn.weight * bn.running_mean / torch.sqrt(bn.running_var + bn.eps)
    return bn.bias.detach().clone()


def bias_keepdim(bn):                           # [1, C, 1, 1] instead of [C]
    b = bn.bias - bn.weight * bn.running_mean / torch.sqrt(bn.running_var + bn.eps)
    return b.view(1, -1, 1, 1)


def total_input_only(x, input_grad, biases, bias_grads):    # gradient x input
    return (x * input_grad).flatten(1).sum(1)


def total_spatial_only(x, input_grad, biases, bias_grads):  # skips the linear layers
    total = (x * input_grad).flatten(1).sum(1)
    for name, g in bias_grads.items():
        if g.dim() == 4:
            total = total + (g * biases[name].view(1, -1, 1, 1)).flatten(1).sum(1)
    return total


def total_mean_over_positions(x, input_grad, biases, bias_grads):
    total = (x * input_grad).flatten(1).sum(1)
    for name, g in bias_grads.items():
        if g.dim() == 4:
            total = total + (g.mean(dim=(2, 3)) * biases[name]).sum(1)
        else:
            total = total + (g * biases[name]).sum(1)
    return total


def total_bias_on_last_axis(x, input_grad, biases, bias_grads):    # no reshape: broadcasts on the width
    total = (x * input_grad).flatten(1).sum(1)
    for name, g in bias_grads.items():
        total = total + (g * biases[name]).flatten(1).sum(1)
    return total


def total_always_4d(x, input_grad, biases, bias_grads):            # [1, C, 1, 1] also for linear layers
    total = (x * input_grad).flatten(1).sum(1)
    for name, g in bias_grads.items():
        total = total + (biases[name].view(1, -1, 1, 1) * g).flatten(1).sum(1)
    return total


def total_over_batch(x, input_grad, biases, bias_grads):           # one number for the whole batch
    total = (x * input_grad).sum()
    for name, g in bias_grads.items():
        total = total + (biases[name].view(1, -1, *[1] * (g.dim() - 2)) * g).sum()
    return total


def total_spatial_sum_dims(x, input_grad, biases, bias_grads):     # g.sum(dim=(2, 3)) on a [B, C] gradient
    total = (x * input_grad).flatten(1).sum(1)
    for name, g in bias_grads.items():
        total = total + (g.sum(dim=(2, 3)) * biases[name]).sum(1)
    return total


def _psi(t, size, lo, hi, **kw):
    return F.interpolate((t - lo) / (hi - lo + 1e-6), size=size, **{"mode": "bilinear", "align_corners": True,
                                                                   **kw}).sum(1)


def _per_image(t, reduce):
    return getattr(t.flatten(1), reduce)(1).values.view(-1, 1, 1, 1)


def psi_without_abs(t, size):
    return _psi(t, size, _per_image(t, "min"), _per_image(t, "max"))


def psi_per_channel(t, size):
    a = t.abs()
    return _psi(a, size, a.amin(dim=(2, 3), keepdim=True), a.amax(dim=(2, 3), keepdim=True))


def psi_align_corners_false(t, size):
    a = t.abs()
    return _psi(a, size, _per_image(a, "min"), _per_image(a, "max"), align_corners=False)


def psi_max_only(t, size):
    a = t.abs()
    return F.interpolate(a / _per_image(a, "max"), size=size, mode="bilinear", align_corners=True).sum(1)


def psi_not_summed(t, size):
    a = t.abs()
    return F.interpolate((a - _per_image(a, "min")) / (_per_image(a, "max") - _per_image(a, "min") + 1e-6),
                         size=size, mode="bilinear", align_corners=True)


def psi_batch_minmax(t, size):
    a = t.abs()
    return _psi(a, size, a.min(), a.max())


def psi_mean_over_channels(t, size):
    a = t.abs()
    return _psi(a, size, _per_image(a, "min"), _per_image(a, "max")) / t.shape[1]


def psi_abs_in_place(t, size):                  # changes the caller's tensor
    a = t.abs_()
    return _psi(a, size, _per_image(a, "min"), _per_image(a, "max"))


MISTAKES = {
    "07-effective-bias": [
        (bias_is_beta, "that is β"),
        (bias_plus_mean_term, "wrong sign"),
        (bias_without_eps, "left out ε"),
        (bias_default_eps, "bn.eps"),
        (bias_over_variance, "standard deviation"),
        (bias_without_gamma, "left out γ"),
        (bias_in_place, "changed the BatchNorm"),
        (bias_keepdim, "axes of size 1"),
    ],
    "07-completeness-total": [
        (total_input_only, "input term x·∂S/∂x alone"),
        (total_spatial_only, "linear layers"),
        (total_mean_over_positions, "*every* position"),
        (total_bias_on_last_axis, "view(1, -1, 1, 1)"),
        (total_always_4d, "against the batch axis"),
        (total_over_batch, "one per image"),
        (total_spatial_sum_dims, "no spatial axes"),
    ],
    "07-psi": [
        (psi_without_abs, "absolute value"),
        (psi_per_channel, "each channel on its own"),
        (psi_align_corners_false, "align_corners=False"),
        (psi_max_only, "maximum only"),
        (psi_not_summed, "one map per channel"),
        (psi_batch_minmax, "whole batch"),
        (psi_mean_over_channels, "do not average"),
        (psi_abs_in_place, "changed one of the tensors"),
    ],
}
