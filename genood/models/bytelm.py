"""``bytelm``: a byte-level autoregressive LSTM, the likelihood model of text.

It models the samples of :mod:`genood.data.text`: uint8 rows of shape ``(1, 1, L)`` holding a
text's UTF-8 bytes, then byte 0 as the end marker of a text shorter than ``L``, then zero
padding. With ``n`` the text's bytes (its non-zero bytes) and ``b_0 = BOS`` a start token,

    log p(x) = sum_{t=1..n} log p(b_t | b_<t)  +  [n < L] log p(end | b_<=n),

a probability mass over byte strings (a text longer than ``L`` was truncated to its first ``L``
bytes, whose prefix probability this is). The padding after the end marker is never scored.

Terms (nats, per sample, summing to ``log p(x)``): ``text``, the bytes' log-probabilities, and
``end``, the end marker's (0 for a truncated text).

**Bits per character** here means bits per *byte* (a UTF-8 character outside ASCII is several
bytes) over every scored symbol, the text's bytes and its end marker:

    bits/char = -log2 p(x) / m,   m = min(n + 1, L),

which is what :meth:`ByteLM.bits_from_log_prob` returns when given the batch (``num_dims_of``);
``log_scale`` is 0 (a discrete model). Training minimises its mean over the batch (the shared
trainer's loss, :mod:`genood.train.loop`). ``preprocess`` ignores ``dequantize``: bytes are
symbols, not intensities, and need no noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genood.models.base import LikelihoodModel, bits_per_dim_from_log_prob, check_images
from genood.models.hparams import check_positive, parse_hparams
from genood.models.registry import register

VOCAB = 256  # byte values; 0 doubles as the end marker (texts hold no NUL)
BOS = VOCAB  # the start token, an input only


@dataclass(frozen=True)
class ByteLMHparams:
    """Hyper-parameters of :class:`ByteLM`.

    Attributes:
        embed: byte embedding width.
        hidden: LSTM state width.
        layers: stacked LSTM layers.
        dropout: dropout between LSTM layers and before the output (training only).
    """

    embed: int = 64
    hidden: int = 256
    layers: int = 1
    dropout: float = 0.0


def scored_mask(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(mask, n)``: which positions of the ``(B, L)`` byte rows are scored, and text lengths.

    Position ``t`` is scored when ``t <= n`` (the bytes and the end marker, within ``L``).
    """
    n = (x != 0).sum(dim=1)
    positions = torch.arange(x.shape[1], device=x.device)
    return positions[None, :] <= n[:, None], n


class ByteLM(LikelihoodModel):
    """An LSTM over bytes with a 256-way softmax per position (see the module doc)."""

    log_scale = 0.0

    def __init__(self, image_shape: tuple[int, int, int], hparams: ByteLMHparams) -> None:
        super().__init__(image_shape)
        if image_shape[0] != 1 or image_shape[1] != 1:
            raise ValueError(
                f"bytelm models text rows of shape (1, 1, L), got {tuple(image_shape)}; train it "
                "on a text spec (text:fortunes-en:train, textfile:PATH)"
            )
        check_positive("bytelm", embed=hparams.embed, hidden=hparams.hidden, layers=hparams.layers)
        if not 0.0 <= hparams.dropout < 1.0:
            raise ValueError(f"bytelm: dropout must be in [0, 1), got {hparams.dropout}")
        self.hparams = hparams
        self.length = int(image_shape[2])
        self.embedding = nn.Embedding(VOCAB + 1, hparams.embed)
        self.lstm = nn.LSTM(
            hparams.embed,
            hparams.hidden,
            num_layers=hparams.layers,
            batch_first=True,
            dropout=hparams.dropout if hparams.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(hparams.dropout)
        self.head = nn.Linear(hparams.hidden, VOCAB)

    # ----------------------------------------------------------------- the contract
    def preprocess(
        self, images: Tensor, dequantize: bool, generator: torch.Generator | None = None
    ) -> Tensor:
        """uint8 ``(B, 1, 1, L)`` -> int64 byte rows ``(B, L)`` on the model's device."""
        check_images(images, self.image_shape, "ByteLM.preprocess")
        return images.to(self.device, non_blocking=True).reshape(len(images), -1).long()

    def postprocess(self, x: Tensor) -> Tensor:
        """Byte rows ``(B, L)`` -> uint8 ``(B, 1, 1, L)``."""
        return x.clamp(0, VOCAB - 1).to(torch.uint8).reshape(len(x), *self.image_shape)

    def logits(self, x: Tensor) -> Tensor:
        """``(B, L, 256)`` next-byte logits: position ``t`` sees ``BOS, b_1 .. b_t-1``."""
        start = torch.full((len(x), 1), BOS, dtype=torch.long, device=x.device)
        inputs = torch.cat([start, x[:, :-1]], dim=1)
        hidden, _ = self.lstm(self.embedding(inputs))
        return self.head(self.drop(hidden))

    def log_prob_terms(self, x: Tensor) -> dict[str, Tensor]:
        """``text`` and ``end`` log-probabilities in nats, each ``(B,)`` (see the module doc)."""
        self._check_rows(x)
        log_probs = F.log_softmax(self.logits(x).float(), dim=-1)
        chosen = log_probs.gather(-1, x.unsqueeze(-1)).squeeze(-1)  # (B, L)
        mask, n = scored_mask(x)
        positions = torch.arange(x.shape[1], device=x.device)[None, :]
        is_text = positions < n[:, None]
        text = (chosen * is_text).sum(dim=1)
        end = (chosen * (mask & ~is_text)).sum(dim=1)
        return {"text": text, "end": end}

    def num_dims_of(self, x: Tensor) -> Tensor:
        """``m = min(n + 1, L)``: the scored symbols of each row, float ``(B,)``."""
        self._check_rows(x)
        n = (x != 0).sum(dim=1)
        return torch.clamp(n + 1, max=x.shape[1]).to(torch.float64)

    def bits_from_log_prob(self, log_prob: Tensor, x: Tensor | None = None) -> Tensor:
        """Bits per byte ``-log2 p(x) / m`` (``x``: the batch, needed for ``m``)."""
        if x is None:
            raise ValueError(
                "ByteLM.bits_from_log_prob needs the batch x: its texts differ in length; call "
                "bits_from_log_prob(log_prob, x)"
            )
        dims = self.num_dims_of(x).to(log_prob.device, log_prob.dtype)
        return bits_per_dim_from_log_prob(log_prob, dims, self.log_scale)  # type: ignore[arg-type]

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """``n`` byte rows drawn byte by byte; after an end marker the row is padding."""
        out = torch.zeros(n, self.length, dtype=torch.long, device=self.device)
        token = torch.full((n, 1), BOS, dtype=torch.long, device=self.device)
        state: Any = None
        ended = torch.zeros(n, dtype=torch.bool, device=self.device)
        for t in range(self.length):
            hidden, state = self.lstm(self.embedding(token), state)
            logits = self.head(hidden[:, -1]) / max(temperature, 1e-6)
            byte = torch.multinomial(F.softmax(logits.float(), dim=-1), 1).squeeze(1)
            byte = torch.where(ended, torch.zeros_like(byte), byte)
            ended |= byte == 0
            out[:, t] = byte
            token = byte.unsqueeze(1)
        return out

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "sequence_length": self.length, "unit": "bits per byte"}

    def _check_rows(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.length or x.dtype != torch.long:
            raise ValueError(
                f"bytelm expects int64 byte rows (B, {self.length}) from preprocess, got "
                f"{x.dtype} {tuple(x.shape)}"
            )


@register("bytelm")
def build_bytelm(image_shape: tuple[int, int, int], **hparams: Any) -> ByteLM:
    """A :class:`ByteLM` for text rows ``(1, 1, L)``."""
    return ByteLM(image_shape, parse_hparams(ByteLMHparams, "bytelm", hparams))
