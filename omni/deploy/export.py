"""One model -> a bundle of its streaming programs for ONNX Runtime and ExecuTorch, fp32 and int8.

ONNX: the dynamo exporter (the TorchScript exporter's graph is refused by ONNX Runtime: int32/int64
Slice indices); int8 is ONNX Runtime's dynamic quantization with per-channel int8 weights, after
dropping the exporter's `value_info` (its shape inference fails on the predictor with them).
ExecuTorch: `torch.export` lowered to XNNPACK; int8 is the PT2E flow with XNNPACK's dynamic,
per-channel symmetric config. The features program stays fp32 in both int8 variants: quantising the
front end buys nothing (two small matrix products per chunk) and costs accuracy at the log.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from types import TracebackType

import torch

from omni.asr.frontend import Frontend
from omni.asr.model import ModelConfig, blank_id
from omni.data.tokenizer import Tokenizer
from omni.deploy.bundle import PROGRAMS, RUNTIMES, Bundle, program_names, variant_folder
from omni.deploy.programs import Programs, build_programs

QUANTIZED = ("encoder", "predictor", "joiner")


def export_onnx(programs: Programs, folder: Path) -> dict[str, dict[str, str]]:
    """fp32 and int8 ONNX files of every program under `folder`; returns the bundle's variant entries."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = program_names(programs.shape)
    examples = programs.examples()
    fp32, int8 = variant_folder("onnx", "fp32"), variant_folder("onnx", "int8")
    for sub in (fp32, int8):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    variants: dict[str, dict[str, str]] = {fp32: {}, int8: {}}
    for name, module in programs.modules().items():
        path = folder / fp32 / f"{name}.onnx"
        inputs, outputs = names[name]
        with _quiet_exporter():
            torch.onnx.export(
                module, examples[name], path, dynamo=True, input_names=inputs, output_names=outputs, external_data=False
            )
        variants[fp32][name] = f"{fp32}/{path.name}"
        if name not in QUANTIZED:
            variants[int8][name] = variants[fp32][name]
            continue
        graph = onnx.load(path)
        del graph.graph.value_info[:]
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            plain = Path(scratch) / path.name
            onnx.save(graph, plain)
            with _quiet_exporter():
                quantize_dynamic(plain, folder / int8 / path.name, per_channel=True, weight_type=QuantType.QInt8)
        variants[int8][name] = f"{int8}/{path.name}"
    return variants


def export_executorch(programs: Programs, folder: Path) -> dict[str, dict[str, str]]:
    """fp32 and int8 ExecuTorch programs (XNNPACK) of every program under `folder`."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from executorch.exir import to_edge_transform_and_lower
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    examples = programs.examples()
    fp32, int8 = variant_folder("executorch", "fp32"), variant_folder("executorch", "int8")
    variants: dict[str, dict[str, str]] = {fp32: {}, int8: {}}
    for sub in (fp32, int8):
        (folder / sub).mkdir(parents=True, exist_ok=True)

    def lower(module: torch.nn.Module, args: tuple[torch.Tensor, ...], path: Path) -> None:
        with _quiet_exporter():
            program = to_edge_transform_and_lower(
                torch.export.export(module, args), partitioner=[XnnpackPartitioner()]
            ).to_executorch()
        path.write_bytes(program.buffer)

    for name, module in programs.modules().items():
        lower(module, examples[name], folder / fp32 / f"{name}.pte")
        variants[fp32][name] = f"{fp32}/{name}.pte"
        if name not in QUANTIZED:
            variants[int8][name] = variants[fp32][name]
            continue
        quantizer = XNNPACKQuantizer().set_global(
            get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True)
        )
        with _quiet_exporter():
            prepared = prepare_pt2e(torch.export.export(module, examples[name]).module(), quantizer)
        prepared(*examples[name])
        lower(convert_pt2e(prepared), examples[name], folder / int8 / f"{name}.pte")
        variants[int8][name] = f"{int8}/{name}.pte"
    return variants


EXPORTERS = {"onnx": export_onnx, "executorch": export_executorch}


def export_bundle(
    model: torch.nn.Module,
    model_config: ModelConfig,
    frontend: Frontend,
    tokenizer: Tokenizer,
    folder: Path,
    runtimes: tuple[str, ...] = tuple(RUNTIMES),
) -> Bundle:
    """Every runtime's programs of one eval-mode model, and the bundle's manifest, in `folder`."""
    programs = build_programs(model, model_config, frontend)
    folder.mkdir(parents=True, exist_ok=True)
    variants: dict[str, dict[str, str]] = {}
    for runtime in runtimes:
        variants.update(EXPORTERS[runtime](programs, folder))
    for variant, files in variants.items():
        assert set(files) == set(PROGRAMS), (variant, files)
    bundle = Bundle(folder, programs.shape, blank_id(model_config), tokenizer.pieces(), variants)
    bundle.write()
    return bundle


class _quiet_exporter:
    """The exporters print pages of progress and warnings (torchvision ops skipped, dynamo notes) per
    program; a job log should hold the study's messages, not theirs."""

    def __enter__(self) -> None:
        self._level = logging.root.manager.disable
        logging.disable(logging.WARNING)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._warnings.__exit__(exc_type, exc, traceback)
        logging.disable(self._level)
