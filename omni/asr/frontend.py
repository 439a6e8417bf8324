"""Waveforms -> Emformer inputs: log-mel, global normalisation, (training) SpecAugment, right-context
pad. Waveform augmentation happened where the batch was built (omni.data.batches).

The pad is the subtle part: torchaudio's Emformer consumes `right_context_length` look-ahead
frames beyond the last real frame. Padding by exactly that many frames and passing the
UNPADDED lengths makes the transcriber's output lengths equal the logits' time axis, so the
lengths handed to rnnt_loss are right by construction (no clamping).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from omni.data.features import FeatureNormalizer, LogMel, SpecAugment


class Frontend(torch.nn.Module):
    """`stats`: the training set's feature statistics (omni.data.features.load_feature_stats); a frontend
    without `spec_augment` (evaluation, search) cannot be asked to augment."""

    def __init__(
        self,
        logmel: LogMel,
        stats: dict[str, Any],
        right_context_length: int,
        spec_augment: SpecAugment | None = None,
    ) -> None:
        super().__init__()
        self.logmel = logmel
        self.normalize = FeatureNormalizer(torch.tensor(stats["mean"]), torch.tensor(stats["std"]))
        self.spec_augment = spec_augment
        self.right_context_length = right_context_length

    def features(
        self, waveforms: torch.Tensor, wave_lengths: torch.Tensor, augment_seed: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised log-mel [B, T, n_mels] and exact frame lengths, without the look-ahead pad;
        SpecAugment'ed from a generator seeded with `augment_seed` (a training batch's), if given."""
        if augment_seed is not None and self.spec_augment is None:
            raise ValueError("this frontend was built without augmentation settings (an inference frontend)")
        feats, lengths = self.logmel(waveforms, wave_lengths)
        feats = self.normalize(feats)
        if augment_seed is not None and self.spec_augment is not None:
            feats = self.spec_augment(feats, lengths, torch.Generator().manual_seed(augment_seed))
        return feats, lengths

    def pad_right_context(self, feats: torch.Tensor) -> torch.Tensor:
        return F.pad(feats, (0, 0, 0, self.right_context_length))

    def forward(
        self, waveforms: torch.Tensor, wave_lengths: torch.Tensor, augment_seed: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feats, lengths = self.features(waveforms, wave_lengths, augment_seed)
        return self.pad_right_context(feats), lengths
