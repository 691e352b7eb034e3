"""Even Pairs (regular): is the number of ``01`` and ``10`` pairs even?

Delétang et al., *Neural Networks and the Chomsky Hierarchy*, ICLR 2023, Table 1.

Input: N uniform bits. Target (one class): the number of positions i with s_i != s_{i+1},
mod 2, which always equals [s_0 != s_{N-1}]. Class 0 means "even"; N = 1 gives 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators.base import Example, Task, UniformInputTask


def targets_for(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] bits -> targets [B, 1] (first != last) and an all-true mask."""
    targets = (inputs[:, :1] != inputs[:, -1:]).astype(np.int64)
    return targets, Task.full_mask(targets)


@register_task
class EvenPairs(UniformInputTask):
    """Even Pairs: parity of the number of adjacent unequal pairs."""

    name = "even_pairs"
    level = "regular"
    input_size = 2
    output_size = 2
    description = "Whether the number of 01/10 pairs is even (0) or odd (1)."
    examples = (
        Example([0, 0, 1, 1, 1, 0], [0]),
        Example([0, 1, 0, 1, 0, 0, 1], [1]),
        Example([1], [0], note="N = 1"),
    )

    def output_length(self, length: int) -> int:
        return 1

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        return [sum(a != b for a, b in zip(inputs, inputs[1:])) % 2]
