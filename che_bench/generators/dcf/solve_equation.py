"""Solve Equation (deterministic context-free): find x in a linear equation mod 5.

Delétang et al., *Neural Networks and the Chomsky Hierarchy*, ICLR 2023, Table 1. The paper
shows ``*`` and the variable ``z``; its runs used + and - only and the token ``x`` (with ``*``
an equation can have several solutions; the maintainers confirmed mult = False in issue #8
of google-deepmind/neural_networks_chomsky_hierarchy).

Tokens (a different map from modular_arithmetic_brackets): digits 0–4, ``+`` 5, ``-`` 6,
``(`` 7, ``)`` 8, ``x`` 9, ``=`` 10.

Input (N >= 3): E = expr(N-2) from the bracket recursion without ``*`` (see
modular_arithmetic_brackets), with value v. Pick i ~ U{0..N-3} and scan forward cyclically
to the first digit of E; that digit becomes ``x`` and is the target (one class). The input is
``E = v`` with v one digit. The solution is unique because x has coefficient ±1.
N < 3 is degenerate: an all-zero input with target 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators._common import (
    BracketIds,
    brackets_ids,
    evaluate_bracket_tokens,
    sample_bracket_expressions,
)
from che_bench.generators._oracle import evaluate, require
from che_bench.generators.base import Batch, Example, Task


def equation_ids(modulus: int = 5) -> BracketIds:
    """Digits, then + - ( ); ``x`` is ``modulus + 4`` and ``=`` is ``modulus + 5``."""
    return BracketIds(modulus, modulus, modulus + 1, None, modulus + 2, modulus + 3)


def targets_for(inputs: np.ndarray, modulus: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] equations -> the solution x [B, 1] (0 when N < 3), all-true mask."""
    batch, length = inputs.shape
    if length < 3:
        targets = np.zeros((batch, 1), dtype=np.int64)
        return targets, Task.full_mask(targets)
    lhs, rhs = inputs[:, :-2], inputs[:, -1]
    variable = lhs == modulus + 4
    solves = np.stack(
        [
            evaluate_bracket_tokens(np.where(variable, x, lhs), equation_ids(modulus)) == rhs
            for x in range(modulus)
        ],
        axis=1,
    )
    targets = np.argmax(solves, axis=1)[:, None].astype(np.int64)
    return targets, Task.full_mask(targets)


@register_task
class SolveEquation(Task):
    """Solve Equation."""

    name = "solve_equation"
    level = "dcf"
    input_size = 11
    output_size = 5
    description = "The digit x solving a bracketed linear equation over + and - mod 5."
    input_symbols = ("0", "1", "2", "3", "4", "+", "-", "(", ")", "x", "=")
    examples = (
        Example([9, 10, 2], [2], note='"x=2"'),
        Example([6, 9, 10, 3], [2], note='"-x=3"'),
        Example([7, 1, 5, 9, 8, 10, 4], [3], note='"(1+x)=4"'),
        Example([0], [0], note="N < 3 is degenerate"),
        Example([0, 0], [0]),
    )

    def __init__(self, modulus: int = 5) -> None:
        self.modulus = int(modulus)
        self.input_size = self.modulus + 6
        self.output_size = self.modulus
        self.input_symbols = (*map(str, range(self.modulus)), "+", "-", "(", ")", "x", "=")
        self._gen_ids = brackets_ids(self.modulus)

    def output_length(self, length: int) -> int:
        return 1

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs, self.modulus)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        m = self.modulus
        if len(inputs) < 3:
            require(not any(inputs), "a non-zero token below length 3")
            return [0]
        *lhs, equals, rhs = inputs
        well_formed = all(t < m + 5 for t in lhs) and lhs.count(m + 4) == 1
        require(well_formed and equals == m + 5 and rhs < m, "not E = v with one x in E")
        tokens = ["+-()x"[t - m] if t >= m else t for t in lhs]
        solutions = [
            x for x in range(m) if evaluate([x if t == "x" else t for t in tokens], m) == rhs
        ]
        require(len(solutions) == 1, f"solutions {solutions}")
        return solutions

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        if length < 3:
            inputs = np.zeros((batch_size, length), dtype=np.int64)
            return Batch(inputs, *targets_for(inputs, self.modulus))
        m, size = self.modulus, length - 2
        expr, values = sample_bracket_expressions(rng, batch_size, size, m, mult=False)
        # The first digit at or after i ~ U{0..N-3}, scanning cyclically.
        rows = np.arange(batch_size)
        start = rng.integers(0, size, size=batch_size)
        is_digit = expr < m
        ahead = is_digit & (np.arange(size) >= start[:, None])
        hole = np.where(ahead.any(axis=1), np.argmax(ahead, axis=1), np.argmax(is_digit, axis=1))
        targets = expr[rows, hole][:, None].copy()
        inputs = np.empty((batch_size, length), dtype=np.int64)
        # Brackets map -> equation map: "(" and ")" move down by one ("*" never occurs).
        inputs[:, :size] = expr - (expr >= self._gen_ids.open)
        inputs[rows, hole] = m + 4  # x
        inputs[:, size] = m + 5  # =
        inputs[:, size + 1] = values
        return Batch(inputs, targets, Task.full_mask(targets))
