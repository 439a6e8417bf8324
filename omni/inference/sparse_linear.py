"""Pruned linears on sparse CPU kernels, each layer on whichever kernel is fastest where it runs.

A masked weight's zeros cost a dense matmul as much as its kept values, so a pruned model is only
faster if its linears skip them. PyTorch has the kernels: CSR (`to_sparse_csr`) for any mask, BSR
(`to_sparse_bsr`) for square blocks; for tall thin blocks (a band of rows that keeps the same input
columns) a packed gather + batched dense matmul over the kept columns does it with dense kernels.
Which one wins depends on the layer's shape and sparsity, on the number of rows (a streaming chunk
has a handful) and on the machine: MKL's BSR measured 15-30x SLOWER than dense on one machine of
this kind and 2-4x faster at 80-90 % on another. So the candidates are timed where the model runs,
on the rows it will see, and each layer takes the fastest; a sparse kernel must beat dense by
SPARSE_MARGIN, so no layer ships slower than dense within timing noise.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

DENSE, CSR, BSR, BANDED = "dense", "csr", "bsr", "banded"
KERNELS = (DENSE, CSR, BSR, BANDED)
# A sparse kernel replaces dense only at <= this fraction of dense's time: a few % of timing noise
# must not pick a kernel that is no faster.
SPARSE_MARGIN = 0.95
WARMUP_CALLS = 20


class SparseKernelLinear(nn.Module):
    """y = x W^T + b for a fixed (pruned) weight, on one kernel; any leading dimensions of x."""

    kernel: str = DENSE
    bias: Tensor | None  # a buffer (register_buffer below)

    def __init__(self, out_features: int, in_features: int, bias: Tensor | None) -> None:
        super().__init__()
        self.out_features, self.in_features = out_features, in_features
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    def matmul(self, rows: Tensor) -> Tensor:
        """[N, in] -> [N, out], without the bias."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        rows = x.reshape(-1, self.in_features)
        y = self.matmul(rows)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)


class DenseLinear(SparseKernelLinear):
    """What nn.Linear does (one fused addmm), the baseline every sparse kernel is timed against."""

    kernel = DENSE
    weight: Tensor  # a buffer (register_buffer below)

    def __init__(self, weight: Tensor, bias: Tensor | None) -> None:
        out_features, in_features = weight.shape
        super().__init__(out_features, in_features, bias)
        self.register_buffer("weight", weight.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight, self.bias)


class CompressedLinear(SparseKernelLinear):
    """CSR, or BSR at a square block: sparse weight @ dense rows^T (MKL's sparse kernels on CPU)."""

    def __init__(self, weight: Tensor, bias: Tensor | None, block: tuple[int, int] | None) -> None:
        out_features, in_features = weight.shape
        super().__init__(out_features, in_features, bias)
        self.kernel = CSR if block is None else BSR
        weight = weight.detach()
        # Not a buffer: state dicts of sparse compressed tensors are not what a device loads (the
        # export format is); the module is built from the masked weight where it runs.
        with warnings.catch_warnings():  # "sparse CSR support is in beta": measured here, not assumed
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            compressed = weight.to_sparse_csr() if block is None else weight.to_sparse_bsr(block)
            # int32 indices (MKL's own): at 90 % sparsity on 5 rows, 2.7-3.1x dense instead of 1.8-2.4x
            # with torch's default int64 (512x512 ... 2048x512, 1 thread; docs/decisions.md).
            build = torch.sparse_csr_tensor if block is None else torch.sparse_bsr_tensor
            self.sparse_weight = build(
                compressed.crow_indices().int(),
                compressed.col_indices().int(),
                compressed.values(),
                compressed.shape,
                check_invariants=True,
            )

    def matmul(self, rows: Tensor) -> Tensor:
        return torch.mm(self.sparse_weight, rows.T.contiguous()).T


class BandedLinear(SparseKernelLinear):
    """Tall thin blocks: bands of `band_rows` output rows, each keeping its own input columns. The
    kept columns of every band are gathered from the input and multiplied by the band's packed
    weights in one batched matmul; bands keeping fewer columns than the most are padded with zero
    weights, so the cost follows the fullest band (balanced bands waste nothing)."""

    kernel = BANDED
    # Buffers (register_buffer below).
    columns: Tensor
    packed: Tensor

    def __init__(self, weight: Tensor, bias: Tensor | None, band_rows: int) -> None:
        out_features, in_features = weight.shape
        super().__init__(out_features, in_features, bias)
        if out_features % band_rows:
            raise ValueError(f"{out_features} output rows do not split into bands of {band_rows}")
        bands = weight.detach().reshape(out_features // band_rows, band_rows, in_features)
        kept = bands.ne(0).any(dim=1)  # [bands, in]
        width = max(1, int(kept.sum(dim=1).max()))
        # Kept columns first (stable), then padding columns whose packed weights are zero.
        order = torch.sort(kept.to(torch.int8), dim=1, descending=True, stable=True).indices[:, :width]
        packed = torch.gather(bands, 2, order[:, None, :].expand(-1, band_rows, -1))  # [bands, rows, width]
        self.bands, self.width = bands.size(0), width
        # int32: index_select gathers twice as fast as with int64 indices (5 rows, 1 thread).
        self.register_buffer("columns", order.reshape(-1).to(torch.int32))
        self.register_buffer("packed", packed.transpose(1, 2).contiguous())  # [bands, width, rows]

    def matmul(self, rows: Tensor) -> Tensor:
        gathered = rows.index_select(1, self.columns).view(rows.size(0), self.bands, self.width)
        product = torch.bmm(gathered.transpose(0, 1), self.packed)  # [bands, N, band rows]
        return product.transpose(0, 1).reshape(rows.size(0), self.out_features)


def candidates(
    weight: Tensor, bias: Tensor | None, unit: tuple[int, int]
) -> dict[str, Callable[[], SparseKernelLinear]]:
    """Kernels that can run a weight pruned in units of `unit` (rows x columns): dense and CSR always,
    BSR at a square block unit, the banded kernel at a tall (r x 1) unit."""
    options: dict[str, Callable[[], SparseKernelLinear]] = {
        DENSE: lambda: DenseLinear(weight, bias),
        CSR: lambda: CompressedLinear(weight, bias, None),
    }
    rows, columns = unit
    if rows == columns > 1:
        options[BSR] = lambda: CompressedLinear(weight, bias, unit)
    if columns == 1 and rows > 1:
        options[BANDED] = lambda: BandedLinear(weight, bias, rows)
    return options


def median_seconds(module: nn.Module, example: Tensor, repeats: int) -> float:
    with torch.inference_mode():
        for _ in range(WARMUP_CALLS):
            module(example)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            module(example)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass(frozen=True)
class KernelChoice:
    kernel: str
    seconds: dict[str, float]  # median time of each candidate on the example rows

    @property
    def speedup(self) -> float:
        """Dense time over the chosen kernel's (NaN when dense was not timed)."""
        return self.seconds[DENSE] / self.seconds[self.kernel] if DENSE in self.seconds else float("nan")


def fastest_kernel(seconds: dict[str, float]) -> str:
    """The fastest sparse kernel if it takes at most SPARSE_MARGIN of dense's time, else dense (a
    sparse kernel alone, when dense was not a candidate)."""
    sparse = {name: t for name, t in seconds.items() if name != DENSE}
    if not sparse:
        return DENSE
    best = min(sparse, key=sparse.__getitem__)
    if DENSE in seconds and seconds[best] > SPARSE_MARGIN * seconds[DENSE]:
        return DENSE
    return best


def choose_kernel(
    weight: Tensor,
    bias: Tensor | None,
    unit: tuple[int, int],
    rows: int,
    repeats: int,
    allowed: tuple[str, ...] = KERNELS,
) -> tuple[SparseKernelLinear, KernelChoice]:
    """The fastest of the `allowed` candidates (fastest_kernel) on `rows` random input rows, with
    torch's current threads. `allowed` naming one sparse kernel forces it (tests)."""
    built = {name: make() for name, make in candidates(weight, bias, unit).items() if name in allowed}
    if not built:
        raise ValueError(f"none of the kernels {allowed} can run a weight pruned in {unit} units")
    example = torch.randn(rows, weight.size(1), generator=torch.Generator().manual_seed(0))
    seconds = {name: median_seconds(module, example, repeats) for name, module in built.items()}
    best = fastest_kernel(seconds)
    return built[best], KernelChoice(best, seconds)
