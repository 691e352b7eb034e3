"""A hostile or broken plugin is one warning: it never hangs, ends or re-codes a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PLUGINS = {
    "exiter": "import sys\nsys.exit(0)\n",
    "sleeper": "import time\ntime.sleep(3600)\n",
    "interrupter": "raise KeyboardInterrupt\n",
    "late": (
        "import time\nfrom che_bench.encodings import register_encoding\n"
        "from che_bench.encodings.alibi import ALiBi\n"
        "def register():\n    time.sleep(3)\n    register_encoding('late-alibi')(ALiBi)\n"
    ),
}


def install(root: Path, names: list[str]) -> dict[str, str]:
    """Installed-looking distributions (dist-info on PYTHONPATH) for the named plugins."""
    for name in names:
        (root / f"{name}_plugin.py").write_text(PLUGINS[name])
        target = f"{name}_plugin:register" if "def register" in PLUGINS[name] else f"{name}_plugin"
        info = root / f"{name}_plugin-0.1.dist-info"
        info.mkdir()
        info.joinpath("METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}-plugin\nVersion: 0.1\n"
        )
        info.joinpath("entry_points.txt").write_text(f"[che_bench.encodings]\n{name} = {target}\n")
    path = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "CHE_BENCH_PLUGIN_TIMEOUT": "1"}


def che_bench(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "che_bench.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def warnings_of(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning:")]


def test_exiting_sleeping_and_interrupting_plugins_are_skipped_with_one_warning_each(tmp_path):
    env = install(tmp_path, ["exiter", "sleeper", "interrupter", "late"])
    started = time.monotonic()
    result = che_bench("list", "encodings", "*alibi*", cwd=tmp_path, env=env)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "alibi" in result.stdout and "dape-alibi" in result.stdout
    assert "late-alibi" not in result.stdout  # registered after its time ran out: ignored
    found = warnings_of(result)
    assert len(found) == 4, result.stderr
    assert any("'exiter'" in w and "SystemExit" in w for w in found)
    assert any("'interrupter'" in w and "KeyboardInterrupt" in w for w in found)
    assert sum("did not finish loading within 1 s" in w for w in found) == 2
    assert elapsed < 60  # two 1 s limits plus start-up, not the sleeper's hour


def test_a_plugin_cannot_turn_a_failing_check_into_a_pass(tmp_path):
    """The gate still fails (exit 1) on a regressed slice with an exiting plugin installed."""
    rows = [json.loads(line) for line in (ROOT / "leaderboards/baseline-smoke.jsonl").open()]
    row = next(r for r in rows if (r["task"], r["encoding"]) == ("parity_check", "alibi"))
    row["score"] = 1.0
    row["accuracy_by_length"] = {k: 1.0 for k in row["accuracy_by_length"]}
    baseline = tmp_path / "baseline.jsonl"
    baseline.write_text(json.dumps(row) + "\n")
    env = install(tmp_path, ["exiter"])
    result = che_bench("check", "--baseline", str(baseline), "--executor", "inline",
                       cwd=tmp_path, env=env)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "regressed" in result.stdout + result.stderr
    assert any("'exiter'" in w and "SystemExit" in w for w in warnings_of(result))


@pytest.mark.parametrize("raw", ["abc", "nan", "-1", "0"])
def test_a_bad_timeout_setting_warns_and_uses_the_default(raw, monkeypatch):
    from che_bench.registry import DEFAULT_PLUGIN_TIMEOUT_S, plugin_timeout

    monkeypatch.setenv("CHE_BENCH_PLUGIN_TIMEOUT", raw)
    with pytest.warns(UserWarning, match="CHE_BENCH_PLUGIN_TIMEOUT"):
        assert plugin_timeout() == DEFAULT_PLUGIN_TIMEOUT_S
