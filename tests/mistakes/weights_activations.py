"""Wrong answers to the exercises of notebook 01, each with words its check's message must contain."""


def share_without_k2(w):                      # forgot that the mean is repeated at k·k positions
    return w.mean(dim=(2, 3)).pow(2).sum(1) / w.pow(2).flatten(1).sum(1)


def share_mean_over_colours(w):               # one mean over colour channels and positions
    m = w.mean(dim=(1, 2, 3), keepdim=True)
    return m.expand_as(w).pow(2).flatten(1).sum(1) / w.pow(2).flatten(1).sum(1)


def share_of_edges(w):                        # the other part: 1 - share
    m = w.mean(dim=(2, 3), keepdim=True)
    return (w - m).pow(2).flatten(1).sum(1) / w.pow(2).flatten(1).sum(1)


def templates_times_std(weight, bias, mean, std, height, width):
    t = weight.reshape(len(weight), 3, height, width) * std.reshape(1, 3, 1, 1)
    return t, bias - (t * mean.reshape(1, 3, 1, 1)).flatten(1).sum(1)


def templates_channels_last(weight, bias, mean, std, height, width):
    t = weight.reshape(len(weight), height, width, 3).permute(0, 3, 1, 2) / std.reshape(1, 3, 1, 1)
    return t, bias - (t * mean.reshape(1, 3, 1, 1)).flatten(1).sum(1)


def templates_bias_unchanged(weight, bias, mean, std, height, width):
    return weight.reshape(len(weight), 3, height, width) / std.reshape(1, 3, 1, 1), bias


def templates_bias_sign(weight, bias, mean, std, height, width):
    t = weight.reshape(len(weight), 3, height, width) / std.reshape(1, 3, 1, 1)
    return t, bias + (t * mean.reshape(1, 3, 1, 1)).flatten(1).sum(1)


def fraction_of_zero_values(acts):            # counts zero values, not images
    return (acts == 0).float().mean(dim=(0, 2, 3))


def fraction_any_zero(acts):                  # "some position is zero" instead of "every position"
    return (acts.flatten(2) <= 0).any(dim=2).float().mean(0)


def fraction_per_image(acts):                 # reduced over the wrong axis
    return (acts.flatten(2) <= 0).all(dim=2).float().mean(1)


def fraction_in_place(acts):                  # changes the caller's tensor
    acts[acts < 0.5] = 0
    return (acts.flatten(2) <= 0).all(dim=2).float().mean(0)


MISTAKES = {
    "01-colour-share": [
        (share_without_k2, "times"),
        (share_mean_over_colours, "per input channel"),
        (share_of_edges, "should have a colour share of 1"),
    ],
    "01-pixel-templates": [
        (templates_times_std, "divide channel c by std"),
        (templates_channels_last, "channels first"),
        (templates_bias_unchanged, "biases"),
        (templates_bias_sign, "biases"),
    ],
    "01-inactive-fraction": [
        (fraction_of_zero_values, "every"),
        (fraction_any_zero, "every"),
        (fraction_per_image, "one value per image"),
        (fraction_in_place, "changed one of the tensors"),
    ],
}
