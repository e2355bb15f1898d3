"""genood's Glow against normflows' Glow at the same architecture, in one process.

Times, alternating between the two libraries so that both see the same machine state:
(a) a full training step (forward, backward, Adamax step) at ``--batch`` images, and
(b) scoring (log-likelihood under ``torch.inference_mode``) at ``--score-batch`` images.
Prints images/s for each, the ratio genood / normflows, and peak RSS; ``--json`` prints one JSON
object instead. normflows is a benchmark-only dependency: ``pip install -e '.[bench]'``.

Usage:
    python benchmarks/throughput.py                      # 1x32x32, L=3, K=8, hidden 200
    python benchmarks/throughput.py --arch paper-cifar   # 3x32x32, L=3, K=32, hidden 512
    python benchmarks/throughput.py --precision fp32 --json
    python benchmarks/throughput.py --device cuda --precision bf16   # on a GPU
    python benchmarks/throughput.py --memory   # also peak memory of training and of scoring alone

Distance from the limit: ``gemm_peak_flops`` is the FLOP/s of a large matrix product in genood's
precision, timed in the same run (the best of a few sizes), and ``train_peak_share`` is genood's
achieved training FLOP/s as a share of it. The training FLOPs are counted once, by
``torch.utils.flop_counter.FlopCounterMode`` over one step (convolutions forward and backward,
matrix products); elementwise work is not counted, so the share is what the arithmetic achieves.
The peak is timed once per alternation round and the best kept, so that one reading taken while
another job held the cores does not inflate the share.

``--compile`` wraps genood's training objective and its ``log_prob`` in ``torch.compile``;
``compile_s`` is the one-off compilation (both), outside the timed rounds. FLOPs are counted on
the eager step either way.

The allocator: with glibc's defaults, normflows' scoring in fp32 spends much of its time in
page faults (its large temporaries are mmapped and returned on every call) and ran at 190-450
images/s across runs on one machine; ``--tuned-malloc`` applies the setting the ``genood`` command
applies to itself (:func:`genood.allocator.keep_freed_memory`: glibc keeps freed memory) to this
process, so to both libraries alike, which made it a steady 500-540 images/s; ``allocator`` in the
JSON says what was applied. Report both: the default is what a library user gets, the tuned one
the fairer comparison of the arithmetic.

Peak memory: ``peak_rss_mib`` is the whole benchmark process (both libraries); ``--memory`` runs
genood's training and scoring each in a fresh child process and reports their own peaks (RSS,
and on CUDA the peak of ``torch.cuda.max_memory_allocated``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from genood import allocator
from genood.models import build
from genood.train.loop import Objective
from genood.train.precision import cpu_has_bf16

ARCHS = {
    "default": {"shape": (1, 32, 32), "levels": 3, "steps": 8, "hidden": 200},
    "paper-fashion": {"shape": (1, 32, 32), "levels": 3, "steps": 32, "hidden": 400},
    "paper-cifar": {"shape": (3, 32, 32), "levels": 3, "steps": 32, "hidden": 512},
}


@dataclass
class Settings:
    arch: str
    shape: tuple[int, int, int]
    levels: int
    steps: int
    hidden: int
    batch: int
    score_batch: int
    precision: str
    channels_last: bool
    compile: bool
    tuned_malloc: bool
    threads: int
    rounds: int
    device: str
    torch: str
    cpu: str


def normflows_glow(shape: tuple[int, int, int], levels: int, steps: int, hidden: int):
    """normflows' Glow as its own example builds it (affine coupling, LU 1x1 conv, ActNorm)."""
    import normflows as nf

    channels, height, width = shape
    q0, merges, flows = [], [], []
    for i in range(levels):
        level = [
            nf.flows.GlowBlock(channels * 2 ** (levels + 1 - i), hidden, split_mode="channel")
            for _ in range(steps)
        ]
        level.append(nf.flows.Squeeze())
        flows.append(level)
        if i > 0:
            merges.append(nf.flows.Merge())
            factor = 2 ** (levels - i)
            latent = (channels * factor, height // factor, width // factor)
        else:
            factor = 2**levels
            latent = (channels * factor * 2, height // factor, width // factor)
        q0.append(nf.distributions.GlowBase(latent))
    return nf.MultiscaleFlow(q0, flows, merges, class_cond=False)


def _time(
    fn: Callable[[], None], rounds: int, warmup: int = 2, device: torch.device | None = None
) -> float:
    """Median seconds of ``fn`` over ``rounds`` calls after ``warmup`` untimed ones.

    On CUDA each call is closed by a synchronisation, so that the time is the kernels' and not
    only their launch.
    """
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else None
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rounds):
        if sync:
            sync()
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gemm_peak_flops(dtype: torch.dtype, device: torch.device, seconds: float = 1.0) -> float:
    """FLOP/s of square matrix products in ``dtype`` on ``device``: the best of a few sizes.

    This is the practical peak the same library reaches on this machine at this precision,
    the denominator of ``train_peak_share``.
    """
    best = 0.0
    for n in (512, 1024, 2048):
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        flops = 2.0 * n**3
        calls = max(3, int(seconds * 2e11 / flops))
        per_call = _time(lambda a=a, b=b: torch.mm(a, b), calls, warmup=2, device=device)
        best = max(best, flops / per_call)
    return best


def count_flops(step: Callable[[], None]) -> float:
    """FLOPs of one call of ``step`` (matrix products and convolutions, forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def _peak_rss_mib() -> float:
    """This process's peak resident memory in MiB.

    Linux's ``ru_maxrss`` keeps the peak of the process before ``exec``, so a child started by
    a large parent reports at least the parent's peak; ``VmHWM`` belongs to the current
    address space and is the child's own.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_memory_by_phase(argv: list[str]) -> dict[str, float]:
    """Peak RSS (and CUDA memory) of genood's training and scoring, each in a fresh process."""
    peaks: dict[str, float] = {}
    for phase in ("train", "score"):
        command = [sys.executable, __file__, *argv, "--only", phase, "--rounds", "3", "--json"]
        child = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
        peaks[f"genood_{phase}_peak_rss_mib"] = child["peak_rss_mib"]
        if "peak_cuda_mib" in child:
            peaks[f"genood_{phase}_peak_cuda_mib"] = child["peak_cuda_mib"]
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="default", choices=sorted(ARCHS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--score-batch", type=int, default=256)
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="genood's precision; auto: bf16 where the CPU has bf16 hardware (AMX or AVX512-BF16), else fp32",
    )
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile genood's model")
    parser.add_argument(
        "--tuned-malloc",
        action="store_true",
        help="glibc keeps freed memory (the genood command's setting), for both libraries",
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--memory", action="store_true", help="also peak memory of training and scoring alone"
    )
    parser.add_argument("--only", choices=["train", "score"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tuned_malloc:  # before the models allocate anything
        allocator.keep_freed_memory()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    arch = ARCHS[args.arch]
    if args.precision == "auto":
        args.precision = "bf16" if device.type == "cuda" or cpu_has_bf16() else "fp32"
    settings = Settings(
        arch=args.arch,
        shape=arch["shape"],
        levels=arch["levels"],
        steps=arch["steps"],
        hidden=arch["hidden"],
        batch=args.batch,
        score_batch=args.score_batch,
        precision=args.precision,
        channels_last=not args.no_channels_last,
        compile=args.compile,
        tuned_malloc=args.tuned_malloc,
        threads=torch.get_num_threads(),
        rounds=args.rounds,
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        torch=torch.__version__,
        cpu=platform.processor() or platform.machine(),
    )
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes, as genood's trainer sets it
    torch.manual_seed(0)
    shape = settings.shape
    images = torch.randint(0, 256, (max(args.batch, args.score_batch), *shape), dtype=torch.uint8)
    images = images.to(device)  # uint8 on the device; dequantised there, as genood's trainer does

    ours = build(
        "glow",
        shape,
        levels=settings.levels,
        steps=settings.steps,
        hidden=settings.hidden,
        coupling="affine",
        permutation="lu",
        learn_prior=True,
    ).to(device)
    theirs = (
        None
        if args.only
        else normflows_glow(shape, settings.levels, settings.steps, settings.hidden).to(device)
    )
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    ours = ours.to(memory_format=memory_format)
    # The training objective as one module (what genood's trainer compiles and DDP-wraps).
    objective = Objective(ours)
    # With --compile the FLOPs are still counted on the eager step below: counting under
    # FlopCounterMode while dynamo traces leaves its global module hooks behind, which slowed
    # every later call of both libraries (normflows' training went from ~150 to ~35 images/s).
    objective_fn = torch.compile(objective) if settings.compile else objective
    log_prob_fn = torch.compile(ours.log_prob) if settings.compile else ours.log_prob
    autocast = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
        if settings.precision == "bf16"
        else nullcontext
    )
    opt_ours = torch.optim.Adamax(ours.parameters(), lr=1e-4)
    batch = images[: args.batch]
    x_theirs = batch.float() / 256.0 - 0.5 + torch.rand(batch.shape, device=device) / 256.0
    # Data-dependent initialisation of both models' ActNorm before timing.
    with torch.no_grad():
        ours.log_prob(ours.preprocess(batch, dequantize=True))
        if theirs is not None:
            theirs.log_prob(x_theirs, None)
    opt_theirs = torch.optim.Adamax(theirs.parameters(), lr=1e-4) if theirs is not None else None

    def train_ours(eager: bool = False) -> None:
        x = ours.preprocess(batch, dequantize=True).contiguous(memory_format=memory_format)
        with autocast():
            loss = (objective if eager else objective_fn)(x).mean()
        opt_ours.zero_grad(set_to_none=True)
        loss.backward()
        opt_ours.step()

    def train_theirs() -> None:
        loss = -theirs.log_prob(x_theirs, None).mean() / (x_theirs[0].numel() * math.log(2.0))
        opt_theirs.zero_grad(set_to_none=True)
        loss.backward()
        opt_theirs.step()

    score_images = images[: args.score_batch]
    x_score = score_images.float() / 256.0 - 0.5 + 1 / 512

    def score_ours() -> None:
        ours.eval()
        with torch.inference_mode(), autocast():
            log_prob_fn(ours.preprocess(score_images, dequantize=False))
        ours.train()

    def score_theirs() -> None:
        theirs.eval()
        with torch.inference_mode():
            theirs.log_prob(x_score, None)
        theirs.train()

    train_flops = count_flops(lambda: train_ours(eager=True)) / args.batch  # counted once
    dtype = torch.bfloat16 if settings.precision == "bf16" else torch.float32
    compile_start = time.perf_counter()
    if settings.compile:  # the one-off compilation, outside the timed rounds
        train_ours()
        score_ours()
    compile_s = time.perf_counter() - compile_start
    if args.only:  # a child of --memory: one phase of genood alone, for its peak memory
        _time(train_ours if args.only == "train" else score_ours, args.rounds, 1, device)
        child: dict[str, float] = {"peak_rss_mib": _peak_rss_mib()}
        if device.type == "cuda":
            child["peak_cuda_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        print(json.dumps(child))
        return

    train_s: dict[str, list[float]] = {"genood": [], "normflows": []}
    score_s: dict[str, list[float]] = {"genood": [], "normflows": []}
    rounds = max(args.rounds // 3, 1), max(args.rounds // 6, 1)
    gemm: list[float] = []
    for _ in range(3):  # alternate so drift in machine state hits both alike
        # The peak too, every round, keeping the best: one reading at the end of the run was
        # sometimes taken while another job had the cores (262 instead of ~900 GFLOP/s, bf16).
        gemm.append(gemm_peak_flops(dtype, device, seconds=0.3))
        train_s["genood"].append(_time(train_ours, rounds[0], device=device))
        train_s["normflows"].append(_time(train_theirs, rounds[0], device=device))
        score_s["genood"].append(_time(score_ours, rounds[1], warmup=1, device=device))
        score_s["normflows"].append(_time(score_theirs, rounds[1], warmup=1, device=device))
    result: dict[str, object] = {
        "genood_train_img_s": args.batch / statistics.median(train_s["genood"]),
        "normflows_train_img_s": args.batch / statistics.median(train_s["normflows"]),
        "genood_score_img_s": args.score_batch / statistics.median(score_s["genood"]),
        "normflows_score_img_s": args.score_batch / statistics.median(score_s["normflows"]),
        "peak_rss_mib": _peak_rss_mib(),
        "settings": asdict(settings),
    }
    if device.type == "cuda":
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    result["gemm_peak_flops"] = max(gemm)
    result["compile_s"] = compile_s
    result["allocator"] = allocator.STATE
    result["train_flops_per_image"] = train_flops
    result["train_peak_share"] = (
        train_flops * result["genood_train_img_s"] / result["gemm_peak_flops"]
    )
    result["train_ratio"] = result["genood_train_img_s"] / result["normflows_train_img_s"]
    result["score_ratio"] = result["genood_score_img_s"] / result["normflows_score_img_s"]
    if args.memory:
        argv = [a for a in sys.argv[1:] if a not in ("--memory", "--json")]
        result.update(_peak_memory_by_phase(argv))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"arch {settings.arch} {shape} L={settings.levels} K={settings.steps} "
        f"hidden={settings.hidden}, genood {settings.precision}"
        f"{' channels_last' if settings.channels_last else ''}"
        f"{' compiled' if settings.compile else ''}, normflows fp32, on {settings.device}, "
        f"{settings.threads} threads"
    )
    print(f"{'':10s} {'genood':>10s} {'normflows':>10s} {'ratio':>7s}")
    for kind in ("train", "score"):
        g, n = result[f"genood_{kind}_img_s"], result[f"normflows_{kind}_img_s"]
        print(f"{kind + ' img/s':10s} {g:10.1f} {n:10.1f} {g / n:7.2f}x")
    print(
        f"training: {train_flops / 1e9:.3f} GFLOP/image, "
        f"{train_flops * result['genood_train_img_s'] / 1e9:.0f} GFLOP/s = "
        f"{100 * result['train_peak_share']:.0f}% of a {settings.precision} GEMM's "
        f"{result['gemm_peak_flops'] / 1e9:.0f} GFLOP/s"
    )
    for key, value in result.items():
        if "peak" in key and key not in ("gemm_peak_flops", "train_peak_share"):
            print(f"{key} {value:.0f}")


if __name__ == "__main__":
    main()
