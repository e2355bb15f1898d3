"""Device, numeric precision and memory format of a training run.

Three precisions are offered, each only where it keeps results within stated tolerances of fp32:

* ``fp32``: the reference, and what exact resume and the DDP equivalence test are stated for.
* ``bf16``: autocast to bfloat16 for matrix products and convolutions (CUDA, and CPUs with AMX
  or AVX512-BF16). Flows keep their log-determinants, priors and the loss in float32; per-sample
  bits/dim of a bf16 forward are within 0.01 of fp32, and their mean within 0.002
  (``tests/train/test_precision.py``; about 5e-4 is typical). On a CPU without bf16 hardware, autocast is emulated and
  several times slower than fp32, so ``bf16`` falls back to ``fp32`` with a warning.
* ``fp16``: autocast to float16 with a dynamic gradient scaler; CUDA only.
* ``auto``: ``bf16`` where a timed check on this machine finds it at least 1.2x faster than
  fp32, else ``fp32`` (:mod:`genood.train.speedcheck`; the reason goes into ``environment.json``).

``channels_last`` changes only the memory layout (results agree with fp32 NCHW to float
rounding), which makes convolutions faster under bf16 on CUDA and CPU AMX.
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` on a machine without CUDA is an error.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        local_rank: the CUDA device of this process under DDP (one GPU per process).
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {device!r} was requested but this PyTorch ({torch.__version__}) sees no "
                'CUDA device; use --device cpu (or train.device = "cpu")'
            )
        if device == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device(device)
    if device != "cpu":
        raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    return torch.device("cpu")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AMX tiles or AVX512-BF16)."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


@dataclass(frozen=True)
class Precision:
    """The resolved numeric precision.

    Attributes:
        name: ``fp32``, ``bf16`` or ``fp16`` (what actually runs).
        requested: what the config asked for.
        note: why ``name`` differs from ``requested`` (empty when it does not).
    """

    name: str
    requested: str
    device_type: str
    note: str = ""

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, ``None`` for fp32."""
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    def autocast(self) -> AbstractContextManager[object]:
        """The autocast context of the forward pass (a no-op for fp32)."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A dynamic loss scaler for fp16 (float16 gradients underflow without one)."""
        if self.name != "fp16":
            return None
        return torch.amp.GradScaler(self.device_type)


def resolve_precision(precision: str, device: torch.device) -> Precision:
    """Check ``precision`` against the device and fall back where it would not help.

    ``auto`` times fp32 against bf16 on ``device`` (cached per machine) and picks the faster.

    Raises:
        ValueError: for an unknown precision, or fp16 on CPU.
    """
    if precision not in PRECISIONS:
        raise ValueError(
            f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}"
        )
    if precision == "auto":
        from genood.train.speedcheck import choose_precision

        name, note = choose_precision(device)
        return Precision(name, precision, device.type, note)
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(
            "fp16 training needs CUDA (float16 autocast on CPU is slow and unscaled); "
            "use --precision bf16 or fp32 on CPU"
        )
    if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        note = (
            "bf16 requested but this CPU has neither AMX nor AVX512-BF16, where bfloat16 autocast "
            "is emulated and slower than fp32; training in fp32"
        )
        warnings.warn(note, stacklevel=2)
        return Precision("fp32", precision, device.type, note)
    return Precision(precision, precision, device.type)


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """A 4-D batch in the channels-last memory format (values unchanged)."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
