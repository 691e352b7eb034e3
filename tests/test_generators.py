"""Tests of the 15 CHE task generators against spec/tasks.md.

(a) every golden example of spec §3 and the length edge cases of §5; (b) properties of random
samples checked against plain, independent Python oracles written here; (c) distributions;
(d) determinism and RNG hygiene; (e) the registry and the task cards.
"""

from __future__ import annotations

import inspect
import math
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from che_bench.generators import TASKS, get_task, list_tasks

ROOT = Path(__file__).resolve().parents[1]

# name: (level, input_size, output_size, output_length(N))
TABLE = {
    "even_pairs": ("regular", 2, 2, lambda n: 1),
    "modular_arithmetic": ("regular", 9, 5, lambda n: 1),
    "parity_check": ("regular", 2, 2, lambda n: 1),
    "cycle_navigation": ("regular", 3, 5, lambda n: 1),
    "stack_manipulation": ("dcf", 5, 3, lambda n: n + 1),
    "reverse_string": ("dcf", 2, 2, lambda n: n),
    "modular_arithmetic_brackets": ("dcf", 11, 5, lambda n: 1),
    "solve_equation": ("dcf", 11, 5, lambda n: 1),
    "duplicate_string": ("cs", 2, 2, lambda n: 2 * n),
    "missing_duplicate_string": ("cs", 4, 2, lambda n: 1),
    "odds_first": ("cs", 2, 2, lambda n: n),
    "binary_addition": ("cs", 3, 3, lambda n: n + 1),
    "binary_multiplication": ("cs", 3, 3, lambda n: n),
    "compute_sqrt": ("cs", 2, 2, lambda n: (n + 1) // 2),
    "bucket_sort": ("cs", 5, 5, lambda n: n),
}
MASKED = {"stack_manipulation", "binary_addition", "binary_multiplication"}
ALL = sorted(TABLE)


# =====================================================================================
# (a) golden examples, spec §3
# =====================================================================================
# (task, inputs, targets, number of leading true mask positions or None for all-true)
GOLDEN = [
    ("even_pairs", [0, 0, 1, 1, 1, 0], [0], None),
    ("even_pairs", [0, 1, 0, 1, 0, 0, 1], [1], None),
    ("even_pairs", [1], [0], None),
    ("modular_arithmetic", [1, 5, 2, 7, 3], [2], None),
    ("modular_arithmetic", [1, 6, 1, 6, 1], [4], None),
    ("modular_arithmetic", [0, 7, 1, 5, 4, 7, 3, 6, 2], [0], None),
    ("modular_arithmetic", [4], [4], None),
    ("parity_check", [1, 0, 1, 0, 1, 0, 0], [1], None),
    ("parity_check", [0, 1, 1, 1, 1], [0], None),
    ("cycle_navigation", [2, 0, 1, 0, 0], [3], None),
    ("cycle_navigation", [2, 2, 2, 0], [2], None),
    ("cycle_navigation", [0, 1, 1, 2, 1, 0], [4], None),
    ("cycle_navigation", [1], [0], None),
    ("cycle_navigation", [2], [1], None),
    ("stack_manipulation", [0, 1, 1, 0, 4, 2, 2], [1, 1, 0, 2, 0, 0, 0, 0], 4),
    ("stack_manipulation", [1, 1, 0, 2, 2, 2], [2, 0, 0, 0, 0, 0, 0], 1),
    ("stack_manipulation", [0], [0, 2], 2),
    ("stack_manipulation", [1], [1, 2], 2),
    ("reverse_string", [0, 1, 1, 0, 1, 0], [0, 1, 0, 1, 1, 0], None),
    ("modular_arithmetic_brackets", [8, 3, 7, 4, 9], [2], None),
    ("modular_arithmetic_brackets", [6, 3], [2], None),
    ("modular_arithmetic_brackets", [3], [3], None),
    ("modular_arithmetic_brackets", [8, 2, 9], [2], None),
    ("modular_arithmetic_brackets", [8, 6, 2, 9], [3], None),
    ("solve_equation", [9, 10, 2], [2], None),
    ("solve_equation", [6, 9, 10, 3], [2], None),
    ("solve_equation", [7, 1, 5, 9, 8, 10, 4], [3], None),
    ("solve_equation", [0], [0], None),
    ("solve_equation", [0, 0], [0], None),
    ("duplicate_string", [1, 0, 1], [1, 0, 1, 1, 0, 1], None),
    ("missing_duplicate_string", [0, 1, 1, 0, 0, 1, 2, 0], [1], None),
    ("missing_duplicate_string", [1, 0, 1, 1, 2, 1, 3], [0], None),
    ("missing_duplicate_string", [1, 0, 0, 1, 1, 0, 2, 1], [0], None),
    ("missing_duplicate_string", [1], [1], None),
    ("odds_first", [0, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0], None),
    ("odds_first", [0, 0, 1, 1, 0, 1, 0, 1], [0, 1, 1, 1, 0, 1, 0, 0], None),
    ("binary_addition", [0, 0, 1, 2, 0, 1, 1, 0, 1], [0, 1, 0, 1, 1, 2, 0, 0, 0, 0], 6),
    (
        "binary_addition",
        [1, 0, 0, 1, 2, 0, 0, 0, 0, 0, 1],
        [1, 0, 0, 1, 0, 1, 2, 0, 0, 0, 0, 0],
        7,
    ),
    ("binary_addition", [0, 1, 0, 0, 1, 2, 1, 0, 1], [1, 1, 1, 0, 1, 2, 0, 0, 0, 0], 6),
    ("binary_addition", [0], [0, 2], 2),
    ("binary_addition", [0, 0], [0, 2, 0], 2),
    ("binary_multiplication", [0, 0, 1, 2, 0, 1, 1, 0, 1], [0, 0, 0, 1, 1, 0, 1, 2, 0], 8),
    (
        "binary_multiplication",
        [1, 0, 0, 1, 2, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 0],
        10,
    ),
    ("binary_multiplication", [0], [2], 1),
    ("binary_multiplication", [0, 0], [0, 2], 2),
    ("binary_multiplication", [0, 1], [0, 2], 2),
    ("compute_sqrt", [1, 0, 0, 1, 0, 1], [1, 1, 0], None),
    ("compute_sqrt", [1, 0, 0, 0, 1, 0], [1, 0, 1], None),
    ("compute_sqrt", [1, 1, 1], [1, 0], None),
    ("compute_sqrt", [1], [1], None),
    ("compute_sqrt", [1, 0], [1], None),
    ("compute_sqrt", [1, 1], [1], None),
    ("bucket_sort", [1, 0, 2, 0, 4, 1, 1, 2], [0, 0, 1, 1, 1, 2, 2, 4], None),
    ("bucket_sort", [4, 2, 1, 3, 0, 2, 2, 1, 4], [0, 1, 1, 2, 2, 2, 3, 4, 4], None),
]


@pytest.mark.parametrize(
    ("name", "inputs", "targets", "mask_len"),
    GOLDEN,
    ids=[f"{g[0]}-{''.join(map(str, g[1]))}" for g in GOLDEN],
)
def test_golden(name, inputs, targets, mask_len):
    task = get_task(name)
    x = np.array([inputs, inputs], dtype=np.int64)  # two rows: labels are row-wise
    got_targets, got_mask = task.targets_for(x)
    assert got_targets.dtype == np.int64 and got_mask.dtype == bool
    assert got_targets.tolist() == [targets, targets]
    k = len(targets)
    expected_mask = [True] * k if mask_len is None else [i < mask_len for i in range(k)]
    assert got_mask.tolist() == [expected_mask, expected_mask]
    assert k == task.output_length(len(inputs)) or name == "modular_arithmetic"


def test_golden_rows_are_independent_within_a_batch():
    task = get_task("binary_addition")
    x = np.array([[0, 0, 1, 2, 0, 1, 1, 0, 1], [0, 1, 0, 0, 1, 2, 1, 0, 1]])
    targets, mask = task.targets_for(x)
    assert targets.tolist() == [[0, 1, 0, 1, 1, 2, 0, 0, 0, 0], [1, 1, 1, 0, 1, 2, 0, 0, 0, 0]]
    assert mask.sum(axis=1).tolist() == [6, 6]


def test_golden_covers_every_task():
    assert {g[0] for g in GOLDEN} == set(ALL)


def test_module_level_labeling_functions_match_methods():
    import importlib

    for name in ALL:
        module = importlib.import_module(f"che_bench.generators.{name}")
        x = get_task(name).sample(np.random.default_rng(0), 4, 9).inputs
        a, b = module.targets_for(x), get_task(name).targets_for(x)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), name


# -- length edge cases, spec §5 -------------------------------------------------------
def _many(name, length, batch=400, seed=0):
    return get_task(name).sample(np.random.default_rng(seed), batch, length)


def test_edge_even_pairs_n1():
    b = _many("even_pairs", 1)
    assert set(b.inputs[:, 0].tolist()) == {0, 1}
    assert (b.targets == 0).all()


@pytest.mark.parametrize("length", [1, 2])
def test_edge_modular_arithmetic_single_digit(length):
    b = _many("modular_arithmetic", length)
    assert b.inputs.shape == (400, 1)
    assert set(b.inputs[:, 0].tolist()) == {0, 1, 2, 3, 4}
    assert (b.targets[:, 0] == b.inputs[:, 0]).all()


def test_edge_modular_arithmetic_even_lengths_shrink():
    task = get_task("modular_arithmetic")
    for n in (2, 4, 40, 500):
        assert task.input_length(n) == n - 1
        assert task.sample(np.random.default_rng(0), 3, n).inputs.shape == (3, n - 1)
    for n in (1, 3, 41):
        assert task.input_length(n) == n
        assert task.sample(np.random.default_rng(0), 3, n).inputs.shape == (3, n)


def test_edge_stack_n1_and_n2():
    b = _many("stack_manipulation", 1)
    assert set(b.inputs[:, 0].tolist()) == {0, 1}
    assert (b.targets[:, 0] == b.inputs[:, 0]).all() and (b.targets[:, 1] == 2).all()
    assert b.mask.all()
    b = _many("stack_manipulation", 2)  # k = 1, one action
    assert set(b.inputs[:, 0].tolist()) == {0, 1}
    assert set(b.inputs[:, 1].tolist()) == {2, 3, 4}


def test_edge_brackets_small_lengths():
    shapes = {1: ("d",), 2: (6, "d"), 3: (8, "d", 9), 4: (8, 6, "d", 9)}
    for n, shape in shapes.items():
        b = _many("modular_arithmetic_brackets", n)
        digits = set()
        for row, target in zip(b.inputs.tolist(), b.targets[:, 0].tolist(), strict=True):
            for tok, want in zip(row, shape, strict=True):
                if want == "d":
                    assert 0 <= tok <= 4
                    digits.add(tok)
                    value = -tok % 5 if 6 in row else tok
                else:
                    assert tok == want
            assert target == value
        assert digits == {0, 1, 2, 3, 4}


def test_edge_solve_equation_degenerate_and_n3():
    for n in (1, 2):
        b = _many("solve_equation", n)
        assert (b.inputs == 0).all() and (b.targets == 0).all()
    b = _many("solve_equation", 3)
    assert (b.inputs[:, 0] == 9).all() and (b.inputs[:, 1] == 10).all()
    assert (b.targets[:, 0] == b.inputs[:, 2]).all()
    assert set(b.targets[:, 0].tolist()) == {0, 1, 2, 3, 4}


def test_edge_missing_duplicate():
    b = _many("missing_duplicate_string", 1)
    assert (b.inputs == 1).all() and (b.targets == 1).all()
    b = _many("missing_duplicate_string", 2)
    rows = {tuple(r) for r in b.inputs.tolist()}
    assert rows == {(2, 0), (2, 1), (0, 2), (1, 2)}
    assert all(t == r[1 - r.index(2)] for r, t in zip(b.inputs.tolist(), b.targets[:, 0]))
    b = _many("missing_duplicate_string", 7)
    assert (b.inputs[:, -1] == 3).all() and ((b.inputs[:, :-1] == 3).sum() == 0)
    b = _many("missing_duplicate_string", 8)
    assert (b.inputs != 3).all()


def test_edge_binary_addition():
    b = _many("binary_addition", 1)
    assert (b.inputs == 0).all() and (b.targets == [0, 2]).all() and b.mask.all()
    b = _many("binary_addition", 2)
    assert {tuple(r) for r in b.inputs.tolist()} == {(0, 0), (1, 0), (0, 1)}
    expected = {(0, 0): [0, 2, 0], (1, 0): [1, 2, 0], (0, 1): [0, 1, 2]}
    for row, target in zip(b.inputs.tolist(), b.targets.tolist(), strict=True):
        assert target == expected[tuple(row)]
    b = _many("binary_addition", 3)  # the separator is always in the middle
    assert (b.inputs[:, 1] == 2).all()
    assert (b.inputs[:, 0] == 1).all() and (b.inputs[:, 2] == 1).all()  # a = b = 1
    assert (b.targets == [0, 1, 2, 0]).all()


def test_edge_binary_multiplication():
    b = _many("binary_multiplication", 1)
    assert (b.inputs == 0).all() and (b.targets == [2]).all() and b.mask.all()
    b = _many("binary_multiplication", 2)
    assert {tuple(r) for r in b.inputs.tolist()} == {(0, 0), (1, 0), (0, 1)}
    assert (b.targets == [0, 2]).all() and b.mask.all()
    b = _many("binary_multiplication", 3)
    assert (b.inputs == [1, 2, 1]).all() and (b.targets == [1, 2, 0]).all()


def test_edge_compute_sqrt():
    b = _many("compute_sqrt", 1)
    assert (b.inputs == 1).all() and (b.targets == 1).all()
    b = _many("compute_sqrt", 2)
    assert {tuple(r) for r in b.inputs.tolist()} == {(0, 1), (1, 0), (1, 1)}
    assert (b.targets == 1).all()


def test_edge_cycle_navigation_n1():
    b = _many("cycle_navigation", 1)
    assert (b.targets[:, 0] == b.inputs[:, 0] - 1 + 5 * (b.inputs[:, 0] == 0)).all()
    assert set(b.inputs[:, 0].tolist()) == {0, 1, 2}


# =====================================================================================
# (b) properties against independent oracles
# =====================================================================================
def _bits_le_to_int(bits):
    return int("".join(map(str, bits[::-1])), 2)


def _int_to_bits_le(v):
    return [int(c) for c in bin(v)[2:][::-1]]


def _terminated(bits, k):
    return bits + [2] + [0] * (k - len(bits) - 1)


def _eval_mod(text, modulus=5):
    assert len(text) == 0 or text.count("(") < 190  # Python's parser nesting limit
    return eval(text, {"__builtins__": {}}) % modulus  # noqa: S307 - digits and + - * ( ) only


def oracle_even_pairs(x, n):
    return [sum(x[i] != x[i + 1] for i in range(len(x) - 1)) % 2]


def oracle_modular_arithmetic(x, n):
    assert len(x) == (n - 1 if n % 2 == 0 else n) and len(x) % 2 == 1
    assert all(t < 5 for t in x[0::2]) and all(5 <= t <= 7 for t in x[1::2])
    return [_eval_mod("".join("01234+-*"[t] for t in x))]


def oracle_parity_check(x, n):
    return [sum(x) % 2]


def oracle_cycle_navigation(x, n):
    position = 0
    for t in x:
        position = (position + {0: -1, 1: 0, 2: 1}[t]) % 5
    return [position]


def oracle_stack_manipulation(x, n):
    stack = []
    i = 0
    while i < len(x) and x[i] in (0, 1):
        stack.append(x[i])
        i += 1
    assert 1 <= i <= max(1, n - 1)  # initial stack of k in 1..N-1 bits
    for t in x[i:]:
        assert t in (2, 3, 4)
        if t == 2:
            if stack:
                stack.pop()
        else:
            stack.append(t - 3)
    return _terminated(stack[::-1], n + 1)


def oracle_reverse_string(x, n):
    return x[::-1]


def _brackets_text(x, symbols="01234+-*()"):
    return "".join(symbols[t] for t in x)


def oracle_modular_arithmetic_brackets(x, n):
    assert 10 not in x
    return [_eval_mod(_brackets_text(x))]


def oracle_solve_equation(x, n):
    if n < 3:
        assert x == [0] * n
        return [0]
    assert x[-2] == 10 and x.count(9) == 1 and x.count(10) == 1 and x[-1] < 5
    lhs = "".join("01234+-()x"[t] for t in x[:-2])
    solutions = [v for v in range(5) if _eval_mod(lhs.replace("x", str(v))) == x[-1]]
    assert len(solutions) == 1
    return solutions


def oracle_duplicate_string(x, n):
    return x + x


def oracle_missing_duplicate_string(x, n):
    if n == 1:
        assert x == [1]
        return [1]
    h = n // 2
    body, pad = x[: 2 * h], x[2 * h :]
    assert pad == ([3] if n % 2 else [])
    assert body.count(2) == 1 and 3 not in body
    j = body.index(2)
    twin = j + h if j < h else j - h
    assert all(body[i] == body[i + h] for i in range(h) if j not in (i, i + h))
    return [body[twin]]


def oracle_odds_first(x, n):
    return [x[i] for i in range(1, n, 2)] + [x[i] for i in range(0, n, 2)]


def _operands(x, n):
    if n <= 2:
        assert 2 not in x
        return _bits_le_to_int(x), 0
    assert x.count(2) == 1
    s = x.index(2)
    a, b = x[:s], x[s + 1 :]
    assert len(a) >= 1 and len(b) >= 1
    return _bits_le_to_int(a), _bits_le_to_int(b)


def oracle_binary_addition(x, n):
    a, b = _operands(x, n)
    if n <= 2:
        assert a <= 2**n - 2
    else:
        assert a >= 1 and b >= 1
    return _terminated(_int_to_bits_le(a + b), n + 1)


def oracle_binary_multiplication(x, n):
    a, b = _operands(x, n)
    if n == 1:
        return [2]
    if n == 2:
        return [0, 2]
    assert a >= 1 and b >= 1
    return _terminated(_int_to_bits_le(a * b), n)


def oracle_compute_sqrt(x, n):
    value = int("".join(map(str, x)), 2)
    assert value >= 1
    k = (n + 1) // 2
    return [int(c) for c in format(math.isqrt(value), f"0{k}b")]


def oracle_bucket_sort(x, n):
    return sorted(x)


ORACLES = {name: globals()[f"oracle_{name}"] for name in ALL}
PROPERTY_LENGTHS = list(range(1, 61)) + [97, 200, 500]


def _check_batch(name, batch, n):
    task = get_task(name)
    level, in_size, out_size, out_len = TABLE[name]
    bsz = batch.inputs.shape[0]
    assert batch.inputs.shape == (bsz, task.input_length(n))
    assert batch.targets.shape == batch.mask.shape == (bsz, out_len(n))
    assert batch.inputs.dtype == np.int64 and batch.targets.dtype == np.int64
    assert batch.mask.dtype == bool
    assert batch.inputs.min() >= 0 and batch.inputs.max() < in_size
    assert batch.targets.min() >= 0 and batch.targets.max() < out_size
    assert batch.mask.any(axis=1).all()
    for x, t, m in zip(
        batch.inputs.tolist(), batch.targets.tolist(), batch.mask.tolist(), strict=True
    ):
        assert t == ORACLES[name](x, n), (name, n, x)
        if name in MASKED:
            first = t.index(2)
            assert m == [i <= first for i in range(len(t))]
        else:
            assert all(m)


@pytest.mark.parametrize("name", ALL)
def test_properties_against_oracles(name):
    rng = np.random.default_rng(1234)
    task = get_task(name)
    for n in PROPERTY_LENGTHS:
        batch = task.sample(rng, 12 if n <= 60 else 4, n)
        _check_batch(name, batch, n)


@pytest.mark.parametrize("name", ALL)
def test_sampled_targets_equal_labeling_function(name):
    """_sample may label while generating (brackets); it must agree with targets_for."""
    rng = np.random.default_rng(99)
    task = get_task(name)
    for n in [*range(1, 41), 300]:
        batch = task.sample(rng, 32, n)
        targets, mask = task.targets_for(batch.inputs)
        assert np.array_equal(targets, batch.targets), (name, n)
        assert np.array_equal(mask, batch.mask), (name, n)


def test_never_emitted_ids_are_absent():
    rng = np.random.default_rng(5)
    for n in range(1, 80):
        assert (get_task("modular_arithmetic").sample(rng, 64, n).inputs != 8).all()
        assert (get_task("modular_arithmetic_brackets").sample(rng, 64, n).inputs != 10).all()
        # solve_equation's "*" does not exist; its ids 7/8 are brackets, 9 is x
        x = get_task("solve_equation").sample(rng, 64, n).inputs
        if n >= 3:
            assert ((x == 9).sum(axis=1) == 1).all() and ((x == 10).sum(axis=1) == 1).all()


def test_binary_multiplication_large_operands():
    """Products well beyond int64 (N = 500) round-trip through Python ints."""
    batch = get_task("binary_multiplication").sample(np.random.default_rng(3), 16, 500)
    for x, t in zip(batch.inputs.tolist(), batch.targets.tolist(), strict=True):
        a, b = _operands(x, 500)
        end = t.index(2)
        assert _bits_le_to_int(t[:end]) == a * b
    assert max(len(_int_to_bits_le(_operands(x, 500)[0])) for x in batch.inputs.tolist()) > 64


@pytest.mark.parametrize("length", [52, 53, 61, 62, 63, 64, 130])
def test_compute_sqrt_near_perfect_squares(length):
    """Where float sqrt rounds up (x = k² - 1 with large k), the root must still be exact."""
    values = []
    for k in (2 ** ((length + 1) // 2) - 1, 2 ** (length // 2) - 3, 3 * 2 ** (length // 2 - 2)):
        values += [v for v in (k * k - 1, k * k, k * k + 1) if 1 <= v < 2**length]
    bits = np.array([[int(c) for c in format(v, f"0{length}b")] for v in values])
    targets, _ = get_task("compute_sqrt").targets_for(bits)
    for v, t in zip(values, targets.tolist(), strict=True):
        assert int("".join(map(str, t)), 2) == math.isqrt(v), v


def test_constructor_params():
    from che_bench.generators.modular_arithmetic_brackets import ModularArithmeticBrackets

    rng = np.random.default_rng(0)
    no_mult = ModularArithmeticBrackets(mult=False)
    for n in range(1, 60):
        assert (no_mult.sample(rng, 32, n).inputs != 7).all()
    mod7 = TASKS.get("modular_arithmetic_brackets")(modulus=7)
    assert (mod7.input_size, mod7.output_size) == (13, 7)
    b = mod7.sample(rng, 64, 31)
    for x, t in zip(b.inputs.tolist(), b.targets[:, 0].tolist(), strict=True):
        assert _eval_mod(_brackets_text(x, "0123456+-*()"), 7) == t
    eq7 = TASKS.get("solve_equation")(modulus=7)
    b = eq7.sample(rng, 64, 25)
    for x, t in zip(b.inputs.tolist(), b.targets[:, 0].tolist(), strict=True):
        lhs = "".join("0123456+-()x"[i] for i in x[:-2])
        assert [v for v in range(7) if _eval_mod(lhs.replace("x", str(v)), 7) == x[-1]] == [t]
    ma7 = TASKS.get("modular_arithmetic")(modulus=7)
    b = ma7.sample(rng, 64, 21)
    for x, t in zip(b.inputs.tolist(), b.targets[:, 0].tolist(), strict=True):
        assert _eval_mod("".join("0123456+-*"[i] for i in x), 7) == t
    dup3 = TASKS.get("duplicate_string")(vocab_size=4, duplication=3)
    b = dup3.sample(rng, 8, 10)
    assert b.targets.shape == (8, 30) and (b.targets == np.tile(b.inputs, 3)).all()
    assert dup3.input_size == dup3.output_size == 4 and b.inputs.max() == 3
    for cls_name, v in [("reverse_string", 3), ("odds_first", 3), ("bucket_sort", 7)]:
        task = TASKS.get(cls_name)(vocab_size=v)
        b = task.sample(rng, 64, 20)
        assert task.input_size == task.output_size == v
        assert set(np.unique(b.inputs).tolist()) == set(range(v))


def test_decode_inputs_is_human_readable():
    rng = np.random.default_rng(0)
    ma = get_task("modular_arithmetic")
    assert ma.decode_inputs(np.array([1, 5, 2, 7, 3])) == "1 + 2 * 3"
    br = get_task("modular_arithmetic_brackets")
    assert br.decode_inputs(np.array([8, 3, 7, 6, 4, 9])) == "( 3 * - 4 )"
    eq = get_task("solve_equation")
    assert eq.decode_inputs(np.array([7, 1, 5, 9, 8, 10, 4])) == "( 1 + x ) = 4"
    st = get_task("stack_manipulation")
    assert st.decode_targets(np.array([1, 0, 2, 0])) == "1 0 $ 0"
    for name in ALL:  # every emitted id has a symbol
        task = get_task(name)
        b = task.sample(rng, 4, 12)
        assert isinstance(task.decode_inputs(b.inputs[0]), str)
        assert isinstance(task.decode_targets(b.targets[0]), str)
        for symbols, size in [
            (task.input_symbols, task.input_size),
            (task.output_symbols, task.output_size),
        ]:
            assert symbols is None or len(symbols) == size


# =====================================================================================
# (c) distributions (fixed seeds, loose bounds)
# =====================================================================================
def _assert_uniform(values, support):
    """Every value in ``support``, all of it hit, and a chi-square far below a gross miss."""
    values = np.asarray(values)
    support = list(support)
    assert set(np.unique(values).tolist()) == set(support)
    counts = np.array([(values == s).sum() for s in support])
    expected = values.size / len(support)
    chi2 = ((counts - expected) ** 2 / expected).sum()
    df = len(support) - 1
    assert chi2 < df + 6 * math.sqrt(2 * df) + 10, (counts.tolist(), chi2)


def test_distribution_missing_duplicate_position():
    b = _many("missing_duplicate_string", 11, batch=20000, seed=1)
    _assert_uniform(np.argmax(b.inputs == 2, axis=1), range(10))
    _assert_uniform(b.targets[:, 0], [0, 1])


def test_distribution_binary_addition_split_and_operands():
    b = _many("binary_addition", 12, batch=20000, seed=2)
    _assert_uniform(np.argmax(b.inputs == 2, axis=1), range(1, 11))
    b = _many("binary_addition", 7, batch=30000, seed=3)  # n = 3: a ~ U{1..7}, b ~ U{1..7}
    rows = b.inputs[b.inputs[:, 3] == 2].tolist()
    _assert_uniform([_bits_le_to_int(r[:3]) for r in rows], range(1, 8))
    _assert_uniform([_bits_le_to_int(r[4:]) for r in rows], range(1, 8))
    b = _many("binary_addition", 2, batch=9000, seed=4)
    _assert_uniform([_bits_le_to_int(r) for r in b.inputs.tolist()], range(3))
    b = _many("binary_multiplication", 6, batch=20000, seed=5)
    _assert_uniform(np.argmax(b.inputs == 2, axis=1), range(1, 5))


def test_distribution_stack_initial_length_and_actions():
    b = _many("stack_manipulation", 10, batch=20000, seed=6)
    k = np.argmax(b.inputs >= 2, axis=1)
    _assert_uniform(k, range(1, 10))
    actions = b.inputs[np.arange(10)[None, :] >= k[:, None]]
    _assert_uniform(actions, [2, 3, 4])
    stack = b.inputs[np.arange(10)[None, :] < k[:, None]]
    _assert_uniform(stack, [0, 1])


def _top_split(x, open_id, close_id):
    """Length a of the left operand of the outermost node, found by scanning depth."""
    depth = 0
    for i, t in enumerate(x):
        depth += (t == open_id) - (t == close_id)
        if depth == 1 and i >= 2 and t in (5, 6, 7) and x[i - 1] not in (open_id, 5, 6, 7):
            return i - 1
    raise AssertionError(x)


def test_distribution_brackets_split_and_ops():
    b = _many("modular_arithmetic_brackets", 12, batch=18000, seed=7)
    splits = [_top_split(r, 8, 9) for r in b.inputs.tolist()]
    _assert_uniform(splits, range(1, 9))
    ops = [r[s + 1] for r, s in zip(b.inputs.tolist(), splits, strict=True)]
    _assert_uniform(ops, [5, 6, 7])
    _assert_uniform(b.inputs[b.inputs < 5], range(5))  # digits (values are not uniform: * 0)
    b = _many("solve_equation", 14, batch=18000, seed=8)  # expr(12) without "*"
    splits = [_top_split(r[:-2], 7, 8) for r in b.inputs.tolist()]
    _assert_uniform(splits, range(1, 9))
    ops = [r[s + 1] for r, s in zip(b.inputs.tolist(), splits, strict=True)]
    _assert_uniform(ops, [5, 6])
    _assert_uniform(b.targets[:, 0], range(5))


def test_distribution_solve_equation_hole_position():
    """For "(d op d)" (N = 7), i ~ U{0..4} scans (cyclically) to the digit at 1 for i in
    {0, 1, 4} and to the digit at 3 for i in {2, 3}."""
    b = _many("solve_equation", 7, batch=20000, seed=9)
    x_at = np.argmax(b.inputs == 9, axis=1)
    assert set(x_at.tolist()) <= {1, 2, 3, 4}
    # expr(5) is "(d op d)" (x at 1 or 3) - no other shape exists for n = 5
    assert set(x_at.tolist()) == {1, 3}
    share_first = (x_at == 1).mean()
    assert abs(share_first - 3 / 5) < 0.02


def test_distribution_sampled_inputs_uniform():
    for name, support in [
        ("even_pairs", [0, 1]),
        ("parity_check", [0, 1]),
        ("cycle_navigation", [0, 1, 2]),
        ("reverse_string", [0, 1]),
        ("duplicate_string", [0, 1]),
        ("odds_first", [0, 1]),
        ("bucket_sort", range(5)),
    ]:
        _assert_uniform(_many(name, 30, batch=500, seed=10).inputs, support)
    b = _many("modular_arithmetic", 31, batch=1000, seed=11)
    _assert_uniform(b.inputs[:, 0::2], range(5))
    _assert_uniform(b.inputs[:, 1::2], [5, 6, 7])


def test_distribution_compute_sqrt_input():
    b = _many("compute_sqrt", 4, batch=15000, seed=12)
    _assert_uniform([int("".join(map(str, r)), 2) for r in b.inputs.tolist()], range(1, 16))


# =====================================================================================
# (d) determinism and RNG hygiene
# =====================================================================================
@pytest.mark.parametrize("name", ALL)
def test_determinism(name):
    task = get_task(name)
    a = task.sample(np.random.default_rng(42), 32, 23)
    b = get_task(name).sample(np.random.default_rng(42), 32, 23)
    c = task.sample(np.random.default_rng(43), 32, 23)
    for field in ("inputs", "targets", "mask"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.inputs, c.inputs)


def test_no_global_random_state_is_used():
    np.random.seed(0)
    random.seed(0)
    np_state = np.random.get_state()[1].copy()
    py_state = random.getstate()
    rng = np.random.default_rng(1)
    for name in ALL:
        for n in (1, 2, 3, 17, 64):
            get_task(name).sample(rng, 8, n)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert random.getstate() == py_state


def test_sample_rejects_bad_arguments():
    task = get_task("parity_check")
    with pytest.raises(TypeError):
        task.sample(np.random.RandomState(0), 2, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        task.sample(np.random.default_rng(0), 2, 0)


# =====================================================================================
# (e) registry and cards
# =====================================================================================
def test_registry_has_exactly_the_15_tasks():
    builtin = [n for n in list_tasks() if TASKS.origin(n) == "che_bench"]  # plugins aside
    assert builtin == ALL
    assert len(ALL) == 15


@pytest.mark.parametrize("name", ALL)
def test_registry_matches_spec_table(name):
    level, in_size, out_size, out_len = TABLE[name]
    task = get_task(name)
    assert task.name == name
    assert task.level == level
    assert (task.input_size, task.output_size) == (in_size, out_size)
    for n in (1, 2, 3, 4, 5, 40, 41, 500):
        assert task.output_length(n) == out_len(n)
    # spec §2: 50% for bit answers (also with a terminator class), 20% for 5 classes
    assert task.chance == pytest.approx(0.2 if out_size == 5 else 0.5)


CARDS = sorted((ROOT / "tasks").glob("*.yaml"))
CARD_KEYS = {"name", "level", "description", "chance", "train_lengths", "test_lengths", "params"}


def test_one_card_per_task():
    assert sorted(p.stem for p in CARDS) == ALL


@pytest.mark.parametrize("path", CARDS, ids=[p.stem for p in CARDS])
def test_card_agrees_with_class(path):
    card = yaml.safe_load(path.read_text())
    assert set(card) == CARD_KEYS
    assert card["name"] == path.stem
    task = get_task(card["name"])
    assert card["level"] == task.level == TABLE[card["name"]][0]
    assert card["chance"] == pytest.approx(task.chance)
    assert card["train_lengths"] == [1, 40] and card["test_lengths"] == [41, 500]
    assert isinstance(card["description"], str) and card["description"] == task.description
    cls = TASKS.get(card["name"])
    signature = inspect.signature(cls)
    accepted = set(signature.parameters)
    assert set(card["params"]) == accepted
    for key, value in card["params"].items():
        assert signature.parameters[key].default == value  # params are the defaults
    built = cls(**card["params"])
    assert (built.input_size, built.output_size) == (task.input_size, task.output_size)
