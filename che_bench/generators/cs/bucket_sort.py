"""Bucket Sort (context-sensitive): sort a string over a small alphabet.

Delétang et al., *Neural Networks and the Chomsky Hierarchy*, ICLR 2023, Table 1.

Input: N tokens uniform on ``0..vocab_size-1`` (default 5). Target: the same tokens sorted
ascending.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators.base import Example, SameVocabularyTask, Task


def targets_for(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] -> each row sorted ascending [B, N], all-true mask."""
    targets = np.sort(inputs, axis=1)
    return targets, Task.full_mask(targets)


@register_task
class BucketSort(SameVocabularyTask):
    """Bucket Sort."""

    name = "bucket_sort"
    level = "cs"
    input_size = 5
    output_size = 5
    description = "The input tokens sorted in ascending order."
    examples = (
        Example([1, 0, 2, 0, 4, 1, 1, 2], [0, 0, 1, 1, 1, 2, 2, 4]),
        Example([4, 2, 1, 3, 0, 2, 2, 1, 4], [0, 1, 1, 2, 2, 2, 3, 4, 4], note="the paper's"),
    )

    def __init__(self, vocab_size: int = 5) -> None:
        super().__init__(vocab_size)

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        return sorted(inputs)
