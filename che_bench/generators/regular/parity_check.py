"""Parity Check (regular): is the number of ones even?

Delétang et al., *Neural Networks and the Chomsky Hierarchy*, ICLR 2023, Table 1.

Input: N uniform bits. Target (one class): the sum of the bits mod 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators.base import Example, Task, UniformInputTask


def targets_for(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] bits -> targets [B, 1] (sum mod 2) and an all-true mask."""
    targets = inputs.sum(axis=1, keepdims=True) % 2
    return targets.astype(np.int64), Task.full_mask(targets)


@register_task
class ParityCheck(UniformInputTask):
    """Parity Check: the number of ones mod 2."""

    name = "parity_check"
    level = "regular"
    input_size = 2
    output_size = 2
    description = "The number of ones in the bit string, mod 2."
    examples = (
        Example([1, 0, 1, 0, 1, 0, 0], [1]),
        Example([0, 1, 1, 1, 1], [0]),
    )

    def output_length(self, length: int) -> int:
        return 1

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        return [list(inputs).count(1) % 2]
