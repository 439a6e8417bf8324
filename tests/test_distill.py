"""RNN-T distillation term: zero for a perfect student, the collapsed form is the full form's
3-way marginal, gradients reach the student only, and padding never counts."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import torch

from omni import job_params
from omni.asr.distill import collapsed_log_probs, lattice_kl
from omni.asr.model import build_model
from omni.asr.trainer import KL_COLUMN
from omni.atomic import load_torch
from omni.jobs.specs import individual_job, supernet_job
from omni.jobs.training import run_training_job
from omni.sparsity.supernet import PASS_LEVEL, LevelSampler, SupernetGradients
from tests.conftest import PreparedData, paths, training_setup

BLANK = 0
VOCAB = 12  # symbols including blank


def _batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Two utterances of different lengths, padded: T = (5, 3) frames, U = (4, 2) labels."""
    generator = torch.Generator().manual_seed(seed)
    logit_lengths, target_lengths = torch.tensor([5, 3]), torch.tensor([4, 2])
    targets = torch.randint(1, VOCAB, (2, 4), generator=generator)
    targets[1, 2:] = BLANK  # padding of the shorter transcript
    shape = (2, 5, 5, VOCAB)
    return {
        "student_logits": torch.randn(shape, generator=generator),
        "teacher_logits": 2 * torch.randn(shape, generator=generator),
        "logit_lengths": logit_lengths,
        "targets": targets,
        "target_lengths": target_lengths,
    }


@pytest.mark.parametrize("form", ["full", "collapsed"])
def test_kl_is_zero_when_the_student_is_the_teacher_and_positive_otherwise(form: str) -> None:
    batch = _batch()
    same = dict(batch, student_logits=batch["teacher_logits"].clone())
    assert lattice_kl(**same, blank=BLANK, form=form).item() == pytest.approx(0.0, abs=1e-6)
    assert lattice_kl(**batch, blank=BLANK, form=form).item() > 0.01


def test_collapsed_form_is_the_full_forms_three_way_marginal() -> None:
    batch = _batch(1)
    logits, targets, lengths = batch["teacher_logits"], batch["targets"], batch["target_lengths"]
    probs = torch.softmax(logits, dim=-1)
    collapsed = collapsed_log_probs(logits, targets, lengths, BLANK).exp()
    for b in range(2):
        for u in range(int(lengths[b]) + 1):
            label = probs[b, :, u, targets[b, u]] if u < lengths[b] else torch.zeros(5)
            blank = probs[b, :, u, BLANK]
            expected = torch.stack([blank, label, 1 - blank - label], dim=-1)
            torch.testing.assert_close(collapsed[b, :, u], expected, atol=1e-6, rtol=1e-5)
    # and its KL is the KL between those marginals, summed on the lattice, per encoder frame
    student = batch["student_logits"]
    teacher_3 = collapsed_log_probs(logits, targets, lengths, BLANK)
    student_3 = collapsed_log_probs(student, targets, lengths, BLANK)
    node = (teacher_3.exp() * (teacher_3 - student_3)).nan_to_num(0.0).sum(-1)
    expected_kl = torch.stack(
        [node[b, : batch["logit_lengths"][b], : lengths[b] + 1].sum() / batch["logit_lengths"][b] for b in range(2)]
    ).mean()
    assert lattice_kl(**batch, blank=BLANK, form="collapsed").item() == pytest.approx(expected_kl.item(), rel=1e-5)


@pytest.mark.parametrize("form", ["full", "collapsed"])
def test_gradients_reach_only_the_student(form: str) -> None:
    batch = _batch(2)
    student = batch["student_logits"].requires_grad_(True)
    teacher = batch["teacher_logits"].requires_grad_(True)
    lattice_kl(**batch, blank=BLANK, form=form).backward()
    assert teacher.grad is None
    assert torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0
    # nodes off the lattice (padding) get no gradient
    assert student.grad[1, 3:].abs().sum() == 0 and student.grad[1, :, 3:].abs().sum() == 0


@pytest.mark.parametrize("form", ["full", "collapsed"])
def test_padding_never_counts(form: str) -> None:
    batch = _batch(3)
    noisy = {key: value.clone() for key, value in batch.items()}
    noisy["student_logits"][1, 3:] += 50.0  # frames past utterance 1's end
    noisy["teacher_logits"][1, :, 3:] -= 50.0  # label positions past its transcript
    assert lattice_kl(**noisy, blank=BLANK, form=form).item() == pytest.approx(
        lattice_kl(**batch, blank=BLANK, form=form).item(), rel=1e-6
    )


def test_an_unknown_form_or_mismatched_batches_are_refused() -> None:
    batch = _batch()
    with pytest.raises(ValueError, match="distillation form"):
        lattice_kl(**batch, blank=BLANK, form="sparse")
    with pytest.raises(ValueError, match="score the same batch"):
        lattice_kl(**dict(batch, teacher_logits=batch["teacher_logits"][:, :4]), blank=BLANK, form="full")


# ---------------------------------------------------------------- in the training jobs


def _distilling(config: dict, arm: str, teacher: str) -> dict:
    config = copy.deepcopy(config)
    config["distill"][arm] = teacher
    return config


def test_individual_job_learns_from_the_frozen_dense_model(
    prepared: PreparedData, dense_model: Path, tmp_path: Path
) -> None:
    """Two pruning jobs from the same dense model on the same batches, one with the KL term in its loss and
    one with it logged but weighted 0: they start at the same KL, and only the distilling one ends closer to
    its teacher. Dropping the term from the loss makes the two runs identical, and this test fail."""
    teacher_before = load_torch(dense_model)["state_dict"]
    config = _distilling(prepared.config, "individual", "dense")
    config["train"]["finetune_lr"] = 3e-3  # 6 steps: a learning rate at which the term shows
    masks = job_params.masks(config)
    individual = job_params.individual(config)
    assert individual["distill"] == {"teacher": "dense", "weight": 1.0, "form": "full"}
    no_teacher = _distilling(prepared.config, "individual", "none")
    assert "distill" not in job_params.individual(no_teacher), "no teacher, no entry: nothing reruns"
    logs = {}
    for weight in (1.0, 0.0):
        section = {**individual, "distill": {**individual["distill"], "weight": weight}}
        job = paths(prepared, tmp_path / f"weight{weight:g}", init=dense_model)
        run_training_job(
            training_setup(config, "individual"),
            individual_job("individual", 0.8, {**section, "steps": 6}, masks),
            job,
            1,
        )
        logs[weight] = pd.read_csv(job.log_out)
    distilled, undistilled = logs[1.0][KL_COLUMN], logs[0.0][KL_COLUMN]
    assert distilled.notna().all() and (distilled >= 0).all()
    assert distilled.iloc[0] == pytest.approx(undistilled.iloc[0], rel=1e-6), "same model, same first batch"
    assert distilled.iloc[-1] > 0, "a pruned student no longer matches its teacher"
    assert distilled.iloc[-1] < 0.75 * undistilled.iloc[-1], f"KL {list(distilled)} vs {list(undistilled)}"
    teacher_after = load_torch(dense_model)["state_dict"]
    assert all(torch.equal(teacher_before[name], teacher_after[name]) for name in teacher_before)


def test_inplace_distillation_trains_the_densest_subnetwork_first_and_needs_several(
    prepared: PreparedData, dense_model: Path, tmp_path: Path
) -> None:
    config = _distilling(prepared.config, "omni", "inplace")
    config["omni"]["sampling"] = "sandwich"
    spec = supernet_job("omni", job_params.supernet(config), job_params.masks(config))
    job = paths(prepared, tmp_path / "omni", init=dense_model)
    setup = training_setup(config, "omni")
    run_training_job(setup, spec, job, 1)
    log = pd.read_csv(job.log_out)
    assert (log[f"{PASS_LEVEL}1"] <= log[f"{PASS_LEVEL}2"]).all(), "the densest sub-network trains first"
    assert log[KL_COLUMN].notna().all() and (log[KL_COLUMN] >= 0).all()
    with pytest.raises(ValueError, match="several sub-networks per step"):
        SupernetGradients(
            build_model(load_torch(dense_model)["model_config"]),
            spec.masks,
            LevelSampler.for_steps(dataclasses.replace(spec.supernet, sampling="uniform"), spec.steps),
            1,
            0,
            inplace_distillation=True,
        )
