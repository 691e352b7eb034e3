"""The CHE score's building block (Delétang et al., ICLR 2023, §4): masked per-token accuracy."""

from __future__ import annotations

import torch


def masked_counts(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(correct, counted) token counts as device tensors (no host read)."""
    correct = (logits.argmax(-1) == targets) & mask
    return correct.sum(), mask.sum()


def masked_accuracy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> tuple:
    """(correct, counted) token counts: argmax equality pooled over masked positions."""
    correct, counted = masked_counts(logits, targets, mask)
    return int(correct), int(counted)
