"""Wrong answers to the exercises of notebook 05, each with words its check's message must contain."""
import torch


def cam_with_relu(features, fc_weight, classes):       # clamps: the exercise asks for the signed map
    return torch.einsum("bk,bkhw->bhw", fc_weight[classes], features).clamp(min=0)


def cam_every_class(features, fc_weight, classes):     # forgot to pick each image's class
    return torch.einsum("ck,bkhw->bchw", fc_weight, features)


def cam_mean_over_channels(features, fc_weight, classes):  # a mean over channels instead of a sum
    return (fc_weight[classes][:, :, None, None] * features).mean(1)


def cam_divided_by_positions(features, fc_weight, classes):  # the GAP's 1/(h·w) does not belong in the map
    h, w = features.shape[-2:]
    return torch.einsum("bk,bkhw->bhw", fc_weight[classes], features) / (h * w)


def cam_class_of_first_image(features, fc_weight, classes):  # one class for the whole batch
    return torch.einsum("k,bkhw->bhw", fc_weight[classes[0]], features)


def gradient_without_gap_factor(fc_weight, classes, height, width):  # forgot the 1/(h·w) of the GAP
    return fc_weight[classes][:, :, None, None].expand(-1, -1, height, width)


def gradient_per_channel(fc_weight, classes, height, width):      # one value per channel
    return fc_weight[classes] / (height * width)


def gradient_divided_by_height(fc_weight, classes, height, width):  # h instead of h·w
    return (fc_weight[classes] / height)[:, :, None, None].expand(-1, -1, height, width)


def gradient_channels_first(fc_weight, classes, height, width):   # indexes the channels with the classes
    return (fc_weight[:, classes] / (height * width))[:, :, None, None].expand(-1, -1, height, width)


MISTAKES = {
    "05-cam-by-hand": [
        (cam_with_relu, "do not apply a ReLU"),
        (cam_every_class, "maps of every class"),
        (cam_mean_over_channels, "times"),
        (cam_divided_by_positions, "times"),
        (cam_class_of_first_image, "should get the map of its class"),
    ],
    "05-gap-gradient": [
        (gradient_without_gap_factor, "times 6"),
        (gradient_per_channel, "one value per channel"),
        (gradient_divided_by_height, "times 3"),
        (gradient_channels_first, "indexed the columns"),
    ],
}
