"""Modular Arithmetic, simple variant (regular): evaluate ``d op d op … d`` mod 5.

Delétang et al., *Neural Networks and the Chomsky Hierarchy*, ICLR 2023, Table 1.

Tokens: digits ``0..modulus-1`` are ids 0–4, then ``+`` 5, ``-`` 6, ``*`` 7 and a blank
``_`` 8 that is never sampled (input_size 9 for the default modulus 5).

Input: (N+1)/2 uniform digits alternating with (N-1)/2 uniform operators. An even requested
length N is generated with N - 1 tokens, so inputs always have odd length (N = 1 and N = 2
are a single digit). Target (one class): the value under the usual precedence (``*`` before
``+`` and ``-``, left to right), reduced mod 5.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators._oracle import evaluate, require
from che_bench.generators.base import Batch, Example, Task


def targets_for(inputs: np.ndarray, modulus: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """[B, L] (L odd) -> values [B, 1] mod ``modulus``, all-true mask.

    Each additive term is a run of digits joined by ``*``; its sign is folded into its first
    digit, a segmented prefix product (log2 L vector steps) gives every term's value on its
    last digit, and the terms are summed.
    """
    dtype = np.int16 if modulus <= 181 else np.int64  # products of two residues must fit
    digits = inputs[:, 0::2].astype(dtype)
    ops = inputs[:, 1::2] - modulus  # 0: +, 1: -, 2: *
    starts = np.ones(digits.shape, dtype=bool)
    starts[:, 1:] = ops != 2
    prod = digits.copy()
    prod[:, 1:] *= 1 - 2 * (ops == 1).astype(dtype)  # fold each term's sign into its first digit
    prod %= modulus
    seg = starts.copy()
    shift = 1
    while shift < prod.shape[1]:
        # Not at a segment start yet: multiply by the value ``shift`` digits to the left.
        factor = prod[:, :-shift] * ~seg[:, shift:] + seg[:, shift:]
        prod[:, shift:] *= factor
        prod[:, shift:] %= modulus
        seg[:, shift:] |= seg[:, :-shift]
        shift *= 2
    ends = np.ones(digits.shape, dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    targets = (prod * ends).sum(axis=1, keepdims=True, dtype=np.int64) % modulus
    return targets, Task.full_mask(targets)


@register_task
class ModularArithmetic(Task):
    """Modular Arithmetic without brackets."""

    name = "modular_arithmetic"
    level = "regular"
    input_size = 9
    output_size = 5
    description = "Value mod 5 of d op d op ... d with op in + - * (usual precedence, no brackets)."
    input_symbols = ("0", "1", "2", "3", "4", "+", "-", "*", "_")
    examples = (
        Example([1, 5, 2, 7, 3], [2], note='"1+2*3"'),
        Example([1, 6, 1, 6, 1], [4], note='"1-1-1"'),
        Example([0, 7, 1, 5, 4, 7, 3, 6, 2], [0], note='"0*1+4*3-2", the code\'s docstring'),
        Example([4], [4], note="N = 1 and N = 2"),
    )

    def __init__(self, modulus: int = 5) -> None:
        self.modulus = int(modulus)
        self.input_size = self.modulus + 4
        self.output_size = self.modulus
        self.input_symbols = (*map(str, range(self.modulus)), "+", "-", "*", "_")

    def output_length(self, length: int) -> int:
        return 1

    def input_length(self, length: int) -> int:
        return length - 1 if length % 2 == 0 else length

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs, self.modulus)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        m = self.modulus
        require(len(inputs) % 2 == 1, "an even number of tokens")
        require(all(t < m for t in inputs[0::2]), "a non-digit at an even position")
        require(all(m <= t < m + 3 for t in inputs[1::2]), "a non-operator at an odd position")
        return [evaluate([t if t < m else "+-*"[t - m] for t in inputs], m)]

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        n = self.input_length(length)
        inputs = np.empty((batch_size, n), dtype=np.int64)
        inputs[:, 0::2] = rng.integers(0, self.modulus, size=(batch_size, (n + 1) // 2))
        inputs[:, 1::2] = self.modulus + rng.integers(0, 3, size=(batch_size, n // 2))
        return Batch(inputs, *targets_for(inputs, self.modulus))
