"""Checkpoints: atomic writes, safe loads, RNG states.

A checkpoint is a ``torch.save`` of a dict holding only tensors and plain Python values (ints,
floats, strings, lists, dicts, tuples, ``None``): model, optimiser and schedule state, the step,
the guard's counters, every RNG state (as tensors) and the resolved config as a TOML string. It
is read back with ``torch.load(..., weights_only=True)``, which refuses to unpickle anything
else, so a checkpoint from an untrusted source cannot run code.

Writes are atomic: the dict goes to a temporary file in the same folder, which is flushed,
fsync'ed and renamed over the target (``os.replace`` is atomic on POSIX and Windows), and the
folder is fsync'ed so that the rename itself survives a power cut. A process killed at any
moment leaves either the previous checkpoint or the new one, never a torn file. Files get the
mode ``0o666 & ~umask``, like any file the process opens. The recipe lives in :mod:`genood.io`;
``write_text_atomic`` is re-exported here for the run folder's small files.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genood.io import atomic_path, write_text_atomic

__all__ = ["capture_rng", "load", "restore_rng", "save_atomic", "write_text_atomic"]

FORMAT = "genood-checkpoint"
VERSION = 1


def save_atomic(state: dict[str, Any], path: str | Path) -> None:
    """``torch.save(state)`` to ``path`` atomically, with the umask's mode (:mod:`genood.io`)."""
    with atomic_path(path) as temporary, open(temporary, "wb") as f:
        torch.save(state, f)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint without unpickling arbitrary objects (``weights_only=True``).

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file is not a genood checkpoint (or is corrupt).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise ValueError(
            f"{path} is not a readable genood checkpoint ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a genood checkpoint (no format marker {FORMAT!r})")
    if int(state.get("version", 0)) > VERSION:
        raise ValueError(
            f"{path} was written by a newer genood (checkpoint version {state['version']}, "
            f"this one reads up to {VERSION}); upgrade genood"
        )
    return state


# ----------------------------------------------------------------------------- RNG states
def capture_rng() -> dict[str, Any]:
    """Every global RNG state as tensors and plain values (safe for ``weights_only`` loads)."""
    np_state: tuple[Any, ...] = np.random.get_state(legacy=True)  # type: ignore[assignment]
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {
            "version": int(py_state[0]),
            "state": torch.tensor(py_state[1], dtype=torch.int64),
            "gauss": py_state[2],
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`.

    The states may arrive on a GPU (a checkpoint loaded with ``map_location="cuda"``); RNG
    states are byte tensors that the setters and NumPy read on the CPU.
    """
    torch.set_rng_state(state["torch"].cpu())
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np_state["keys"].cpu().numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    py_state = state["python"]
    random.setstate(
        (py_state["version"], tuple(py_state["state"].cpu().tolist()), py_state["gauss"])
    )
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available():
        for index, cuda_state in enumerate(cuda_states[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), index)
