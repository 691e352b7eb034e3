"""Cycle Navigation (regular): where does a walk on a 5-cycle end?

Delétang et al., *Neural Networks and the Chomsky Hierarchy*, ICLR 2023, Table 1.

Input: N tokens uniform on {0, 1, 2}; token t moves the agent by t - 1 (0 = left, 1 = stay,
2 = right) on a cycle of length 5, starting at 0. Target (one class): the final position,
sum(t_i - 1) mod 5. This follows the reference code, which produced the published numbers;
the paper's example ("011210 -> 2") and the code's docstring use another mapping
(0 = stay, 1 = +1, 2 = -1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators._oracle import require
from che_bench.generators.base import Example, Task, UniformInputTask

CYCLE_LENGTH = 5


def targets_for(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] moves -> targets [B, 1] (final position) and an all-true mask."""
    targets = (inputs.sum(axis=1, keepdims=True) - inputs.shape[1]) % CYCLE_LENGTH
    return targets.astype(np.int64), Task.full_mask(targets)


@register_task
class CycleNavigation(UniformInputTask):
    """Cycle Navigation: final position of a -1/0/+1 walk on a cycle of length 5."""

    name = "cycle_navigation"
    level = "regular"
    input_size = 3
    output_size = CYCLE_LENGTH
    description = "Final position on a 5-cycle after moves left (0), stay (1) and right (2)."
    input_symbols = ("-1", "+0", "+1")
    examples = (
        Example([2, 0, 1, 0, 0], [3]),
        Example([2, 2, 2, 0], [2]),
        Example([0, 1, 1, 2, 1, 0], [4], note='the paper\'s "011210 -> 2" under its mapping'),
        Example([1], [0]),
        Example([2], [1]),
    )

    def output_length(self, length: int) -> int:
        return 1

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        position = 0
        for move in inputs:
            require(move in (0, 1, 2), f"move {move}")
            position = (position + {0: -1, 1: 0, 2: +1}[move]) % CYCLE_LENGTH
        return [position]
