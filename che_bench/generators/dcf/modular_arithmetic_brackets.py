"""Modular Arithmetic with brackets (deterministic context-free): evaluate mod 5.

Delétang et al., *Neural Networks and the Chomsky Hierarchy*, ICLR 2023, Table 1.

Tokens: digits 0–4, ``+`` 5, ``-`` 6, ``*`` 7, ``(`` 8, ``)`` 9, ``x`` 10 (never emitted;
the reference map also has ``=`` 11, outside input_size 11).

Input: expr(N), drawn by the reference recursion, with d uniform on the digits:

====  ===========================  ====================
n     string                       value
====  ===========================  ====================
1     ``d``                        d
2     ``-d``                       -d
3     ``(d)``                      d
4     ``(-d)``                     -d
>=5   ``( expr(a) OP expr(n-3-a) )``  left OP right
====  ===========================  ====================

with a ~ U{1..n-4} and OP uniform on {+, -, *} (on {+, -} when ``mult=False``). Target (one
class): the value mod 5.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators._common import (
    brackets_ids,
    evaluate_bracket_tokens,
    sample_bracket_expressions,
)
from che_bench.generators._oracle import evaluate, require
from che_bench.generators.base import Batch, Example, Task


def targets_for(inputs: np.ndarray, modulus: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] expressions -> values [B, 1] mod ``modulus``, all-true mask."""
    targets = evaluate_bracket_tokens(inputs, brackets_ids(modulus))[:, None]
    return targets, Task.full_mask(targets)


@register_task
class ModularArithmeticBrackets(Task):
    """Modular Arithmetic with brackets and unary minus."""

    name = "modular_arithmetic_brackets"
    level = "dcf"
    input_size = 11
    output_size = 5
    description = "Value mod 5 of a random bracketed expression over + - * and unary minus."
    input_symbols = ("0", "1", "2", "3", "4", "+", "-", "*", "(", ")", "x")
    examples = (
        Example([8, 3, 7, 4, 9], [2], note='"(3*4)"'),
        Example([6, 3], [2], note='"-3"'),
        Example([3], [3], note='"3"'),
        Example([8, 2, 9], [2], note='"(2)"'),
        Example([8, 6, 2, 9], [3], note='"(-2)"'),
    )

    def __init__(self, modulus: int = 5, mult: bool = True) -> None:
        self.modulus = int(modulus)
        self.mult = bool(mult)
        self.input_size = self.modulus + 6
        self.output_size = self.modulus
        self.input_symbols = (*map(str, range(self.modulus)), "+", "-", "*", "(", ")", "x")

    def output_length(self, length: int) -> int:
        return 1

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs, self.modulus)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        m = self.modulus
        require(all(t < m + 5 for t in inputs), "x is never emitted")
        require(self.mult or m + 2 not in inputs, "* without mult")
        return [evaluate([t if t < m else "+-*()"[t - m] for t in inputs], m)]

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        # The generator evaluates each tree bottom-up while building it; this equals
        # targets_for(inputs) (checked by the tests) and is cheaper than re-parsing.
        inputs, values = sample_bracket_expressions(
            rng, batch_size, length, self.modulus, self.mult
        )
        targets = values[:, None]
        return Batch(inputs, targets, Task.full_mask(targets))
