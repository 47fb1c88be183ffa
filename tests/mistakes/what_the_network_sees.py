"""Wrong answers to the exercises of notebook 11, each with words its check's message must contain."""
import torch
import torch.nn.functional as F


def _ce_gradient(model, x, classes):
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(x), classes), x)
    return g


def fgsm_sign_flipped(model, x, target, eps):          # the untargeted direction
    return (x + eps * _ce_gradient(model, x, target).sign()).clamp(0, 1)


def fgsm_away_from_prediction(model, x, target, eps):  # untargeted: ignores `target`
    with torch.no_grad():
        predicted = model(x).argmax(1)
    return (x + eps * _ce_gradient(model, x, predicted).sign()).clamp(0, 1)


def fgsm_without_clamp(model, x, target, eps):
    return x - eps * _ce_gradient(model, x, target).sign()


def fgsm_raw_gradient(model, x, target, eps):          # forgot the sign (and the mean of CE shrinks it)
    g = _ce_gradient(model, x, target) * len(x)         # the gradient of the summed loss
    return (x - eps * g).clamp(0, 1)


def fgsm_target_logit(model, x, target, eps):          # raised S_t instead of lowering CE
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x).gather(1, target[:, None]).sum(), x)
    return (x + eps * g.sign()).clamp(0, 1)


def fgsm_in_place(model, x, target, eps):
    g = _ce_gradient(model, x, target)
    x -= eps * g.sign()
    return x.clamp_(0, 1)


def project_ball_only(x_adv, x, eps):
    return torch.minimum(torch.maximum(x_adv, x - eps), x + eps)


def project_range_only(x_adv, x, eps):
    return x_adv.clamp(0, 1)


def project_image_not_perturbation(x_adv, x, eps):
    return x_adv.clamp(-eps, eps)


def project_returns_perturbation(x_adv, x, eps):
    return (x_adv - x).clamp(-eps, eps)


MISTAKES = {
    "11-fgsm-step": [
        (fgsm_sign_flipped, "untargeted direction"),
        (fgsm_away_from_prediction, "*predicted* class"),
        (fgsm_without_clamp, "clamp the result"),
        (fgsm_raw_gradient, "by its *sign*"),
        (fgsm_target_logit, "target's logit"),
        (fgsm_in_place, "changed one of the tensors"),
    ],
    "11-project-linf": [
        (project_ball_only, "leave [0, 1]"),
        (project_range_only, "clamped to [0, 1] only"),
        (project_image_not_perturbation, "*perturbation* x_adv - x"),
        (project_returns_perturbation, "return the image"),
    ],
}
