"""Where a Glow training step spends its time: ``torch.profiler`` over a few steps.

Prints the top operators by self CPU time, the share of time in convolutions (forward and
backward) against everything else, and the achieved FLOP/s of the whole step, at the benchmark
architecture of ``throughput.py`` (1x32x32, 3 levels x 8 steps, hidden 200, batch 64).

Usage:
    python benchmarks/profile_glow.py [--steps 5] [--batch 64] [--hidden 200] [--precision bf16]
        [--shapes]   # one row per operator and input shape
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch
from torch.profiler import ProfilerActivity, profile

from genood.models import build
from genood.train.loop import Objective

CONV_OPS = ("conv", "mkldnn_convolution", "convolution")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=200)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--shapes", action="store_true", help="group operators by input shape")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build(
        "glow",
        (1, 32, 32),
        levels=3,
        steps=8,
        hidden=args.hidden,
        coupling="affine",
        permutation="lu",
        learn_prior=True,
    )
    model = model.to(memory_format=torch.channels_last)
    objective = Objective(model)
    optimizer = torch.optim.Adamax(model.parameters(), lr=1e-4)
    images = torch.randint(0, 256, (args.batch, 1, 32, 32), dtype=torch.uint8)

    autocast = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if args.precision == "bf16"
        else nullcontext
    )

    def step() -> None:
        x = model.preprocess(images, dequantize=True).contiguous(memory_format=torch.channels_last)
        with autocast():
            loss = objective(x).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # ActNorm initialisation and warm-up
    step()
    with profile(
        activities=[ProfilerActivity.CPU], with_flops=True, record_shapes=args.shapes
    ) as prof:
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        elapsed = time.perf_counter() - start
    events = prof.key_averages(group_by_input_shape=args.shapes)
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if any(k in e.key for k in CONV_OPS))
    flops = sum(e.flops for e in events if e.flops)
    print(events.table(sort_by="self_cpu_time_total", row_limit=15, max_shapes_column_width=80))
    print(f"precision {args.precision}, {torch.get_num_threads()} threads")
    print(f"{args.steps} steps in {elapsed:.2f} s ({args.batch * args.steps / elapsed:.1f} img/s)")
    print(
        f"convolutions: {100 * conv / total:.1f}% of self CPU time; everything else "
        f"{100 * (total - conv) / total:.1f}%"
    )
    print(
        f"counted FLOPs (forward convolutions and matmuls): {flops / 1e9:.1f} GFLOP, "
        f"{flops / elapsed / 1e9:.1f} GFLOP/s achieved"
    )


if __name__ == "__main__":
    main()
