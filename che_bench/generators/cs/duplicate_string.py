"""Duplicate String (context-sensitive): output the input twice.

Delétang et al., *Neural Networks and the Chomsky Hierarchy*, ICLR 2023, Table 1.

Input: w, N tokens uniform on ``0..vocab_size-1`` (default 2). Target: w repeated
``duplication`` times (default 2, so ``ww`` of length 2N), without separator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators.base import Example, SameVocabularyTask, Task


def targets_for(inputs: np.ndarray, duplication: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] -> the rows repeated ``duplication`` times [B, duplication*N], all-true mask."""
    targets = np.tile(inputs, (1, duplication))
    return targets, Task.full_mask(targets)


@register_task
class DuplicateString(SameVocabularyTask):
    """Duplicate String."""

    name = "duplicate_string"
    level = "cs"
    input_size = 2
    output_size = 2
    description = "The input string written twice (ww)."
    examples = (Example([1, 0, 1], [1, 0, 1, 1, 0, 1]),)

    def __init__(self, vocab_size: int = 2, duplication: int = 2) -> None:
        super().__init__(vocab_size)
        self.duplication = int(duplication)

    def output_length(self, length: int) -> int:
        return self.duplication * length

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs, self.duplication)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        return list(inputs) * self.duplication
