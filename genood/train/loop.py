"""The training loop: maximum likelihood on dequantised images.

Each step minimises the mean bits/dim of a dequantised batch,

    loss = mean_b  -(log p(x_b) - D log 256) / (D log 2),   x_b = (y_b + u_b) / 256 - 1/2,

which is the negative log-likelihood of the 8-bit data up to constants (Theis et al. 2016;
Kingma & Dhariwal 2018); ``train.l2`` adds Ren et al.'s L2 penalty on the kernels as coupled
weight decay (:mod:`genood.train.optim`), and ``train.jacobian_penalty`` the Jacobian penalty
``lambda * ||df/dx||_F^2 / D`` of a flow (:mod:`genood.train.jacobian`). The loop is written for
CUDA first: batches stay uint8 until they are on the device, losses and counters accumulate on
the device and are read only every ``log_every`` steps, and the non-finite guard needs no host
synchronisation (see ``genood.train.nonfinite``).

Every step is a function of the run's seed and the step number (data order, mutation and
dequantisation noise, and the global torch RNG, which each step re-seeds), so that a resumed run
continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import inspect
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from genood import config as cfg
from genood.models.base import LikelihoodModel
from genood.train import checkpoint as ckpt
from genood.train.batches import (
    STREAM_GLOBAL,
    STREAM_SAMPLES,
    TrainStream,
    derive_seed,
    mutate,
    shard_range,
)
from genood.train.distributed import DistContext
from genood.train.jacobian import METRIC as JACOBIAN_METRIC
from genood.train.jacobian import JacobianObjective, check_penalty_config
from genood.train.monitor import mean_bits_per_dim, sample_grid
from genood.train.nonfinite import NonFiniteError, NonFiniteGuard
from genood.train.optim import (
    WarmupSchedule,
    apply_hyperparameters,
    build_optimizer,
    clip_gradients,
    l2_kernels,
)
from genood.train.precision import Precision, to_channels_last
from genood.train.run import RunFolder


class Objective(nn.Module):
    """Per-sample bits/dim of a model-space batch: the module DDP and ``torch.compile`` wrap.

    ``LikelihoodModel`` has no ``forward`` (its contract is ``log_prob_terms``); DDP needs the
    gradient-producing computation to go through one module's ``forward``.
    """

    def __init__(self, model: LikelihoodModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.bits_from_log_prob(self.model.log_prob(x).float(), x)


@dataclass
class TrainData:
    """Preprocessed uint8 sets: training images, held-out images, tracked (OOD) sets."""

    train: np.ndarray
    val: np.ndarray | None = None
    track: dict[str, np.ndarray] = field(default_factory=dict)


class StopRequest:
    """SIGINT/SIGTERM while training: finish the step, write a checkpoint, then stop.

    A second signal interrupts at once. Installed only in the main thread.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum
        tqdm.write("[genood] stopping after this step and writing a checkpoint (again: abort)")

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer:
    """One training run's state and loop.

    Args:
        config: the resolved run config.
        model: the freshly built model, on ``device``.
        data: the preprocessed sets.
        run: the run folder.
        context: rank and world.
        device: the training device.
        precision: the resolved precision.
        progress: show a tqdm bar (main rank only).
    """

    def __init__(
        self,
        config: cfg.RunConfig,
        model: LikelihoodModel,
        data: TrainData,
        run: RunFolder,
        context: DistContext,
        device: torch.device,
        precision: Precision,
        progress: bool = True,
    ) -> None:
        t = config.train
        if t.batch_size % context.world_size:
            raise ValueError(
                f"train.batch_size ({t.batch_size}) must be divisible by the number of processes "
                f"({context.world_size}) so that every rank gets an equal shard"
            )
        self.config = config
        self.model = model
        self.data = data
        self.run = run
        self.context = context
        self.device = device
        self.precision = precision
        self.progress = progress and context.is_main
        self.stream = TrainStream(data.train, t.batch_size, t.seed, device)
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError(f"{type(model).__name__} has no trainable parameters")
        self.dimensions = math.prod(model.image_shape)
        self.optimizer = build_optimizer(self.params, t, device, l2_kernels(model), self.dimensions)
        self.schedule = WarmupSchedule(t.lr, t.warmup_steps)
        self.scaler = precision.grad_scaler()
        self.guard = NonFiniteGuard(
            t.max_nonfinite,
            device,
            sync=device.type == "cpu",
            reduce_min=context.all_reduce_min if context.enabled else None,
            on_skip=self._on_skip,
        )
        self.step = 0
        self.train_time_s = 0.0
        self.last: dict[str, Any] = {}
        self.bits_objective = Objective(model)
        self.penalty = t.jacobian_penalty
        self.objective: nn.Module = self.bits_objective
        if self.penalty > 0:
            check_penalty_config(t, precision.name)
            self.objective = JacobianObjective(model, t.jacobian_samples)
        self.train_module: nn.Module = self.objective
        self.step_penalty: Tensor | None = None  # the last step's mean R / D (penalised runs)

    # ----------------------------------------------------------------- set-up
    def initialize(self) -> None:
        """Data-dependent initialisation: one fp32 forward in train mode on an init batch.

        The batch is the global batch of step 0 with its own noise, identical on every rank, so
        ActNorm layers initialise identically everywhere before DDP wraps the model.
        """
        self.model.train()
        generator = self.stream.init_generator()
        batch = self.stream.batch(0)
        if self.config.data.mutation_rate > 0:  # initialise on what training will see
            batch = mutate(batch, self.config.data.mutation_rate, generator)
        with torch.no_grad():
            x = self.model.preprocess(batch, dequantize=True, generator=generator)
            self.bits_objective(self._layout(x))

    def prepare(self) -> None:
        """Memory format, DDP wrapping and ``torch.compile``, after initialisation or loading."""
        t = self.config.train
        if t.channels_last:
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing from Module.to's stubs
        module: Any = self.objective  # an nn.Module, or what torch.compile wraps it in
        if self.context.enabled:
            # Buffers (ActNorm's "initialized" flags, LU permutations) are identical on every
            # rank after the shared initialisation; syncing them on each forward is wasted work.
            sync: dict[str, Any] = (
                {"forward_sync_buffers": False}
                if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                else {"broadcast_buffers": False}
            )
            module = DistributedDataParallel(
                module,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=self._has_unused_parameters(),
                **sync,
            )
        if t.compile:
            module = torch.compile(module)
        self.train_module = module
        self.model.train()

    def _has_unused_parameters(self) -> bool:
        """Probe on two images whether some parameter gets no gradient (DDP must be told)."""
        x = self.model.preprocess(self.stream.batch(0)[:2], dequantize=False)
        out = self.objective(self._layout(x))
        (sum(o.mean() for o in out) if isinstance(out, tuple) else out.mean()).backward()
        unused = any(p.grad is None for p in self.params)
        self.optimizer.zero_grad(set_to_none=True)
        return unused

    def _layout(self, x: Tensor) -> Tensor:
        return to_channels_last(x) if self.config.train.channels_last else x

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs, as tensors and plain values."""
        return {
            "format": ckpt.FORMAT,
            "version": ckpt.VERSION,
            "step": self.step,
            "train_time_s": self.train_time_s,
            "model_name": self.config.model.name,
            "image_shape": list(self.model.image_shape),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(self.step),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "guard": self.guard.state_dict(),
            "rng": ckpt.capture_rng(),
            "config": cfg.dumps_toml(cfg.to_dict(self.config)),
            "world_size": self.context.world_size,
            "last": dict(self.last),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint (written by any world size)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        apply_hyperparameters(self.optimizer, self.config.train, self.device, self.dimensions)
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.guard.load_state_dict(state.get("guard", {}))
        self.step = int(state["step"])
        self.train_time_s = float(state.get("train_time_s", 0.0))
        self.last = dict(state.get("last", {}))
        ckpt.restore_rng(state["rng"])

    def save_checkpoint(self) -> None:
        """Write ``checkpoints/last.pt`` atomically (main rank only)."""
        if self.scaler is None and not self.guard.sync:
            self.guard.check(self.step)  # never checkpoint past an unnoticed streak
        state = self.state_dict()  # every rank reads the counters (collective-free)
        if self.context.is_main:
            ckpt.save_atomic(state, self.run.last_checkpoint)

    # ----------------------------------------------------------------- one step
    def train_step(self, step: int) -> tuple[Tensor, Tensor, Tensor, float]:
        """One optimiser step; returns ``(loss, grad_norm, ok, lr)`` with device tensors."""
        t = self.config.train
        torch.manual_seed(derive_seed(t.seed, STREAM_GLOBAL, step, self.context.rank))
        lr = self.schedule.apply(self.optimizer, step)
        generator = self.stream.generator(step)
        batch = self.stream.batch(step)
        if self.config.data.mutation_rate > 0:
            batch = mutate(batch, self.config.data.mutation_rate, generator)
        x = self.model.preprocess(batch, dequantize=True, generator=generator)
        start, stop = shard_range(len(x), self.context.rank, self.context.world_size)
        x = self._layout(x[start:stop])
        with self.precision.autocast():
            out = self.train_module(x)
        if self.penalty > 0:
            bits, r = out
            loss = bits.float().mean()
            penalty = r.float().mean()
            objective = loss + self.penalty * penalty  # what is minimised and guarded
            self.step_penalty = penalty.detach()
        else:
            loss = out.float().mean()
            objective = loss
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(objective).backward()
            self.scaler.unscale_(self.optimizer)
            grad_norm = clip_gradients(self.params, t.grad_clip)
            ok = self.guard.finite(objective, torch.zeros((), device=loss.device))
            self.scaler.step(self.optimizer)  # skips non-finite gradients by itself
            self.scaler.update()
            self.guard.record(ok)
        else:
            objective.backward()
            grad_norm = clip_gradients(self.params, t.grad_clip)
            ok = self.guard.step(self.optimizer, objective, grad_norm, step)
        return loss.detach(), grad_norm.detach().to(loss.device), ok, lr

    def _on_skip(self, step: int, loss: float, grad_norm: float) -> None:
        message = f"step {step}: non-finite loss ({loss}) or gradient norm ({grad_norm}); skipped"
        if self.context.is_main:
            tqdm.write(f"[genood] {message}")
        self.run.log(
            "nonfinite",
            step=step,
            loss_bpd=_finite_or_none(loss),
            grad_norm=_finite_or_none(grad_norm),
        )

    # ----------------------------------------------------------------- the loop
    def fit(self) -> dict[str, Any]:
        """Train to ``train.steps`` (or the time budget); returns the final metrics."""
        try:
            return self._loop()
        except NonFiniteError as error:
            self.run.log("error", step=self.step, error=str(error))
            raise

    def _loop(self) -> dict[str, Any]:
        t = self.config.train
        log_every = max(1, t.log_every)
        session_start, base_time = time.monotonic(), self.train_time_s
        # loss, grad norm, count (and the Jacobian penalty's R / D when it is on)
        sums = torch.zeros(3 + (self.penalty > 0), dtype=torch.float64, device=self.device)
        interval = _Interval()
        reason = "steps"
        bar = tqdm(
            total=t.steps,
            initial=self.step,
            disable=not self.progress,
            unit="step",
            dynamic_ncols=True,
            desc="training",
        )
        with StopRequest() as stop, bar:
            while self.step < t.steps:
                # Under DDP, ranks must agree on stopping: decide only at logging boundaries.
                if not self.context.enabled or self.step % log_every == 0:
                    elapsed = base_time + time.monotonic() - session_start
                    reason = self._stop_reason(stop, elapsed)
                    if reason != "steps":
                        break
                loss, grad_norm, ok, lr = self.train_step(self.step)
                okf = ok.to(torch.float64)
                # non-finite steps add 0 (NaN * 0 is NaN, hence nan_to_num) and are not counted
                parts = [loss.double() * okf, grad_norm.double() * okf, okf]
                if self.step_penalty is not None:
                    parts.append(self.step_penalty.double() * okf)
                sums += torch.stack(parts).nan_to_num()
                self.step += 1
                interval.steps += 1
                bar.update(1)
                self.train_time_s = base_time + time.monotonic() - session_start
                if self.step % log_every == 0 or self.step == t.steps:
                    self._log_train(sums, lr, interval, bar)
                if self.step < t.steps:
                    with interval.pause():
                        self._periodic()
            if interval.steps:
                self._log_train(sums, self.schedule.lr(self.step - 1), interval, bar)
        return self._finish(reason)

    def _periodic(self) -> None:
        """Evaluation, samples and checkpoints due after this step (the last step: ``_finish``)."""
        t = self.config.train
        if t.eval_every > 0 and self.step % t.eval_every == 0:
            self.evaluate()
        if t.sample_every > 0 and self.step % t.sample_every == 0:
            self.sample()
        if t.checkpoint_every > 0 and self.step % t.checkpoint_every == 0:
            self.save_checkpoint()

    def _stop_reason(self, stop: StopRequest, elapsed: float) -> str:
        """``steps`` (keep going), ``time_budget`` or ``signal``, agreed across ranks."""
        budget = self.config.train.time_budget_s
        signalled, out_of_time = stop.signal is not None, budget > 0 and elapsed >= budget
        if self.context.enabled:  # a host-side decision otherwise: no device sync per step
            flags = torch.tensor([float(signalled), float(out_of_time)], device=self.device)
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
            signalled, out_of_time = (bool(v) for v in flags.tolist())
        if signalled:
            return "signal"
        return "time_budget" if out_of_time else "steps"

    def _log_train(self, sums: Tensor, lr: float, interval: _Interval, bar: tqdm) -> None:
        """Read the device accumulators (the one host sync per ``log_every`` steps) and log."""
        if self.scaler is not None or not self.guard.sync:
            self.guard.check(self.step)
        # Summed over ranks: each rank adds its shard's mean loss and the (global) gradient norm
        # of each finite step, and counts it, so the ratios are means over ranks and steps.
        loss_sum, norm_sum, count, *penalty = self.context.all_reduce_sum(sums.clone()).tolist()
        record = {
            "step": self.step,
            "loss_bpd": loss_sum / count if count else None,
            "grad_norm": norm_sum / count if count else None,
            "lr": lr,
            "img_per_s": interval.steps * self.config.train.batch_size / interval.seconds(),
            "nonfinite_skipped": self.guard.skipped,
            "epoch": round(self.stream.epoch_of(self.step), 4),
        }
        if penalty:
            record[JACOBIAN_METRIC] = penalty[0] / count if count else None
        sums.zero_()
        interval.reset()
        self.last.update({k: v for k, v in record.items() if k != "step"})
        self.run.log("train", **record)
        if self.progress:
            bar.set_postfix(
                bpd=f"{record['loss_bpd']:.4f}" if record["loss_bpd"] is not None else "nan",
                img_s=f"{record['img_per_s']:.0f}",
                skipped=record["nonfinite_skipped"],
                refresh=False,
            )

    def evaluate(self) -> dict[str, Any]:
        """Mean bits/dim of the held-out set and of every tracked set; logged."""
        if self.data.val is None and not self.data.track:
            return {}
        record: dict[str, Any] = {"step": self.step}
        if self.data.val is not None:
            record["eval_bpd"] = mean_bits_per_dim(self.model, self.data.val, self.context)
        if self.data.track:
            record["track_bpd"] = {
                spec: mean_bits_per_dim(self.model, images, self.context)
                for spec, images in self.data.track.items()
            }
        self.last.update({k: v for k, v in record.items() if k != "step"})
        self.run.log("eval", **record)
        if self.progress:
            parts = [f"step {self.step}"]
            if "eval_bpd" in record:
                parts.append(f"held-out {record['eval_bpd']:.4f} bits/dim")
            parts += [f"{spec} {bpd:.4f}" for spec, bpd in record.get("track_bpd", {}).items()]
            tqdm.write("[genood] eval: " + ", ".join(parts))
        return record

    def sample(self) -> None:
        """Write ``samples/step-XXXXXXX.png`` (main rank; the model's own sampler)."""
        if not self.context.is_main:
            return
        seed = derive_seed(self.config.train.seed, STREAM_SAMPLES, self.step)
        path = self.run.sample_path(self.step)
        if sample_grid(self.model, path, seed):
            self.run.log("samples", step=self.step, path=str(path.relative_to(self.run.root)))

    def _finish(self, reason: str) -> dict[str, Any]:
        t = self.config.train
        self.evaluate()
        if t.sample_every >= 0:
            self.sample()
        self.save_checkpoint()
        finished = reason in ("steps", "time_budget")
        result = {
            "step": self.step,
            "steps": t.steps,
            "stopped": reason,
            "finished": finished,
            "train_time_s": round(self.train_time_s, 3),
            **self.last,
            "nonfinite_skipped": self.guard.skipped,
        }
        self.run.log("end", **result)
        if finished:
            self.run.write_json(self.run.done_path, result)
        self.context.barrier()
        if reason == "signal":
            raise KeyboardInterrupt(f"training stopped at step {self.step}; checkpoint written")
        return result


class _Interval:
    """Steps and training seconds since the last log (evaluation and checkpoints excluded)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.steps = 0
        self.start = time.monotonic()
        self.paused = 0.0

    def seconds(self) -> float:
        return max(time.monotonic() - self.start - self.paused, 1e-9)

    @contextmanager
    def pause(self) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.paused += time.monotonic() - began


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
