"""Fuzz the argument parsing: any input gives a value or a CheBenchError, never a crash."""

from __future__ import annotations

import warnings

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from che_bench.cli import main
from che_bench.cli._common import parse_pe_options
from che_bench.config import parse_range, resolve
from che_bench.encodings import get_encoding
from che_bench.errors import CheBenchError
from che_bench.util import MAX_SEEDS, parse_seeds, parse_size

FAST = settings(max_examples=150, deadline=None)
text = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)


@FAST
@given(text)
def test_parse_seeds_returns_non_negative_ints_or_a_user_error(raw):
    try:
        seeds = parse_seeds(raw)
    except CheBenchError:
        return
    assert seeds and all(isinstance(s, int) and s >= 0 for s in seeds)


@FAST
@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_parse_seeds_ranges_are_inclusive_and_bounded(lo, hi):
    if lo <= hi < lo + MAX_SEEDS:
        assert parse_seeds(f"{lo}-{hi}") == list(range(lo, hi + 1))
    else:  # an empty range (LO > HI) or more than MAX_SEEDS seeds: a one-line user error
        with pytest.raises(CheBenchError, match="empty|at most"):
            parse_seeds(f"{lo}-{hi}")


@FAST
@given(text)
@example("NAN")
@example("inf")
@example("-infGB")
@example("0.5")
@example("1e400")
def test_parse_size_is_positive_bytes_or_a_user_error(raw):
    try:
        size = parse_size(raw)
    except CheBenchError:
        return
    assert isinstance(size, int) and size > 0


@FAST
@given(st.one_of(text, st.lists(st.one_of(st.integers(-5, 3000), text), max_size=3)))
def test_parse_range_validates(raw):
    try:
        lo, hi = parse_range(raw, "lengths")
    except CheBenchError:
        return
    assert 1 <= lo <= hi


@FAST
@given(st.lists(text, max_size=3))
def test_pe_options_parse(pairs):
    try:
        options = parse_pe_options(tuple(pairs))
    except CheBenchError:
        return
    assert all(key and key == key.strip() for key in options)


@FAST
@given(st.sampled_from(["rand-rope", "dapev2-kerple", "dape-alibi", "fire", "cope"]), text, text)
def test_encoding_options_are_validated(name, key, value):
    entry = get_encoding(name)
    try:
        resolved = entry.resolve_options({key: value})
    except CheBenchError:
        return
    assert set(resolved) == set(entry.options)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(-3, 2500), st.integers(-3, 2500), st.integers(-3, 2500), st.integers(-3, 2500),
    st.integers(-2, 300), st.floats(allow_nan=True, allow_infinity=True),
)  # fmt: skip
def test_resolve_accepts_valid_configs_and_rejects_the_rest(a, b, c, d, steps, lr):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            config = resolve("parity_check", "alibi", preset="smoke", train_lengths=(a, b),
                             test_lengths=(c, d), steps=steps, lr=lr)  # fmt: skip
        except CheBenchError:
            return
    assert 1 <= config.train_lengths[0] <= config.train_lengths[1]
    assert 1 <= config.test_lengths[0] <= config.test_lengths[1]
    assert config.steps >= 1 and 0 < config.lr < float("inf")


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["even_pairs", "solve_equation", "binary_addition", "stack_manipulation"]),
    st.lists(st.sampled_from(["--length", "--count", "--seed", "-n", "7", "-1", "x", "0", "3"]),
             max_size=6),
)  # fmt: skip
def test_sample_command_never_tracebacks(task, extra):
    result = CliRunner().invoke(main, ["sample", "--task", task, *extra])
    assert result.exit_code in (0, 2), result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
