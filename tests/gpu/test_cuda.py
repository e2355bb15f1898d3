"""The CUDA paths: every model family, training in each precision, resume, scoring, detection.

Skipped without a CUDA device (CI has none); run on a GPU machine with
``python -m pytest tests/gpu``. Each test compares the GPU against the CPU reference where the
maths is the same, so a device-placement bug (a buffer left on the CPU, a host-synchronising
guard, an autocast region that leaks into the log-determinants) fails here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import final_parameters, tiny_config, write_images

from genood.models import build
from genood.train import fit, load_run, score_dataset

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

FAMILIES = {
    "glow": {"levels": 2, "steps": 2, "hidden": 16},
    "cv-glow": {"levels": 2, "steps": 2, "hidden": 16},
    "realnvp": {"levels": 2, "steps": 2, "hidden": 16},
    "pixelcnn": {},
    "vae": {"iw_samples": 4},
    "hvae": {"latent_channels": [2, 3, 2], "hidden": 8, "num_mixtures": 2, "iw_samples": 4},
    # its scoring draws come from a CPU generator: the same noise on both devices
    "diffusion": {"hidden": 8, "levels": 1, "score_samples": 4, "sample_steps": 4},
}


@pytest.fixture
def data(tmp_path: Path) -> dict[str, str]:
    return {
        "train": write_images(tmp_path / "train.npz", 64, seed=1),
        "test": write_images(tmp_path / "test.npz", 32, seed=2),
    }


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 8, 8)])
def test_log_prob_terms_match_the_cpu(name: str, shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    model = build(name, shape, **FAMILIES[name]).eval()
    images = torch.randint(0, 256, (8, *shape), dtype=torch.uint8)
    with torch.no_grad():
        x = model.preprocess(images, dequantize=False)
        if name in ("vae", "hvae"):  # bounds are sampled: fix the sampling noise on both devices
            torch.manual_seed(1)
        cpu_terms = model.log_prob_terms(x)
        gpu_model = model.to("cuda")
        if name in ("vae", "hvae"):
            torch.manual_seed(1)
        gpu_terms = gpu_model.log_prob_terms(x.to("cuda"))
        assert set(cpu_terms) == set(gpu_terms)
        if name not in ("vae", "hvae"):  # CPU and CUDA draw different noise for the bounds
            for term, value in cpu_terms.items():
                torch.testing.assert_close(gpu_terms[term].cpu(), value, rtol=1e-4, atol=1e-2)
        for value in gpu_terms.values():
            assert value.device.type == "cuda" and torch.isfinite(value).all()
        samples = gpu_model.sample(4, temperature=0.7)
        assert samples.device.type == "cuda" and samples.shape == (4, *shape)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_runs_and_checkpoints_load_on_cpu(
    tmp_path: Path, data: dict[str, str], precision: str
) -> None:
    config = tiny_config(data["train"], data["test"], device="cuda", precision=precision, steps=8)
    config.train.eval_every = 4
    result = fit(config, tmp_path / "run", progress=False)
    assert result["finished"] and result["nonfinite_skipped"] == 0
    loaded = load_run(tmp_path / "run", device="cpu")
    assert next(loaded.model.parameters()).device.type == "cpu"
    scores = score_dataset(loaded, data["test"], device="cpu", save=False, progress=False)
    assert np.isfinite(scores["bits_per_dim"]).all()


def test_resume_on_cuda_matches_an_uninterrupted_run(tmp_path: Path, data: dict[str, str]) -> None:
    # cuDNN may pick different (non-deterministic) algorithms per process, so resume on CUDA is
    # exact up to float rounding, not bitwise (bitwise is stated for fp32 on CPU).
    whole = tiny_config(data["train"], device="cuda", steps=8, checkpoint_every=4)
    fit(whole, tmp_path / "whole", progress=False)
    half = tiny_config(data["train"], device="cuda", steps=4, checkpoint_every=4)
    fit(half, tmp_path / "split", progress=False)
    fit(whole, tmp_path / "split", progress=False)  # resumes from step 4
    a, b = final_parameters(tmp_path / "whole"), final_parameters(tmp_path / "split")
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5)


def test_scores_on_cuda_match_the_cpu(tmp_path: Path, data: dict[str, str]) -> None:
    fit(tiny_config(data["train"], steps=6), tmp_path / "run", progress=False)
    cpu = score_dataset(tmp_path / "run", data["test"], device="cpu", save=False, progress=False)
    gpu = score_dataset(tmp_path / "run", data["test"], device="cuda", save=False, progress=False)
    np.testing.assert_allclose(gpu["bits_per_dim"], cpu["bits_per_dim"], atol=1e-4)
    bf16 = score_dataset(
        tmp_path / "run", data["test"], device="cuda", precision="bf16", save=False, progress=False
    )
    # The bf16 tolerance stated in genood.train.precision.
    assert np.abs(bf16["bits_per_dim"] - cpu["bits_per_dim"]).max() < 0.01


def test_detectors_run_with_a_model_on_cuda(tmp_path: Path, data: dict[str, str]) -> None:
    from genood.ood import Likelihood, Typicality

    fit(tiny_config(data["train"], steps=6), tmp_path / "run", progress=False)
    model = load_run(tmp_path / "run", device="cuda").model
    rng = np.random.default_rng(0)
    inliers = np.load(data["train"][4:])["images"]
    noise = rng.integers(0, 256, inliers.shape, dtype=np.uint8)
    for detector in (Likelihood(model), Typicality(model)):
        detector.fit(inliers[:32]).calibrate(inliers[32:], target_fpr=0.1)
        scores = detector.decision_function(noise)
        assert np.isfinite(scores).all() and detector.predict(noise).mean() > 0.5
