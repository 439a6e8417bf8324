"""Training and evaluation batches: length-bucketed, frame-budgeted, reproducible per epoch; training
batches decoded and waveform-augmented where they are built (DataLoader workers when configured)."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from omni.data.augment import WaveAugment
from omni.data.manifest import audio_spans
from omni.data.tokenizer import Tokenizer

# Composition of buckets varies a little per epoch (lengths jittered by up to this fraction
# before sorting), so the model does not see the same fixed batches every epoch.
LENGTH_JITTER = 0.1


@dataclass
class Batch:
    utt_ids: list[str]
    waveforms: torch.Tensor  # [B, S] float32, zero padded
    wave_lengths: torch.Tensor  # [B] samples
    targets: torch.Tensor  # [B, U] int32, padded with 0
    target_lengths: torch.Tensor  # [B] int32
    transcripts: list[str]
    sample_rate: int
    # A training batch past the clean steps: its waveforms are perturbed already, and its features
    # are SpecAugment'ed from this seed (omni.asr.frontend). None: unaugmented.
    augment_seed: int | None = None

    def _tensors(self, move: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        return dataclasses.replace(
            self,
            waveforms=move(self.waveforms),
            wave_lengths=move(self.wave_lengths),
            targets=move(self.targets),
            target_lengths=move(self.target_lengths),
        )

    def to(self, device: torch.device) -> Batch:
        """Asynchronous from pinned memory (a DataLoader's), like any copy from there."""
        pinned = self.waveforms.is_pinned()
        return self._tensors(lambda tensor: tensor.to(device, non_blocking=pinned))

    def pin_memory(self) -> Batch:
        """Page-locked copies (what DataLoader(pin_memory=True) calls), for fast copies to a GPU."""
        return self._tensors(torch.Tensor.pin_memory)

    @property
    def audio_seconds(self) -> float:
        return float(self.wave_lengths.sum()) / self.sample_rate


class UtteranceSet:
    """A manifest's utterances with their token ids; audio read on demand, optionally cached."""

    def __init__(
        self, manifest: pd.DataFrame, tokenizer: Tokenizer | None, sample_rate: int, cache_audio: bool
    ) -> None:
        self.utt_ids = manifest["utt_id"].tolist()
        self.spans = audio_spans(manifest)
        self.transcripts = manifest["transcript"].tolist()
        self.num_samples = [int(round(d * sample_rate)) for d in manifest["duration_s"]]
        self.sample_rate = sample_rate
        self.tokens = [tokenizer.encode(t) for t in self.transcripts] if tokenizer else None
        self.cache: dict[int, torch.Tensor] | None = {} if cache_audio else None

    def __len__(self) -> int:
        return len(self.utt_ids)

    def waveform(self, index: int) -> torch.Tensor:
        if self.cache is not None and index in self.cache:
            return self.cache[index].float() / 32768.0
        audio = self.spans[index].read(self.sample_rate, resample=True)
        if self.cache is not None:  # int16 halves the memory of a cached corpus
            self.cache[index] = (audio * 32768.0).round().clamp(-32768, 32767).to(torch.int16)
            return self.cache[index].float() / 32768.0
        return audio

    def collate(self, indices: Sequence[int]) -> Batch:
        waves = [self.waveform(i) for i in indices]
        lengths = torch.tensor([w.numel() for w in waves], dtype=torch.long)
        padded = torch.zeros(len(waves), int(lengths.max()))
        for row, wave in enumerate(waves):
            padded[row, : wave.numel()] = wave
        if self.tokens is not None:
            toks = [self.tokens[i] for i in indices]
            target_lengths = torch.tensor([len(t) for t in toks], dtype=torch.int32)
            targets = torch.zeros(len(toks), max(1, int(target_lengths.max())), dtype=torch.int32)
            for row, tok in enumerate(toks):
                targets[row, : len(tok)] = torch.tensor(tok, dtype=torch.int32)
        else:
            target_lengths = torch.zeros(len(indices), dtype=torch.int32)
            targets = torch.zeros(len(indices), 1, dtype=torch.int32)
        return Batch(
            [self.utt_ids[i] for i in indices],
            padded,
            lengths,
            targets,
            target_lengths,
            [self.transcripts[i] for i in indices],
            self.sample_rate,
        )


@dataclass(frozen=True)
class LogitsBound:
    """A bound on the joiner's output of one batch, B x T' x (U + 1) x V elements (config
    train.max_logits): the RNN-T loss holds it and its gradient in memory, so a batch of long audio
    AND long transcripts runs out of memory where a frame budget alone would let it through."""

    max_elements: int
    symbols: int  # V: vocabulary + blank
    hop_length: int  # samples per input frame
    stride: int  # input frames per encoder frame (time_reduction_stride)
    right_context: int  # input frames of look-ahead padded to every utterance
    slowest_speed: float  # the smallest speed-perturbation factor: the longest a waveform can become

    def lattice(self, samples: int, tokens: int) -> tuple[int, int]:
        """(encoder frames T', labels U + 1) of one utterance at its slowest speed."""
        frames = math.floor(samples / self.slowest_speed) // self.hop_length + 1 + self.right_context
        return math.ceil(frames / self.stride), tokens + 1

    @property
    def max_lattice(self) -> int:
        """B x T' x (U + 1) nodes a batch may hold."""
        return self.max_elements // self.symbols


def bucket_batches(
    num_samples: Sequence[int],
    samples_budget: int,
    seed: int,
    epoch: int,
    sortagrad: bool = False,
    lattices: Sequence[tuple[int, int]] | None = None,
    max_lattice: int | None = None,
) -> list[list[int]]:
    """Group similar lengths so padding is small; a batch's padded size stays within the budget,
    and with `lattices` ((T', U + 1) per utterance) its padded lattice, B x max T' x max (U + 1),
    within `max_lattice`.

    The grouping and the batch order are a pure function of (seed, epoch), which is what lets
    a resumed run replay exactly the data an uninterrupted run would have seen. With
    `sortagrad`, epoch 0 runs short batches first (SortaGrad, Amodei et al. 2016): a transducer
    finds its alignments sooner on short utterances.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    keyed = sorted(
        range(len(num_samples)), key=lambda i: (num_samples[i] * (1 + LENGTH_JITTER * (2 * rng.random() - 1)), i)
    )
    batches: list[list[int]] = []
    current: list[int] = []
    longest, frames, labels = 0, 0, 0
    for index in keyed:
        candidate_longest = max(longest, num_samples[index])
        too_long = candidate_longest * (len(current) + 1) > samples_budget
        if lattices is not None and max_lattice is not None:
            frames_i, labels_i = lattices[index]
            too_long |= (len(current) + 1) * max(frames, frames_i) * max(labels, labels_i) > max_lattice
        if current and too_long:
            batches.append(current)
            current, longest, frames, labels = [], 0, 0, 0
            candidate_longest = num_samples[index]
        current.append(index)
        longest = candidate_longest
        if lattices is not None:
            frames, labels = max(frames, lattices[index][0]), max(labels, lattices[index][1])
    if current:
        batches.append(current)
    if sortagrad and epoch == 0:
        return batches
    rng.shuffle(batches)
    return batches


def augment_seeds(seed: int, epoch: int, position: int) -> tuple[int, int]:
    """(waveform, features) augmentation seeds of the batch at `position` in `epoch`'s shared order: a
    batch's perturbation depends on nothing else, so it is the same with or without loader workers,
    after a resume, and on whichever data-parallel rank takes the batch."""
    rng = random.Random(f"augment/{seed}/{epoch}/{position}")
    return rng.getrandbits(63), rng.getrandbits(63)


class BatchStream:
    """Endless, resumable stream of training batches: position = (epoch, index within epoch), and the
    steps of data handed out so far."""

    def __init__(
        self,
        utterances: UtteranceSet,
        samples_budget: int,
        seed: int,
        sortagrad: bool,
        rank: int = 0,
        world: int = 1,
        logits_bound: LogitsBound | None = None,
        workers: int = 0,
        pin_memory: bool = False,
        augment: WaveAugment | None = None,
        clean_steps: int = 0,
    ) -> None:
        """`logits_bound`: batches also bounded by the joiner's output size (an utterance alone over it
        is an error naming the config key). `workers`: batches decoded, padded and augmented in that
        many DataLoader worker processes ahead of the training step (0: in this process), into pinned
        memory when `pin_memory` (a CUDA job); the batches and the resumable position are the same.
        `augment`: batches after the first `clean_steps` steps are perturbed by it and carry the seed of
        their SpecAugment; None: every batch is clean."""
        self.utterances = utterances
        self.workers, self.pin_memory = workers, pin_memory
        self.augment, self.clean_steps = augment, clean_steps
        self.samples_budget = samples_budget
        self.logits_bound = logits_bound
        self.lattices = None if logits_bound is None else self._lattices(logits_bound)
        self.seed = seed
        self.sortagrad = sortagrad
        self.rank, self.world = rank, world
        self.epoch = 0
        self.position = 0
        self.steps = 0
        self._batches = self._epoch_batches()

    def _lattices(self, bound: LogitsBound) -> list[tuple[int, int]]:
        if self.utterances.tokens is None:
            raise ValueError("a logits bound needs the utterances' tokens (a tokenizer)")
        lattices = [
            bound.lattice(samples, len(tokens))
            for samples, tokens in zip(self.utterances.num_samples, self.utterances.tokens)
        ]
        largest = max(range(len(lattices)), key=lambda i: lattices[i][0] * lattices[i][1])
        frames, labels = lattices[largest]
        if frames * labels * bound.symbols > bound.max_elements:
            raise ValueError(
                f"config key 'train.max_logits': utterance {self.utterances.utt_ids[largest]} alone "
                f"needs {frames} x {labels} x {bound.symbols} = {frames * labels * bound.symbols:,} "
                f"logits, over the bound of {bound.max_elements:,}"
            )
        return lattices

    def _epoch_batches(self, epoch: int | None = None) -> list[list[int]]:
        return bucket_batches(
            self.utterances.num_samples,
            self.samples_budget,
            self.seed,
            self.epoch if epoch is None else epoch,
            self.sortagrad,
            self.lattices,
            None if self.logits_bound is None else self.logits_bound.max_lattice,
        )

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "steps": self.steps}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position, self.steps = int(state["epoch"]), int(state["position"]), int(state["steps"])
        self._batches = self._epoch_batches()

    def _plan(self) -> Iterator[_PlannedStep]:
        """This rank's share of each step from the current position on, with the stream's state after
        that step; the stream itself does not move (a loader may plan ahead of training).

        With `world` data-parallel ranks, each step takes the next `world` batches of the one shared
        order and this rank collates its own: the position (the checkpointed state) is the same on
        every rank, and together the ranks see what one process would, augmentation included."""
        epoch, position, steps, batches = self.epoch, self.position, self.steps, self._batches
        while True:
            planned = None
            for offset in range(self.world):
                if position >= len(batches):
                    epoch, position = epoch + 1, 0
                    batches = self._epoch_batches(epoch)
                if offset == self.rank:
                    augmented = self.augment is not None and steps >= self.clean_steps
                    planned = _PlannedStep(
                        {}, batches[position], augment_seeds(self.seed, epoch, position) if augmented else None
                    )
                position += 1
            steps += 1
            assert planned is not None, f"rank {self.rank} is not one of the {self.world} ranks"
            planned.state.update(epoch=epoch, position=position, steps=steps)
            yield planned

    def _advance(self, state: dict[str, int]) -> None:
        if state["epoch"] != self.epoch:
            self._batches = self._epoch_batches(state["epoch"])
        self.epoch, self.position, self.steps = state["epoch"], state["position"], state["steps"]

    def __iter__(self) -> Iterator[Batch]:
        """The batches in order; the position moves as each is handed out (what a checkpoint stores)."""
        built = _BuiltSteps(self.utterances, self.augment)
        if self.workers == 0:
            for planned in self._plan():
                state, batch = built[planned]
                self._advance(state)
                yield batch
            return
        # A generator of its own, not drawn from the global RNG (which the training loop checkpoints).
        loader = torch.utils.data.DataLoader(
            built,
            batch_size=None,
            sampler=self._plan(),
            num_workers=self.workers,
            pin_memory=self.pin_memory,
            collate_fn=_keep,
            generator=torch.Generator().manual_seed(self.seed),
        )
        for state, batch in loader:
            self._advance(state)
            yield batch


@dataclass
class _PlannedStep:
    """One rank's share of a step: the stream's state after it, its utterances, its augmentation seeds."""

    state: dict[str, int]
    indices: list[int]
    seeds: tuple[int, int] | None


class _BuiltSteps(torch.utils.data.Dataset):
    """Indexed by a planned step -> (state after it, its batch, augmented): a worker's unit of work."""

    def __init__(self, utterances: UtteranceSet, augment: WaveAugment | None) -> None:
        self.utterances, self.augment = utterances, augment

    def __getitem__(self, step: _PlannedStep) -> tuple[dict[str, int], Batch]:
        batch = self.utterances.collate(step.indices)
        if step.seeds is None:
            return step.state, batch
        wave_seed, features_seed = step.seeds
        assert self.augment is not None  # BatchStream._plan draws seeds only for a stream that augments
        waveforms, lengths = self.augment(batch.waveforms, batch.wave_lengths, torch.Generator().manual_seed(wave_seed))
        return step.state, dataclasses.replace(
            batch, waveforms=waveforms, wave_lengths=lengths, augment_seed=features_seed
        )


def _keep(item: object) -> object:
    """The DataLoader's collate step: the worker already built the Batch."""
    return item


def eval_batches(utterances: UtteranceSet, batch_size: int) -> Iterator[Batch]:
    """Fixed order (sorted by length) so decoding cost and results never depend on a seed."""
    order = sorted(range(len(utterances)), key=lambda i: (utterances.num_samples[i], i))
    for start in range(0, len(order), batch_size):
        yield utterances.collate(order[start : start + batch_size])
