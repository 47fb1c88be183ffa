"""Wrong answers to the exercises of notebook 10, each with words its check's message must contain."""
import copy

import torch


def randomise_in_place(model, name, seed):                      # re-initialises the caller's model
    torch.manual_seed(seed)
    model.get_submodule(name).reset_parameters()
    return model


def randomise_original_layer(model, name, seed):                # copies, then resets the original's layer
    clone = copy.deepcopy(model)
    torch.manual_seed(seed)
    model.get_submodule(name).reset_parameters()
    return clone


def randomise_without_seed(model, name, seed):                  # not reproducible
    clone = copy.deepcopy(model)
    clone.get_submodule(name).reset_parameters()
    return clone


def randomise_every_layer(model, name, seed):                   # the whole network instead of one layer
    clone = copy.deepcopy(model)
    torch.manual_seed(seed)
    for module in clone.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return clone


def randomise_weight_only(model, name, seed):                   # new weights by hand, BatchNorm statistics kept
    clone = copy.deepcopy(model)
    torch.manual_seed(seed)
    layer = clone.get_submodule(name)
    with torch.no_grad():
        layer.weight.normal_(0, 0.1)
        layer.bias.zero_()
    return clone


def _pearson(x, y):
    x, y = x - x.mean(), y - y.mean()
    return (x * y).sum() / (x.norm() * y.norm())


def spearman_of_values(a, b):                                   # Pearson of the values, no ranks
    return _pearson(a.flatten(), b.flatten())


def spearman_argsort(a, b):                                     # argsort taken for the ranks
    return _pearson(a.flatten().argsort().double(), b.flatten().argsort().double())


def spearman_not_centred(a, b):                                 # cosine of the ranks
    ra = a.flatten().argsort().argsort().double()
    rb = b.flatten().argsort().argsort().double()
    return (ra * rb).sum() / (ra.norm() * rb.norm())


def spearman_rows(a, b):                                        # ranks within each row
    return _pearson(a.argsort(-1).argsort(-1).double().flatten(), b.argsort(-1).argsort(-1).double().flatten())


def spearman_per_pixel(a, b):                                   # no reduction to one number
    ra = a.flatten().argsort().argsort().double()
    rb = b.flatten().argsort().argsort().double()
    return (ra - ra.mean()) * (rb - rb.mean())


MISTAKES = {
    "10-randomise-layer": [
        (randomise_in_place, "changed the model it was given"),
        (randomise_original_layer, "changed the model it was given"),
        (randomise_without_seed, "torch.manual_seed(seed)"),
        (randomise_every_layer, "changed too"),
        (randomise_weight_only, "nn.init function of your own"),
    ],
    "10-spearman": [
        (spearman_of_values, "Pearson's correlation of the values"),
        (spearman_argsort, "argsort gives the"),
        (spearman_not_centred, "subtract the mean rank"),
        (spearman_rows, "each row"),
        (spearman_per_pixel, "expected one number"),
    ],
}
