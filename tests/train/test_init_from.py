"""``train.init_from``: a run that starts from another run's weights (fine-tuning)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_helpers import final_parameters, tiny_config, write_images

from genood.train import checkpoint as ckpt
from genood.train import fit
from genood.train.fit import init_weights


@pytest.fixture
def general_run(tmp_path: Path) -> Path:
    """A tiny Glow trained on other images: the 'general' model to start from."""
    other = write_images(tmp_path / "other.npz", 48, seed=7)
    fit(tiny_config(other, steps=4), tmp_path / "general", progress=False)
    return tmp_path / "general"


def test_the_first_step_starts_from_the_given_weights(tiny_data, general_run, tmp_path) -> None:
    start = final_parameters(general_run)
    zero = tiny_config(tiny_data["train"], steps=0, init_from=str(general_run))
    fit(zero, tmp_path / "zero", progress=False)  # no step: the initial weights are saved as-is
    loaded = final_parameters(tmp_path / "zero")
    for name in start:
        assert torch.equal(start[name], loaded[name]), name
    fresh = final_parameters(fit_fresh(tiny_data, tmp_path))
    assert any(not torch.equal(start[n], fresh[n]) for n in start)  # not the default init

    tuned = tiny_config(tiny_data["train"], steps=3, init_from=str(general_run))
    result = fit(tuned, tmp_path / "tuned", progress=False)
    assert result["step"] == 3  # its own count from zero, not the general run's 4
    state = ckpt.load(tmp_path / "tuned" / "checkpoints" / "last.pt")
    assert 'init_from = "' in state["config"]


def fit_fresh(tiny_data: dict[str, str], tmp_path: Path) -> Path:
    fit(tiny_config(tiny_data["train"], steps=0), tmp_path / "fresh", progress=False)
    return tmp_path / "fresh"


def test_a_checkpoint_file_works_too(tiny_data, general_run, tmp_path) -> None:
    path = general_run / "checkpoints" / "last.pt"
    fit(tiny_config(tiny_data["train"], steps=0, init_from=str(path)), tmp_path / "r")
    first = next(iter(final_parameters(general_run)))
    assert torch.equal(
        final_parameters(tmp_path / "r")[first], final_parameters(general_run)[first]
    )


def test_another_architecture_or_shape_is_refused(tiny_data, general_run, tmp_path) -> None:
    wider = tiny_config(tiny_data["train"], steps=1, init_from=str(general_run))
    wider.model.hparams["hidden"] = 16
    with pytest.raises(ValueError, match="same model.hparams"):
        fit(wider, tmp_path / "wider", progress=False)
    padded = tiny_config(tiny_data["train"], steps=1, init_from=str(general_run))
    padded.data.pad_to = 16
    with pytest.raises(ValueError, match="same model and preprocessing"):
        fit(padded, tmp_path / "padded", progress=False)
    with pytest.raises(FileNotFoundError):
        init_weights(
            torch.nn.Linear(1, 1), tmp_path / "nothing", "glow", (1, 8, 8), torch.device("cpu")
        )


def test_resuming_may_not_change_the_starting_weights(tiny_data, general_run, tmp_path) -> None:
    config = tiny_config(tiny_data["train"], steps=3, init_from=str(general_run))
    fit(config, tmp_path / "tuned", progress=False)
    config.train.steps = 5
    config.train.init_from = ""
    with pytest.raises(ValueError, match="init_from"):
        fit(config, tmp_path / "tuned", progress=False)
