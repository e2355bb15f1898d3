"""``genood train`` and ``genood train-background``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from genood.cli.options import add_key_value_option, add_runtime_options
from genood.config import BACKGROUND_L2 as L2
from genood.config import BACKGROUND_MUTATION_RATE as MUTATION_RATE


def register(subparsers: Any) -> None:
    """Add the ``train`` and ``train-background`` commands."""
    train = subparsers.add_parser(
        "train",
        help="train a likelihood model from a TOML config (resumes by default)",
        description="Train a likelihood model by maximum likelihood on dequantised images. "
        "The run folder gets config.toml, environment.json, metrics.jsonl, checkpoints/, "
        "samples/. A run killed at any moment continues exactly where its last checkpoint "
        "left off. Under torchrun (torchrun --nproc_per_node N -m genood train ...) it trains "
        "with DistributedDataParallel.",
    )
    train.add_argument("--config", type=Path, help="TOML run config (default: RUN/config.toml)")
    train.add_argument("--out", type=Path, help="run folder (default: runs/<config stem>)")
    _add_common(train, "RUN")
    train.add_argument("--steps", type=int, help="optimiser steps (train.steps)")
    train.set_defaults(func=run_train)

    background = subparsers.add_parser(
        "train-background",
        help="train Ren et al.'s background model (mutated inputs, L2) for a trained run",
        description="Train the background model of the likelihood-ratio detector (Ren et al. "
        "2019): the run's architecture and data, with each training sub-pixel replaced by a "
        "uniform random value with probability --mutation-rate and an L2 penalty --l2 on the "
        "convolution and linear kernels. By default it trains as many optimiser steps as the "
        "main model reached (its done.json), with no time budget; while the main run is "
        "unfinished, its configured steps and time budget. Written to RUN/background/. "
        "Several values (--mutation-rate 0.1,0.2,0.3 --l2 0,10,100, the authors' grid) train "
        "one candidate each into RUN/background-candidates/ and copy to RUN/background the one "
        "whose ratio best tells held-out in-distribution images from their mutated copies: a "
        "choice without OOD data (Ren et al. chose on an OOD set).",
    )
    background.add_argument("--run", type=Path, required=True, help="the main model's run folder")
    background.add_argument(
        "--mutation-rate",
        type=_floats,
        default=[MUTATION_RATE],
        metavar="MU[,MU...]",
        help=f"mutation rate mu (default {MUTATION_RATE:g}; the authors searched 0.1,0.2,0.3)",
    )
    background.add_argument(
        "--l2",
        type=_floats,
        default=[L2],
        metavar="L2[,L2...]",
        help=f"L2 weight lambda: lambda * sum(w^2) over the kernels, in nats per image, as the "
        f"authors' reg_weight; applied as coupled weight decay (train.l2; default {L2:g}; the "
        "authors searched 0,10,100)",
    )
    background.add_argument(
        "--steps",
        type=int,
        help="optimiser steps (default: the steps the main model reached, for equal training)",
    )
    background.add_argument(
        "--held-out",
        metavar="SPEC",
        help="with several candidates: the held-out in-distribution images they are compared "
        "on (default: the run's data.val)",
    )
    background.add_argument(
        "--held-out-limit",
        type=int,
        default=1000,
        help="with several candidates: use at most this many held-out images (default 1000)",
    )
    _add_common(background, "RUN/background")
    background.set_defaults(func=run_train_background)


def _add_common(parser: argparse.ArgumentParser, folder: str) -> None:
    """Options of both commands; ``folder`` is the folder they train into, for the help."""
    add_key_value_option(
        parser,
        "--set",
        "overrides",
        "override config keys, e.g. --set train.lr=5e-4 model.hparams.hidden=64",
    )
    parser.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"continue from {folder}/checkpoints/last.pt when present (default); --no-resume "
        f"starts over and deletes {folder}'s checkpoints, metrics, samples and scores (a folder "
        "with results also needs --overwrite)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"allow deleting the results (scores, samples, metrics, done.json) of {folder} "
        "when the run starts over (--no-resume, or its checkpoint is missing)",
    )
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16", "auto"],
        help="train.precision (auto: bf16 where a timed check finds it faster, else fp32)",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="require torchrun's environment (DDP is used automatically under torchrun)",
    )
    add_runtime_options(parser, device_default=None, device_help="train.device")


def _cli_overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.overrides)
    if args.device:
        overrides.append(f'train.device="{args.device}"')
    if args.precision:
        overrides.append(f'train.precision="{args.precision}"')
    return overrides


def run_train(args: argparse.Namespace) -> int:
    """Handler of ``genood train``."""
    from genood import config as cfg
    from genood.train import fit

    config_path = args.config
    if config_path is None:
        if args.out is None or not (args.out / "config.toml").is_file():
            raise ValueError(
                "give --config CONFIG.toml, or --out RUN of an existing run to resume it"
            )
        config_path = args.out / "config.toml"
    overrides = _cli_overrides(args)
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    config = cfg.load(config_path, overrides)
    out = args.out or Path("runs") / config_path.stem
    result = fit(
        config,
        out,
        resume=args.resume,
        progress=not args.no_progress,
        data_dir=args.data_dir,
        distributed=args.distributed,
        overwrite=args.overwrite,
    )
    _report(out, result)
    return 0


def run_train_background(args: argparse.Namespace) -> int:
    """Handler of ``genood train-background``."""
    if len(args.mutation_rate) > 1 or len(args.l2) > 1:
        return _choose_background(args)
    from genood.train import fit_background

    result = fit_background(
        args.run,
        mutation_rate=args.mutation_rate[0],
        l2=args.l2[0],
        steps=args.steps,
        overrides=_cli_overrides(args),
        resume=args.resume,
        progress=not args.no_progress,
        data_dir=args.data_dir,
        distributed=args.distributed,
        overwrite=args.overwrite,
    )
    _report(args.run / "background", result)
    return 0


def _choose_background(args: argparse.Namespace) -> int:
    from genood.train.background_choice import choose_background

    if args.steps is not None or args.distributed or not args.resume:
        raise ValueError(
            "with several --mutation-rate or --l2 values every candidate trains the main "
            "model's steps, resuming: leave out --steps, --distributed and --no-resume"
        )
    result = choose_background(
        args.run,
        args.mutation_rate,
        args.l2,
        held_out=args.held_out,
        limit=args.held_out_limit,
        overrides=_cli_overrides(args),
        progress=not args.no_progress,
        data_dir=args.data_dir,
        overwrite=args.overwrite,
    )
    print(json.dumps(result["chosen"], indent=2))
    return 0


def _floats(text: str) -> list[float]:
    """``0.1,0.2`` -> ``[0.1, 0.2]`` (argparse type of --mutation-rate and --l2)."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from error
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def _report(out: Path, result: dict[str, Any]) -> None:
    import os

    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 reports
        return
    keys = (
        "step",
        "stopped",
        "loss_bpd",
        "eval_bpd",
        "track_bpd",
        "nonfinite_skipped",
        "train_time_s",
    )
    shown = {k: result[k] for k in keys if k in result}
    print(f"run folder: {out}")
    print(json.dumps(shown, indent=2, sort_keys=False))
