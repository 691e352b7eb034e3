"""Dotted overrides (``--set model.d_model=32``) reach the model's fields, in sweeps and files."""

from __future__ import annotations

import re

import pytest

from che_bench.cli._common import parse_sets
from che_bench.config import resolve
from che_bench.errors import ConfigError
from che_bench.running.sweep import SweepSpec, expand, load_sweep


def test_dotted_sets_merge_field_by_field_into_the_model():
    overrides = parse_sets(["model.d_model=32", "model.num_heads=4", "steps=3"])
    assert overrides == {"model": {"d_model": 32, "num_heads": 4}, "steps": 3}
    spec = SweepSpec(tasks=["parity_check"], encodings=["alibi"], preset="smoke",
                     overrides=overrides)  # fmt: skip
    (config,) = expand(spec)
    assert (config.model.d_model, config.model.num_heads, config.steps) == (32, 4, 3)
    default = resolve("parity_check", "alibi", preset="smoke")
    assert config.model.num_layers == default.model.num_layers


def test_a_set_keeps_the_model_fields_a_sweep_file_set(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("tasks: [parity_check]\nencodings: [nope]\npreset: smoke\n"
                    "overrides: {model: {d_model: 32, num_heads: 4}}\n")  # fmt: skip
    spec = load_sweep(path)
    parse_sets(["model.num_layers=2"], into=spec.overrides)
    (config,) = expand(spec)
    assert (config.model.d_model, config.model.num_heads, config.model.num_layers) == (32, 4, 2)


def test_the_model_changes_the_run_key():
    small = resolve("parity_check", "nope", preset="smoke", model={"d_model": 32})
    assert small.run_key != resolve("parity_check", "nope", preset="smoke").run_key


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"width": 3}, "unknown model setting(s): width"),
        ([1, 2], "model must be a mapping"),
        ({"dropout": 1.5}, "model.dropout must be a number in [0, 1)"),
    ],
)
def test_bad_model_overrides_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve("parity_check", "nope", preset="smoke", model=override)


def test_run_takes_dotted_sets_and_an_explicit_option_wins(tmp_path):
    import json

    from click.testing import CliRunner

    from che_bench.cli import main

    board = tmp_path / "lb.jsonl"
    args = ["run", "--task", "parity_check", "--pe", "nope", "--preset", "smoke", "--device",
            "cpu", "--set", "model.d_model=32", "--set", "model.num_heads=4", "--set",
            "steps=5", "--steps", "3", "--set", "eval_samples=4", "--test-lengths", "41-42",
            "--leaderboard", str(board), "--run-dir", str(tmp_path / "runs")]  # fmt: skip
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in board.read_text().splitlines()]
    assert (row["config"]["model"]["d_model"], row["config"]["model"]["num_heads"]) == (32, 4)
    assert row["steps"] == 3 and row["config"]["eval_samples"] == 4
