"""Data-parallel training: ranks share one batch order, average gradients exactly, fail loudly."""
from __future__ import annotations

import itertools
import time

import pytest
import torch
import torch.distributed as dist

from omni.asr.parallel import Ranks, run_ranks
from omni.data.batches import BatchStream, UtteranceSet, bucket_batches
from omni.data.manifest import read_manifest
from omni.data.tokenizer import Tokenizer
from tests.conftest import PreparedData

CPU = torch.device("cpu")
WORLD = 2
FAILURE_SECONDS = 60.0
"""A dead rank must fail the job promptly, not after the 30-minute collective timeout."""


def _utterances(prepared: PreparedData) -> UtteranceSet:
    return UtteranceSet(read_manifest(prepared.manifests["train"]), Tokenizer(prepared.tokenizer),
                        prepared.config["data"]["sample_rate"], cache_audio=False)


def test_ranks_split_the_single_process_batch_order(prepared: PreparedData) -> None:
    utterances = _utterances(prepared)
    budget = 400 * prepared.config["features"]["hop_length"]
    steps = len(bucket_batches(utterances.num_samples, budget, seed=3, epoch=0)) // WORLD + 2  # into epoch 1

    def stream(rank: int, world: int) -> BatchStream:
        return BatchStream(utterances, budget, seed=3, sortagrad=True, rank=rank, world=world)

    single = [batch.utt_ids for batch in itertools.islice(stream(0, 1), WORLD * steps)]
    ranks = [stream(rank, WORLD) for rank in range(WORLD)]
    per_rank = [[batch.utt_ids for batch in itertools.islice(s, steps)] for s in ranks]
    for step in range(steps):
        assert [per_rank[rank][step] for rank in range(WORLD)] == single[WORLD * step: WORLD * (step + 1)]
    assert ranks[0].state_dict() == ranks[1].state_dict()
    assert ranks[0].epoch >= 1


def _gradient_of_rank(ranks: Ranks) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    inputs = torch.full((4, 3), float(ranks.rank + 1))
    layer(inputs).pow(2).sum().backward()
    local = [p.grad.clone() for p in layer.parameters()]
    ranks.average_gradients(layer.parameters())
    averaged = [p.grad for p in layer.parameters()]
    return ranks.gather((local, averaged))


def test_average_gradients_is_the_mean_on_every_rank() -> None:
    gathered = run_ranks(WORLD, CPU, _gradient_of_rank, config_key="train.cpu_processes")
    locals_ = [local for local, _ in gathered]
    expected = [sum(grads) / WORLD for grads in zip(*locals_)]
    assert not torch.equal(locals_[0][0], locals_[1][0]), "ranks must have seen different data"
    for _, averaged in gathered:
        for got, want in zip(averaged, expected):
            torch.testing.assert_close(got, want)


def _rank_one_fails(ranks: Ranks) -> None:
    if ranks.rank == 1:
        raise ValueError("rank 1 fails on purpose")
    dist.all_reduce(torch.zeros(1))


def test_a_failing_rank_fails_the_job_promptly() -> None:
    started = time.monotonic()
    with pytest.raises(RuntimeError):
        run_ranks(WORLD, CPU, _rank_one_fails, config_key="train.cpu_processes")
    assert time.monotonic() - started < FAILURE_SECONDS


def test_several_processes_on_cuda_are_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match="train.cpu_processes"):
        run_ranks(WORLD, torch.device("cuda"), _gradient_of_rank, config_key="train.cpu_processes")
