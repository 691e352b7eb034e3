"""Odds First (context-sensitive): odd positions first, then even positions.

Delétang et al., *Neural Networks and the Chomsky Hierarchy*, ICLR 2023, Table 1.

Input: x, N tokens uniform on ``0..vocab_size-1`` (default 2). Target: x[1], x[3], x[5], …
followed by x[0], x[2], x[4], … (0-indexed odd positions first). This is the order of the
reference code, which produced the published numbers; the paper's example
(``aaabaa -> aaaaba``) and the code's docstring describe the opposite order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators.base import Example, SameVocabularyTask, Task


def targets_for(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] -> odd-indexed then even-indexed tokens [B, N], all-true mask."""
    targets = np.concatenate([inputs[:, 1::2], inputs[:, 0::2]], axis=1)
    return targets, Task.full_mask(targets)


@register_task
class OddsFirst(SameVocabularyTask):
    """Odds First."""

    name = "odds_first"
    level = "cs"
    input_size = 2
    output_size = 2
    description = "Tokens at odd positions (0-indexed) first, then tokens at even positions."
    examples = (
        Example([0, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0], note="aaabaa -> abaaaa (a = 0, b = 1)"),
        Example([0, 0, 1, 1, 0, 1, 0, 1], [0, 1, 1, 1, 0, 1, 0, 0]),
    )

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        odd = [t for i, t in enumerate(inputs) if i % 2 == 1]
        return odd + [t for i, t in enumerate(inputs) if i % 2 == 0]
