"""Missing Duplicate (context-sensitive): recover the erased symbol of ``ww``.

Delétang et al., *Neural Networks and the Chomsky Hierarchy*, ICLR 2023, Table 1.

Tokens: 0 and 1 are bits, 2 marks the missing symbol, 3 is padding.

Input (N >= 2): w is floor(N/2) uniform bits, s = ww, j ~ U{0..2 floor(N/2) - 1}; s_j is
replaced by 2, and a 3 is appended when N is odd. Target (one class): the erased s_j.
N = 1 is degenerate: input ``[1]``, target 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators._oracle import require
from che_bench.generators.base import Batch, Example, Task

MISSING, PAD = 2, 3


def targets_for(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] -> the bit at the twin of the 2 [B, 1] (1 when N = 1), all-true mask."""
    batch, length = inputs.shape
    if length == 1:
        targets = np.ones((batch, 1), dtype=np.int64)
    else:
        half = length // 2
        hole = np.argmax(inputs == MISSING, axis=1)
        twin = np.where(hole < half, hole + half, hole - half)
        targets = inputs[np.arange(batch), twin][:, None].astype(np.int64)
    return targets, Task.full_mask(targets)


@register_task
class MissingDuplicateString(Task):
    """Missing Duplicate String."""

    name = "missing_duplicate_string"
    level = "cs"
    input_size = 4
    output_size = 2
    description = "The bit hidden under the marker in a duplicated string ww."
    input_symbols = ("0", "1", "?", "_")
    examples = (
        Example([0, 1, 1, 0, 0, 1, 2, 0], [1]),
        Example([1, 0, 1, 1, 2, 1, 3], [0], note="odd N: a padding 3"),
        Example([1, 0, 0, 1, 1, 0, 2, 1], [0], note="the paper's 10011021 -> 0"),
        Example([1], [1], note="N = 1 is degenerate"),
    )

    def output_length(self, length: int) -> int:
        return 1

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        inputs = list(inputs)
        if len(inputs) == 1:
            require(inputs == [1], "N = 1 is always [1]")
            return [1]
        half = len(inputs) // 2
        body, pad = inputs[: 2 * half], inputs[2 * half :]
        require(pad == [PAD] * (len(inputs) % 2) and PAD not in body, "padding")
        require(body.count(MISSING) == 1, "not exactly one missing symbol")
        hole = body.index(MISSING)
        twin = hole + half if hole < half else hole - half
        pairs = [(body[i], body[i + half]) for i in range(half) if hole not in (i, i + half)]
        require(all(a == b for a, b in pairs), "not a duplicated string")
        return [body[twin]]

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        if length == 1:
            inputs = np.ones((batch_size, 1), dtype=np.int64)
            return Batch(inputs, *targets_for(inputs))
        half = length // 2
        word = rng.integers(0, 2, size=(batch_size, half))
        inputs = np.full((batch_size, length), PAD, dtype=np.int64)
        inputs[:, :half] = word
        inputs[:, half : 2 * half] = word
        rows = np.arange(batch_size)
        hole = rng.integers(0, 2 * half, size=batch_size)
        targets = inputs[rows, hole][:, None].copy()
        inputs[rows, hole] = MISSING
        return Batch(inputs, targets, Task.full_mask(targets))
