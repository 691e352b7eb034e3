"""Tests of the CHE task generators.

(a) Registry-driven, for every registered task (built-in or plugin, so a new task file is
    tested with nothing else edited): its golden ``examples`` through ``targets_for`` and its
    ``oracle``; random samples against the oracle; shapes, ids and the mask rule;
    determinism and RNG hygiene; symbols; task parameters.
(b) The 15 tasks of the papers (Delétang et al., ICLR 2023, Table 1; binary_multiplication
    from Ruoss et al., ACL 2023): their sizes and levels, the length edge cases of the
    training curriculum (N ~ U{1..40}), non-default parameters, and the distributions.
"""

from __future__ import annotations

import importlib
import inspect
import math
import random
import re
from itertools import groupby

import numpy as np
import pytest

from che_bench.config import RunConfig, resolve
from che_bench.errors import ConfigError
from che_bench.generators import TASKS, build_task, get_task, list_tasks, resolve_task_params
from che_bench.generators._oracle import evaluate
from che_bench.presets import load_card

ALL = list_tasks()
BUILTIN = [n for n in ALL if TASKS.origin(n) == "che_bench"]

# The 15 tasks of the papers: (level, input_size, output_size, output_length(N)).
PAPERS = {
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
#: The ``params`` of the task cards these tasks had before the class became the only source;
#: they are in the config hash of every recorded run, so they must never change.
RECORDED_PARAMS = {
    "bucket_sort": {"vocab_size": 5},
    "duplicate_string": {"vocab_size": 2, "duplication": 2},
    "modular_arithmetic": {"modulus": 5},
    "modular_arithmetic_brackets": {"modulus": 5, "mult": True},
    "odds_first": {"vocab_size": 2},
    "reverse_string": {"vocab_size": 2},
    "solve_equation": {"modulus": 5},
}
PROPERTY_LENGTHS = [*range(1, 61), 97, 200, 500]


# =====================================================================================
# (a) every registered task
# =====================================================================================
@pytest.mark.parametrize("name", ALL)
def test_golden_examples(name):
    """Every example, batched with the others of its length (labels are row-wise)."""
    task = get_task(name)
    assert task.examples, f"{name} has no golden examples"
    by_length = sorted(task.examples, key=lambda e: len(e.inputs))
    for length, group in groupby(by_length, key=lambda e: len(e.inputs)):
        group = list(group)
        assert task.input_length(length) == length, "examples use actual input lengths"
        targets, mask = task.targets_for(np.array([e.inputs for e in group], dtype=np.int64))
        assert targets.dtype == np.int64 and mask.dtype == bool
        assert targets.shape == mask.shape == (len(group), task.output_length(length))
        for example, got_targets, got_mask in zip(group, targets, mask, strict=True):
            assert got_targets.tolist() == list(example.targets), example
            assert got_mask.tolist() == example.expected_mask(), example
            if task.has_oracle:
                assert task.oracle(list(example.inputs)) == list(example.targets), example


@pytest.mark.parametrize("name", ALL)
def test_builtin_tasks_have_an_oracle_and_sit_in_their_level_folder(name):
    cls = TASKS.get(name)
    if TASKS.origin(name) == "che_bench":
        assert cls().has_oracle, f"{name} has no oracle"
        assert cls.__module__.split(".")[:3] == ["che_bench", "generators", cls.level]
    assert cls.level in ("regular", "dcf", "cs")


def _check_batch(task, batch, n):
    """Shapes, dtypes, id ranges, the mask rule, and the oracle row by row."""
    size = batch.inputs.shape[0]
    k = task.output_length(n)
    assert batch.inputs.shape == (size, task.input_length(n))
    assert batch.targets.shape == batch.mask.shape == (size, k)
    assert batch.inputs.dtype == np.int64 and batch.targets.dtype == np.int64
    assert batch.mask.dtype == bool
    assert batch.inputs.min() >= 0 and batch.inputs.max() < task.input_size
    assert batch.targets.min() >= 0 and batch.targets.max() < task.output_size
    if task.terminator is None:
        assert batch.mask.all()
    else:
        is_end = batch.targets == task.terminator
        assert is_end.any(axis=1).all()
        assert np.array_equal(batch.mask, np.arange(k) <= is_end.argmax(axis=1)[:, None])
    if task.has_oracle:
        for x, t in zip(batch.inputs.tolist(), batch.targets.tolist(), strict=True):
            assert t == task.oracle(x), (task.name, n, x)


@pytest.mark.parametrize("name", ALL)
def test_samples_agree_with_the_oracle(name):
    rng = np.random.default_rng(1234)
    task = get_task(name)
    for n in PROPERTY_LENGTHS:
        _check_batch(task, task.sample(rng, 12 if n <= 60 else 4, n), n)


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


@pytest.mark.parametrize("name", ALL)
def test_determinism(name):
    task = get_task(name)
    a = task.sample(np.random.default_rng(42), 32, 23)
    b = get_task(name).sample(np.random.default_rng(42), 32, 23)
    c = task.sample(np.random.default_rng(43), 32, 23)
    for field in ("inputs", "targets", "mask"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.inputs, c.inputs)


@pytest.mark.parametrize("name", ALL)
def test_no_global_random_state_is_used(name):
    np.random.seed(0)
    random.seed(0)
    np_state = np.random.get_state()[1].copy()
    py_state = random.getstate()
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 17, 64):
        get_task(name).sample(rng, 8, n)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert random.getstate() == py_state


@pytest.mark.parametrize("name", ALL)
def test_every_emitted_id_has_a_symbol(name):
    task = get_task(name)
    b = task.sample(np.random.default_rng(0), 4, 12)
    assert isinstance(task.decode_inputs(b.inputs[0]), str)
    assert isinstance(task.decode_targets(b.targets[0]), str)
    for symbols, size in [(task.input_symbols, task.input_size),
                          (task.output_symbols, task.output_size)]:  # fmt: skip
        assert symbols is None or len(symbols) == size


@pytest.mark.parametrize("name", ALL)
def test_task_params_are_the_constructor_defaults(name):
    cls = TASKS.get(name)
    params = resolve_task_params(name)
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    assert params == defaults
    task = build_task(name, params)
    assert (task.input_size, task.output_size) == (cls().input_size, cls().output_size)
    card = load_card(name)
    assert card["params"] == params and card["level"] == cls.level
    assert card["description"] == cls.description and card["chance"] == task.chance
    assert (card["train_lengths"], card["test_lengths"]) == ([1, 40], [41, 500])
    config = resolve(name, "nope", preset="paper")
    assert config.task_params == params
    assert (config.train_lengths, config.test_lengths) == (cls.train_lengths, cls.test_lengths)


# =====================================================================================
# (b) the 15 tasks of the papers
# =====================================================================================
def test_registry_contains_the_15_tasks_of_the_papers():
    assert set(PAPERS) <= set(BUILTIN)
    assert len(PAPERS) == 15


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_registry_matches_the_papers(name):
    level, in_size, out_size, out_len = PAPERS[name]
    task = get_task(name)
    assert task.name == name
    assert task.level == level
    assert (task.input_size, task.output_size) == (in_size, out_size)
    for n in (1, 2, 3, 4, 5, 40, 41, 500):
        assert task.output_length(n) == out_len(n)
    # the random accuracy the papers quote: 50% for bit answers (also with a terminator
    # class), 20% for 5 classes
    assert task.chance == pytest.approx(0.2 if out_size == 5 else 0.5)
    assert (task.train_lengths, task.test_lengths) == ((1, 40), (41, 500))
    assert resolve_task_params(name) == RECORDED_PARAMS.get(name, {})


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_module_level_labeling_functions_match_methods(name):
    module = importlib.import_module(TASKS.get(name).__module__)
    x = get_task(name).sample(np.random.default_rng(0), 4, 9).inputs
    a, b = module.targets_for(x), get_task(name).targets_for(x)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), name


def test_task_params_reach_the_task_and_the_hash():
    config = resolve("duplicate_string", "nope", preset="smoke", task_params={"duplication": 3})
    assert config.task_params == {"vocab_size": 2, "duplication": 3}
    default = resolve("duplicate_string", "nope", preset="smoke")
    assert config.config_hash != default.config_hash
    rebuilt = RunConfig.from_dict(config.to_dict())
    task = get_task(rebuilt.task, **rebuilt.task_params)
    assert task.output_length(5) == 15
    same = resolve("duplicate_string", "nope", preset="smoke", task_params={"duplication": 2})
    assert same.config_hash == default.config_hash  # naming a default changes nothing


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("solve_equation", {"mod": 7}, "'solve_equation' has no parameter mod; valid: modulus"),
        ("parity_check", {"vocab_size": 3}, "has no parameter vocab_size; it takes none"),
        ("solve_equation", {"modulus": "7"}, "parameter modulus must be int, got '7' (str)"),
        ("modular_arithmetic_brackets", {"mult": 1}, "parameter mult must be bool, got 1"),
        ("bucket_sort", {"vocab_size": 2.0}, "parameter vocab_size must be int, got 2.0"),
        ("bucket_sort", {"vocab_size": 0}, "vocab_size must be >= 1, got 0"),
    ],
)
def test_bad_task_params_are_one_line_errors(name, params, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        resolve(name, "nope", preset="smoke", task_params=params)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        get_task(name, **params)


# -- length edge cases of the training curriculum --------------------------------------
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


# -- specific properties and non-default parameters ---------------------------------
def _bits_le_to_int(bits):
    return int("".join(map(str, bits[::-1])), 2)


def _int_to_bits_le(v):
    return [int(c) for c in bin(v)[2:][::-1]]


def _operands(x, n):
    s = x.index(2)
    return _bits_le_to_int(x[:s]), _bits_le_to_int(x[s + 1 :])


def _eval_mod(text, modulus=5):
    assert text.count("(") < 190  # Python's parser nesting limit
    return eval(text, {"__builtins__": {}}) % modulus  # noqa: S307 - digits and + - * ( ) only


def _brackets_text(x, symbols="01234+-*()"):
    return "".join(symbols[t] for t in x)


def test_oracle_evaluator_agrees_with_python():
    """The oracles' plain evaluator, itself checked against Python's arithmetic."""
    rng = np.random.default_rng(8)
    for name, symbols in [("modular_arithmetic_brackets", "01234+-*()"),
                          ("modular_arithmetic", "01234+-*")]:  # fmt: skip
        for n in (1, 2, 5, 9, 30, 101):
            for x in get_task(name).sample(rng, 16, n).inputs.tolist():
                tokens = [t if t < 5 else symbols[t] for t in x]
                assert evaluate(tokens, 5) == _eval_mod(_brackets_text(x, symbols))
    with pytest.raises(ValueError, match="malformed input"):
        evaluate([1, "+"], 5)


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
    from che_bench.generators.dcf.modular_arithmetic_brackets import ModularArithmeticBrackets

    rng = np.random.default_rng(0)
    no_mult = ModularArithmeticBrackets(mult=False)
    for n in range(1, 60):
        assert (no_mult.sample(rng, 32, n).inputs != 7).all()
    mod7 = TASKS.get("modular_arithmetic_brackets")(modulus=7)
    assert (mod7.input_size, mod7.output_size) == (13, 7)
    b = mod7.sample(rng, 64, 31)
    for x, t in zip(b.inputs.tolist(), b.targets[:, 0].tolist(), strict=True):
        assert _eval_mod(_brackets_text(x, "0123456+-*()"), 7) == t
        assert mod7.oracle(x) == [t]
    eq7 = TASKS.get("solve_equation")(modulus=7)
    b = eq7.sample(rng, 64, 25)
    for x, t in zip(b.inputs.tolist(), b.targets[:, 0].tolist(), strict=True):
        lhs = "".join("0123456+-()x"[i] for i in x[:-2])
        assert [v for v in range(7) if _eval_mod(lhs.replace("x", str(v)), 7) == x[-1]] == [t]
        assert eq7.oracle(x) == [t]
    ma7 = TASKS.get("modular_arithmetic")(modulus=7)
    b = ma7.sample(rng, 64, 21)
    for x, t in zip(b.inputs.tolist(), b.targets[:, 0].tolist(), strict=True):
        assert _eval_mod("".join("0123456+-*"[i] for i in x), 7) == t
        assert ma7.oracle(x) == [t]
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
    ma = get_task("modular_arithmetic")
    assert ma.decode_inputs(np.array([1, 5, 2, 7, 3])) == "1 + 2 * 3"
    br = get_task("modular_arithmetic_brackets")
    assert br.decode_inputs(np.array([8, 3, 7, 6, 4, 9])) == "( 3 * - 4 )"
    eq = get_task("solve_equation")
    assert eq.decode_inputs(np.array([7, 1, 5, 9, 8, 10, 4])) == "( 1 + x ) = 4"
    st = get_task("stack_manipulation")
    assert st.decode_targets(np.array([1, 0, 2, 0])) == "1 0 $ 0"


def test_sample_rejects_bad_arguments():
    task = get_task("parity_check")
    with pytest.raises(TypeError):
        task.sample(np.random.RandomState(0), 2, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        task.sample(np.random.default_rng(0), 2, 0)


# -- distributions (fixed seeds, loose bounds) ----------------------------------------
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
