"""Supernet diagnostics: the paired training-loss gap, mask churn and IoU, and per-voice differences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from omni.asr.model import save_model
from omni.data.voices import Voices
from omni.results.diagnostics import LevelRun, churn, late_gap, loss_gap, mask_iou, write_diagnostics

STEPS = 90


def _omni_log(levels: list[float]) -> pd.DataFrame:
    """A uniform supernet: step s trains level levels[s % K] at loss 2 + gap that closes linearly."""
    steps = np.arange(1, STEPS + 1)
    level = np.array([levels[s % len(levels)] for s in steps])
    return pd.DataFrame(
        {
            "step": steps,
            "loss": 0.0,
            "level_pass1": level,
            "loss_pass1": 2.0 + level + (STEPS - steps) / STEPS,
            "churn_0.5": np.where(steps % 10 == 0, 0.1, np.nan),
            "churn_0.9": np.where(steps % 10 == 0, np.where(steps > 60, 0.0, 0.2), np.nan),
        }
    )


def _individual_log(level: float) -> pd.DataFrame:
    return pd.DataFrame({"step": np.arange(1, STEPS + 1), "loss": 2.0 + level})


def test_the_gap_pairs_a_levels_passes_with_its_individual_job_at_the_same_steps() -> None:
    log = _omni_log([0.5, 0.9])
    gap = loss_gap(log, _individual_log(0.9), 0.9)
    assert list(gap["step"]) == [s for s in range(1, STEPS + 1) if s % 2 == 1], "the level's passes only"
    assert gap["gap"].to_numpy() == pytest.approx((STEPS - gap["step"].to_numpy()) / STEPS)
    mean, slope = late_gap(gap, STEPS)
    assert slope == pytest.approx(-100 / STEPS), "closing at 1/STEPS per step"
    assert mean == pytest.approx(gap.loc[gap["step"] > 60, "gap"].mean())
    assert churn(log, 0.9, STEPS) == pytest.approx((0.2 * 6 / 9, 0.0))
    assert np.isnan(churn(log.drop(columns=["churn_0.9"]), 0.9, STEPS)[0]), "a log without churn says so"


def test_mask_iou_and_the_written_tables(tmp_path: Path) -> None:
    shape = (4, 10)
    keep_a = torch.zeros(shape, dtype=torch.bool)
    keep_a[:, :5] = True
    keep_b = torch.zeros(shape, dtype=torch.bool)
    keep_b[:, 3:8] = True
    for name, mask in (("omni", keep_a), ("individual", keep_b)):
        save_model(tmp_path / f"{name}.pt", {"w": torch.ones(shape)}, {}, masks={"w": mask})
    assert mask_iou(tmp_path / "omni.pt", tmp_path / "individual.pt") == pytest.approx(8 / 32)
    _omni_log([0.9]).to_csv(tmp_path / "omni.csv", index=False)
    _individual_log(0.9).to_csv(tmp_path / "individual.csv", index=False)
    for name, errors in (("omni_eval", [1, 3, 0, 4]), ("individual_eval", [1, 1, 0, 2])):
        (tmp_path / name).mkdir()
        pd.DataFrame(
            {
                "utt_id": ["1-1-1", "1-1-2", "2-1-1", "3-1-1"],
                "substitutions": errors,
                "deletions": 0,
                "insertions": 0,
                "ref_words": 10,
            }
        ).to_csv(tmp_path / name / "greedy.tsv", sep="\t", index=False)
    run = LevelRun(
        "omni",
        "individual",
        1,
        0.9,
        tmp_path / "omni.csv",
        tmp_path / "individual.csv",
        tmp_path / "omni.pt",
        tmp_path / "individual.pt",
        tmp_path / "omni_eval",
        tmp_path / "individual_eval",
    )
    outputs = {
        key: tmp_path / name
        for key, name in (("csv", "d.csv"), ("voices_csv", "v.csv"), ("md", "d.md"), ("png", "d.png"))
    }
    utt_voices = {"1-1-1": "A", "1-1-2": "A", "2-1-1": "A", "3-1-1": "B"}
    voices = Voices({utt: utt.split("-")[0] for utt in utt_voices}, utt_voices)
    write_diagnostics([run], "greedy", "test-other", voices, outputs)
    training = pd.read_csv(outputs["csv"]).iloc[0]
    assert training["passes_at_level"] == STEPS and training["mask_iou"] == pytest.approx(0.25)
    voices = pd.read_csv(outputs["voices_csv"]).set_index("voice")
    assert voices.at["A", "utterances"] == 3 and voices.at["A", "omni_wer"] == pytest.approx(4 / 30)
    assert voices.at["B", "rel_diff_pct"] == pytest.approx(100.0)
    assert outputs["png"].read_bytes().startswith(b"\x89PNG") and "Per voice of test-other" in outputs["md"].read_text()
