"""Binary Multiplication (context-sensitive): multiply two little-endian binary numbers.

Ruoss et al., *Randomized Positional Encodings Boost Length Generalization of Transformers*,
ACL 2023 (the task is in the RPE code, not in Delétang et al.'s Table 1).

Tokens and inputs: exactly as binary_addition (``a 2 b``, LE, a, b >= 1 for N >= 3).

Target (N >= 3): a·b in minimal LE bits, then 2, then zeros up to length N (a·b has at most
N - 1 bits). N <= 2: fixed, ``[2]`` for N = 1 and ``[0, 2]`` for N = 2, whatever the input.
Accuracy mask: positions up to the first 2, inclusive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators._common import (
    INT64_BITS,
    int64_to_le_bits,
    ints_to_le_bits,
    le_bits_to_int64,
    le_bits_to_ints,
    sample_binary_operands,
    split_binary_operands,
    terminated_le,
)
from che_bench.generators._oracle import binary_operands, int_to_le, terminated
from che_bench.generators.base import Batch, Example, Task, TerminatedBitsTask

TERMINATOR = 2


def targets_for(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] ``a 2 b`` -> LE product + 2 + zeros [B, N], mask through the first 2."""
    batch, length = inputs.shape
    if length <= 2:
        targets = np.zeros((batch, length), dtype=np.int64)
        targets[:, -1] = TERMINATOR
        return targets, Task.mask_through_first(targets, TERMINATOR)
    a, b = split_binary_operands(inputs, length)
    if length <= INT64_BITS:  # a·b < 2^(N-1) fits in int64
        product = int64_to_le_bits(le_bits_to_int64(a) * le_bits_to_int64(b), length)
    else:  # Python ints; products of up to ~1000-bit numbers are cheap
        ints = [x * y for x, y in zip(le_bits_to_ints(a), le_bits_to_ints(b), strict=True)]
        product = ints_to_le_bits(ints, length)
    targets = terminated_le(product, length, TERMINATOR)
    return targets, Task.mask_through_first(targets, TERMINATOR)


@register_task
class BinaryMultiplication(TerminatedBitsTask):
    """Binary Multiplication."""

    name = "binary_multiplication"
    level = "cs"
    input_size = 3
    description = "The product of two little-endian binary numbers, in LE bits, then a terminator."
    input_symbols = ("0", "1", "*")
    examples = (
        Example([0, 0, 1, 2, 0, 1, 1, 0, 1], [0, 0, 0, 1, 1, 0, 1, 2, 0], mask=8, note="4 · 22"),
        Example(
            [1, 0, 0, 1, 2, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 0],
            mask=10,
            note="9 · 32, the code's docstring",
        ),
        Example([0], [2], mask=1, note="N <= 2: a fixed target"),
        Example([0, 0], [0, 2], mask=2),
        Example([0, 1], [0, 2], mask=2),
    )

    def output_length(self, length: int) -> int:
        return length

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        a, b = binary_operands(inputs, self.input_symbols.index("*"))
        if len(inputs) <= 2:
            return [0] * (len(inputs) - 1) + [TERMINATOR]
        return terminated(int_to_le(a * b), len(inputs), TERMINATOR)

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        inputs = sample_binary_operands(rng, batch_size, length)
        return Batch(inputs, *targets_for(inputs))
