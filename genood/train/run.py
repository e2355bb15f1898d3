"""The run folder: what a training run leaves on disk.

::

    RUN/
      config.toml           the resolved RunConfig
      preprocessing.json    pad/channels/resize applied to every data set the model sees
      environment.json      versions, device, threads, CPU/GPU, git commit, command line
      metrics.jsonl         one JSON object per event (train log, eval, skip, start, end)
      checkpoints/last.pt   the latest checkpoint (atomic; resumable)
      done.json             written when the run finished, with its final metrics
      samples/step-XXXXXXX.png
      scores/NAME-SPLIT.npz written by ``genood score``
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genood import __version__, allocator
from genood.io import json_default
from genood.train.checkpoint import write_text_atomic


class RunFolder:
    """Paths and small files of one run; only the main rank writes."""

    def __init__(self, root: str | Path, writer: bool = True) -> None:
        self.root = Path(root)
        self.writer = writer

    # ----------------------------------------------------------------- paths
    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    @property
    def preprocessing_path(self) -> Path:
        return self.root / "preprocessing.json"

    @property
    def environment_path(self) -> Path:
        return self.root / "environment.json"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint_dir / "last.pt"

    @property
    def done_path(self) -> Path:
        return self.root / "done.json"

    @property
    def samples_dir(self) -> Path:
        return self.root / "samples"

    @property
    def scores_dir(self) -> Path:
        return self.root / "scores"

    def sample_path(self, step: int) -> Path:
        return self.samples_dir / f"step-{step:07d}.png"

    # ----------------------------------------------------------------- state
    def has_checkpoint(self) -> bool:
        return self.last_checkpoint.is_file()

    def done(self) -> dict[str, Any] | None:
        """The final metrics of a finished run, ``None`` while it is not finished.

        Raises:
            ValueError: ``done.json`` is not a JSON object (naming the file and the fix).
        """
        if not self.done_path.is_file():
            return None
        return read_json_object(self.done_path, "delete it and run genood train again")

    def results(self) -> list[str]:
        """What :meth:`clear` would delete that is worth keeping, one phrase per item.

        A checkpoint, ``done.json``, files in ``scores/`` or ``samples/``, and a
        ``metrics.jsonl`` with evaluations or an end (train-loss lines alone, which a run killed
        before its first checkpoint leaves, are not results).
        """
        found = []
        if self.last_checkpoint.is_file():
            found.append(str(self.last_checkpoint.relative_to(self.root)))
        if self.done_path.is_file():
            found.append(self.done_path.name)
        for folder in (self.scores_dir, self.samples_dir):
            count = sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
            if count:
                found.append(f"{folder.name}/ ({count} file{'s' * (count != 1)})")
        events = [r.get("event") for r in read_metrics(self.metrics_path)]
        evaluated = sum(1 for e in events if e in ("eval", "end"))
        if evaluated:
            found.append(f"{self.metrics_path.name} ({len(events)} events, {evaluated} eval/end)")
        return found

    def clear(self) -> None:
        """Forget a previous run in this folder (``--no-resume``); ``background/`` is kept."""
        if not self.writer:
            return
        for path in (self.checkpoint_dir, self.samples_dir, self.scores_dir):
            shutil.rmtree(path, ignore_errors=True)
        for path in (self.metrics_path, self.done_path):
            path.unlink(missing_ok=True)

    # ----------------------------------------------------------------- writing
    def write_text(self, path: Path, text: str) -> None:
        if self.writer:
            write_text_atomic(path, text)

    def write_json(self, path: Path, value: Any) -> None:
        self.write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")

    def log(self, event: str, **values: Any) -> dict[str, Any]:
        """Append one event to ``metrics.jsonl`` (flushed at once) and return it."""
        record = {"event": event, **values, "time": round(time.time(), 3)}
        if self.writer:
            self.root.mkdir(parents=True, exist_ok=True)
            with self.metrics_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True, default=json_default) + "\n")
        return record

    def truncate_metrics(self, step: int) -> None:
        """Drop events logged after ``step`` (a killed run logged past its last checkpoint)."""
        if not self.writer or not self.metrics_path.is_file():
            return
        kept = [
            json.dumps(record, sort_keys=True)
            for record in read_metrics(self.metrics_path)  # a torn last line is dropped
            if record.get("step", 0) <= step
        ]
        write_text_atomic(self.metrics_path, "".join(line + "\n" for line in kept))

    def metrics(self) -> list[dict[str, Any]]:
        """Every event of ``metrics.jsonl``."""
        return read_metrics(self.metrics_path)


def read_json_object(path: str | Path, fix: str) -> dict[str, Any]:
    """A JSON object from ``path``; a corrupt file raises a ``ValueError`` naming it and ``fix``."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); {fix}") from error
    if not isinstance(value, dict):
        raise ValueError(f"{path} should hold a JSON object, found {type(value).__name__}; {fix}")
    return value


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Parse a ``metrics.jsonl`` file (a torn last line from a killed process is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


# ----------------------------------------------------------------------------- environment
def environment(
    device: torch.device, threads: int, world_size: int, **extra: Any
) -> dict[str, Any]:
    """What produced a run: versions, hardware, threads, git commit and command line."""
    record: dict[str, Any] = {
        "genood": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "device": str(device),
        "threads": threads,
        "world_size": world_size,
        "command": sys.argv,
        "git_commit": _git_commit(),
        "allocator": allocator.STATE,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
        record["cuda"] = torch.version.cuda
        record["cudnn"] = torch.backends.cudnn.version()
    record.update(extra)
    return record


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    """The commit of the genood source tree, when it is a git checkout (else empty)."""
    here = Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""
