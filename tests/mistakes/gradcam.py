"""Wrong answers to the exercises of notebook 06, each with words its check's message must contain."""
import torch
import torch.nn.functional as F


def gradcam_sum_not_mean(A, G):                 # the weight is the sum of the gradient, not its mean
    return torch.einsum("bk,bkhw->bhw", G.sum(dim=(2, 3)), A).clamp(min=0)


def gradcam_without_relu(A, G):
    return torch.einsum("bk,bkhw->bhw", G.mean(dim=(2, 3)), A)


def gradcam_elementwise(A, G):                  # gradient x activation, position by position
    return (G * A).sum(1).clamp(min=0)


def gradcam_relu_per_channel(A, G):
    return (G.mean(dim=(2, 3), keepdim=True) * A).clamp(min=0).sum(1)


def gradcam_weights_over_batch(A, G):           # one set of weights for all images
    return torch.einsum("k,bkhw->bhw", G.mean(dim=(0, 2, 3)), A).clamp(min=0)


def gradcam_upsampled(A, G):                    # upsamples, although the exercise asks for h x w
    cam = torch.einsum("bk,bkhw->bhw", G.mean(dim=(2, 3)), A).clamp(min=0)
    return F.interpolate(cam[:, None], scale_factor=4, mode="bilinear")[:, 0]


def gradcam_in_place(A, G):                     # clamps the caller's activations
    A.clamp_(min=0.5)
    return torch.einsum("bk,bkhw->bhw", G.mean(dim=(2, 3)), A).clamp(min=0)


def guided_nearest(guided, cam):
    return guided * F.interpolate(cam[:, None], size=guided.shape[-2:], mode="nearest")[:, 0]


def guided_align_corners(guided, cam):
    return guided * F.interpolate(cam[:, None], size=guided.shape[-2:], mode="bilinear", align_corners=True)[:, 0]


def guided_sum(guided, cam):
    return guided + F.interpolate(cam[:, None], size=guided.shape[-2:], mode="bilinear")[:, 0]


def guided_not_upsampled(guided, cam):
    return guided * cam


def guided_3d_interpolate(guided, cam):         # bilinear F.interpolate needs [B, C, h, w]
    return guided * F.interpolate(cam, size=guided.shape[-1], mode="bilinear")


def pp_alpha(A, G, total):
    den = 2 * G**2 + total * G**3
    return torch.where(den != 0, G**2 / torch.where(den != 0, den, torch.ones_like(den)), torch.zeros_like(G))


def pp_nan(A, G):                               # no guard: 0/0 where g = 0
    alpha = G**2 / (2 * G**2 + A.sum(dim=(2, 3), keepdim=True) * G**3)
    return (alpha * G.clamp(min=0)).sum(dim=(2, 3))


def pp_without_relu(A, G):
    return (pp_alpha(A, G, A.sum(dim=(2, 3), keepdim=True)) * G).sum(dim=(2, 3))


def pp_activation_per_position(A, G):           # A_ij instead of the channel's sum
    return (pp_alpha(A, G, A) * G.clamp(min=0)).sum(dim=(2, 3))


def pp_mean(A, G):
    return (pp_alpha(A, G, A.sum(dim=(2, 3), keepdim=True)) * G.clamp(min=0)).mean(dim=(2, 3))


def pp_no_factor_two(A, G):
    total = A.sum(dim=(2, 3), keepdim=True)
    den = G**2 + total * G**3
    alpha = torch.where(den != 0, G**2 / torch.where(den != 0, den, torch.ones_like(den)), torch.zeros_like(G))
    return (alpha * G.clamp(min=0)).sum(dim=(2, 3))


def pp_per_position(A, G):                      # forgot the sum over positions
    return pp_alpha(A, G, A.sum(dim=(2, 3), keepdim=True)) * G.clamp(min=0)


MISTAKES = {
    "06-gradcam-map": [
        (gradcam_sum_not_mean, "*mean*"),
        (gradcam_without_relu, "forget the ReLU"),
        (gradcam_elementwise, "single weight"),
        (gradcam_relu_per_channel, "applies the ReLU once"),
        (gradcam_weights_over_batch, "averaged over the images"),
        (gradcam_upsampled, "layer's resolution"),
        (gradcam_in_place, "changed one of the tensors"),
    ],
    "06-guided-gradcam": [
        (guided_nearest, "mode='nearest'"),
        (guided_align_corners, "align_corners=True"),
        (guided_sum, "multiplies them"),
        (guided_not_upsampled, "upsample the Grad-CAM map"),
        (guided_3d_interpolate, "needs a 4-D tensor"),
    ],
    "06-gradcam-pp-weights": [
        (pp_nan, "0/0 is NaN"),
        (pp_without_relu, "negative gradients count"),
        (pp_activation_per_position, "channel's total"),
        (pp_mean, "do not average"),
        (pp_no_factor_two, "factor 2 is missing"),
        (pp_per_position, "sum over the"),
    ],
}
