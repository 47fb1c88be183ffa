"""Wrong answers to the exercises of notebook 02, each with words its check's message must contain."""
import torch


def features_output_of_last(model, last, images):       # a forward hook: records what `last` returns
    received = []
    handle = last.register_forward_hook(lambda module, inputs, output: received.append(output))
    try:
        with torch.no_grad():
            model(images)
    finally:
        handle.remove()
    return received[0]


def features_hook_left_behind(model, last, images):     # never removes its hook
    received = []
    last.register_forward_pre_hook(lambda module, inputs: received.append(inputs[0]))
    with torch.no_grad():
        model(images)
    return received[0]


def features_inputs_tuple(model, last, images):         # keeps the whole tuple of inputs
    received = []
    handle = last.register_forward_pre_hook(lambda module, inputs: received.append(inputs))
    with torch.no_grad():
        model(images)
    handle.remove()
    return received[0]


def features_with_graph(model, last, images):           # no torch.no_grad(), no detach
    received = []
    handle = last.register_forward_pre_hook(lambda module, inputs: received.append(inputs[0]))
    model(images)
    handle.remove()
    return received[0]


def _distances(features):
    return torch.cdist(features.double(), features.double())


def knn_counts_itself(features, labels, k):             # the diagonal (distance 0) is not excluded
    nearest = _distances(features).topk(k, dim=1, largest=False).indices
    return (labels[nearest] == labels[:, None]).double().mean(1)


def knn_farthest(features, labels, k):                  # topk's default is the largest values
    d = _distances(features)
    d.fill_diagonal_(0)                                  # (0 is never among the largest)
    nearest = d.topk(k, dim=1).indices
    return (labels[nearest] == labels[:, None]).double().mean(1)


def knn_count_not_fraction(features, labels, k):        # forgot to divide by k
    d = _distances(features)
    d.fill_diagonal_(float("inf"))
    nearest = d.topk(k, dim=1, largest=False).indices
    return (labels[nearest] == labels[:, None]).double().sum(1)


def knn_mean_over_points(features, labels, k):          # one number instead of one per point
    d = _distances(features)
    d.fill_diagonal_(float("inf"))
    nearest = d.topk(k, dim=1, largest=False).indices
    return (labels[nearest] == labels[:, None]).double().mean()


def _sq(features):
    return torch.cdist(features, features).pow(2)


def probs_naive_exp(features, sigma):                   # exp / sum: 0 / 0 when every exp underflows
    w = torch.exp(-_sq(features) / (2 * sigma[:, None] ** 2))
    w.fill_diagonal_(0)
    return w / w.sum(1, keepdim=True)


def probs_with_diagonal(features, sigma):               # p_{i|i} = the largest value of each row
    return (-_sq(features) / (2 * sigma[:, None] ** 2)).softmax(dim=1)


def probs_columns(features, sigma):                     # softmax over the wrong axis
    logits = -_sq(features) / (2 * sigma[:, None] ** 2)
    logits.fill_diagonal_(float("-inf"))
    return logits.softmax(dim=0)


def probs_sigma_of_neighbour(features, sigma):          # sigma broadcast along the wrong axis
    logits = -_sq(features) / (2 * sigma[None, :] ** 2)
    logits.fill_diagonal_(float("-inf"))
    return logits.softmax(dim=1)


def probs_distance_not_squared(features, sigma):
    logits = -torch.cdist(features, features) / (2 * sigma[:, None] ** 2)
    logits.fill_diagonal_(float("-inf"))
    return logits.softmax(dim=1)


def probs_without_two(features, sigma):
    logits = -_sq(features) / sigma[:, None] ** 2
    logits.fill_diagonal_(float("-inf"))
    return logits.softmax(dim=1)


MISTAKES = {
    "02-penultimate-features": [
        (features_output_of_last, "the *output* of `last`"),
        (features_hook_left_behind, "left a hook"),
        (features_inputs_tuple, "inputs[0]"),
        (features_with_graph, "torch.no_grad()"),
    ],
    "02-knn-same-class": [
        (knn_counts_itself, "its own neighbour"),
        (knn_farthest, "farthest"),
        (knn_count_not_fraction, "times 2"),
        (knn_mean_over_points, "one value per point"),
    ],
    "02-neighbour-probabilities": [
        (probs_naive_exp, "underflows"),
        (probs_with_diagonal, "diagonal is not 0"),
        (probs_columns, "each column sums to 1"),
        (probs_sigma_of_neighbour, "σ_j of the neighbour"),
        (probs_distance_not_squared, "not its square"),
        (probs_without_two, "factor 2"),
    ],
}
