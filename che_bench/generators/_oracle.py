"""Plain-Python helpers for the tasks' oracles (one sample at a time, no numpy).

The oracles restate each task's definition as simply as possible, so that the tests can
hold the vectorized ``targets_for`` and every sampled batch to them.
"""

from __future__ import annotations

from collections.abc import Sequence


def require(condition: bool, what: str) -> None:
    """Reject an input the generator must never emit."""
    if not condition:
        raise ValueError(f"malformed input: {what}")


def le_to_int(bits: Sequence[int]) -> int:
    """Little-endian bits (least significant first) -> int; ``[]`` is 0."""
    return sum(bit << i for i, bit in enumerate(bits))


def int_to_le(value: int) -> list[int]:
    """int >= 0 -> its minimal little-endian bits, ``[0]`` for 0."""
    return [int(c) for c in reversed(f"{value:b}")]


def terminated(bits: list[int], length: int, terminator: int = 2) -> list[int]:
    """``bits``, the terminator, then zeros up to ``length`` tokens."""
    require(len(bits) < length, f"{len(bits)} answer bits do not fit in {length} tokens")
    return bits + [terminator] + [0] * (length - len(bits) - 1)


def evaluate(tokens: Sequence[int | str], modulus: int) -> int:
    """Value mod ``modulus`` of an expression whose tokens are digits (ints in
    ``0..modulus-1``) and ``"+" "-" "*" "(" ")"``; usual precedence (``*`` first, then left to
    right), and ``-`` before an operand negates it."""
    pos = 0

    def peek() -> int | str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(expected: str | None = None) -> int | str:
        nonlocal pos
        token = peek()
        require(token is not None and expected in (None, token), f"{tokens} at {pos}")
        pos += 1
        return token

    def operand() -> int:
        token = take()
        if token == "-":
            return -operand() % modulus
        if token == "(":
            value = total()
            take(")")
            return value
        require(isinstance(token, int) and 0 <= token < modulus, f"{token!r} is not a digit")
        return token

    def product() -> int:
        value = operand()
        while peek() == "*":
            take()
            value = value * operand() % modulus
        return value

    def total() -> int:
        value = product()
        while peek() in ("+", "-"):
            sign = 1 if take() == "+" else -1
            value = (value + sign * product()) % modulus
        return value

    value = total()
    require(pos == len(tokens), f"trailing tokens in {tokens}")
    return value


def binary_operands(inputs: Sequence[int], separator: int = 2) -> tuple[int, int]:
    """The operands (a, b) of binary_addition and binary_multiplication inputs.

    N >= 3: ``a 2 b`` with a, b >= 1 in LE bits. N <= 2: v <= 2^N - 2 in N LE bits and no
    separator, read as (v, 0).
    """
    inputs = list(inputs)
    if len(inputs) <= 2:
        value = le_to_int(inputs)
        require(separator not in inputs and value <= 2 ** len(inputs) - 2, f"{inputs}")
        return value, 0
    require(inputs.count(separator) == 1, "not exactly one separator")
    split = inputs.index(separator)
    a, b = le_to_int(inputs[:split]), le_to_int(inputs[split + 1 :])
    require(a >= 1 and b >= 1, "an operand is zero or empty")
    return a, b
