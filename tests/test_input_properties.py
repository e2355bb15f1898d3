"""Property-based checks (hypothesis) of every input a user controls (issue 16).

Inputs: data-set specs, ``.npz`` contents (keys, dtypes, shapes, label ranges, corrupt bytes),
image folders (corrupt, oversized, mixed modes and sizes), TOML configs and ``--set`` values, and
run folders with a missing or corrupt file (a code-executing pickle among them). For each
generated case the real ``genood`` entry point runs in-process, and the contract of
``genood.cli`` must hold:

- success (exit 0), or exactly one ``genood COMMAND: error: ...`` line on stderr and exit 1,
  never a traceback, never the "a bug in genood" fallback (an exception nobody anticipated);
- no file outside the command's output folder is created, changed or deleted (the inputs, the
  cache, the working folder);
- bounded memory: decoding and preprocessing run with the memory budget lowered to 64 MiB (so
  the size guards must refuse in time) under ``tracemalloc``, whose peak must stay below
  256 MiB; training and scoring must not raise the process's peak RSS by more than 1 GiB.

Case counts are fixed by ``settings(max_examples=...)`` below (``derandomize=True``: the same
cases on every run); ``CASES`` adds them up.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import resource
import shutil
import tempfile
import tracemalloc
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

import genood.data.imageset as imageset
import genood.data.sources as sources
from genood import config as cfg
from genood.cli import main
from genood.train import fit

SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
EXAMPLES = {"specs": 60, "npz": 80, "folders": 40, "configs": 30, "runs": 20}
CASES = sum(EXAMPLES.values())
BUDGET = 64 << 20
TRACED_PEAK = 256 << 20
RSS_GROWTH_KIB = 1 << 20
TINY_GLOW = {"levels": 1, "steps": 1, "hidden": 4}


# ----------------------------------------------------------------------------- harness
@pytest.fixture(autouse=True)
def _offline_and_small(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """No network, no package clients on PATH, a 64 MiB decode budget."""

    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(sources, "urlopen", no_network)
    monkeypatch.setenv("PATH", str(tmp_path_factory.mktemp("empty-bin")))
    monkeypatch.setattr(imageset, "memory_budget", lambda: BUDGET)


def snapshot(*roots: Path, skip: Path | None = None) -> dict[str, tuple[int, int, int]]:
    """Every file and folder under ``roots`` (except ``skip``): size, mtime, mode."""
    seen: dict[str, tuple[int, int, int]] = {}
    for root in roots:
        for path in [root, *root.rglob("*")] if root.exists() else []:
            if skip is not None and (path == skip or skip in path.parents):
                continue
            info = path.lstat()
            size = 0 if path.is_dir() else info.st_size
            seen[str(path)] = (size, 0 if path.is_dir() else info.st_mtime_ns, info.st_mode)
    return seen


def run_cli(argv: list[str], sandbox: Path, out: Path | None, traced: bool) -> tuple[int, str]:
    """Run ``genood argv`` in ``sandbox``; check the contract; return exit code and stderr."""
    watched = [sandbox, Path(os.environ["GENOOD_CACHE"])]
    before = snapshot(*watched, skip=out)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stdout, stderr = io.StringIO(), io.StringIO()
    if traced:
        tracemalloc.start()
    try:
        with (
            contextlib.chdir(sandbox),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            code = main(argv)
    finally:
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
        if traced:
            tracemalloc.stop()
    err = stderr.getvalue()
    command = argv[0]
    assert "Traceback" not in err and "a bug in genood" not in err, (argv, err)
    errors = [line for line in err.splitlines() if line.startswith("genood ")]
    # --hypothesis-show-statistics lists how the cases ended
    reason = errors[0].split("error: ", 1)[-1].replace(str(sandbox), "SANDBOX") if errors else ""
    event(f"exit {code}" + (f": {reason[:60]}" if reason else ""))
    if code == 0:
        assert not errors, (argv, err)
    else:
        assert code == 1, (argv, code, err)
        assert len(errors) == 1 and errors[0].startswith(f"genood {command}: error: "), (argv, err)
    assert snapshot(*watched, skip=out) == before, f"{argv} touched files outside {out}"
    assert peak < TRACED_PEAK, (argv, peak)
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert growth < RSS_GROWTH_KIB, (argv, growth)
    return code, err


@contextlib.contextmanager
def sandbox() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="genood-prop-") as name:
        root = Path(name)
        np.savez(
            root / "good.npz",
            images=np.random.default_rng(0).integers(0, 256, (8, 1, 8, 8), dtype=np.uint8),
            labels=np.arange(8) % 3,
        )
        (root / "garbage.bin").write_bytes(b"\x00\x01not an archive")
        (root / "folder").mkdir()
        (root / "images").mkdir()
        for index in range(3):
            Image.new("L", (8, 8), color=index * 60).save(root / "images" / f"{index}.png")
        yield root


# ----------------------------------------------------------------------------- data specs
PATHS = ["good.npz", "missing.npz", "folder", "garbage.bin", "images", "", " ", "images/0.png"]
named = st.tuples(
    st.sampled_from(["mnist", "fashion-mnist", "cifar10", "svhn", "mnist-10k", "celeba", "nope"]),
    st.sampled_from(["", ":train", ":test", ":all", ":valid", ":", ":a:b"]),
).map("".join)
pathed = st.tuples(
    st.sampled_from(["npz:", "imagefolder:", "NPZ:", "probe:inverted:npz:"]), st.sampled_from(PATHS)
).map("".join)
probes = st.sampled_from(
    ["probe:noise:1x8x8", "probe:nope", "probe:noise:1x99999x99999", "probe:noise:2x8x8", "probe:"]
)
specs = st.one_of(named, pathed, probes, st.text(max_size=24))
preprocessing = st.lists(
    st.tuples(
        st.sampled_from(["--pad-to", "--channels", "--resize"]),
        st.sampled_from([0, 1, 3, 8, 8, 12, 12, 4, -1, 10**6]),
    ),
    max_size=2,
)


@settings(max_examples=EXAMPLES["specs"], **SETTINGS)
@given(
    spec=specs,
    limit=st.sampled_from([None, None, None, 0, 1, 3, -2, 10**12]),
    options=preprocessing,
    data_dir=st.sampled_from([None, None, None, ".", "folder", "missing", "good.npz"]),
)
def test_data_specs(
    spec: str, limit: int | None, options: list[tuple[str, int]], data_dir: str | None
) -> None:
    if spec.startswith("-"):
        spec = "./" + spec  # argparse would read it as an option
    with sandbox() as root:
        argv = ["data", "show", spec, "--quiet"]
        if limit is not None:
            argv += ["--limit", str(limit)]
        for option, value in options:
            argv += [option, str(value)]
        if data_dir is not None:
            argv += ["--data-dir", data_dir]
        run_cli(argv, root, None, traced=True)


# ----------------------------------------------------------------------------- npz contents
DTYPES = [np.uint8, np.uint16, np.int64, np.float32, np.bool_]
LABEL_VALUES = [0, 1, 2, -1, 10**9, 2**62]


@st.composite
def npz_files(draw: st.DrawFn) -> dict[str, Any]:
    arrays: dict[str, np.ndarray] = {}
    if draw(st.integers(0, 4)):  # mostly present, mostly plausible
        plausible = st.tuples(st.integers(1, 4), st.sampled_from([1, 3, 5]), st.integers(1, 6))
        if draw(st.integers(0, 3)):  # NCHW, NHWC or NHW
            n, c, side = draw(plausible)
            shape = [n, side, side] if c == 5 else [n, c, side, side]
        else:
            shape = draw(st.lists(st.integers(0, 5), min_size=1, max_size=5))
        dtype = draw(st.sampled_from([np.uint8] * 5 + DTYPES))
        arrays["images"] = np.full(shape, draw(st.integers(0, 255)), dtype)
    if draw(st.booleans()):
        count = arrays["images"].shape[0] if "images" in arrays else 2
        count = max(0, count + draw(st.sampled_from([0, 0, 0, 1, -1])))
        values = draw(st.lists(st.sampled_from(LABEL_VALUES), min_size=count, max_size=count))
        dtype = draw(st.sampled_from([np.int64, np.int8, np.uint64, np.float32, np.bool_]))
        arrays["labels"] = np.asarray(values).astype(dtype)
    if draw(st.booleans()):
        arrays[draw(st.sampled_from(["x", "images2", "meta"]))] = np.zeros(2)
    return {
        "arrays": arrays,
        "compressed": draw(st.booleans()),
        "cut": draw(st.sampled_from([None] * 6 + [0, 10, 100, -1])),
    }


@settings(max_examples=EXAMPLES["npz"], **SETTINGS)
@given(case=npz_files(), limit=st.sampled_from([None, 1, 4]))
def test_npz_contents(case: dict[str, Any], limit: int | None) -> None:
    with sandbox() as root:
        path = root / "user.npz"
        (np.savez_compressed if case["compressed"] else np.savez)(path, **case["arrays"])
        if case["cut"] is not None:
            data = path.read_bytes()
            path.write_bytes(data[: case["cut"]] if case["cut"] >= 0 else data[:-7])
        argv = ["data", "show", f"npz:{path}", "--quiet"]
        if limit is not None:
            argv += ["--limit", str(limit)]
        run_cli(argv, root, None, traced=True)


# ----------------------------------------------------------------------------- image folders
MODES = {"L": "png", "RGB": "png", "RGBA": "png", "P": "png", "1": "png", "I;16": "png"}
MODES |= {"CMYK": "jpg", "LA": "png"}


@st.composite
def image_files(draw: st.DrawFn) -> tuple[str, str, Any]:
    folder = draw(st.sampled_from(["", "", "a/", "b/", ".hidden/"]))
    kind = draw(st.sampled_from(["image", "image", "image", "garbage", "truncated", "text"]))
    name = f"{folder}{draw(st.integers(0, 99))}"
    if kind == "image":
        mode = draw(st.sampled_from(sorted(MODES)))
        size = (draw(st.integers(1, 6)), draw(st.sampled_from([1, 4, 6, 40])))
        return f"{name}.{MODES[mode]}", kind, (mode, size)
    return f"{name}.{'txt' if kind == 'text' else 'png'}", kind, None


@settings(max_examples=EXAMPLES["folders"], **SETTINGS)
@given(files=st.lists(image_files(), min_size=0, max_size=6), options=preprocessing)
def test_image_folders(files: list[tuple[str, str, Any]], options: list[tuple[str, int]]) -> None:
    with sandbox() as root:
        folder = root / "user"
        folder.mkdir()
        for name, kind, spec in files:
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind == "image":
                Image.new(spec[0], spec[1]).save(path)
            elif kind == "truncated":
                Image.new("L", (6, 6), 128).save(path, format="PNG")
                path.write_bytes(path.read_bytes()[:30])
            else:
                path.write_bytes(b"\x89PNG\r\n\x1a\nnonsense" if kind == "garbage" else b"text")
        argv = ["data", "show", f"imagefolder:{folder}", "--quiet"]
        for option, value in options:
            argv += [option, str(value)]
        original = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = 100  # 40-pixel-high images count as oversized here
        try:
            run_cli(argv, root, None, traced=True)
        finally:
            Image.MAX_IMAGE_PIXELS = original


# ----------------------------------------------------------------------------- configs and --set
def tiny_values(train: str) -> dict[str, Any]:
    return {
        "model": {"name": "glow", "hparams": dict(TINY_GLOW)},
        "data": {"train": train, "val": "", "val_limit": 0},
        "train": {
            "steps": 1,
            "batch_size": 4,
            "warmup_steps": 1,
            "log_every": 1,
            "eval_every": 0,
            "sample_every": -1,
            "checkpoint_every": 1,
            "threads": 1,
            "device": "cpu",
        },
    }


SMALL = st.one_of(
    st.sampled_from([-2, -1, 0, 1, 2, 3]),
    st.sampled_from([-1.0, 0.0, 0.5, float("nan"), float("inf")]),
    st.booleans(),
    st.sampled_from(["", "glow", "npz:good.npz", "npz:missing.npz", "adam", "fp16", "x"]),
    st.lists(st.sampled_from([1, "a"]), max_size=2),
    st.just({"a": 1}),
)
KEYS = [
    "model.name",
    "model.hparams.levels",
    "model.hparams.hidden",
    "model.hparams.bogus",
    "data.train",
    "data.val",
    "data.val_limit",
    "data.limit",
    "data.pad_to",
    "data.channels",
    "data.resize",
    "data.mutation_rate",
    "data.track",
    "train.time_budget_s",
    "train.optimizer",
    "train.lr",
    "train.l2",
    "train.grad_clip",
    "train.warmup_steps",
    "train.max_nonfinite",
    "train.precision",
    "train.log_every",
    "train.checkpoint_every",
    "train.nonexistent",
    "unknown.key",
    "train",
]
SET_VALUES = st.one_of(
    st.sampled_from(["1", "-1", "0.5", "nan", "true", '"x"', "[1, 2]", "{a = 1}", "", "==", "'"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12),
)


def _set(values: dict[str, Any], dotted: str, value: Any) -> None:
    node = values
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            node[part] = child = {}
        node = child
    node[parts[-1]] = value


@settings(max_examples=EXAMPLES["configs"], **SETTINGS)
@given(
    changes=st.lists(st.tuples(st.sampled_from(KEYS), SMALL), max_size=1),
    cut=st.sampled_from([None] * 6 + [5, 40]),
    overrides=st.lists(
        st.tuples(st.sampled_from([*KEYS, "", "a..b", "x"]), SET_VALUES), max_size=1
    ),
)
def test_configs_and_set_values(
    changes: list[tuple[str, Any]], cut: int | None, overrides: list[tuple[str, str]]
) -> None:
    with sandbox() as root:
        values = tiny_values(f"npz:{root / 'good.npz'}")
        for key, value in changes:
            _set(values, key, value)
        text = cfg.dumps_toml(values)
        (root / "c.toml").write_text(text if cut is None else text[:cut], encoding="utf-8")
        argv = ["train", "--config", "c.toml", "--out", "out", "--no-progress", "--steps", "1"]
        settings_ = [f"{key}={value}" for key, value in overrides]
        if settings_ and not any(s.startswith("-") for s in settings_):
            argv += ["--set", *settings_]
        run_cli(argv, root, root / "out", traced=False)


# ----------------------------------------------------------------------------- run folders
class Payload:
    """Pickles to a call that creates a file: loading it must not run it."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (Path.touch.__get__(self.target), ())  # type: ignore[return-value]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("prop-run")
    np.savez(root / "d.npz", images=np.zeros((8, 1, 8, 8), np.uint8), labels=np.zeros(8, int))
    run = root / "run"
    fit(cfg.from_dict(tiny_values(f"npz:{root / 'd.npz'}")), run, progress=False)
    return run


RUN_FILES = [
    "config.toml",
    "preprocessing.json",
    "environment.json",
    "metrics.jsonl",
    "done.json",
    "checkpoints/last.pt",
    "checkpoints",
]
DAMAGE = ["delete", "empty", "truncate", "garbage", "json-list", "pickle"]
COMMANDS = ["train", "train-overwrite", "score", "train-background"]


@settings(max_examples=EXAMPLES["runs"], **SETTINGS)
@given(
    target=st.sampled_from(RUN_FILES),
    damage=st.sampled_from(DAMAGE),
    command=st.sampled_from(COMMANDS),
)
def test_run_folders_with_a_missing_or_corrupt_file(
    trained: Path, target: str, damage: str, command: str
) -> None:
    with sandbox() as root:
        run = root / "run"
        shutil.copytree(trained, run)
        path = run / target
        if damage == "delete" or path.is_dir():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        elif damage == "pickle":
            torch.save({"format": "genood-checkpoint", "evil": Payload(root / "pwned")}, path)
        else:
            data = path.read_bytes()
            path.write_bytes(
                {
                    "empty": b"",
                    "truncate": data[: len(data) // 2],
                    "garbage": b"\xff\xfe\x00garbage",
                    "json-list": b"[1, 2]",
                }[damage]
            )
        argv = {
            "train": ["train", "--out", "run", "--no-progress", "--steps", "2"],
            "train-overwrite": ["train", "--out", "run", "--no-progress", "--overwrite"],
            "score": ["score", "--run", "run", "--dataset", "npz:good.npz", "--no-progress"],
            "train-background": ["train-background", "--run", "run", "--steps", "1"],
        }[command]
        run_cli(
            [*argv, "--no-progress"] if command == "train-background" else argv, root, run, False
        )
        assert not (root / "pwned").exists()  # the checkpoint's payload never ran...
        if damage == "pickle":
            pickle.loads(pickle.dumps(Payload(root / "proof")))  # ...and plain pickle runs it
            assert (root / "proof").exists()
