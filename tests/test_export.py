"""Compact export: exact reload, the per-layer position encoding, and honest byte accounting; a forged or
damaged model or export refused, naming the file, by the jobs that read them (fault probes)."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from test_sparsity import (  # noqa: F401 (autouse fixture)
    fixed_batch,
    logits_of,
    mask_settings,
    one_thread,
    plain_masked_state_dict,
    small_setup,
)
from torch import Tensor
from torchaudio.models import RNNT

from omni.asr.model import load_model, save_model
from omni.atomic import ArtefactError
from omni.jobs.export import export_model_files
from omni.sparsity.export import (
    export_bytes,
    export_compact,
    load_compact,
    log2_choose,
    overhead_ratio,
    physical_limit_bytes,
    read_compact,
    save_compact,
)
from omni.sparsity.masking import MaskedParameters
from omni.sparsity.masks import masks_at, prunable_parameter_names, rank_layers
from tests.faults import FaultRecorder

FP16_TOLERANCE = 1e-2  # measured max |diff| 1.2e-3 on logits up to 2 (fp16 keeps ~3 digits)
MAX_OVERHEAD = 1.3  # positions + container over the physical limit
SAVED_FRACTION = 0.9  # share of the pruned values' bytes the export must actually save
FP32_BYTES = 4
BITS = 8
RICE_OVERHEAD = 1.05  # Rice-coded runs over the mask's entropy (measured 1.01-1.02 from 70 % on)


def masked_setup(
    granularity: str, block_shape: list[int], levels: Sequence[float]
) -> tuple[RNNT, dict[str, Any], dict[str, Tensor], dict[str, Tensor]]:
    """(masked model, model config, plain masked state dict, masks); layer i gets levels[i % len]."""
    model, model_config, config = small_setup()
    names = prunable_parameter_names(model, mask_settings(config))
    rankings = rank_layers(model, names, granularity, block_shape)
    masks = masks_at(rankings, {name: levels[i % len(levels)] for i, name in enumerate(names)})
    masked = MaskedParameters(model, masks)
    return model, model_config, plain_masked_state_dict(masked), masks


@pytest.mark.parametrize(
    ("granularity", "block_shape"), [("unstructured", [1, 1]), ("block", [4, 4]), ("block", [8, 1])]
)
def test_fp32_export_reloads_to_identical_outputs(granularity: str, block_shape: list[int], tmp_path: Path) -> None:
    model, model_config, state, masks = masked_setup(granularity, block_shape, [0.9])
    payload = export_compact(state, masks, model_config, torch.float32, granularity, block_shape)
    path = tmp_path / "model.pt"
    save_compact(path, payload)
    stored = read_compact(path)  # weights_only=True: plain containers only
    assert stored.keys() == payload.keys() and stored["sparse"].keys() == payload["sparse"].keys()
    for name, entry in payload["sparse"].items():
        for key, value in entry.items():
            same = (
                torch.equal(stored["sparse"][name][key], value)
                if isinstance(value, Tensor)
                else stored["sparse"][name][key] == value
            )
            assert same, (name, key)
    reloaded = load_compact(stored)
    batch = fixed_batch(model_config)
    assert torch.equal(logits_of(reloaded, batch), logits_of(model, batch))
    assert export_bytes(path) == export_bytes(payload)


def test_each_layer_takes_the_cheaper_position_encoding() -> None:
    """Half-pruned layers pay one bit per weight (the mask's entropy); sparse ones pay Rice-coded runs,
    within a few % of the entropy."""
    low, high = 0.5, 0.9
    model, model_config, state, masks = masked_setup("unstructured", [1, 1], [low, high])
    payload = export_compact(state, masks, model_config, torch.float32, "unstructured", [1, 1])
    encodings = {name: entry["encoding"] for name, entry in payload["sparse"].items()}
    assert set(encodings.values()) == {"bitmask", "rice"}
    for name, entry in payload["sparse"].items():
        rows, cols = entry["shape"]
        kept = int(masks[name].sum())
        assert entry["values"].numel() == kept
        if entry["encoding"] == "rice":
            assert entry["count"] == kept and entry["k"] == 3  # runs of ~9 pruned weights at 90 %
            position_bits = BITS * (entry["high"].numel() + entry["low"].numel())
            assert position_bits < RICE_OVERHEAD * log2_choose(rows * cols, kept) + 2 * BITS  # + padding
        else:
            assert entry["bits"].dtype == torch.uint8 and entry["bits"].numel() == -(-rows * cols // 8)
    batch = fixed_batch(model_config)
    assert torch.equal(logits_of(load_compact(payload), batch), logits_of(model, batch))


def test_fp16_export_is_close_and_half_the_bytes() -> None:
    model, model_config, state, masks = masked_setup("block", [1, 4], [0.7])
    fp32 = export_compact(state, masks, model_config, torch.float32, "block", [1, 4])
    fp16 = export_compact(state, masks, model_config, torch.float16, "block", [1, 4])
    assert all(t.dtype == torch.float16 for t in fp16["dense"].values() if t.is_floating_point())
    batch = fixed_batch(model_config)
    torch.testing.assert_close(
        logits_of(load_compact(fp16), batch), logits_of(model, batch), rtol=FP16_TOLERANCE, atol=FP16_TOLERANCE
    )
    assert export_bytes(fp16) < 0.6 * export_bytes(fp32)
    for payload in (fp32, fp16):
        assert 1.0 < overhead_ratio(payload, masks, state) < MAX_OVERHEAD


def test_sparse_export_is_well_under_the_dense_checkpoint() -> None:
    """The small model keeps a large unprunable predictor/joiner, so compare with what pruning removed."""
    model, model_config, state, masks = masked_setup("unstructured", [1, 1], [0.9])
    payload = export_compact(state, masks, model_config, torch.float32, "unstructured", [1, 1])
    dense_bytes = export_bytes({k: v.clone() for k, v in state.items()})
    pruned_bytes = sum(int((~m).sum()) for m in masks.values()) * FP32_BYTES
    assert export_bytes(payload) < dense_bytes - SAVED_FRACTION * pruned_bytes


def test_physical_limit_counts_kept_values_the_dense_rest_and_the_masks_entropy() -> None:
    _, _, state, masks = masked_setup("unstructured", [1, 1], [0.8])
    kept = sum(int(m.sum()) for m in masks.values())
    rest = sum(t.numel() for name, t in state.items() if name not in masks)
    entropy_bits = sum(log2_choose(m.numel(), int(m.sum())) for m in masks.values())
    for bytes_per_value in (FP32_BYTES, torch.float16.itemsize):
        assert physical_limit_bytes(masks, state, bytes_per_value) == (kept + rest) * bytes_per_value + math.ceil(
            entropy_bits / BITS
        )
    assert log2_choose(4, 2) == pytest.approx(math.log2(6)) and log2_choose(10, 0) == 0


def test_block_export_rejects_masks_that_are_not_block_constant() -> None:
    _, model_config, state, masks = masked_setup("unstructured", [1, 1], [0.5])
    with pytest.raises(ValueError, match="not constant"):
        export_compact(state, masks, model_config, torch.float32, "block", [4, 4])


def test_load_compact_rejects_other_payloads() -> None:
    with pytest.raises(ValueError, match="omni-compact"):
        load_compact({"format": "something-else", "version": 1})


def test_dense_buffers_keep_their_integer_dtype() -> None:
    _, model_config, state, masks = masked_setup("unstructured", [1, 1], [0.5])
    with_buffer: dict[str, Tensor] = {**state, "counter": torch.tensor([3], dtype=torch.int64)}
    payload = export_compact(with_buffer, masks, model_config, torch.float16, "unstructured", [1, 1])
    assert payload["dense"]["counter"].dtype == torch.int64


def test_rice_positions_survive_empty_full_and_edge_masks() -> None:
    """Runs at the ends of a layer and masks with nothing or everything kept decode exactly."""
    model, model_config, state, masks = masked_setup("unstructured", [1, 1], [0.9])
    names = sorted(masks)
    edge_masks = dict(masks)
    edge_masks[names[0]] = torch.zeros_like(masks[names[0]])  # everything pruned
    last_only = torch.zeros_like(masks[names[1]]).flatten()
    last_only[-1] = True  # one run over the whole layer
    edge_masks[names[1]] = last_only.view_as(masks[names[1]])
    first_and_last = torch.zeros_like(masks[names[2]]).flatten()
    first_and_last[[0, -1]] = True
    edge_masks[names[2]] = first_and_last.view_as(masks[names[2]])
    edge_masks[names[3]] = torch.ones_like(masks[names[3]])  # nothing pruned
    edge_state = {name: t * edge_masks[name] if name in edge_masks else t for name, t in state.items()}
    payload = export_compact(edge_state, edge_masks, model_config, torch.float32, "unstructured", [1, 1])
    assert [payload["sparse"][name]["encoding"] for name in names[:3]] == ["rice"] * 3
    rebuilt = load_compact(payload).state_dict()
    for name in names:
        assert torch.equal(rebuilt[name], edge_state[name]), name


# ---------------------------------------------------------------- forged and damaged artefacts (fault probes)


class Forged:
    """What a forged artefact runs when unpickled without weights_only: it makes the folder `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.mkdir, (str(self.marker),)


def write_model(path: Path) -> None:
    """A real model artefact, as a training job writes it."""
    _, model_config, state, masks = masked_setup("unstructured", [1, 1], [0.5])
    save_model(path, state, model_config, masks, meta={"arm": "individual", "sparsity": 0.5})


def write_export(path: Path) -> None:
    """A real compact export, as the export job writes it."""
    _, model_config, state, masks = masked_setup("unstructured", [1, 1], [0.5])
    save_compact(path, export_compact(state, masks, model_config, torch.float16, "unstructured", [1, 1]))


def forge(path: Path, marker: Path) -> None:
    """The artefact's own keys, one value replaced by code that runs when it is unpickled."""
    artefact = torch.load(path, weights_only=True)
    torch.save({**artefact, next(iter(artefact)): Forged(marker)}, path)
    torch.load(path, weights_only=False)
    assert marker.is_dir(), "unprotected, the forged file runs its payload"
    marker.rmdir()


DAMAGE: dict[str, Callable[[Path, Path], None]] = {
    "forged": forge,
    "truncated": lambda path, _: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "empty": lambda path, _: path.write_bytes(b""),
    "random bytes": lambda path, _: path.write_bytes(random.Random(0).randbytes(path.stat().st_size)),
}
ARTEFACT_READERS: dict[str, tuple[Callable[[Path], None], Callable[[Path], object]]] = {
    # the model as the export job reads it (omni.jobs.export), its outputs beside it
    "model read by the export job": (
        write_model,
        lambda path: export_model_files(
            path,
            {"granularity": "unstructured", "block_shape": [1, 1]},
            {"fp32": path.with_name("fp32.pt"), "fp16": path.with_name("fp16.pt")},
        ),
    ),
    # the model as evaluation, extraction and a pruning job's start read it (omni.asr.model.load_model)
    "model read by load_model": (write_model, load_model),
    # an export as device_metrics and peak_memory read it
    "export read by read_compact": (write_export, read_compact),
}


@pytest.mark.parametrize("reader", sorted(ARTEFACT_READERS))
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(
            name, marks=pytest.mark.fault("malicious pickles" if name == "forged" else "corrupt checkpoints"), id=name
        )
        for name in DAMAGE
    ],
)
def test_a_forged_or_damaged_artefact_is_refused_naming_the_file(
    tmp_path: Path, reader: str, damage: str, fault: FaultRecorder
) -> None:
    """torch.load alone names no file, and for a refused pickle says weights_only=False "will likely succeed"."""
    write, read = ARTEFACT_READERS[reader]
    path, marker = tmp_path / "artefact.pt", tmp_path / "payload-ran"
    write(path)
    DAMAGE[damage](path, marker)
    damaged = path.read_bytes()
    with pytest.raises(ArtefactError) as caught:
        read(path)
    message = str(caught.value)
    assert not marker.exists(), "the payload ran"
    fault.named(message, str(path))
    assert message.startswith(f"{path} ") and "rerun the job that writes it" in message
    assert "will likely succeed" not in message
    if damage == "forged":
        assert "refused unread" in message and "GLOBAL posix.mkdir" in message
    fault.data_lost(int(path.read_bytes() != damaged), "refused files changed (they are kept for inspection)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artefact.pt"], "nothing written from it"
    fault.survived(
        f"{damage}: refused before any use, naming the file" + (", its payload never ran" if damage == "forged" else "")
    )
