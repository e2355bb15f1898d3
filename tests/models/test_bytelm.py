"""The byte-level LSTM: the likelihood contract on text, padding excluded, a proper distribution."""

from __future__ import annotations

import math

import pytest
import torch

from genood.data.text import encode
from genood.models import build
from genood.models.bytelm import ByteLM

SHAPE = (1, 1, 16)


def tiny(length: int = 16) -> ByteLM:
    model = build("bytelm", (1, 1, length), embed=8, hidden=16)
    assert isinstance(model, ByteLM)
    return model.eval()


def batch(texts: list[str], length: int = 16) -> torch.Tensor:
    return torch.from_numpy(encode(texts, length))


def test_terms_have_one_value_per_text_and_sum_to_log_prob() -> None:
    model = tiny()
    x = model.preprocess(batch(["hello", "a" * 40, "z"]), dequantize=True)
    assert x.dtype == torch.long and x.shape == (3, 16)
    terms = model.log_prob_terms(x)
    assert set(terms) == {"text", "end"} and all(t.shape == (3,) for t in terms.values())
    assert torch.allclose(model.log_prob(x), terms["text"] + terms["end"])
    assert terms["end"][1] == 0.0  # truncated: no end marker is scored
    assert (model.log_prob(x) < 0).all()


def test_bits_per_char_divide_by_the_bytes_and_the_end_marker() -> None:
    model = tiny()
    x = model.preprocess(batch(["hello", "a" * 40]), dequantize=False)
    log_prob = model.log_prob(x)
    bits = model.bits_from_log_prob(log_prob, x)
    expected = -log_prob.double() / (torch.tensor([6.0, 16.0], dtype=torch.float64) * math.log(2))
    assert torch.allclose(bits.double(), expected)
    assert torch.allclose(model.bits_per_dim(batch(["hello", "a" * 40])).double(), expected)
    with pytest.raises(ValueError, match="needs the batch x"):
        model.bits_from_log_prob(log_prob)


def test_padding_is_not_scored_and_the_model_is_causal() -> None:
    model = tiny()
    x = model.preprocess(batch(["hi there"]), dequantize=False)
    log_probs = torch.log_softmax(model.logits(x), dim=-1)[0]
    by_hand = sum(log_probs[t, x[0, t]] for t in range(9))  # 8 bytes and the end marker
    assert torch.allclose(model.log_prob(x)[0], by_hand)
    changed = x.clone()
    changed[0, 5] = ord("X")
    early = torch.log_softmax(model.logits(changed), dim=-1)[0, :6]
    assert torch.allclose(early, log_probs[:6])  # position t sees bytes before t only


def test_the_probabilities_of_every_short_text_sum_to_one() -> None:
    model = tiny(length=2)
    first = torch.arange(1, 256).repeat_interleave(256)
    second = torch.arange(256).repeat(255)
    x = torch.stack([first, second], dim=1)  # every text of 1 byte (then its end) or 2 bytes
    with torch.no_grad():
        mass = model.log_prob(x).double().exp().sum()
        empty = torch.softmax(model.logits(x[:1]), dim=-1)[0, 0, 0].double()  # p(end first)
    assert float(mass + empty) == pytest.approx(1.0, abs=1e-5)


def test_samples_are_text_rows_padded_after_their_end() -> None:
    torch.manual_seed(0)
    rows = tiny().sample_images(6)
    assert rows.shape == (6, *SHAPE) and rows.dtype == torch.uint8
    for row in rows.reshape(6, -1):
        zeros = (row == 0).nonzero()
        if len(zeros):
            assert (row[int(zeros[0]) :] == 0).all()


def test_it_refuses_images_and_bad_hyper_parameters() -> None:
    with pytest.raises(ValueError, match=r"text rows of shape \(1, 1, L\).*text:fortunes-en"):
        build("bytelm", (1, 8, 8))
    with pytest.raises(TypeError, match="bytelm got unknown hyper-parameter"):
        build("bytelm", SHAPE, width=3)
    with pytest.raises(ValueError, match="dropout"):
        build("bytelm", SHAPE, dropout=1.0)
    with pytest.raises(TypeError, match="uint8"):
        tiny().preprocess(torch.zeros(1, 1, 1, 16), dequantize=False)
    assert tiny().describe()["unit"] == "bits per byte"


def test_the_cpu_config_builds_the_documented_model() -> None:
    from pathlib import Path

    from genood import config as cfg

    path = Path(__file__).resolve().parents[2] / "configs" / "text-fortunes-en-cpu.toml"
    config = cfg.load(path)
    assert config.data.train == "text:fortunes-en:train" and config.train.threads == 1
    model = build(config.model.name, (1, 1, 128), **config.model.hparams)
    assert model.describe()["parameters"] == 411_968  # "0.41 M parameters" in docs/results.md
