"""Stack Manipulation (deterministic context-free): apply actions to a stack.

Delétang et al., *Neural Networks and the Chomsky Hierarchy*, ICLR 2023, Table 1.

Tokens: input 0/1 are stack symbols, 2 POP, 3 PUSH 0, 4 PUSH 1; output 0/1 are stack symbols
and 2 is the terminator.

Input: an initial stack of k ~ U{1..N-1} uniform bits listed bottom -> top, then N - k
actions uniform on {POP, PUSH 0, PUSH 1}; POP on an empty stack is a no-op. N = 1 is a stack
of one uniform bit and no action. Target: the final stack read top -> bottom, then 2, then
zeros up to length N + 1. Accuracy mask: positions up to the first 2, inclusive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from che_bench.generators import register_task
from che_bench.generators._common import random_bits
from che_bench.generators._oracle import require, terminated
from che_bench.generators.base import Batch, Example, Task, TerminatedBitsTask

POP, PUSH0, PUSH1 = 2, 3, 4
TERMINATOR = 2


def targets_for(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] -> final stacks top->bottom + 2 + zeros [B, N+1], mask through the first 2.

    Every non-POP token pushes a bit (0/1 as is, 3/4 as 0/1). The height with POP clamped at
    zero is the reflected walk S_t - min(0, min_{s<=t} S_s); a push survives iff the height
    never drops below its level afterwards, and the survivors are the final stack.
    """
    batch, length = inputs.shape
    tokens = inputs.astype(np.int8)
    push = tokens != POP
    bit = (tokens & 1) ^ (tokens >= PUSH0)  # 0, 1 -> 0, 1 and PUSH0, PUSH1 -> 0, 1
    dtype = np.int16 if length < 2**15 - 1 else np.int64
    walk = 2 * np.cumsum(push, axis=1, dtype=dtype) - np.arange(1, length + 1, dtype=dtype)
    height = walk - np.minimum(np.minimum.accumulate(walk, axis=1), 0)
    later_min = np.minimum.accumulate(height[:, ::-1], axis=1)[:, ::-1]
    survive = push & (later_min >= height)
    final = height[:, -1].astype(np.int64)
    # Survivor at height h goes to slot final - h; everything else to a scratch column.
    scratch = length + 1
    slot = (final[:, None] - height - scratch) * survive + scratch
    flat = (np.arange(batch) * (length + 2))[:, None] + slot
    targets = np.zeros((batch, length + 2), dtype=np.int64)
    targets.ravel()[flat.ravel()] = bit.ravel()
    targets = targets[:, : length + 1].copy()
    targets[np.arange(batch), final] = TERMINATOR
    return targets, Task.mask_through_first(targets, TERMINATOR)


@register_task
class StackManipulation(TerminatedBitsTask):
    """Stack Manipulation."""

    name = "stack_manipulation"
    level = "dcf"
    input_size = 5
    description = "The final stack after POP/PUSH actions, top to bottom, then a terminator."
    input_symbols = ("0", "1", "POP", "PUSH0", "PUSH1")
    examples = (
        Example([0, 1, 1, 0, 4, 2, 2], [1, 1, 0, 2, 0, 0, 0, 0], mask=4),
        Example(
            [1, 1, 0, 2, 2, 2],
            [2, 0, 0, 0, 0, 0, 0],
            mask=1,
            note="N + 1 = 7 tokens; the code's docstring shows 8",
        ),
        Example([0], [0, 2], mask=2, note="N = 1: a stack and no action"),
        Example([1], [1, 2], mask=2),
    )

    def output_length(self, length: int) -> int:
        return length + 1

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return targets_for(inputs)

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        k = next((i for i, t in enumerate(inputs) if t not in (0, 1)), len(inputs))
        require(k >= 1 and (k < len(inputs) or len(inputs) == 1), f"initial stack of {k}")
        stack = list(inputs[:k])  # bottom -> top
        for action in inputs[k:]:
            require(action in (POP, PUSH0, PUSH1), f"action {action}")
            if action != POP:
                stack.append(action - PUSH0)
            elif stack:
                stack.pop()
        return terminated(stack[::-1], len(inputs) + 1, TERMINATOR)

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        if length == 1:
            inputs = rng.integers(0, 2, size=(batch_size, 1))
        else:
            k = rng.integers(1, length, size=batch_size)  # initial stack length, U{1..N-1}
            bits = random_bits(rng, (batch_size, length), np.int8)
            actions = rng.integers(POP, PUSH1 + 1, size=(batch_size, length), dtype=np.int8)
            is_stack = np.arange(length) < k[:, None]
            inputs = np.where(is_stack, bits, actions).astype(np.int64)
        return Batch(inputs, *targets_for(inputs))
