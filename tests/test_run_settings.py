"""The precision / deterministic / compile settings: validated, recorded, hashed as promised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from che_bench.config import RunConfig, resolve
from che_bench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_stored_rows_keep_their_hash() -> None:
    """Rows written before these settings existed hash to the same run_key when read back."""
    for line in (ROOT / "leaderboards/baseline-smoke.jsonl").open():
        row = json.loads(line)
        config = RunConfig.from_dict(row["config"])
        assert config.precision == "fp32" and config.deterministic and not config.compile
        assert config.config_hash == row["config_hash"]


def test_precision_is_hashed_speed_settings_are_not() -> None:
    base = resolve("parity_check", "alibi", preset="smoke")
    bf16 = resolve("parity_check", "alibi", preset="smoke", precision="bf16")
    fast = resolve("parity_check", "alibi", preset="smoke", compile=True, deterministic=False)
    assert bf16.precision == "bf16" and bf16.config_hash != base.config_hash
    assert fast.config_hash == base.config_hash
    assert fast.to_dict()["compile"] is True and fast.to_dict()["deterministic"] is False


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("precision", "fp16", "precision must be one of fp32, bf16"),
        ("deterministic", "yes", "deterministic must be true or false"),
        ("compile", 1, "compile must be true or false"),
    ],
)
def test_bad_values_are_one_line_errors(setting: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve("parity_check", "alibi", preset="smoke", **{setting: value})


def test_a_bf16_run_trains_under_autocast() -> None:
    from che_bench.running.runner import execute

    fp32 = execute(resolve("parity_check", "alibi", preset="smoke"), device="cpu", run_dir=None)
    bf16 = resolve("parity_check", "alibi", preset="smoke", precision="bf16")
    row = execute(bf16, device="cpu", run_dir=None)
    assert row.status == "ok" and row.config["precision"] == "bf16"
    assert row.final_loss != fp32.final_loss  # the arithmetic did change
    assert abs(row.final_loss - fp32.final_loss) < 0.1 * fp32.final_loss
