"""Wrong answers to the exercises of notebook 09, each with words its check's message must contain."""
import torch


def accuracy_error_rate(pred, labels, group, n_groups):          # the fraction of wrong predictions
    return torch.stack([(pred[group == g] != labels[group == g]).float().mean() for g in range(n_groups)])


def accuracy_counts(pred, labels, group, n_groups):              # forgot to divide by the group size
    correct = (pred == labels).float()
    return torch.stack([correct[group == g].sum() for g in range(n_groups)])


def accuracy_over_all_images(pred, labels, group, n_groups):     # divided by N instead of the group size
    correct = (pred == labels).float()
    return torch.stack([correct[group == g].sum() / len(pred) for g in range(n_groups)])


def accuracy_overall(pred, labels, group, n_groups):             # never selected the group
    return (pred == labels).float().mean().repeat(n_groups)


def accuracy_per_image(pred, labels, group, n_groups):           # no reduction at all
    return (pred == labels).float()


def enrichment_share_only(maps, mask):                          # forgot to divide by the area
    m = maps.clamp(min=0)
    return (m * mask).sum((1, 2)) / m.sum((1, 2))


def enrichment_no_clamp(maps, mask):                            # negative saliency counted
    return (maps * mask).sum((1, 2)) / maps.sum((1, 2)) / mask.float().mean((1, 2))


def enrichment_abs(maps, mask):                                 # |map| instead of max(map, 0)
    m = maps.abs()
    return (m * mask).sum((1, 2)) / m.sum((1, 2)) / mask.float().mean((1, 2))


def enrichment_area_in_pixels(maps, mask):                      # area as a pixel count
    m = maps.clamp(min=0)
    return (m * mask).sum((1, 2)) / m.sum((1, 2)) / mask.float().sum((1, 2))


def flips_of_logits(model, original, edited):                   # compares logits, not predicted classes
    with torch.no_grad():
        return int((model(original) != model(edited)).any(1).sum())


def flips_unchanged(model, original, edited):                   # counts the predictions that stayed
    with torch.no_grad():
        return int((model(original).argmax(1) == model(edited).argmax(1)).sum())


def flips_fraction(model, original, edited):                    # a fraction, not a number
    with torch.no_grad():
        return (model(original).argmax(1) != model(edited).argmax(1)).float().mean().item()


def flips_wrong_axis(model, original, edited):                  # argmax over the images
    with torch.no_grad():
        return int((model(original).argmax(0) != model(edited).argmax(0)).sum())


MISTAKES = {
    "09-group-accuracy": [
        (accuracy_error_rate, "1 - accuracy"),
        (accuracy_counts, "divide by the size of each group"),
        (accuracy_over_all_images, "number of all images"),
        (accuracy_overall, "overall accuracy"),
        (accuracy_per_image, "one value per image"),
    ],
    "09-part-enrichment": [
        (enrichment_share_only, "not yet divided by the area"),
        (enrichment_no_clamp, "keeps the negative values"),
        (enrichment_abs, "uses |map|"),
        (enrichment_area_in_pixels, "number of pixels"),
    ],
    "09-flip-count": [
        (flips_of_logits, "not the logits"),
        (flips_unchanged, "stayed the same"),
        (flips_fraction, "fraction"),
        (flips_wrong_axis, "argmax(dim=1)"),
    ],
}
