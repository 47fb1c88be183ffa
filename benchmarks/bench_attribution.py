"""Cost of every attribution method relative to a plain forward + backward pass.

For each model the baseline is what a gradient map minimally needs, written in plain torch:
``model(x)``, then the gradient of the summed class logits with respect to the input (parameters
frozen, eval mode). Each method is timed on the same model and input, the baseline is re-timed
next to it (the machine's load drifts), and the script prints ``method time / baseline time``
(medians of several repeats after one warm-up call).

    python benchmarks/bench_attribution.py                      # all three models
    python benchmarks/bench_attribution.py --models course-vgg --repeats 3
    python benchmarks/bench_attribution.py --skip occlusion     # occlusion on resnet18 is slow on CPU

Models: the course VGG and ResNet (untrained) at batch 16, 64 px; torchvision resnet18 (random
weights) at batch 4, 224 px. Expected: gradient methods about 1, Grad-CAM below 1 (its backward
stops at its layer), FullGrad one forward + backward plus post-processing, Ablation-CAM and
occlusion many forward passes (printed with their number).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vislib import attribution as A  # noqa: E402
from vislib.hooks import frozen  # noqa: E402
from vislib.models import course_model, imagenet  # noqa: E402

MODELS = {
    "course-vgg": (lambda: course_model("vgg"), 16, 64),
    "course-resnet": (lambda: course_model("resnet"), 16, 64),
    "resnet18": (lambda: imagenet("resnet18", pretrained=False), 4, 224),
}


def baseline(model, x, target):
    """Plain forward + backward to the input, parameters frozen, eval mode."""
    with frozen(model):
        xr = x.detach().clone().requires_grad_()
        logits = model(xr)
        (g,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), xr)
    return g


def timed(fn, repeats: int, budget_s: float) -> list[float]:
    """Run ``fn`` once to warm up, then up to ``repeats`` times (fewer if over ``budget_s``)."""
    def once():
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - start

    first = once()
    times = []
    spent = first
    while len(times) < repeats and (not times or spent < budget_s):
        times.append(once())
        spent += times[-1]
    return times


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def forward_count(name, model, x) -> str:
    """How many image forward passes a perturbation method runs, for context."""
    b, _, h, w = x.shape
    if name == "occlusion":
        patch = max(1, round(min(h, w) / 8))
        stride = max(1, patch // 2)
        n = ((h - patch + stride - 1) // stride + 1) * ((w - patch + stride - 1) // stride + 1)
        return f"{b}x{n} windows"
    if name == "ablation_cam":
        from vislib.hooks import Recorder, default_layer, get_layer
        layer = get_layer(model, default_layer(model))[0]
        with Recorder(model, [layer], detach=True) as rec, torch.no_grad():
            model(x[:1])
        return f"{b}x{rec.output(layer).shape[1]} channels after {layer}"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--methods", nargs="+", default=list(A.METHODS), choices=list(A.METHODS))
    parser.add_argument("--skip", nargs="*", default=[], help="methods to leave out")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per method before fewer repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"repeats {args.repeats} (median after a warm-up)")
    for model_name in args.models:
        build, batch, size = MODELS[model_name]
        model = build().to(args.device).eval()
        x = torch.rand(batch, 3, size, size, device=args.device)
        with torch.no_grad():
            target = model(x).argmax(dim=1)
        base = timed(lambda: baseline(model, x, target), args.repeats, args.budget)
        print(f"\n{model_name}: batch {batch}, {size} px; forward+backward {1000 * statistics.median(base):.1f} ms")
        print(f"  {'method':18s} {'ms':>10s} {'ratio':>8s}  note")
        for name in args.methods:
            if name in args.skip:
                continue
            fn = A.METHODS[name]
            try:
                fn(model, x[:1], target[:1])
            except ValueError as error:
                print(f"  {name:18s} {'n/a':>10s} {'':>8s}  {str(error).split(';')[0][:70]}")
                continue
            times = timed(lambda: fn(model, x, target, progress=False) if name in ("occlusion", "ablation_cam")
                          else fn(model, x, target), args.repeats, args.budget)
            near = timed(lambda: baseline(model, x, target), args.repeats, args.budget)
            ratio = statistics.median(times) / statistics.median(near)
            note = forward_count(name, model, x)
            print(f"  {name:18s} {1000 * statistics.median(times):10.1f} {ratio:8.2f}  {note}", flush=True)


if __name__ == "__main__":
    main()
