"""Scoring one batch over all threads against two half-batches side by side, one process.

A lever of issue 18: a Glow's convolutions with 2-16 channels on one side may split poorly over
threads inside one operation, so scoring two batches at once on two Python threads (each with
half of torch's threads) might keep the cores busier than one batch over all of them. This
times both, alternating rounds, on the benchmark Glow of ``throughput.py`` (1x32x32, L=3, K=8,
hidden 200, channels-last, eval mode, bin midpoints), with glibc's allocator as it is or told
to keep freed memory (``--tuned-malloc``, the ``genood`` command's setting). Prints images/s of
each layout per round; ``--json`` prints one JSON object. The images are uniform noise: the
cost does not depend on the pixels.

Usage:
    python benchmarks/score_threads.py --precision bf16
    python benchmarks/score_threads.py --precision bf16 --tuned-malloc --json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch

from genood.allocator import keep_freed_memory
from genood.models import build


def _scorer(model: torch.nn.Module, precision: str) -> Callable[[torch.Tensor], None]:
    def autocast() -> AbstractContextManager[object]:
        if precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return nullcontext()

    def score(images: torch.Tensor) -> None:
        with torch.inference_mode(), autocast():  # both are per thread: entered in each
            model.log_prob(model.preprocess(images, dequantize=False))  # type: ignore[operator]

    return score


def one_batch(score: Callable[[torch.Tensor], None], images: torch.Tensor, reps: int) -> float:
    """Images/s of ``reps`` calls on the whole batch, all threads inside each operation."""
    score(images)
    start = time.perf_counter()
    for _ in range(reps):
        score(images)
    return reps * len(images) / (time.perf_counter() - start)


def two_halves(
    score: Callable[[torch.Tensor], None], images: torch.Tensor, reps: int, threads: int
) -> float:
    """Images/s of two Python threads scoring one half each, ``threads // 2`` threads apiece."""
    halves = [images[: len(images) // 2].clone(), images[len(images) // 2 :].clone()]
    torch.set_num_threads(max(1, threads // 2))
    try:
        for half in halves:
            score(half)

        def work(half: torch.Tensor) -> None:
            for _ in range(reps):
                score(half)

        workers = [threading.Thread(target=work, args=(half,)) for half in halves]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return reps * len(images) / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--tuned-malloc", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    allocator = keep_freed_memory() if args.tuned_malloc else "glibc default"
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(
        "glow", (1, 32, 32), levels=3, steps=8, hidden=200, coupling="affine", permutation="lu"
    ).to(memory_format=torch.channels_last)
    images = torch.randint(0, 256, (args.batch, 1, 32, 32), dtype=torch.uint8)
    with torch.no_grad():  # ActNorm's data-dependent initialisation
        model.log_prob(model.preprocess(images[:64], dequantize=True))
    model.eval()
    score = _scorer(model, args.precision)
    rows: dict[str, list[float]] = {"one_batch_img_s": [], "two_halves_img_s": []}
    for _ in range(args.rounds):  # alternate so drift in machine state hits both alike
        rows["one_batch_img_s"].append(one_batch(score, images, args.reps))
        rows["two_halves_img_s"].append(two_halves(score, images, args.reps, args.threads))
    result = {
        "precision": args.precision,
        "batch": args.batch,
        "threads": args.threads,
        "allocator": allocator,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        **{name: [round(v, 1) for v in values] for name, values in rows.items()},
        "ratio_median": round(
            statistics.median(rows["two_halves_img_s"])
            / statistics.median(rows["one_batch_img_s"]),
            3,
        ),
    }
    if args.json:
        print(json.dumps(result))
        return
    for a, b in zip(rows["one_batch_img_s"], rows["two_halves_img_s"], strict=True):
        print(f"one batch over {args.threads} threads {a:7.0f} img/s   two halves {b:7.0f} img/s")
    print(f"ratio (medians): {result['ratio_median']}x; allocator: {result['allocator']}")


if __name__ == "__main__":
    main()
