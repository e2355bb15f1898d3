"""A binarised-data run: the model and ``[data] binarize`` must agree, and the run records it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genood import config as cfg
from genood.models import build
from genood.train import fit, load_run
from genood.train.fit import require_binarization

TINY_HVAE = {
    "latent_channels": [2, 2],
    "hidden": 4,
    "likelihood": "bernoulli",
    "strides": [2, 1],
    "dense_latents": 1,
    "iw_samples": 2,
    "kl_warmup_steps": 2,
    "free_nats": 1.0,
    "free_nats_steps": 1,
    "free_nats_anneal_steps": 2,
}


def binarized_config(train: str, val: str) -> cfg.RunConfig:
    return cfg.from_dict(
        {
            "model": {"name": "hvae", "hparams": dict(TINY_HVAE)},
            "data": {"train": train, "val": val, "val_limit": 8, "binarize": "dynamic"},
            "train": {
                "steps": 4,
                "batch_size": 8,
                "optimizer": "adam",
                "lr": 3e-4,
                "warmup_steps": 0,
                "log_every": 2,
                "eval_every": 0,
                "sample_every": -1,
                "checkpoint_every": 0,
                "threads": 1,
                "device": "cpu",
            },
        }
    )


def test_a_binarised_run_records_its_binarisation(
    tmp_path: Path, tiny_data: dict[str, str]
) -> None:
    run = tmp_path / "run"
    result = fit(binarized_config(tiny_data["train"], tiny_data["test"]), run, progress=False)
    assert result["finished"] and 0 < result["eval_bpd"] < 5  # bits per binary pixel
    assert json.loads((run / "preprocessing.json").read_text())["binarize"] == "dynamic"
    loaded = load_run(run)
    assert loaded.preprocessing.binarize == "dynamic" and loaded.model.binarized


def test_model_and_data_must_agree() -> None:
    bernoulli = build("hvae", (1, 8, 8), **TINY_HVAE)
    with pytest.raises(ValueError, match='data.binarize = "dynamic"'):
        require_binarization(bernoulli, "")
    with pytest.raises(ValueError, match='likelihood = "bernoulli"'):
        require_binarization(build("hvae", (1, 8, 8), hidden=4), "dynamic")
    require_binarization(bernoulli, "dynamic")


def test_unknown_binarisation_is_refused(tiny_data: dict[str, str]) -> None:
    values = cfg.to_dict(binarized_config(tiny_data["train"], ""))
    values["data"]["binarize"] = "static"
    with pytest.raises(ValueError, match="data.binarize"):
        cfg.from_dict(values)


CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize(
    ("name", "epochs"),
    [("hvae-binarized-fashion-mnist.toml", 1000), ("hvae-binarized-fashion-mnist-cpu.toml", 0)],
)
def test_the_authors_configs_keep_their_schedule_shares(name: str, epochs: int) -> None:
    config = cfg.load(CONFIGS / name)
    hp, t = config.model.hparams, config.train
    assert (t.optimizer, t.lr, t.batch_size, t.warmup_steps, t.grad_clip) == (
        "adam",
        3e-4,
        128,
        0,
        0,
    )
    if epochs:  # 1,000 epochs of ceil(60,000 / 128) steps; the schedules over 200 epochs each
        assert t.steps == epochs * 469 and hp["kl_warmup_steps"] == 200 * 469
    for key in ("kl_warmup_steps", "free_nats_steps", "free_nats_anneal_steps"):
        assert hp[key] * 5 == t.steps, key  # 200 of 1,000 epochs
    assert hp["free_nats"] == 2.0 and config.data.binarize == "dynamic"
    model = build(config.model.name, (1, 28, 28), **hp)
    require_binarization(model, config.data.binarize)
    assert model.heights == [28, 14, 7, 7] and model.dense == [False, True, True]
