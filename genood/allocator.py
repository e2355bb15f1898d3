"""The ``genood`` command's memory allocator setting: glibc keeps freed memory.

PyTorch on a CPU takes its activations and gradients from the C library's ``malloc``. glibc
serves a block above its mmap threshold from fresh pages and hands them back to the system when
the block is freed, and trims the heap's top the same way; a training step that allocates and
frees the same large tensors every step then pays page faults (the kernel zeroing pages) every
step. :func:`keep_freed_memory` tells glibc to keep freed memory for reuse instead
(``mallopt``: mmap threshold 1 GiB, trim threshold 2 GiB, the largest ``mallopt`` takes, and a
top pad of 256 MiB). ``benchmarks/throughput.py --tuned-malloc`` applies the same setting.

Measured on the 2-core AVX512-BF16 EPYC (benchmarks/RESULTS.md, session 8): 300 steps of
``configs/fashion-mnist-cpu.toml`` in bf16 took 25.4 and 26.0 s of training time with it against
33.1 and 28.6 s without (alternated, nothing else running); normflows' fp32 scoring, which
unmaps its temporaries on every call, went from 190-320 to 500-550 images/s. The price: the
process keeps its peak memory until it exits, instead of returning freed blocks.

Only the ``genood`` command applies it (``genood.cli.main``), never an ``import genood``; only
on glibc; and not when the user has set any ``MALLOC_*`` variable (their choice wins) or
``GENOOD_MALLOC=default``. :data:`STATE` says what happened; ``environment.json`` records it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from collections.abc import Mapping

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
INT_MAX = 2**31 - 1
SETTINGS = {M_MMAP_THRESHOLD: 2**30, M_TRIM_THRESHOLD: INT_MAX, M_TOP_PAD: 2**28}

STATE = "glibc defaults (not changed: the genood command was not run)"


def keep_freed_memory(environ: Mapping[str, str] | None = None) -> str:
    """Tell glibc's malloc to keep freed memory; return (and store in :data:`STATE`) what was
    done, or why not."""
    global STATE
    env = os.environ if environ is None else environ
    STATE = _apply(env)
    return STATE


def _apply(env: Mapping[str, str]) -> str:
    if env.get("GENOOD_MALLOC", "").lower() == "default":
        return "allocator defaults (GENOOD_MALLOC=default)"
    chosen = sorted(k for k in env if k.startswith("MALLOC_"))
    if chosen:
        return f"allocator left to the user's settings ({', '.join(chosen)})"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "allocator defaults (not glibc)"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        applied = all(libc.mallopt(key, value) == 1 for key, value in SETTINGS.items())
    except (OSError, AttributeError) as error:
        return f"allocator defaults (mallopt unavailable: {error})"
    if not applied:
        return "allocator defaults (glibc refused mallopt)"
    return "glibc keeps freed memory (mmap threshold 1 GiB, trim threshold 2 GiB, top pad 256 MiB)"
