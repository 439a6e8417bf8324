"""Private per-level parameters of a supernet: each level its own LayerNorm affine parameters and biases.

Slimmable networks found that sub-networks sharing their normalisation is their main failure mode and
gave each width its own; here the small non-prunable tensors of the pruned encoder (the LayerNorms'
weights and biases, the prunable linears' biases; optionally the joiner) get one copy per level, while
every prunable weight stays shared. A parametrization replaces each such tensor by the current level's
copy. Every copy enters the forward pass (the others times zero), so data-parallel ranks see every
parameter used; the copies of the levels a step did not train are put back after the optimizer step,
so momentum and weight decay do not move them (their moment estimates still decay).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from omni.config import ConfigError
from omni.sparsity.masks import owner, parametrizations
from omni.sparsity.specs import NO_PRIVATE

ENCODER = "encoder"  # omni.private_parameters: the encoder's norms and prunable biases
ENCODER_AND_JOINER = "encoder_and_joiner"  # ... and the joiner's linear
ENCODER_PREFIX = "transcriber."
JOINER = ("joiner.linear.weight", "joiner.linear.bias")
COPIES = "copies"  # state-dict level of the copies: <module>.parametrizations.<attr>.0.copies.<i>
PRIVATE_PREFIX = "private/"  # a supernet artefact's per-level copies: private/<level>/<tensor name>


class _LevelCopies(nn.Module):
    """tensor -> the current level's copy (the original is ignored and frozen)."""

    def __init__(self, value: Tensor, levels: int) -> None:
        super().__init__()
        self.copies = nn.ParameterList([nn.Parameter(value.detach().clone()) for _ in range(levels)])
        self.current = 0

    def forward(self, original: Tensor) -> Tensor:
        return sum(copy * (1.0 if index == self.current else 0.0) for index, copy in enumerate(self.copies))


def private_names(model: nn.Module, prunable: Sequence[str], setting: str) -> list[str]:
    """The tensors one level keeps for itself: LayerNorm weights and biases under the encoder, the biases
    of the prunable linears, and with `encoder_and_joiner` the joiner's linear."""
    if setting == NO_PRIVATE:
        return []
    names = []
    for module_name, module in model.named_modules():
        if isinstance(module, nn.LayerNorm) and module_name.startswith(ENCODER_PREFIX):
            names += [f"{module_name}.{attr}" for attr in ("weight", "bias") if getattr(module, attr) is not None]
    parameters = dict(model.named_parameters())
    names += [bias for weight in prunable if (bias := weight.removesuffix("weight") + "bias") in parameters]
    if setting == ENCODER_AND_JOINER:
        clash = sorted(set(JOINER) & set(prunable))
        if clash:
            raise ConfigError(
                f"config key 'omni.private_parameters': {clash} are prunable (sparsity.include_joiner) "
                "and cannot also be private per level"
            )
        names += [name for name in JOINER if name in parameters]
    return sorted(set(names), key=list(parameters).index)


class PrivateParameters:
    """One copy per level of each named tensor, the current level's in the forward pass."""

    def __init__(self, model: nn.Module, names: Sequence[str], levels: Sequence[float]) -> None:
        self.model, self.names, self.levels = model, list(names), sorted(levels)
        self.held: dict[str, list[tuple[int, Tensor]]] = {}
        for name in self.names:
            module, attr = owner(self.model, name)
            original = getattr(module, attr)
            parametrize.register_parametrization(module, attr, _LevelCopies(original, len(self.levels)))
            parametrizations(module, attr).original.requires_grad_(False)

    def _copies(self, name: str) -> _LevelCopies:
        module, attr = owner(self.model, name)
        # __init__ registered exactly one parametrization on the tensor: a _LevelCopies
        return cast(_LevelCopies, parametrizations(module, attr)[0])

    def select(self, level: float | None) -> None:
        """The forward pass uses `level`'s copies from now on (a pass's target level)."""
        if level not in self.levels:
            raise ValueError(f"private parameters: {level} is none of the levels {self.levels}")
        for name in self.names:
            self._copies(name).current = self.levels.index(level)

    def hold_untrained(self, trained: Sequence[float | None]) -> None:
        """Remember the copies of the levels no pass of this step trained, to restore after the update."""
        untrained = [index for index, level in enumerate(self.levels) if level not in trained]
        self.held = {
            name: [(index, self._copies(name).copies[index].detach().clone()) for index in untrained]
            for name in self.names
        }

    def restore_untrained(self) -> None:
        with torch.no_grad():
            for name, copies in self.held.items():
                for index, value in copies:
                    self._copies(name).copies[index].copy_(value)
        self.held = {}

    def per_level(self) -> dict[str, Tensor]:
        """Every level's copies under `private/<level>/<tensor name>`: how a supernet's artefact stores them."""
        return {
            f"{PRIVATE_PREFIX}{level:g}/{name}": self._copies(name).copies[index].detach().cpu().clone()
            for index, level in enumerate(self.levels)
            for name in self.names
        }


def is_copy(state_key: str) -> bool:
    """A state-dict key of a level's copy while training (not a tensor of any one level's model)."""
    return f".{COPIES}." in state_key


def level_state(state: Mapping[str, Tensor], level: float | None) -> dict[str, Tensor]:
    """A supernet artefact's state dict as one level's model: that level's private copies in place of
    the shared tensors, the other levels' dropped; unchanged without private parameters."""
    plain = {key: value.clone() for key, value in state.items() if not key.startswith(PRIVATE_PREFIX)}
    levels = sorted({key[len(PRIVATE_PREFIX) :].split("/", 1)[0] for key in state if key.startswith(PRIVATE_PREFIX)})
    if not levels:
        return plain
    tag = None if level is None else f"{level:g}"
    if tag not in levels:
        raise ValueError(
            f"a supernet with private per-level parameters is cut at one of its levels {levels}, "
            f"not at {level if level is not None else 'a per-layer allocation'}"
        )
    prefix = f"{PRIVATE_PREFIX}{tag}/"
    plain.update({key[len(prefix) :]: value.clone() for key, value in state.items() if key.startswith(prefix)})
    return plain
