"""Cost of pixel perturbation relative to the forward passes it needs.

Pixel perturbation of N images at K fractions needs N·K forward passes of perturbed images
(plus N clean ones, to fix the target class). The issue asks that the whole evaluation cost at
most 1.2 times those N·K forward passes. This script times, in the same run and interleaved
(the machine's load drifts):

* ``pixel_perturbation(model, images, maps, fractions)`` with precomputed maps (ranking, masks,
  fills, the clean pass, the N·K perturbed passes, the metrics);
* N·K plain forward passes of the same model under ``no_grad`` in eval mode, in chunks of the
  same batch size, on inputs built beforehand (the floor: no ranking, no masks, no fill);

and prints medians and the ratio of wall times (and of the process's CPU times, which a
busy machine disturbs less, especially with ``--threads 1``). The ratio to N·(K+1) passes (the clean pass included) is
printed too: that part of the overhead is needed work, not waste. Last column: the share of
pixel perturbation's own time spent outside the model's forward passes (ranking, masks, fills,
metrics), measured inside the same call and so unaffected by load drifting between calls.

    python benchmarks/bench_perturbation.py                          # course VGG, 32 and 64 px
    python benchmarks/bench_perturbation.py --n 128 --repeats 3 --fill mean
    python benchmarks/bench_perturbation.py --threads 1             # on a busy machine
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vislib.evaluation import pixel_perturbation  # noqa: E402
from vislib.models import course_model  # noqa: E402

#: FullGrad's least-salient grid (7 fractions) and the course default for small images (6).
GRIDS = {"fullgrad": (0.001, 0.005, 0.01, 0.03, 0.05, 0.07, 0.1), "course": (0.01, 0.05, 0.1, 0.2, 0.3, 0.5)}


class TimedModel(torch.nn.Module):
    """The model, with the wall time spent inside its forward passes added up."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seconds = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = self.model(x)
        self.seconds += time.perf_counter() - start
        return out


def plain_forwards(model: torch.nn.Module, inputs: torch.Tensor, batch_size: int) -> None:
    with torch.no_grad():
        for i in range(0, len(inputs), batch_size):
            model(inputs[i:i + batch_size])


def bench(size: int, width: int, n: int, grid: str, fill: str, batch_size: int, repeats: int) -> float:
    torch.manual_seed(0)
    model = TimedModel(course_model("vgg", width=width).eval())
    images = torch.rand(n, 3, size, size)
    maps = torch.rand(n, size, size)
    fractions = GRIDS[grid]
    k = len(fractions)
    perturbed_inputs = images.repeat(k, 1, 1, 1)  # N·K inputs, built before the clock starts
    pp_times, fwd_times, fwd1_times = [], [], []
    pp_cpu, fwd_cpu, outside = [], [], []
    pixel_perturbation(model, images[:batch_size], maps[:batch_size], fractions, fill=fill,
                       batch_size=batch_size)  # warm-up
    plain_forwards(model, perturbed_inputs[:batch_size], batch_size)
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        model.seconds = 0.0
        result = pixel_perturbation(model, images, maps, fractions, fill=fill, batch_size=batch_size)
        pp_times.append(time.perf_counter() - t0)
        outside.append(1 - model.seconds / pp_times[-1])
        pp_cpu.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        plain_forwards(model, perturbed_inputs, batch_size)
        fwd_times.append(time.perf_counter() - t0)
        fwd_cpu.append(time.process_time() - c0)
        t0 = time.perf_counter()
        plain_forwards(model, images, batch_size)
        fwd1_times.append(time.perf_counter() - t0)
    assert result.forward_passes == n * (k + 1)
    pp, fwd, clean = (statistics.median(t) for t in (pp_times, fwd_times, fwd1_times))
    ratio = pp / fwd
    cpu_ratio = statistics.median(pp_cpu) / statistics.median(fwd_cpu)
    print(f"course VGG width {width:>2}, {size} px, N={n}, K={k} ({grid} grid), fill {fill:<5}: "
          f"pixel perturbation {pp:6.2f} s | N·K forwards {fwd:6.2f} s | ratio {ratio:.3f} "
          f"(CPU time {cpu_ratio:.3f}) | ratio to N·(K+1) forwards {pp / (fwd + clean):.3f} "
          f"| time outside forward passes {100 * statistics.median(outside):.1f} %")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=256, help="number of images")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fill", default="black", choices=["black", "mean", "road"])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (1 makes CPU-time ratios robust on a busy machine)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    ratios = []
    for size, width, grid in ((32, 8, "course"), (64, 16, "course"), (64, 16, "fullgrad")):
        ratios.append(bench(size, width, args.n, grid, args.fill, args.batch_size, args.repeats))
    print(f"worst ratio {max(ratios):.3f} (target <= 1.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
