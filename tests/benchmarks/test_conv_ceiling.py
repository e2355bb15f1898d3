"""benchmarks/conv_ceiling.py: it records every convolution of a scoring pass, with its FLOPs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch
from torch.utils.flop_counter import FlopCounterMode

from genood.models import build

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("conv_ceiling", BENCHMARKS / "conv_ceiling.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["conv_ceiling"] = module
    spec.loader.exec_module(module)
    return module


def _small_glow() -> torch.nn.Module:
    model = build("glow", (1, 8, 8), levels=2, steps=2, hidden=8, coupling="affine",
                  permutation="lu", learn_prior=True)  # fmt: skip
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        model.log_prob(model.preprocess(images, dequantize=True))
    return model.eval()


def test_records_every_convolution_of_the_pass_with_torchs_flop_count() -> None:
    conv_ceiling = _load()
    model = _small_glow()
    x = model.preprocess(torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8), dequantize=False)
    recorder = conv_ceiling._Recorder()
    with torch.inference_mode(), recorder:
        model.log_prob(x)
    # per step: the 1x1 permutation and the coupling's 3 convolutions; per split, the prior's
    assert len(recorder.calls) == 2 * 2 * 4 + 1
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model.log_prob(x)
    assert sum(call.flops for call in recorder.calls) == counter.get_total_flops()


def test_times_each_variant_of_a_call() -> None:
    conv_ceiling = _load()
    call = conv_ceiling.ConvCall((2, 3, 8, 8), (4, 3, 3, 3), True, (1, 1), (1, 1), (1, 1), 1)
    assert call.kind == "3x3 3->4 at 8x8"
    times = conv_ceiling.time_variants(call, reps=1, precisions=("fp32",))
    assert set(times) == {"fp32-cl", "fp32-nc", "fp32-kn2row"}
    assert all(t > 0 for t in times.values())


def test_kn2row_is_the_same_convolution() -> None:
    conv_ceiling = _load()
    x = torch.randn(2, 5, 6, 7).contiguous(memory_format=torch.channels_last)
    w = torch.randn(4, 5, 3, 3)
    b = torch.randn(4)
    expected = torch.nn.functional.conv2d(x, w, b, padding=1)
    torch.testing.assert_close(conv_ceiling._kn2row(x, w, b)(), expected, rtol=1e-5, atol=1e-5)
