"""The training batches: a reproducible function of (seed, step), whatever the world size.

The training stream is an endless concatenation of epochs; epoch ``e`` visits the images in the
order of a permutation drawn from ``(seed, e)``, and step ``s`` takes positions
``[s * B, (s + 1) * B)`` of the stream for the global batch size ``B``. Every random draw of a
step (Ren et al.'s pixel mutation, the dequantisation noise) comes from a generator seeded with
``(seed, s)``, drawn for the *global* batch. A rank then keeps its contiguous shard of ``B / W``
images. Hence:

* resuming needs only the step: nothing about the data order has to be saved;
* a run on ``W`` ranks sees exactly the batches and noise of a single-process run with the same
  global batch, and can be resumed on another number of ranks (the sharded sampler of DDP).

The uint8 images stay uint8 until they are on the device (pinned host memory, or the whole set on
the GPU when it fits); dequantisation runs on the device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# Distinct streams of random numbers, so that changing one use never shifts another.
STREAM_ORDER = 0
STREAM_STEP = 1
STREAM_INIT = 2
STREAM_GLOBAL = 3
STREAM_SAMPLES = 4
STREAM_MODEL = 5


def derive_seed(seed: int, stream: int, *indices: int) -> int:
    """A 63-bit seed for ``(seed, stream, *indices)`` (numpy's SeedSequence hashing)."""
    entropy = [int(seed), stream, *(int(i) for i in indices)]
    state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def shard_range(total: int, rank: int, world_size: int) -> tuple[int, int]:
    """Contiguous ``[start, stop)`` of rank ``rank`` among ``world_size`` near-equal shards."""
    base, extra = divmod(total, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class TrainStream:
    """Global batches of uint8 training images as a function of the step.

    Args:
        images: uint8 ``(N, C, H, W)`` (numpy or torch), the preprocessed training set.
        batch_size: the global batch size ``B``.
        seed: the run's seed.
        device: where batches go; on CUDA the set is moved to the GPU when it takes less than
            a fifth of free memory, else kept in pinned host memory.
    """

    def __init__(
        self, images: np.ndarray | Tensor, batch_size: int, seed: int, device: torch.device
    ) -> None:
        tensor = images if isinstance(images, Tensor) else torch.from_numpy(np.asarray(images))
        if tensor.dtype != torch.uint8 or tensor.dim() != 4:
            raise TypeError(
                f"training images must be uint8 (N, C, H, W), got {tensor.dtype} {tuple(tensor.shape)}"
            )
        if len(tensor) == 0:
            raise ValueError("the training set is empty")
        if batch_size < 1:
            raise ValueError(f"train.batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.num_images = len(tensor)
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            nbytes = tensor.numel()
            tensor = tensor.to(device) if nbytes < free // 5 else tensor.pin_memory()
        self.images = tensor
        self._order_cache: dict[int, Tensor] = {}
        self._generator = torch.Generator(device=device)

    # ----------------------------------------------------------------- order
    def epoch_order(self, epoch: int) -> Tensor:
        """The permutation of epoch ``epoch`` (cached for the two most recent epochs)."""
        if epoch not in self._order_cache:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, STREAM_ORDER, epoch))
            self._order_cache[epoch] = torch.randperm(self.num_images, generator=generator)
            for old in [e for e in self._order_cache if e < epoch - 1]:
                del self._order_cache[old]
        return self._order_cache[epoch]

    def indices(self, step: int) -> Tensor:
        """Indices (int64, CPU) of the global batch of ``step``."""
        start = step * self.batch_size
        positions = torch.arange(start, start + self.batch_size)
        epochs = positions // self.num_images
        within = positions % self.num_images
        out = torch.empty(self.batch_size, dtype=torch.int64)
        for epoch in torch.unique(epochs).tolist():
            mask = epochs == epoch
            out[mask] = self.epoch_order(epoch)[within[mask]]
        return out

    def epoch_of(self, step: int) -> float:
        """Epochs completed (fractional) after ``step`` steps."""
        return step * self.batch_size / self.num_images

    # ----------------------------------------------------------------- batches
    def generator(self, step: int) -> torch.Generator:
        """The device generator of ``step``'s random draws (re-seeded; no state to save)."""
        return self._generator.manual_seed(derive_seed(self.seed, STREAM_STEP, step))

    def init_generator(self) -> torch.Generator:
        """The generator of the data-dependent initialisation batch's noise."""
        return self._generator.manual_seed(derive_seed(self.seed, STREAM_INIT, 0))

    def batch(self, step: int) -> Tensor:
        """The global uint8 batch of ``step``, on the device."""
        index = self.indices(step)
        if self.images.device.type == "cuda":
            return self.images[index.to(self.images.device, non_blocking=True)]
        batch = self.images[index]
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch


def mutate(images: Tensor, rate: float, generator: torch.Generator) -> Tensor:
    """Ren et al. (2019)'s perturbation: each sub-pixel becomes uniform on 0..255 with prob ``rate``.

    Args:
        images: uint8 batch on the generator's device.
        rate: the mutation rate ``mu`` in ``[0, 1]``.
        generator: the step's generator.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"data.mutation_rate must be in [0, 1], got {rate}")
    if rate == 0.0:
        return images
    mask = torch.rand(images.shape, generator=generator, device=images.device) < rate
    noise = torch.randint(
        0, 256, images.shape, generator=generator, device=images.device, dtype=torch.uint8
    )
    return torch.where(mask, noise, images)
