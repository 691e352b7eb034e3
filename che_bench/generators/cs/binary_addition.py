"""Binary Addition (context-sensitive): add two little-endian binary numbers.

Delétang et al., *Neural Networks and the Chomsky Hierarchy*, ICLR 2023, Table 1. Numbers are
little-endian with a terminator, as in the reference code that produced the published numbers
(the paper's example ``10010 + 101 -> 10111`` is big-endian without a terminator).

Tokens: input 0/1 bits and 2 for ``+``; output 0/1 bits and 2 the terminator.

Input (N >= 3): n ~ U{1..N-2}, m = N-1-n, a ~ U{1..2^n-1}, b ~ U{1..2^m-1}; a in exactly n LE
bits, then 2, then b in exactly m LE bits. N <= 2: v ~ U{0..2^N-2} in exactly N LE bits and no
separator (read as v + 0). Target: the sum in minimal LE bits (``[0]`` for 0), then 2, then
zeros up to length N + 1. Accuracy mask: positions up to the first 2, inclusive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators._common import (
    add_le_bits,
    sample_binary_operands,
    split_binary_operands,
    terminated_le,
)
from che_bench.generators._oracle import binary_operands, int_to_le, terminated
from che_bench.generators.base import Batch, Example, Task, TerminatedBitsTask

TERMINATOR = 2


def targets_for(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] ``a 2 b`` -> LE sum + 2 + zeros [B, N+1], mask through the first 2."""
    width = inputs.shape[1] + 1
    a, b = split_binary_operands(inputs, width)
    targets = terminated_le(add_le_bits(a, b), width, TERMINATOR)
    return targets, Task.mask_through_first(targets, TERMINATOR)


@register_task
class BinaryAddition(TerminatedBitsTask):
    """Binary Addition."""

    name = "binary_addition"
    level = "cs"
    input_size = 3
    description = "The sum of two little-endian binary numbers, in LE bits, then a terminator."
    input_symbols = ("0", "1", "+")
    examples = (
        Example([0, 0, 1, 2, 0, 1, 1, 0, 1], [0, 1, 0, 1, 1, 2, 0, 0, 0, 0], mask=6, note="4 + 22"),
        Example(
            [1, 0, 0, 1, 2, 0, 0, 0, 0, 0, 1],
            [1, 0, 0, 1, 0, 1, 2, 0, 0, 0, 0, 0],
            mask=7,
            note="9 + 32 = 41; the code's docstring shows one token fewer",
        ),
        Example(
            [0, 1, 0, 0, 1, 2, 1, 0, 1],
            [1, 1, 1, 0, 1, 2, 0, 0, 0, 0],
            mask=6,
            note="18 + 5, the paper's 10010 + 101 -> 10111",
        ),
        Example([0], [0, 2], mask=2, note="N = 1: only v = 0"),
        Example([0, 0], [0, 2, 0], mask=2, note="N = 2, v = 0"),
    )

    def output_length(self, length: int) -> int:
        return length + 1

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        a, b = binary_operands(inputs, self.input_symbols.index("+"))
        return terminated(int_to_le(a + b), len(inputs) + 1, TERMINATOR)

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        inputs = sample_binary_operands(rng, batch_size, length)
        return Batch(inputs, *targets_for(inputs))
