"""``genood score``: per-sample bits/dim, log p(z) and log-det of a data set under a trained run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genood.cli.options import (
    add_hparam_option,
    add_limit_option,
    add_runtime_options,
    check_limit,
    hparam_overrides,
)


def register(subparsers: Any) -> None:
    """Add the ``score`` command."""
    parser = subparsers.add_parser(
        "score",
        help="score a data set with a trained run (per-sample bits/dim and terms)",
        description="Write per-sample bits_per_dim, log_prob and the model's terms (log_pz, "
        "logdet for flows; nats) with the labels to RUN/scores/NAME-SPLIT.npz, and print a "
        "summary. The model pass is kept in RUN/statistics, where `genood detect` finds it. Images go through the run's recorded preprocessing; bin midpoints are used "
        "(deterministic). Under torchrun the images are split across the processes.",
    )
    parser.add_argument("--run", type=Path, required=True, help="run folder of a trained model")
    parser.add_argument(
        "--dataset", required=True, help="data set name (mnist) or full spec (mnist:test, npz:PATH)"
    )
    parser.add_argument("--split", help="split, when --dataset is a bare name (e.g. test)")
    add_limit_option(parser, "score")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument(
        "--pad-to", type=int, help="override the recorded padding (for a set of another shape)"
    )
    parser.add_argument("--channels", type=int, help="override the recorded channel conversion")
    parser.add_argument("--resize", type=int, help="override the recorded resize")
    add_hparam_option(parser)
    parser.add_argument("--no-save", action="store_true", help="print the summary only")
    parser.add_argument("--distributed", action="store_true", help="require torchrun")
    add_runtime_options(parser)
    parser.set_defaults(func=run_score)


def dataset_spec(dataset: str, split: str | None) -> str:
    """``--dataset NAME --split SPLIT`` -> ``NAME:SPLIT``; a full spec is kept as is."""
    if ":" in dataset:
        if split:
            raise ValueError(f"--dataset {dataset!r} already names a split or path; drop --split")
        return dataset
    return f"{dataset}:{split}" if split else dataset


def run_score(args: argparse.Namespace) -> int:
    """Handler of ``genood score``."""
    from genood.ood import Statistics
    from genood.train import format_summary, load_run
    from genood.train.distributed import init_distributed
    from genood.train.precision import resolve_device
    from genood.train.score import score_to_file

    spec = dataset_spec(args.dataset, args.split)
    limit = check_limit(args.limit)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    context = init_distributed(args.distributed, args.device)
    try:
        loaded = load_run(
            args.run,
            device=resolve_device(args.device, context.local_rank),
            hparams=hparam_overrides(args.hparams),
        )
        preprocessing = None
        if args.pad_to is not None or args.channels is not None or args.resize is not None:
            recorded = loaded.preprocessing.to_dict()
            for key in ("pad_to", "channels", "resize"):
                if getattr(args, key) is not None:
                    recorded[key] = getattr(args, key)
            preprocessing = type(loaded.preprocessing).from_dict(recorded)
        scores, path = score_to_file(
            loaded,
            spec,
            limit=limit,
            batch_size=args.batch_size,
            data_dir=args.data_dir,
            save=not args.no_save,
            precision=args.precision,
            preprocessing=preprocessing,
            progress=not args.no_progress,
            context=context,
            store=Statistics(
                None if args.no_save else Path(args.run) / "statistics",
                args.batch_size,
                args.precision,
                progress=not args.no_progress,
            ),
        )
    finally:
        context.close()
    if not context.is_main:
        return 0
    model = loaded.model
    shape = "x".join(str(s) for s in model.image_shape)
    # A bound names itself (e.g. "lower bound (IWAE, K=100); bits/dim are an upper bound ...").
    likelihood = model.describe().get("likelihood", "the model's log p is a lower bound")
    bound = f"; log p(x): {likelihood}" if model.is_bound else ""
    unit = model.describe().get("unit")  # a text model: bits per byte, D per text
    size = (
        f"D = {model.num_dims} ({shape})"
        if unit is None
        else f"rows of {shape}; bits/dim = {unit}, each text's own bytes and end marker"
    )
    title = (
        f"{spec} under {args.run} ({loaded.config.model.name}, step {loaded.step}): "
        f"N = {len(scores['bits_per_dim'])}, {size}{bound}"
    )
    print(format_summary(scores, title))
    if path is not None:
        print(f"per-sample scores: {path}")
    return 0


__all__ = ["dataset_spec", "register", "run_score"]
