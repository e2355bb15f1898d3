"""Devices, precisions and memory format, with the tolerances they are stated to keep."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from train_helpers import TINY_GLOW, tiny_config

from genood.models import build
from genood.train import fit
from genood.train import precision as prec

CPU = torch.device("cpu")


def _batch(shape: tuple[int, int, int] = (1, 8, 8), n: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 160, shape[2])
    return (torch.randint(0, 80, (n, *shape), generator=g) + ramp).to(torch.uint8)


def _trained_glow() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build("glow", (1, 8, 8), **TINY_GLOW)
    model.train()
    with torch.no_grad():
        model.log_prob(model.preprocess(_batch(), dequantize=True))  # ActNorm initialisation
        for param in model.parameters():  # as if trained: zero-initialised couplings do work
            param.add_(0.1 * torch.randn_like(param))
    return model.eval()


def test_resolve_device() -> None:
    assert prec.resolve_device("cpu") == CPU
    assert prec.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        prec.resolve_device("tpu")


def test_resolve_precision() -> None:
    assert prec.resolve_precision("fp32", CPU).dtype is None
    with pytest.raises(ValueError, match="unknown precision"):
        prec.resolve_precision("int8", CPU)
    with pytest.raises(ValueError, match="fp16 training needs CUDA"):
        prec.resolve_precision("fp16", CPU)


def test_bf16_falls_back_on_cpus_without_bf16_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prec, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="neither AMX nor AVX512-BF16"):
        resolved = prec.resolve_precision("bf16", CPU)
    assert resolved.name == "fp32" and resolved.requested == "bf16" and resolved.note
    monkeypatch.setattr(prec, "cpu_has_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert prec.resolve_precision("bf16", CPU).dtype == torch.bfloat16


def test_bf16_bits_per_dim_within_stated_tolerance_of_fp32() -> None:
    """bf16 autocast keeps per-sample bits/dim within 0.01 of fp32 (mean within 0.002)."""
    model = _trained_glow()
    x = model.preprocess(_batch(), dequantize=False)
    with torch.no_grad():
        reference = model.bits_from_log_prob(model.log_prob(x))
        with prec.Precision("bf16", "bf16", "cpu").autocast():
            low = model.bits_from_log_prob(model.log_prob(x).float())
    assert (low - reference).abs().max() < 0.01
    assert (low - reference).mean().abs() < 0.002


def test_channels_last_gives_the_same_bits_per_dim() -> None:
    model = _trained_glow()
    x = model.preprocess(_batch(), dequantize=False)
    with torch.no_grad():
        reference = model.bits_from_log_prob(model.log_prob(x))
        model.to(memory_format=torch.channels_last)
        permuted = model.bits_from_log_prob(model.log_prob(prec.to_channels_last(x)))
    torch.testing.assert_close(permuted, reference, atol=1e-5, rtol=0)


def test_training_in_channels_last_and_bf16(
    tmp_path: Path, tiny_data: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """bf16 (forced even without bf16 hardware) and channels_last train to similar losses."""
    monkeypatch.setattr(prec, "cpu_has_bf16", lambda: True)
    reference = fit(tiny_config(tiny_data["train"], steps=4), tmp_path / "fp32", progress=False)
    fast = fit(
        tiny_config(tiny_data["train"], steps=4, precision="bf16", channels_last=True),
        tmp_path / "bf16",
        progress=False,
    )
    assert fast["nonfinite_skipped"] == 0
    assert fast["loss_bpd"] == pytest.approx(reference["loss_bpd"], abs=0.05)
