"""``genood train-classifier``: the small CNN p(y|x) that ``genood detect --guard`` protects."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genood.cli.options import add_limit_option, add_runtime_options, check_limit


def register(subparsers: Any) -> None:
    """Add the ``train-classifier`` command."""
    parser = subparsers.add_parser(
        "train-classifier",
        help="train a small CNN classifier (for the density-gate demo of genood detect --guard)",
        description="Train a small CNN p(y|x) (3 conv layers, Adam, cross-entropy) on a labelled "
        "data set, as loaded (no preprocessing), and save it to --out (classifier.json, "
        "classifier.pt). With --val, print its accuracy there. Then: genood detect --run RUN "
        "--in SET --out OOD --guard DIR.",
    )
    parser.add_argument("--data", required=True, help="labelled training set spec (mnist-10k)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--val", help="labelled set spec to report the accuracy on")
    parser.add_argument("--epochs", type=int, default=3, help="passes over the data (3)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (128)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (1e-3)")
    parser.add_argument("--width", type=int, default=32, help="first conv's channels (32)")
    add_limit_option(parser, "train on")
    parser.add_argument("--seed", type=int, default=0, help="initialisation and data order")
    add_runtime_options(parser)
    parser.set_defaults(func=run_train_classifier)


def run_train_classifier(args: argparse.Namespace) -> int:
    """Handler of ``genood train-classifier``."""
    from genood.data import load
    from genood.ood import Classifier
    from genood.train.precision import resolve_device

    progress = not args.no_progress
    limit = check_limit(args.limit)
    data = load(args.data, data_dir=args.data_dir, limit=limit, progress=progress)
    if len(data) == 0:
        raise ValueError(f"{data.spec} holds no images; train-classifier needs labelled images")
    if (data.labels < 0).any():
        raise ValueError(f"{data.spec} has unlabelled images; train-classifier needs labels")
    num_classes = int(data.labels.max()) + 1
    device = resolve_device(args.device)
    classifier = Classifier(data.shape, num_classes, args.width, device, seed=args.seed)
    classifier.fit(
        data.images,
        data.labels,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        progress=progress,
    )
    extra: dict[str, Any] = {"data": data.spec, "classes": list(data.classes)}
    message = f"trained on {len(data)} images of {data.spec} in {classifier.history['seconds']} s"
    if args.val:
        val = load(args.val, data_dir=args.data_dir, progress=progress)
        accuracy = classifier.accuracy(val.images, val.labels)
        extra["val"] = {"spec": val.spec, "accuracy": accuracy, "images": len(val)}
        message += f"; accuracy on {val.spec}: {accuracy:.4f}"
    classifier.save(args.out, **extra)
    print(f"{message}\nwrote {args.out}")
    return 0
