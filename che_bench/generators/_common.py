"""Helpers shared by several CHE tasks (Delétang et al., ICLR 2023; Ruoss et al., ACL 2023).

* uniform bits, and conversions between LE bit rows and Python ints;
* LE binary operands ``a 2 b`` (binary_addition, binary_multiplication) and LE sums;
* the recursive bracket-expression generator and a token-level evaluator
  (modular_arithmetic_brackets, solve_equation).

Everything is vectorized over the batch and draws only from the ``numpy.random.Generator``
that is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Widths up to this many bits are handled with int64 arithmetic instead of Python ints.
INT64_BITS = 62


# -- bits ------------------------------------------------------------------------------
def random_bits(
    rng: np.random.Generator, shape: tuple[int, int], dtype: type = np.int64
) -> np.ndarray:
    """Uniform i.i.d. bits, drawn eight at a time from uniform bytes."""
    count = int(np.prod(shape))
    raw = rng.integers(0, 256, size=(count + 7) // 8, dtype=np.uint8)
    return np.unpackbits(raw, count=count).reshape(shape).astype(dtype, copy=False)


def nonzero_random_bits(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Rows of uniform bits conditioned on not being all zero (rejection, so exact)."""
    bits = random_bits(rng, shape)
    bad = ~bits.any(axis=1)
    while bad.any():
        bits[bad] = random_bits(rng, (int(bad.sum()), shape[1]))
        bad = ~bits.any(axis=1)
    return bits


def le_bits_to_ints(bits: np.ndarray) -> list[int]:
    """LE bit rows [B, W] -> Python ints (any width)."""
    packed = np.packbits(bits.astype(np.uint8), axis=1, bitorder="little")
    width = packed.shape[1]
    buf = packed.tobytes()
    return [int.from_bytes(buf[i : i + width], "little") for i in range(0, len(buf), width)]


def ints_to_le_bits(values: Sequence[int], width: int) -> np.ndarray:
    """Python ints (each < 2**width) -> LE bit rows int64 [len(values), width]."""
    nbytes = (width + 7) // 8
    buf = b"".join(v.to_bytes(nbytes, "little") for v in values)
    packed = np.frombuffer(buf, dtype=np.uint8).reshape(len(values), nbytes)
    bits = np.unpackbits(packed, axis=1, count=width, bitorder="little")
    return bits.astype(np.int64)


def le_bits_to_int64(bits: np.ndarray) -> np.ndarray:
    """LE bit rows [B, W] with W <= 62 -> int64 values."""
    return bits.astype(np.int64) @ (np.int64(1) << np.arange(bits.shape[1], dtype=np.int64))


def int64_to_le_bits(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative int64 values -> LE bit rows int64 [B, width] (width <= 63)."""
    return (values[:, None] >> np.arange(width, dtype=np.int64)) & 1


def add_le_bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise sum of two LE bit arrays of equal shape [B, W], modulo 2**W, as int8.

    Carry-lookahead (Kogge–Stone prefix over generate/propagate), so log2(W) vector steps.
    """
    a = a.astype(bool)
    b = b.astype(bool)
    prop = a ^ b
    g, p = a & b, prop.copy()
    shift = 1
    while shift < a.shape[1]:
        g[:, shift:] |= p[:, shift:] & g[:, :-shift]
        p[:, shift:] &= p[:, :-shift]
        shift *= 2
    total = prop.view(np.int8).copy()
    total[:, 1:] ^= g[:, :-1].view(np.int8)
    return total


def terminated_le(bits: np.ndarray, length: int, terminator: int = 2) -> np.ndarray:
    """Value bits (LE rows) -> minimal LE bits (``[0]`` for zero), terminator, zero padding.

    Returns int64 [B, length]; the minimal representation must be shorter than ``length``.
    """
    batch, width = bits.shape
    ones = bits.astype(bool)
    last_one = width - 1 - np.argmax(ones[:, ::-1], axis=1)
    size = np.where(ones.any(axis=1), last_one + 1, 1)
    out = np.zeros((batch, length), dtype=np.int64)
    keep = min(width, length)
    out[:, :keep] = bits[:, :keep]
    out *= np.arange(length) < size[:, None]
    out[np.arange(batch), size] = terminator
    return out


# -- binary operands "a 2 b" ----------------------------------------------------------
SEPARATOR = 2


def sample_binary_operands(rng: np.random.Generator, batch_size: int, length: int) -> np.ndarray:
    """Inputs shared by binary_addition and binary_multiplication (the reference code).

    N <= 2: v ~ U{0..2^N-2} in exactly N LE bits, no separator.
    N >= 3: n ~ U{1..N-2}, m = N-1-n; a ~ U{1..2^n-1}, b ~ U{1..2^m-1}; ``a 2 b`` with a and b
    in exactly n and m LE bits. Uniform bits with all-zero operands rejected (exact).
    """
    if length <= 2:
        v = rng.integers(0, 2**length - 1, size=batch_size)
        return int64_to_le_bits(v, length)
    n = rng.integers(1, length - 1, size=batch_size)
    pos = np.arange(length)
    in_a = pos < n[:, None]
    in_b = pos > n[:, None]
    bits = random_bits(rng, (batch_size, length), np.bool_)

    def invalid(rows: np.ndarray | slice) -> np.ndarray:
        x = bits[rows]
        return ~(x & in_a[rows]).any(axis=1) | ~(x & in_b[rows]).any(axis=1)

    bad = np.flatnonzero(invalid(slice(None)))
    while bad.size:
        bits[bad] = random_bits(rng, (bad.size, length), np.bool_)
        bad = bad[invalid(bad)]
    inputs = bits.astype(np.int64)
    inputs[np.arange(batch_size), n] = SEPARATOR
    return inputs


def split_binary_operands(inputs: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``a 2 b`` rows -> (a, b) as LE bit rows int8 [B, width]; a row without 2 is (row, 0)."""
    batch, length = inputs.shape
    is_sep = inputs == SEPARATOR
    sep = np.where(is_sep.any(axis=1), np.argmax(is_sep, axis=1), length)
    # One zero-padded int8 copy serves both operands: a is the row with everything from the
    # separator on zeroed, b is a flat gather of ``width`` tokens starting after the separator.
    span = length + width + 1
    padded = np.zeros((batch, span), dtype=np.int8)
    padded[:, :length] = inputs
    padded[:, :length] *= np.arange(length) < sep[:, None]  # keep only a
    a = padded[:, :width].copy()
    padded[:, :length] = inputs
    offsets = np.arange(batch) * span + sep + 1
    b = padded.ravel().take(offsets[:, None] + np.arange(width))
    return a, b


# -- bracket expressions -----------------------------------------------------------------
@dataclass(frozen=True)
class BracketIds:
    """Token ids of an arithmetic alphabet; digits are ``0..modulus-1``."""

    modulus: int
    plus: int
    minus: int
    times: int | None
    open: int
    close: int


def brackets_ids(modulus: int) -> BracketIds:
    """The modular_arithmetic_brackets map: digits, + - * ( ) (then x, = never emitted)."""
    return BracketIds(modulus, modulus, modulus + 1, modulus + 2, modulus + 3, modulus + 4)


def _leaf_tables(ids: BracketIds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per leaf size n = 1..4 (``d``, ``-d``, ``(d)``, ``(-d)``): four (offset, token) writes
    and the sign of the value. ``-1`` stands for the digit; a leaf shorter than four tokens
    repeats its digit write, which is harmless."""
    digit = -1
    offsets = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 1], [0, 1, 2, 2], [0, 1, 2, 3]])
    tokens = np.array(
        [
            [digit] * 4,
            [digit] * 4,
            [ids.minus, digit, digit, digit],
            [ids.open, digit, ids.close, ids.close],
            [ids.open, ids.minus, digit, ids.close],
        ]
    )
    sign = np.array([1, 1, -1, 1, -1])
    return offsets, tokens, sign


def _op_table(modulus: int) -> np.ndarray:
    """``table[op * m*m + left * m + right]`` for op 0: +, 1: -, 2: *."""
    left, right = np.divmod(np.arange(modulus * modulus), modulus)
    return np.concatenate([left + right, left - right, left * right]) % modulus


def sample_bracket_expressions(
    rng: np.random.Generator, batch_size: int, length: int, modulus: int, mult: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``batch_size`` expressions expr(length) and their values mod ``modulus``.

    The recursion of the reference code (Delétang et al., ICLR 2023): n=1 ``d``, n=2 ``-d``,
    n=3 ``(d)``, n=4 ``(-d)``; n>=5 ``( expr(a) OP expr(n-3-a) )`` with a ~ U{1..n-4}, OP
    uniform on + - (*), d uniform.
    Every node draws independently, so the trees of the whole batch are expanded
    breadth-first together (one vector step per tree level) and evaluated bottom-up
    afterwards. Tokens use :func:`brackets_ids`.
    """
    ids = brackets_ids(modulus)
    leaf_offsets, leaf_tokens, leaf_sign = _leaf_tables(ids)
    op_table = _op_table(modulus)
    tokens = np.empty(batch_size * length, dtype=np.int64)
    values = np.empty(batch_size * length, dtype=np.int64)  # at most one node per token
    start = np.arange(batch_size, dtype=np.int64) * length  # flat offset of each segment
    size = np.full(batch_size, length, dtype=np.int64)
    node = np.arange(batch_size, dtype=np.int64)
    next_id = batch_size
    levels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    n_ops = 3 if mult else 2
    while start.size:
        leaf = size <= 4
        if leaf.any():
            ls, lz = start[leaf], size[leaf]
            digit = rng.integers(0, modulus, size=ls.size)
            writes = leaf_tokens[lz]
            writes = np.where(writes < 0, digit[:, None], writes)
            tokens[ls[:, None] + leaf_offsets[lz]] = writes
            values[node[leaf]] = leaf_sign[lz] * digit % modulus
            inner = ~leaf
            start, size, node = start[inner], size[inner], node[inner]
            if not start.size:
                break
        count = start.size
        a = rng.integers(1, size - 3)  # U{1..n-4}
        op = rng.integers(0, n_ops, size=count)
        tokens[start] = ids.open
        tokens[start + size - 1] = ids.close
        tokens[start + 1 + a] = ids.plus + op
        children = np.arange(next_id, next_id + 2 * count, dtype=np.int64)
        next_id += 2 * count
        levels.append((node, children, op))
        start = np.concatenate([start + 1, start + 2 + a])
        size = np.concatenate([a, size - 3 - a])
        node = children
    m2 = modulus * modulus
    for parent, children, op in reversed(levels):
        count = parent.size
        values[parent] = op_table[
            op * m2 + values[children[:count]] * modulus + values[children[count:]]
        ]
    return tokens.reshape(batch_size, length), values[:batch_size].copy()


def evaluate_bracket_tokens(tokens: np.ndarray, ids: BracketIds) -> np.ndarray:
    """Values mod ``ids.modulus`` of well-formed expressions of the generator's grammar.

    Vectorized over the batch: brackets are matched by a stable sort on nesting depth
    (within one depth the tokens read ``( [op] )  ( [op] )  …``), then binary operators are
    evaluated from the deepest level up. Each operand's value sits on its last token.
    """
    batch, length = tokens.shape
    m = ids.modulus
    is_digit = tokens < m
    is_open = tokens == ids.open
    is_close = tokens == ids.close
    is_op = (tokens == ids.plus) | (tokens == ids.minus)
    if ids.times is not None:
        is_op |= tokens == ids.times
    ends_operand = np.zeros_like(is_op)
    ends_operand[:, 1:] = is_digit[:, :-1] | is_close[:, :-1]
    binop = is_op & ends_operand
    unary = (tokens == ids.minus) & ~binop
    negated = np.zeros_like(unary)
    negated[:, 1:] = unary[:, :-1]
    val = np.where(is_digit, np.where(negated, -tokens, tokens) % m, 0)

    depth = np.cumsum(is_open.astype(np.int64) - is_close, axis=1)
    big = length + 2
    key = np.where(is_open | binop, depth, np.where(is_close, depth + 1, big))
    order = np.argsort(key, axis=1, kind="stable")
    kind = np.where(is_open, 0, np.where(binop, 1, np.where(is_close, 2, 3)))
    skind = np.take_along_axis(kind, order, axis=1)
    nxt = np.full_like(skind, 3)
    nxt[:, :-1] = skind[:, 1:]
    # Leaf brackets "(d)" / "(-d)": the close directly follows the open at its depth.
    rows, i = np.nonzero((skind == 0) & (nxt == 2))
    close = order[rows, i + 1]
    val[rows, close] = val[rows, close - 1]
    # Binary nodes: sorted as open, op, close.
    rows, i = np.nonzero(skind == 1)
    op_pos = order[rows, i]
    close = order[rows, i + 1]
    level = depth[rows, op_pos]
    by_level = np.argsort(-level, kind="stable")
    rows, op_pos, close, level = rows[by_level], op_pos[by_level], close[by_level], level[by_level]
    bounds = np.flatnonzero(np.diff(level)) + 1
    op_table = _op_table(m)
    for sel in np.split(np.arange(rows.size), bounds):
        r, p, c = rows[sel], op_pos[sel], close[sel]
        t = tokens[r, p]
        op = np.where(t == ids.plus, 0, np.where(t == ids.minus, 1, 2))
        val[r, c] = op_table[op * m * m + val[r, p - 1] * m + val[r, c - 1]]
    return val[:, -1]
