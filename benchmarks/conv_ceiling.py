"""The ceiling of a Glow's scoring pass with PyTorch's own convolution kernels (issue 18).

Scoring a batch is, at the arithmetic level, its convolutions plus everything else (ActNorm,
ReLU, the coupling's affine map, the priors). This benchmark records every convolution of one
scoring pass of the benchmark Glow of ``throughput.py`` (1x32x32, L=3, K=8, hidden 200; its
1x1 permutations included) with its shapes, as the pass runs it (under bf16 autocast with
``--precision bf16``), then times each one *alone* in every variant: bf16 and fp32, channels-last and contiguous, and
for a 3x3 convolution with at most 16 outputs (the coupling's last layer) also kn2row, one 1x1
convolution to ``9 * C_out`` channels plus nine shifted fp32 sums. The sum of each
convolution's fastest variant is the time no implementation that calls these kernels can beat,
even if every other operation cost nothing and each layer picked its own precision, memory
layout and algorithm. ``batch / sum`` is then an upper bound on scoring
images/s, and that bound over normflows' scoring images/s, timed in the same run, is the best
ratio these kernels allow.

Both libraries score with the allocator told to keep freed memory
(``genood.allocator.keep_freed_memory``, the ``genood`` command's setting; see RESULTS.md:
with glibc's defaults normflows pays page faults that are not arithmetic). Prints a table by
layer kind and the bound; ``--json`` prints one JSON object. The images are uniform noise: the
cost does not depend on the pixels.

Usage:
    python benchmarks/conv_ceiling.py --precision bf16
    python benchmarks/conv_ceiling.py --precision bf16 --json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from genood.allocator import keep_freed_memory
from genood.models import build

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import normflows_glow  # the peer exactly as throughput.py builds it

VARIANTS = (
    ("bf16", True),
    ("bf16", False),
    ("fp32", True),
    ("fp32", False),
)


@dataclass(frozen=True)
class ConvCall:
    """One convolution of the pass: shapes and arguments, not data."""

    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    has_bias: bool
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int

    @property
    def flops(self) -> float:
        batch, _, height, width = self.input_shape
        out_ch, in_per_group, kh, kw = self.weight_shape
        out_h = (height + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[
            0
        ] + 1
        out_w = (width + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[
            1
        ] + 1
        return 2.0 * batch * out_h * out_w * out_ch * in_per_group * kh * kw

    @property
    def kind(self) -> str:
        _, in_ch, height, _ = self.input_shape
        out_ch, _, kh, kw = self.weight_shape
        return f"{kh}x{kw} {in_ch}->{out_ch} at {height}x{height}"


class _Recorder(TorchDispatchMode):
    """Records every ``aten.convolution`` that reaches the kernels (after autocast's casts)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[ConvCall] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in (torch.ops.aten.conv2d.default, torch.ops.aten.convolution.default):
            self.calls.append(_conv_call(func, list(args), kwargs or {}))
        return func(*args, **(kwargs or {}))


def _conv_call(func: Any, args: list[Any], kwargs: dict[str, Any]) -> ConvCall:
    """A :class:`ConvCall` from ``aten.conv2d`` (inference mode reaches the mode with it) or
    ``aten.convolution`` arguments, defaults filled in."""
    names = ["input", "weight", "bias", "stride", "padding", "dilation"]
    if func is torch.ops.aten.convolution.default:
        names += ["transposed", "output_padding", "groups"]
    else:
        names += ["groups"]
    given = dict(zip(names, args, strict=False)) | kwargs
    if given.get("transposed"):
        raise ValueError("a transposed convolution in a Glow's scoring pass: not timed here")

    def pair(value: Any) -> tuple[int, int]:
        value = (
            [1] if value is None else list(value) if isinstance(value, list | tuple) else [value]
        )
        return (int(value[0]), int(value[-1]))

    return ConvCall(
        tuple(given["input"].shape),
        tuple(given["weight"].shape),
        given.get("bias") is not None,
        pair(given.get("stride", 1)),
        pair(given.get("padding", 0)),
        pair(given.get("dilation", 1)),
        int(given.get("groups", 1)),
    )


def _median_seconds(fn: Callable[[], object], reps: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_variants(call: ConvCall, reps: int, precisions: tuple[str, ...]) -> dict[str, float]:
    """Seconds of ``call`` alone in each (precision, layout) variant of ``precisions``."""
    out: dict[str, float] = {}
    for precision, channels_last in VARIANTS:
        if precision not in precisions:
            continue
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        x = torch.randn(call.input_shape, dtype=dtype).contiguous(memory_format=fmt)
        w = (0.1 * torch.randn(call.weight_shape, dtype=dtype)).contiguous(memory_format=fmt)
        b = torch.zeros(call.weight_shape[0], dtype=dtype) if call.has_bias else None

        def conv(x: torch.Tensor = x, w: torch.Tensor = w, b: torch.Tensor | None = b) -> object:
            return F.conv2d(x, w, b, call.stride, call.padding, call.dilation, call.groups)

        with torch.inference_mode():
            out[f"{precision}-{'cl' if channels_last else 'nc'}"] = _median_seconds(conv, reps)
            if channels_last and _kn2row_applies(call):
                out[f"{precision}-kn2row"] = _median_seconds(_kn2row(x, w, b), reps)
    return out


def _kn2row_applies(call: ConvCall) -> bool:
    """A 3x3, stride-1, padding-1 convolution with few outputs: worth trying as kn2row."""
    out_ch, _, kh, kw = call.weight_shape
    return (
        (kh, kw) == (3, 3)
        and call.stride == (1, 1)
        and call.padding == (1, 1)
        and call.dilation == (1, 1)
        and call.groups == 1
        and out_ch <= 16
    )


def _kn2row(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> Callable[[], object]:
    """A 3x3 convolution as one 1x1 convolution to ``9 * C_out`` channels (one per tap, a GEMM
    that fills the kernels' tiles) and the nine shifted maps summed in fp32 (Vasudevan et al.
    2017). Its result agrees with the 3x3 convolution to the operands' rounding."""
    out_ch, in_ch = w.shape[:2]
    taps = w.permute(2, 3, 0, 1).reshape(9 * out_ch, in_ch, 1, 1)
    taps = taps.contiguous(memory_format=torch.channels_last)
    batch, _, height, width = x.shape

    def run() -> torch.Tensor:
        maps = F.conv2d(x, taps).float().contiguous().view(batch, 9, out_ch, height, width)
        padded = F.pad(maps, (1, 1, 1, 1))
        total = padded[:, 0, :, :height, :width].clone()
        for tap in range(1, 9):
            row, col = divmod(tap, 3)
            total += padded[:, tap, :, row : row + height, col : col + width]
        return total if b is None else total + b.float().view(1, -1, 1, 1)

    return run


def _autocast(precision: str) -> AbstractContextManager[object]:
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--score-batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=15, help="timed calls per variant")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = (1, 32, 32)
    ours = build(
        "glow", shape, levels=3, steps=8, hidden=200, coupling="affine", permutation="lu",
        learn_prior=True,
    ).to(memory_format=torch.channels_last)  # fmt: skip
    theirs = normflows_glow(shape, 3, 8, 200)
    images = torch.randint(0, 256, (args.score_batch, *shape), dtype=torch.uint8)
    x_theirs = images.float() / 256.0 - 0.5 + 1 / 512
    with torch.no_grad():  # data-dependent ActNorm initialisation of both
        ours.log_prob(ours.preprocess(images, dequantize=True))
        theirs.log_prob(x_theirs, None)
    ours.eval()
    theirs.eval()

    def score_ours() -> object:
        with torch.inference_mode(), _autocast(args.precision):
            return ours.log_prob(ours.preprocess(images, dequantize=False))

    def score_theirs() -> object:
        with torch.inference_mode():
            return theirs.log_prob(x_theirs, None)

    # bf16: each layer may take bf16 or fp32, whichever is faster; fp32 (the setting of an
    # fp32-only CPU, where bf16 is emulated): fp32 kernels only.
    precisions = ("bf16", "fp32") if args.precision == "bf16" else ("fp32",)
    as_run = f"{args.precision}-cl"
    recorder = _Recorder()
    with recorder:
        score_ours()
    by_kind: dict[str, dict[str, Any]] = {}
    cache: dict[ConvCall, dict[str, float]] = {}
    for call in recorder.calls:
        if call not in cache:
            cache[call] = time_variants(call, args.reps, precisions)
        row = by_kind.setdefault(call.kind, {"calls": 0, "best_s": 0.0, "flops": 0.0})
        best = min(cache[call], key=lambda v: cache[call][v])
        row["calls"] += 1
        row["best_s"] += cache[call][best]
        row["flops"] += call.flops
        row["best_variant"] = best
        row["as_run_s"] = row.get("as_run_s", 0.0) + cache[call][as_run]
    conv_s = sum(row["best_s"] for row in by_kind.values())
    ours_s = statistics.median(_median_seconds(score_ours, 5) for _ in range(3))
    theirs_s = statistics.median(_median_seconds(score_theirs, 5) for _ in range(3))
    n = args.score_batch
    result = {
        "precision": args.precision,
        "threads": args.threads,
        "score_batch": n,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "convolutions": len(recorder.calls),
        "conv_best_s": conv_s,
        "genood_score_s": ours_s,
        "conv_share_of_genood": conv_s / ours_s,
        "ceiling_img_s": n / conv_s,
        "genood_score_img_s": n / ours_s,
        "normflows_score_img_s": n / theirs_s,
        "score_ratio": theirs_s / ours_s,
        "ceiling_ratio": theirs_s / conv_s,
        "by_kind": by_kind,
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(
        f"{'convolution':28s} {'calls':>5s} {'best ms':>8s} {'GFLOP/s':>8s} {as_run + ' ms':>12s}"
        "  best variant"
    )
    for kind, row in sorted(by_kind.items(), key=lambda kv: -kv[1]["best_s"]):
        rate = row["flops"] / row["best_s"] / 1e9
        print(
            f"{kind:28s} {row['calls']:5d} {1e3 * row['best_s']:8.2f} {rate:8.0f} "
            f"{1e3 * row['as_run_s']:12.2f}  {row['best_variant']}"
        )
    print(
        f"\nconvolutions alone, each at its fastest: {1e3 * conv_s:.1f} ms per batch of {n} "
        f"-> at most {n / conv_s:,.0f} images/s\n"
        f"genood's scoring pass ({args.precision}): {1e3 * ours_s:.1f} ms ({n / ours_s:,.0f} "
        f"images/s; convolutions {100 * conv_s / ours_s:.0f}% of it)\n"
        f"normflows (fp32): {n / theirs_s:,.0f} images/s -> genood {theirs_s / ours_s:.2f}x, "
        f"ceiling {theirs_s / conv_s:.2f}x"
    )


if __name__ == "__main__":
    main()
