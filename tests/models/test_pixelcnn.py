"""PixelCNN++: causal masking (gray and RGB), exact normalisation, training, save / resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from genood.models import build
from genood.models.pixelcnn import PixelCNN


def tiny(image_shape: tuple[int, int, int], **hparams: object) -> PixelCNN:
    options = {"filters": 6, "resnet_blocks": 1, "num_mixtures": 2, **hparams}
    return build("pixelcnn", image_shape, **options)  # type: ignore[return-value]


def randomised(model: PixelCNN) -> PixelCNN:
    """Float64 in eval mode; PyTorch's initialisation leaves no weight or bias at zero, and in
    float64 a leak through even a tiny weight gives a non-zero gradient."""
    model = model.double().eval()
    assert all((p != 0).all() for p in model.parameters())
    return model


def random_images(n: int, shape: tuple[int, int, int]) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8)


@pytest.mark.parametrize(
    ("image_shape", "scales"),
    [((1, 8, 8), 1), ((1, 7, 7), 3), ((3, 6, 6), 1), ((3, 8, 8), 2)],
    ids=["gray", "gray-3-scales-odd", "rgb", "rgb-2-scales"],
)
def test_each_conditional_ignores_every_later_subpixel(
    image_shape: tuple[int, int, int], scales: int
) -> None:
    model = randomised(tiny(image_shape, scales=scales))
    x = model.preprocess(random_images(1, image_shape), dequantize=False).double()
    jacobian = torch.autograd.functional.jacobian(
        lambda v: model.conditional_log_probs(v)[0], x, vectorize=True
    )[..., 0, :, :, :]  # (C, H, W) outputs x (C, H, W) inputs
    c_n, h_n, w_n = image_shape

    def order(c: int, i: int, j: int) -> int:  # raster over pixels, then channels
        return (i * w_n + j) * c_n + c

    positions = [(c, i, j) for c in range(c_n) for i in range(h_n) for j in range(w_n)]
    rank = torch.tensor([order(*p) for p in positions]).view(c_n, h_n, w_n)
    for c, i, j in positions:
        grad = jacobian[c, i, j]
        later = rank > order(c, i, j)
        assert (grad[later] == 0).all(), f"log p at (c={c}, i={i}, j={j}) sees a later sub-pixel"
        assert grad[c, i, j] != 0, "its own value must be read off"
        # it must see the sub-pixel just before it in its row, the pixel above, and the one
        # above and to the right (the blind spot of a plain masked PixelCNN); the end of the
        # row above may be outside a tiny net's receptive field
        if c > 0 or j > 0:
            before = (rank == order(c, i, j) - 1).nonzero()[0]
            assert grad[tuple(before)] != 0, f"(c={c}, i={i}, j={j}) ignores its predecessor"
        if i > 0:
            assert (grad[:, i - 1, j] != 0).any(), f"(c={c}, i={i}, j={j}) ignores the pixel above"
        if i > 0 and j + 1 < w_n:
            assert (grad[:, i - 1, j + 1] != 0).any(), "blind spot above-right"


@pytest.mark.parametrize("scales", [1, 2, 3])
def test_rows_below_never_change_the_rows_above(scales: int) -> None:
    # what lets the sampler run row i's passes on rows 0..i only
    model = randomised(tiny((3, 7, 5), scales=scales))
    x = model.preprocess(random_images(2, (3, 7, 5)), dequantize=False).double()
    with torch.no_grad():
        full = model.mixture_params(x)
        for rows in range(1, 7):
            torch.testing.assert_close(model.mixture_params(x[:, :, :rows]), full[:, :, :rows])


def test_the_model_is_a_distribution_over_all_images() -> None:
    # a 1 x 1 x 2 image has 256^2 values: their probabilities must sum to exactly 1
    model = tiny((1, 1, 2)).double().eval()
    values = torch.cartesian_prod(torch.arange(256), torch.arange(256)).to(torch.uint8)
    with torch.no_grad():
        log_p = model.log_prob(model.preprocess(values.view(-1, 1, 1, 2), False).double())
    assert abs(torch.logsumexp(log_p, dim=0).item()) < 1e-6


def test_terms_bits_per_dim_and_the_stated_formula() -> None:
    gray, rgb = tiny((1, 4, 4)).eval(), tiny((3, 4, 4)).eval()
    assert gray.log_scale == 0.0 and not gray.is_bound
    images = random_images(3, (3, 4, 4))
    with torch.no_grad():
        terms = rgb.log_prob_terms(rgb.preprocess(images, False))
        assert list(terms) == ["log_p_r", "log_p_g_given_r", "log_p_b_given_rg"]
        cond = rgb.conditional_log_probs(rgb.preprocess(images, False))
        torch.testing.assert_close(sum(terms.values()), cond.flatten(1).sum(1))
        bpd = rgb.bits_per_dim(images)
        torch.testing.assert_close(bpd, -cond.flatten(1).sum(1) / (48 * math.log(2)))
        assert list(gray.log_prob_terms(gray.preprocess(images[:, :1], False))) == ["log_px"]
    assert ((bpd > 4) & (bpd < 12)).all()  # near 8 bits/dim before training


def train_steps(model: nn.Module, images: torch.Tensor, steps: int) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(steps):
        x = model.preprocess(images, dequantize=True)  # type: ignore[operator]
        loss = model.bits_from_log_prob(model.log_prob(x)).mean()  # type: ignore[operator]
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        opt.step()
        losses.append(loss.item())
    return losses


def stripes(n: int, shape: tuple[int, int, int]) -> torch.Tensor:
    """Synthetic images with structure: horizontal stripes at a random phase."""
    c, h, w = shape
    rows = (torch.arange(h)[None, :] + torch.randint(0, 2, (n, 1))) % 2
    return (rows * 200 + 20)[:, None, :, None].expand(n, c, h, w).to(torch.uint8).contiguous()


@pytest.mark.parametrize("channels", [1, 3])
def test_trains_a_few_steps_on_synthetic_data(channels: int) -> None:
    model = tiny((channels, 6, 6), dropout=0.1)
    losses = train_steps(model, stripes(16, (channels, 6, 6)), steps=15)
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 0.5


def test_samples_follow_the_model() -> None:
    # the first pixel of a 1 x 1 x 2 image has a fixed marginal: compare its histogram
    model = tiny((1, 1, 2)).eval()
    n = 20_000
    samples = model.sample_images(n)
    assert samples.shape == (n, 1, 1, 2) and samples.dtype == torch.uint8
    counts = torch.bincount(samples[:, 0, 0, 0].long(), minlength=256) / n
    with torch.no_grad():
        x0 = torch.arange(256, dtype=torch.uint8).view(256, 1, 1, 1).expand(256, 1, 1, 2)
        marginal = model.conditional_log_probs(model.preprocess(x0.contiguous(), False))
    total_variation = 0.5 * (counts - marginal[:, 0, 0, 0].exp()).abs().sum()
    assert total_variation < 0.08
    rgb = tiny((3, 3, 3), scales=2).eval().sample_images(2, temperature=0.5)
    assert rgb.shape == (2, 3, 3, 3) and rgb.dtype == torch.uint8


def test_save_and_resume(tmp_path: Path) -> None:
    model = tiny((3, 4, 4), scales=2)
    train_steps(model, random_images(8, (3, 4, 4)), steps=2)
    torch.save({"hparams": model.hparams, "state": model.state_dict()}, tmp_path / "ckpt.pt")
    saved = torch.load(tmp_path / "ckpt.pt")
    restored = build("pixelcnn", (3, 4, 4), **saved["hparams"])
    restored.load_state_dict(saved["state"])
    images = random_images(4, (3, 4, 4))
    model.eval()
    restored.eval()
    torch.testing.assert_close(restored.bits_per_dim(images), model.bits_per_dim(images))
    # and training continues from the restored weights identically
    torch.manual_seed(3)
    a = train_steps(model, images, 2)
    torch.manual_seed(3)
    b = train_steps(restored, images, 2)
    assert a == pytest.approx(b, rel=1e-5)


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        tiny((1, 2, 2), scales=3)
    with pytest.raises(TypeError):
        tiny((1, 4, 4), hidden=3)
    with pytest.raises(TypeError, match="uint8"):
        tiny((1, 4, 4)).bits_per_dim(torch.zeros(1, 1, 4, 4))
