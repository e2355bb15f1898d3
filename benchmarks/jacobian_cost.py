"""What the Jacobian penalty costs per training step: lambda = 0 against lambda > 0, one process.

Times a full training step (forward, backward, Adamax step) of one genood Glow at ``--batch``
images, alternating rounds between the plain objective (``train.jacobian_penalty = 0``:
:class:`genood.train.loop.Objective`) and the penalised one
(:class:`genood.train.jacobian.JacobianObjective`: the forward, ``--samples`` vector-Jacobian
products with ``create_graph=True``, and the double backward), so that both see the same machine
state. Prints seconds per step of each (the median over rounds), and their ratio; ``--json``
prints one JSON object instead. The images are uniform noise: the cost of a step does not depend
on what the pixels are.

Usage:
    python benchmarks/jacobian_cost.py                        # 1x32x32, L=3, K=4, hidden 64
    python benchmarks/jacobian_cost.py --precision bf16 --samples 2 --json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor

from genood.models import build
from genood.train.jacobian import JacobianObjective
from genood.train.loop import Objective


def _step_function(
    model: torch.nn.Module, objective: torch.nn.Module, penalty: float, precision: str
) -> Callable[[Tensor], None]:
    optimizer = torch.optim.Adamax(model.parameters(), lr=1e-4)
    dtype = torch.bfloat16 if precision == "bf16" else None

    def step(x: Tensor) -> None:
        context = (
            torch.autocast(device_type=x.device.type, dtype=dtype)
            if dtype is not None
            else torch.autocast(device_type=x.device.type, enabled=False)
        )
        with context:
            out = objective(x)
        if penalty > 0:
            bits, r = out
            loss = bits.float().mean() + penalty * r.float().mean()
        else:
            loss = out.float().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def measure(args: argparse.Namespace) -> dict[str, object]:
    """Median seconds per step of both objectives over alternating rounds."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = (1, 32, 32)
    hparams = {"levels": args.levels, "steps": args.steps, "hidden": args.hidden}
    model = build("glow", shape, **hparams)
    images = torch.randint(0, 256, (args.batch, *shape), dtype=torch.uint8)
    x = model.preprocess(images, dequantize=True)
    with torch.no_grad():
        model.train()
        model.log_prob(x)  # ActNorm's data-dependent initialisation
    steps = {
        "plain": _step_function(model, Objective(model), 0.0, args.precision),
        "penalised": _step_function(
            model, JacobianObjective(model, args.samples), args.penalty, args.precision
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():  # warm-up
        step(x)
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.iters):
                step(x)
            times[name].append((time.perf_counter() - start) / args.iters)
    plain, penalised = (statistics.median(times[n]) for n in ("plain", "penalised"))
    return {
        "arch": {"shape": list(shape), **hparams},
        "batch": args.batch,
        "precision": args.precision,
        "threads": args.threads,
        "samples": args.samples,
        "penalty": args.penalty,
        "rounds": args.rounds,
        "iters": args.iters,
        "plain_s_per_step": plain,
        "penalised_s_per_step": penalised,
        "ratio": penalised / plain,
        "plain_rounds": times["plain"],
        "penalised_rounds": times["penalised"],
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--samples", type=int, default=1, help="Hutchinson probes per step")
    parser.add_argument("--penalty", type=float, default=1e-3, help="lambda (cost is the same)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=5, help="steps per timed round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"Glow {result['arch']}, batch {args.batch}, {args.precision}, {args.threads} thread(s), "
        f"{args.samples} probe(s): lambda = 0 {result['plain_s_per_step']:.3f} s/step, "
        f"lambda > 0 {result['penalised_s_per_step']:.3f} s/step, "
        f"ratio {result['ratio']:.2f}x"
    )


if __name__ == "__main__":
    main()
