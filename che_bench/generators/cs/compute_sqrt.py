"""Compute Sqrt (context-sensitive): the integer square root of a binary number.

Delétang et al., *Neural Networks and the Chomsky Hierarchy*, ICLR 2023, Table 1. The paper's
example (``100010 -> 110``) and the code's docstring (``100101 -> 101``) are not
floor(sqrt(x)); the reference code's computation is, and is followed here.

Input: x ~ U{1..2^N-1} in big-endian bits, left-padded with zeros to N bits. Target:
floor(sqrt(x)) in big-endian bits, left-padded to ceil(N/2) bits (no terminator, no mask).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators._common import (
    INT64_BITS,
    int64_to_le_bits,
    ints_to_le_bits,
    le_bits_to_int64,
    le_bits_to_ints,
    nonzero_random_bits,
)
from che_bench.generators._oracle import require
from che_bench.generators.base import Batch, Example, Task


def _isqrt_int64(x: np.ndarray) -> np.ndarray:
    """Exact floor(sqrt(x)) for int64 x < 2^62: float estimate, then integer correction."""
    root = np.floor(np.sqrt(x.astype(np.float64))).astype(np.int64)
    while (high := root * root > x).any():
        root -= high
    while (low := (root + 1) * (root + 1) <= x).any():
        root += low
    return root


def targets_for(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] BE bits -> floor(sqrt) in BE bits [B, ceil(N/2)], all-true mask."""
    length = inputs.shape[1]
    width = (length + 1) // 2
    le = inputs[:, ::-1]
    if length <= INT64_BITS:
        root = int64_to_le_bits(_isqrt_int64(le_bits_to_int64(le)), width)
    else:
        root = ints_to_le_bits([math.isqrt(x) for x in le_bits_to_ints(le)], width)
    targets = np.ascontiguousarray(root[:, ::-1])
    return targets, Task.full_mask(targets)


@register_task
class ComputeSqrt(Task):
    """Compute Sqrt."""

    name = "compute_sqrt"
    level = "cs"
    input_size = 2
    output_size = 2
    description = "floor(sqrt(x)) of a big-endian binary number, in big-endian bits."
    examples = (
        Example([1, 0, 0, 1, 0, 1], [1, 1, 0], note="37"),
        Example([1, 0, 0, 0, 1, 0], [1, 0, 1], note="34"),
        Example([1, 1, 1], [1, 0], note="7"),
        Example([1], [1], note="N = 1: only x = 1"),
        Example([1, 0], [1]),
        Example([1, 1], [1]),
    )

    def output_length(self, length: int) -> int:
        return (length + 1) // 2

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        value = int("".join(map(str, inputs)), 2)
        require(value >= 1, "x = 0")
        return [int(c) for c in f"{math.isqrt(value):0{(len(inputs) + 1) // 2}b}"]

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        inputs = nonzero_random_bits(rng, (batch_size, length))  # x ~ U{1..2^N-1}
        return Batch(inputs, *targets_for(inputs))
