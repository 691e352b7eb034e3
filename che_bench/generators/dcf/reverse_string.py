"""Reverse String (deterministic context-free): output the input backwards.

Delétang et al., *Neural Networks and the Chomsky Hierarchy*, ICLR 2023, Table 1.

Input: N tokens uniform on ``0..vocab_size-1`` (default 2). Target: the same N tokens reversed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators.base import Example, SameVocabularyTask, Task


def targets_for(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] -> the rows reversed [B, N] and an all-true mask."""
    targets = np.ascontiguousarray(inputs[:, ::-1])
    return targets, Task.full_mask(targets)


@register_task
class ReverseString(SameVocabularyTask):
    """Reverse String."""

    name = "reverse_string"
    level = "dcf"
    input_size = 2
    output_size = 2
    description = "The input string reversed."
    examples = (Example([0, 1, 1, 0, 1, 0], [0, 1, 0, 1, 1, 0]),)

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        return list(reversed(inputs))
