"""The training loop every arm shares: dense, gradual pruning and the supernet differ only in
their GradientStrategy (how one step's gradients are formed and which masks apply).

Resumable by construction: model, optimizer, scheduler, RNG states, data position, strategy
state, step, wall time, audio seen and the log's rows so far all go into each checkpoint; a resumed
run replays the exact computation of an uninterrupted one on CPU, and rewrites the log from the
checkpoint (rows of work lost in a kill drop out; a lost or damaged log file comes back whole).

Data-parallel (omni.asr.parallel): every rank runs this loop on its own batches through
DistributedDataParallel, which averages the gradients in the step's last backward pass (the
earlier passes of a several-sub-network step accumulate under `no_sync()`); the logged loss and
the audio seen are reduced over ranks, so every rank takes the same decisions (skip a non-finite
step, stop). Every rank runs every backward pass, even of a non-finite loss, so the collectives
match; such a step is then skipped everywhere. Rank 0 alone writes the log, the progress bar and
the checkpoints, which hold every rank's RNG state; it also picks the checkpoint to resume (moving
damaged ones aside), and every rank loads the one it picked.
"""

from __future__ import annotations

import contextlib
import csv
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import torch
from torch.nn.parallel import DistributedDataParallel
from torchaudio.functional import rnnt_loss
from tqdm import tqdm

from omni.asr.checkpoints import CheckpointFolder
from omni.asr.distill import lattice_kl
from omni.asr.frontend import Frontend
from omni.asr.parallel import Ranks
from omni.atomic import atomic_path
from omni.data.batches import Batch, BatchStream

if TYPE_CHECKING:  # the strategies (omni.sparsity) build on this module
    from omni.sparsity.masks import RankingState

LOG_COLUMNS = ["step", "loss", "lr", "audio_seconds", "wall_s"]
KL_COLUMN = "kl"  # a distilling job's mean distillation term over the step's passes (the loss column includes it)
# Cosine decay ends at this fraction of the peak learning rate.
FINAL_LR_FRACTION = 0.05


class NonFiniteLossError(RuntimeError):
    """Too many consecutive non-finite losses: training diverged."""


@dataclass
class TrainSettings:
    steps: int
    lr: float
    weight_decay: float
    warmup_steps: int
    grad_clip: float
    checkpoint_every: int
    log_every: int
    max_consecutive_nonfinite: int
    bf16: bool = False  # forward passes under bfloat16 autocast (CUDA; config train.bf16)


class LossFn(Protocol):
    """The loss of the model, as currently masked, on the step's batch. `teacher_logits`: an in-place
    teacher's output on the same batch (another sub-network of the step), distilled from. `last`:
    whether this is the step's last pass (data-parallel ranks exchange gradients in its backward)."""

    last_logits: torch.Tensor | None  # the latest call's output, detached: an in-place teacher

    @property
    def last_frame_loss(self) -> float:
        """The latest call's loss per encoder frame (utterance lengths cancel); read-only, computed when asked."""
        ...

    def __call__(self, teacher_logits: torch.Tensor | None = None, last: bool = True) -> torch.Tensor: ...

    def backward(self, loss: torch.Tensor, passes: int = 1) -> None:
        """Backpropagate `loss` / `passes` (a step's passes average); see StepLoss.backward."""
        ...

    def mean_over_ranks(self, value: float) -> float:
        """A per-pass value averaged over the data-parallel ranks (so decisions taken on it agree)."""
        ...


class PlainLoss:
    """A LossFn over a closure, for a gradient strategy outside the training loop (benchmarks, tests):
    `compute()` gives the loss of the model as currently masked; one process, no teacher."""

    last_logits = None
    last_frame_loss = math.nan

    def __init__(self, compute: Callable[[], torch.Tensor]) -> None:
        self.compute = compute

    def __call__(self, teacher_logits: torch.Tensor | None = None, last: bool = True) -> torch.Tensor:
        return self.compute()

    def backward(self, loss: torch.Tensor, passes: int = 1) -> None:
        (loss / passes).backward()

    def mean_over_ranks(self, value: float) -> float:
        return value


@dataclass(frozen=True)
class Distillation:
    """A training job's distillation term: `weight` x lattice KL (omni.asr.distill) beside the RNN-T
    loss, from a frozen `teacher` model run on the same batch, or, when `teacher` is None, from
    logits the gradient strategy passes in place (the densest sub-network of the step)."""

    weight: float
    form: str
    teacher: torch.nn.Module | None = None


class StepLoss:
    """One step's batch, turned into features once (SpecAugment'ed when the batch says so), so every pass
    of the step and the teacher see the same input; calling it runs one forward pass of the model as
    currently masked."""

    def __init__(
        self,
        model: torch.nn.Module,
        frontend: Frontend,
        batch: Batch,
        blank: int,
        distillation: Distillation | None = None,
        ranks: Ranks = Ranks(),
        bf16: bool = False,
    ) -> None:
        """`model` is what runs the forward pass: the DistributedDataParallel wrapper with several ranks.
        `bf16`: the model's forward passes (student and teacher) under bfloat16 autocast on CUDA; the
        losses are computed from fp32 logits."""
        self.model, self.frontend, self.batch, self.blank = model, frontend, batch, blank
        self.distillation = distillation
        self.ranks = ranks
        self.bf16 = bf16
        self._features: tuple[torch.Tensor, torch.Tensor] | None = None
        self._teacher_logits: torch.Tensor | None = None
        self.last_logits: torch.Tensor | None = None  # the latest pass's output, detached (an in-place teacher)
        self._frame_loss: tuple[torch.Tensor, ...] = ()  # (loss, utterances / frames[, weighted KL]), detached
        self.kls: list[float] = []  # the distillation term of each pass

    def features(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._features is None:
            self._features = self.frontend(self.batch.waveforms, self.batch.wave_lengths, self.batch.augment_seed)
        return self._features

    def _logits(self, model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """The predictor sees the targets with blank prepended."""
        inputs, input_lengths = self.features()
        prepended = torch.nn.functional.pad(self.batch.targets, (1, 0), value=self.blank)
        with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits, logit_lengths, _, _ = model(inputs, input_lengths, prepended, self.batch.target_lengths + 1)
        return logits.float(), logit_lengths

    def _frozen_teacher_logits(self) -> torch.Tensor | None:
        teacher = self.distillation.teacher if self.distillation else None
        if teacher is not None and self._teacher_logits is None:
            with torch.no_grad():
                self._teacher_logits = self._logits(teacher)[0]
        return self._teacher_logits

    def __call__(self, teacher_logits: torch.Tensor | None = None, last: bool = True) -> torch.Tensor:
        """Mean per-utterance RNN-T loss, plus the distillation term when a teacher is given or configured.
        A pass that is not the step's last runs under DDP's `no_sync()`: its gradients accumulate
        locally and are exchanged with the last pass's."""
        if not last and isinstance(self.model, DistributedDataParallel):  # accumulating
            with self.model.no_sync():
                return self._loss(teacher_logits)
        return self._loss(teacher_logits)

    @property
    def last_frame_loss(self) -> float:
        """The latest pass's loss per encoder frame, read only when asked (no host sync otherwise)."""
        if not self._frame_loss:
            return math.nan
        loss, per_frame, *kl = self._frame_loss
        return float(loss * per_frame + sum(kl))

    def backward(self, loss: torch.Tensor, passes: int = 1) -> None:
        """Backpropagate `loss` / `passes`. A non-finite loss is skipped alone, but backpropagated with
        several ranks: every rank must run the same backward passes (DDP exchanges gradients in them);
        the step is then skipped on every rank (the summed loss is non-finite)."""
        if torch.isfinite(loss) or self.ranks.parallel:
            (loss / passes).backward()

    def mean_over_ranks(self, value: float) -> float:
        return self.ranks.mean(value, self.batch.targets.device)

    def log_fields(self) -> dict[str, float]:
        """The step's log fields of its own: the distillation term averaged over the passes that had one."""
        return {KL_COLUMN: sum(self.kls) / len(self.kls)} if self.kls else {}

    def _loss(self, teacher_logits: torch.Tensor | None) -> torch.Tensor:
        logits, logit_lengths = self._logits(self.model)
        targets, target_lengths = self.batch.targets, self.batch.target_lengths
        loss = rnnt_loss(
            logits, targets.int(), logit_lengths.int(), target_lengths.int(), blank=self.blank, reduction="mean"
        )
        self.last_logits = logits.detach()
        self._frame_loss = (loss.detach(), len(logit_lengths) / logit_lengths.sum().clamp_min(1))
        teacher = teacher_logits if teacher_logits is not None else self._frozen_teacher_logits()
        if teacher is not None:
            if self.distillation is None:
                raise ValueError("a teacher's logits were passed to a job that does not distill")
            kl = lattice_kl(logits, teacher, logit_lengths, targets, target_lengths, self.blank, self.distillation.form)
            self.kls.append(float(kl.detach()))
            loss = loss + self.distillation.weight * kl
            self._frame_loss += (self.distillation.weight * kl.detach(),)  # already per frame
        return loss


@dataclass
class StepResult:
    """What one step's passes give the loop: the loss to log (non-finite if any pass was), how many
    sub-network passes ran (the cost record counts them) and the strategy's own log fields."""

    loss: float
    passes: int = 1
    fields: dict[str, float] = field(default_factory=dict)


class GradientStrategy:
    """How one step's gradients are formed in the shared weights, and which masks apply. This base is plain
    dense training (one forward and backward of the whole network, no state of its own); an arm's strategy
    overrides what it changes: its masks before a step (`prepare`), its passes (`accumulate`), what it
    restores after the optimizer step, its log columns, its checkpointed state and the final network."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def prepare(self, step: int) -> None:
        """Before the step's passes (e.g. re-rank and set masks)."""

    def accumulate(self, step: int, loss_fn: LossFn) -> StepResult:
        loss = loss_fn()
        loss_fn.backward(loss)
        return StepResult(float(loss.detach()))

    def after_step(self) -> None:
        """After each optimizer step (e.g. keep pruned weights at zero)."""

    def log_columns(self) -> list[str]:
        return []

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores what state_dict gave (nothing here)."""

    def model_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights to checkpoint, in plain parameter names, unmasked (exact resume)."""
        return self.model.state_dict()

    def load_model_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)

    def final_model(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The trained network as (plain state dict with masks applied, masks by name)."""
        return self.model.state_dict(), {}

    def final_rankings(self) -> dict[str, RankingState]:
        """Per-layer rankings the last step trained with, saved for extraction (supernet); else {}."""
        return {}


def warmup_cosine(settings: TrainSettings) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        span = max(1, settings.steps - settings.warmup_steps)
        progress = min(1.0, (step - settings.warmup_steps) / span)
        return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


@dataclass
class TrainResult:
    steps: int
    wall_s: float
    audio_seconds: float
    nonfinite_skipped: int
    subnet_passes: int


class Trainer:
    def __init__(
        self,
        model: torch.nn.Module,
        frontend: Frontend,
        strategy: GradientStrategy,
        stream: BatchStream,
        settings: TrainSettings,
        blank: int,
        device: torch.device,
        checkpoints: CheckpointFolder,
        log_path: Path,
        description: str,
        halt_after: int | None = None,
        ranks: Ranks = Ranks(),
        distillation: Distillation | None = None,
    ) -> None:
        """`halt_after` stops (like a kill) after that step's checkpoint; tests use it."""
        self.model, self.frontend, self.strategy = model, frontend, strategy
        self.distillation = distillation
        self.stream, self.settings, self.blank, self.device = stream, settings, blank, device
        self.checkpoints, self.log_path, self.description = checkpoints, log_path, description
        self.halt_after = halt_after
        self.ranks = ranks
        # Several ranks: the forward runs through DDP, which averages gradients in backward. Masks and
        # parametrizations are on `model` already (the strategy was built first); masks are computed
        # alike on every rank from identical weights, so buffers are not broadcast.
        self.forward_model: torch.nn.Module = (
            DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None, forward_sync_buffers=False
            )
            if ranks.parallel
            else model
        )
        self.params = params = [p for p in model.parameters() if p.requires_grad]
        # fused AdamW: one kernel per step on CPU and CUDA, and no slow-down from the exact zeros
        # that masked weights leave in the second-moment estimate (benchmarks/masking.py).
        self.optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay, fused=True)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(settings))
        self.step = 0
        self.prior_wall_s = 0.0
        self.audio_seconds = 0.0
        self.nonfinite_skipped = 0
        self.nonfinite_in_a_row = 0
        self.subnet_passes = 0
        self.log_rows: list[list[str]] = []  # the log's rows so far (rank 0), checkpointed with the rest

    # -- checkpoint state ---------------------------------------------------------------
    def _rng_state(self) -> dict[str, torch.Tensor]:
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def _state(self, wall_s: float, rng_by_rank: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
        return {
            "model": {k: v.detach().cpu() for k, v in self.strategy.model_state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_by_rank,
            "data": self.stream.state_dict(),
            "strategy": self.strategy.state_dict(),
            "wall_s": wall_s,
            "audio_seconds": self.audio_seconds,
            "nonfinite_skipped": self.nonfinite_skipped,
            "subnet_passes": self.subnet_passes,
            "log": self.log_rows,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.strategy.load_model_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        rng = state["rng"][self.ranks.rank]
        torch.set_rng_state(rng["torch"])
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.stream.load_state_dict(state["data"])
        self.strategy.load_state_dict(state["strategy"])
        self.step = int(state["step"])
        self.prior_wall_s = float(state["wall_s"])
        self.audio_seconds = float(state["audio_seconds"])
        self.nonfinite_skipped = int(state["nonfinite_skipped"])
        self.subnet_passes = int(state["subnet_passes"])
        self.log_rows = [list(row) for row in state["log"]]

    def _extra_columns(self) -> list[str]:
        """Log columns after LOG_COLUMNS: the distillation term when distilling, then the strategy's."""
        return ([KL_COLUMN] if self.distillation else []) + self.strategy.log_columns()

    def _rewrite_log(self) -> None:
        """The log file as of the resumed step, from the checkpoint's rows: rows written past it belong
        to work lost in the kill, and a log file lost or damaged since comes back whole."""
        if self.step and not self.log_path.exists():
            self._say(f"{self.log_path} was missing: rebuilt from the checkpoint of step {self.step}")
        with atomic_path(self.log_path) as tmp, open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(LOG_COLUMNS + self._extra_columns())
            writer.writerows(self.log_rows)

    def _say(self, message: str) -> None:
        """Into the job's log (stderr, omni.logs.tee_stderr), above the progress bar; rank 0 only."""
        if self.ranks.is_writer:
            tqdm.write(f"[{self.description}] {message}", file=sys.stderr)

    def _resume(self) -> None:
        """Rank 0 picks the newest intact checkpoint; every rank restores that one (or none: from scratch)."""
        picked = self.checkpoints.resume(self._say) if self.ranks.is_writer else None
        step = self.ranks.gather(None if picked is None else int(picked["step"]))[0]
        if step is None:
            return
        self._restore(picked if picked is not None else self.checkpoints.load(step))
        self._say(f"resumed from step {self.step}")

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Forward and backward (the strategy's passes), clip, step; a non-finite step is skipped.
        Logs every `log_every` steps and checkpoints every `checkpoint_every` (and at the end)."""
        self._begin()
        start = time.perf_counter()
        batches = iter(self.stream)
        self.forward_model.train()
        with self._log_file() as log, self._progress() as progress:
            while self.step < self.settings.steps:
                batch = next(batches).to(self.device)
                self.strategy.prepare(self.step)
                self.optimizer.zero_grad(set_to_none=True)
                loss_fn = self._step_loss(batch)
                result = self.strategy.accumulate(self.step, loss_fn)
                loss, audio_seconds = self._mean_over_ranks(result.loss, batch.audio_seconds)
                if not (math.isfinite(loss) and self._clip_gradients()):
                    self._skip_step()
                    continue
                self.optimizer.step()
                self.strategy.after_step()
                self.scheduler.step()
                self.step += 1
                self.nonfinite_in_a_row = 0
                self.subnet_passes += result.passes
                self.audio_seconds += audio_seconds
                wall = self.prior_wall_s + time.perf_counter() - start
                # a float: LambdaLR scales the optimizer's float lr (torch types lrs float | Tensor for tensor lrs)
                lr = cast(float, self.scheduler.get_last_lr()[0])
                self._log_step(log, loss, lr, wall, {**result.fields, **loss_fn.log_fields()})
                progress.update(1)
                progress.set_postfix(
                    loss=f"{loss:.3f}",
                    lr=f"{lr:.2e}",
                    audio_x=f"{self.audio_seconds / max(wall, 1e-9):.1f}",
                    refresh=False,
                )
                self._checkpoint_if_due(wall)
                if self.halt_after is not None and self.step >= self.halt_after:
                    break
        wall = self.prior_wall_s + time.perf_counter() - start
        return TrainResult(self.step, wall, self.audio_seconds, self.nonfinite_skipped, self.subnet_passes)

    def _begin(self) -> None:
        if self.settings.bf16 and self.device.type != "cuda":
            self._say(f"config key 'train.bf16' applies on CUDA; this job runs on {self.device.type} in fp32")
        self._resume()
        if self.ranks.is_writer:
            self._rewrite_log()

    def _log_file(self) -> contextlib.AbstractContextManager[Any]:
        """The log, opened for appending (rank 0; the other ranks write nothing)."""
        return open(self.log_path, "a", newline="") if self.ranks.is_writer else contextlib.nullcontext()

    def _progress(self) -> tqdm:
        return tqdm(
            total=self.settings.steps,
            initial=self.step,
            desc=self.description,
            dynamic_ncols=True,
            mininterval=2.0,
            disable=not self.ranks.is_writer,
        )

    def _step_loss(self, batch: Batch) -> StepLoss:
        return StepLoss(
            self.forward_model,
            self.frontend,
            batch,
            self.blank,
            self.distillation,
            self.ranks,
            bf16=self.settings.bf16 and self.device.type == "cuda",
        )

    def _mean_over_ranks(self, loss: float, audio_seconds: float) -> tuple[float, float]:
        """The step's loss averaged and its audio summed over the data-parallel ranks."""
        loss_sum, audio_sum = self.ranks.sum([loss, audio_seconds], self.device)
        return loss_sum / self.ranks.world, audio_sum

    def _clip_gradients(self) -> bool:
        """Clips to train.grad_clip; False when the gradient norm is not finite."""
        return bool(torch.isfinite(torch.nn.utils.clip_grad_norm_(self.params, self.settings.grad_clip)))

    def _skip_step(self) -> None:
        """A non-finite loss or gradient: the batch is dropped; too many in a row stop the job."""
        self.nonfinite_in_a_row += 1
        self.nonfinite_skipped += 1
        self.optimizer.zero_grad(set_to_none=True)
        self._say(
            f"step {self.step}: non-finite loss/gradient, batch skipped "
            f"({self.nonfinite_in_a_row} in a row, {self.nonfinite_skipped} in total)"
        )
        if self.nonfinite_in_a_row >= self.settings.max_consecutive_nonfinite:
            raise NonFiniteLossError(
                f"{self.description}: {self.nonfinite_in_a_row} consecutive non-finite losses at step "
                f"{self.step} (limit config key 'train.max_consecutive_nonfinite'); no step past "
                f"{self.step} was checkpointed in {self.checkpoints.folder}"
            )

    def _log_step(self, log: Any, loss: float, lr: float, wall: float, fields: Mapping[str, float]) -> None:
        """One row every `log_every` steps and at the last (rank 0), kept for the checkpoint too."""
        if not self.ranks.is_writer or (self.step % self.settings.log_every and self.step != self.settings.steps):
            return
        row = [str(self.step), f"{loss:.5f}", f"{lr:.3e}", f"{self.audio_seconds:.2f}", f"{wall:.2f}"]
        row += [f"{fields.get(column, float('nan')):.5f}" for column in self._extra_columns()]
        csv.writer(log).writerow(row)
        log.flush()
        self.log_rows.append(row)

    def _checkpoint_if_due(self, wall: float) -> None:
        if self.step % self.settings.checkpoint_every == 0 or self.step == self.settings.steps:
            rng_by_rank = self.ranks.gather(self._rng_state())
            if self.ranks.is_writer:
                self.checkpoints.save(self.step, self._state(wall, rng_by_rank))
