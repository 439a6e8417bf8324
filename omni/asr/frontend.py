"""Waveforms -> Emformer inputs: (training) waveform augmentation, log-mel, global normalisation,
SpecAugment, right-context pad.

The pad is the subtle part: torchaudio's Emformer consumes `right_context_length` look-ahead
frames beyond the last real frame. Padding by exactly that many frames and passing the
UNPADDED lengths makes the transcriber's output lengths equal the logits' time axis, so the
lengths handed to rnnt_loss are right by construction (no clamping).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from omni.data.augment import WaveAugment
from omni.data.features import FeatureNormalizer, LogMel, SpecAugment


class Frontend(torch.nn.Module):
    def __init__(self, feature_cfg: dict[str, Any], sample_rate: int, stats: dict[str, Any],
                 right_context_length: int) -> None:
        super().__init__()
        self.wave_augment = WaveAugment(feature_cfg["wave_augment"], sample_rate)
        self.logmel = LogMel(feature_cfg["n_mels"], feature_cfg["n_fft"], feature_cfg["hop_length"], sample_rate)
        self.normalize = FeatureNormalizer(torch.tensor(stats["mean"]), torch.tensor(stats["std"]))
        self.spec_augment = SpecAugment(feature_cfg["spec_augment"])
        self.right_context_length = right_context_length

    def features(self, waveforms: torch.Tensor, wave_lengths: torch.Tensor,
                 augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised log-mel [B, T, n_mels] and exact frame lengths, without the look-ahead pad."""
        if augment:
            self.wave_augment.train()
            waveforms, wave_lengths = self.wave_augment(waveforms, wave_lengths)
        feats, lengths = self.logmel(waveforms, wave_lengths)
        feats = self.normalize(feats)
        if augment:
            self.spec_augment.train()
            feats = self.spec_augment(feats, lengths)
        return feats, lengths

    def pad_right_context(self, feats: torch.Tensor) -> torch.Tensor:
        return F.pad(feats, (0, 0, 0, self.right_context_length))

    def forward(self, waveforms: torch.Tensor, wave_lengths: torch.Tensor,
                augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        feats, lengths = self.features(waveforms, wave_lengths, augment)
        return self.pad_right_context(feats), lengths
