"""``train.precision = "auto"``: the precision chosen by timing it on this machine.

CPU flags tell whether bfloat16 instructions exist, not whether they pay. Measured on the
machines genood runs on (``benchmarks/RESULTS.md``):

* an AVX2-only AMD EPYC emulates bf16 autocast, 5-10x *slower* than fp32;
* an AMD EPYC with AVX512-BF16 (no AMX) runs a coupling network's convolutions about 3x faster
  in bf16;
* an H200 at batch 64 is bound by kernel launches, and bf16 autocast (which adds casts) was
  slower than fp32.

So ``auto`` times one forward and backward of a Glow coupling network (3x3 -> 1x1 -> 3x3
convolutions, channels-last, batch 32) in fp32 and under bf16 autocast, alternately, five
rounds each (about a second on a CPU), and picks bf16 when it is at least :data:`MIN_SPEEDUP` times faster. The measurement is
cached per machine in ``$GENOOD_CACHE/precision.json`` (default ``~/.cache/genood``), keyed by
the device's name, PyTorch's version and the CPU capability; delete the file
to measure again. A run records the choice and its reason in ``environment.json``
(``precision``, ``precision_requested: "auto"``, ``precision_note``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

from genood.data.cache import cache_root
from genood.io import write_text_atomic
from genood.train.run import cpu_name

#: bf16 is chosen when it is at least this much faster than fp32 (a margin over timing noise).
MIN_SPEEDUP = 1.2
CACHE_FILE = "precision.json"


def machine_key(device: torch.device) -> str:
    """What the measurement depends on: the device's name, PyTorch and the CPU capability."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"cpu:{cpu_name()}:{torch.backends.cpu.get_cpu_capability()}"
    return f"{name}|torch {torch.__version__}"


def coupling_step(
    device: torch.device, bf16: bool, batch: int = 32, hidden: int = 128
) -> Callable[[], None]:
    """One forward and backward of a coupling network (fp32, or under bf16 autocast)."""
    generator = torch.Generator().manual_seed(0)
    shapes = [(hidden, 2, 3, 3), (hidden, hidden, 1, 1), (8, hidden, 3, 3)]
    weights = [
        (0.1 * torch.randn(s, generator=generator)).to(device).requires_grad_() for s in shapes
    ]
    x = torch.randn(batch, 2, 16, 16, generator=generator).to(device)
    x = x.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
        with autocast:
            h = F.relu(F.conv2d(x, weights[0], padding=1))
            h = F.relu(F.conv2d(h, weights[1]))
            out = F.conv2d(h, weights[2], padding=1)
        out.float().square().mean().backward()

    return step


def measure_bf16_speedup(device: torch.device, rounds: int = 5) -> float:
    """fp32 time over bf16 time of a coupling step on ``device`` (> 1: bf16 is faster).

    The two are timed alternately and each keeps its fastest round, so that other work on a
    shared machine, which only ever slows a round down, biases neither. On a CPU it runs on one
    thread: the ratio is a property of the core, and a busy machine makes multi-threaded
    timings erratic (measured: 0.7x-3.2x under load with two threads, 1.8x-2.5x with one).
    """
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        return _alternate(device, rounds)
    finally:
        torch.set_num_threads(threads)


def _alternate(device: torch.device, rounds: int) -> float:
    steps = {bf16: coupling_step(device, bf16) for bf16 in (False, True)}
    best = {False: float("inf"), True: float("inf")}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for step in steps.values():
        step()  # warm-up: kernel selection, allocation
    for _ in range(rounds):
        for bf16, step in steps.items():
            sync()
            start = time.perf_counter()
            step()
            sync()
            best[bf16] = min(best[bf16], time.perf_counter() - start)
    return best[False] / best[True]


def bf16_speedup(device: torch.device, cache: Path | None = None) -> tuple[float, bool]:
    """The measured bf16 speed-up on ``device``, from the cache when present.

    Returns:
        the speed-up and whether it came from the cache.
    """
    path = cache or cache_root() / CACHE_FILE
    key = machine_key(device)
    known: dict[str, float] = {}
    try:
        loaded = json.loads(path.read_text())
        if isinstance(loaded, dict):
            known = {k: float(v) for k, v in loaded.items() if isinstance(v, int | float)}
    except (OSError, ValueError):
        pass  # no cache yet, or an unreadable one: measure and rewrite it
    if key in known:
        return known[key], True
    known[key] = measure_bf16_speedup(device)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(known, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only cache only costs a second per run
    return known[key], False


def choose_precision(device: torch.device, cache: Path | None = None) -> tuple[str, str]:
    """``("bf16" | "fp32", why)`` for ``train.precision = "auto"`` on ``device``."""
    speedup, cached = bf16_speedup(device, cache)
    name = "bf16" if speedup >= MIN_SPEEDUP else "fp32"
    source = "cached measurement" if cached else "measured now"
    return name, (
        f"auto: bf16 autocast ran a coupling network {speedup:.2f}x as fast as fp32 on this "
        f"machine ({source}, {machine_key(device)}); chose {name} (bf16 needs >= {MIN_SPEEDUP}x)"
    )


__all__ = ["MIN_SPEEDUP", "bf16_speedup", "choose_precision", "machine_key"]
