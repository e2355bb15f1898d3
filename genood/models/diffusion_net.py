"""The networks of the variational diffusion model: the noise predictor and the noise schedule.

Both follow Kingma et al. (2021), "Variational Diffusion Models", as written in the authors' code
(google-research/vdm, ``model_vdm.py``; read for this module):

* :class:`NoiseSchedule` is ``gamma(t)``, the negative log signal-to-noise ratio at time
  ``t in [0, 1]``, strictly increasing in ``t``: ``learned`` is VDM's ``NoiseSchedule_NNet`` (a
  monotone linear map plus a monotone sigmoid layer; monotone because every weight enters
  through ``abs``), initialised to the straight line from ``gamma_min`` to ``gamma_max``;
  ``scalar`` is ``NoiseSchedule_Scalar``, a straight line with learned end points (the schedule
  of the authors' released CIFAR-10 config); ``fixed`` is ``NoiseSchedule_FixedLinear``. Its time derivative is computed in closed form, so the
  continuous-time bound needs no autograd (scoring runs under ``torch.inference_mode``).
* :class:`NoiseUNet` predicts the noise ``eps`` of ``z_t = alpha_t x + sigma_t eps`` from ``z_t``
  and ``gamma_t``, like VDM's ``ScoreUNet``: a sinusoidal embedding of the rescaled ``gamma_t``
  through a two-layer MLP conditions every residual block; base-2 Fourier features of ``z_t``
  (frequencies ``2^6, 2^7`` times ``2 pi``) are concatenated to the input, for the fine scale of
  8-bit data; the last convolution starts at zero and the input is added back ("base measure"),
  so that an untrained network predicts ``eps_hat = z_t``. Unlike VDM's network (which keeps the
  full resolution throughout), this is a small U-Net: ``levels`` stride-2 down-samplings with
  skip connections, so that it fits a CPU budget. ``H`` and ``W`` must be divisible by
  ``2 ** levels``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FOURIER_EXPONENTS = (6, 7)  # VDM's Base2FourierFeatures(start=6, stop=8)
TIME_SCALE = 1000.0  # VDM multiplies the [0, 1] time by 1000 before the sinusoidal embedding


# ----------------------------------------------------------------------------- the schedule
class NoiseSchedule(nn.Module):
    """``gamma(t)``, strictly increasing on ``[0, 1]``; ``sigma_t^2 = sigmoid(gamma_t)``.

    Args:
        gamma_min, gamma_max: ``gamma(0)`` and ``gamma(1)`` at initialisation (fixed: always).
        kind: ``learned`` (monotone network), ``scalar`` (learned end points) or ``fixed``.
        features: width of the learned schedule's sigmoid layer (VDM: 1024).
    """

    def __init__(
        self, gamma_min: float, gamma_max: float, kind: str = "learned", features: int = 64
    ) -> None:
        super().__init__()
        if not gamma_min < gamma_max:
            raise ValueError(f"need gamma_min < gamma_max, got {gamma_min} and {gamma_max}")
        self.learned = kind != "fixed"
        self.nonlinear = kind == "learned"
        self.gamma_min, self.gamma_max = float(gamma_min), float(gamma_max)
        if self.learned:
            self.slope = nn.Parameter(torch.tensor(gamma_max - gamma_min))
            self.bias = nn.Parameter(torch.tensor(gamma_min))
        if self.nonlinear:
            self.w2 = nn.Parameter(torch.randn(features))
            self.b2 = nn.Parameter(torch.zeros(features))
            self.w3 = nn.Parameter(torch.randn(features))

    def _inner(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """The sigmoid layer's pre-activations ``u = |w2| (2t - 1) + b2`` and ``sigmoid(u)``."""
        u = (2.0 * t - 1.0)[..., None] * self.w2.abs() + self.b2
        return u, torch.sigmoid(u)

    def forward(self, t: Tensor) -> Tensor:
        """``gamma(t)``, the shape of ``t``."""
        t = t.float()
        if not self.learned:
            return self.gamma_min + (self.gamma_max - self.gamma_min) * t
        line = self.slope.abs() * t + self.bias
        if not self.nonlinear:
            return line
        _, s = self._inner(t)
        return line + (2.0 * (s - 0.5) * self.w3.abs()).mean(dim=-1)

    def derivative(self, t: Tensor) -> Tensor:
        """``d gamma / dt`` at ``t`` in closed form (positive), the shape of ``t``."""
        t = t.float()
        if not self.learned:
            return torch.full_like(t, self.gamma_max - self.gamma_min)
        if not self.nonlinear:
            return self.slope.abs().expand_as(t)
        _, s = self._inner(t)
        # d/dt [2 (sigmoid(u) - 1/2)] = 2 s (1 - s) du/dt, du/dt = 2 |w2|
        inner = 4.0 * s * (1.0 - s) * self.w2.abs() * self.w3.abs()
        return self.slope.abs() + inner.mean(dim=-1)


# ----------------------------------------------------------------------------- the network
def group_count(channels: int) -> int:
    """The most GroupNorm groups (up to 8) that divide ``channels``."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of ``t in [0, 1]`` (scaled by 1000), ``(B, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / max(half - 1, 1))
    angles = (t.float() * TIME_SCALE)[:, None] * freqs[None]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return F.pad(emb, (0, dim - 2 * half))


def fourier_features(z: Tensor) -> Tensor:
    """``sin`` and ``cos`` of ``2 pi 2^n z`` for ``n`` in :data:`FOURIER_EXPONENTS`, channel-wise."""
    feats = [z * (2.0 * math.pi * 2.0**n) for n in FOURIER_EXPONENTS]
    h = torch.cat(feats, dim=1)
    return torch.cat([torch.sin(h), torch.cos(h)], dim=1)


class TimeResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, plus the projected time embedding, -> GroupNorm -> SiLU ->
    dropout -> zero-initialised conv; a 1x1 shortcut when the width changes (VDM's ResnetBlock)."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(group_count(in_ch), in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.cond = nn.Linear(cond_dim, out_ch, bias=False)
        nn.init.zeros_(self.cond.weight)
        self.norm2 = nn.GroupNorm(group_count(out_ch), out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)  # type: ignore[arg-type]  # conv2 has a bias
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.cond(cond)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.shortcut(x) + h


class NoiseUNet(nn.Module):
    """``eps_hat(z_t, gamma_t)`` for ``(C, H, W)`` images (see the module doc).

    Args:
        channels: ``C``.
        hidden: convolution width, the same at every resolution (as VDM's ``sm_n_embd``).
        levels: stride-2 down-samplings (``H`` and ``W`` divisible by ``2 ** levels``).
        blocks: residual blocks per level on the way down (one more on the way up).
        gamma_min, gamma_max: the range that ``gamma_t`` is rescaled from to ``[0, 1]``.
        fourier: concatenate Fourier features of ``z_t`` to the input.
        dropout: inside the residual blocks.
    """

    def __init__(
        self,
        channels: int,
        hidden: int,
        levels: int,
        blocks: int,
        gamma_min: float,
        gamma_max: float,
        fourier: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.gamma_min, self.gamma_max = gamma_min, gamma_max
        self.fourier = fourier
        self.embed_dim = hidden
        cond_dim = 4 * hidden
        self.cond_mlp = nn.Sequential(
            nn.Linear(hidden, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim), nn.SiLU()
        )
        in_ch = channels * (1 + 2 * len(FOURIER_EXPONENTS) if fourier else 1)
        self.conv_in = nn.Conv2d(in_ch, hidden, 3, padding=1)
        widths = [hidden] * (levels + 1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = [hidden]
        width = hidden
        for level, out in enumerate(widths):
            stage = nn.ModuleList()
            for _ in range(blocks):
                stage.append(TimeResBlock(width, out, cond_dim, dropout))
                width = out
                skips.append(width)
            self.down.append(stage)
            if level < levels:
                self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
                skips.append(width)
        self.mid = nn.ModuleList([TimeResBlock(width, width, cond_dim, dropout) for _ in range(2)])
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, out in reversed(list(enumerate(widths))):
            stage = nn.ModuleList()
            for _ in range(blocks + 1):
                stage.append(TimeResBlock(width + skips.pop(), out, cond_dim, dropout))
                width = out
            self.up.append(stage)
            if level > 0:
                self.upsample.append(nn.Conv2d(width, width, 3, padding=1))
        self.norm_out = nn.GroupNorm(group_count(width), width)
        self.conv_out = nn.Conv2d(width, channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)  # type: ignore[arg-type]  # conv_out has a bias

    def forward(self, z: Tensor, gamma: Tensor) -> Tensor:
        """``eps_hat``, the shape of ``z``; ``gamma`` is ``(B,)``."""
        t = (gamma.float() - self.gamma_min) / (self.gamma_max - self.gamma_min)
        cond = self.cond_mlp(timestep_embedding(t, self.embed_dim).to(z.dtype))
        h = torch.cat([z, fourier_features(z)], dim=1) if self.fourier else z
        hs = [self.conv_in(h)]
        for level, stage in enumerate(self.down):
            for block in stage:  # type: ignore[attr-defined]  # an nn.ModuleList
                hs.append(block(hs[-1], cond))
            if level < len(self.downsample):
                hs.append(self.downsample[level](hs[-1]))
        h = hs[-1]
        for block in self.mid:
            h = block(h, cond)
        for i, stage in enumerate(self.up):
            for block in stage:  # type: ignore[attr-defined]  # an nn.ModuleList
                h = block(torch.cat([h, hs.pop()], dim=1), cond)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        eps = self.conv_out(F.silu(self.norm_out(h)))
        return eps + z  # the base measure: eps_hat = z_t before training


__all__ = ["NoiseSchedule", "NoiseUNet", "fourier_features", "group_count", "timestep_embedding"]
