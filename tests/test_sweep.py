"""Sweeps: grid expansion, resume, one writer, failures recorded, Ctrl-C, both executors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from che_bench.encodings import ENCODINGS, Encoding, register_encoding
from che_bench.errors import CheBenchError, ConfigError, UnknownNameError
from che_bench.results.leaderboard import read_rows, verify
from che_bench.running.executors import WORKER_DIED, InlineExecutor, LocalExecutor, RayExecutor
from che_bench.running.sweep import SweepSpec, expand, load_sweep, pending, run_sweep

ROOT = Path(__file__).resolve().parents[1]
#: The smoke preset shrunk further: each run takes well under a second.
TINY = {"steps": 3, "batch_size": 8, "train_lengths": [1, 8], "test_lengths": [41, 42],
        "eval_samples": 8, "eval_batch_size": 8}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def spec(**kwargs) -> SweepSpec:
    base = {"tasks": ["parity_check"], "preset": "smoke", "overrides": dict(TINY)}
    return SweepSpec(**{**base, **kwargs})


# -- encodings that fail on purpose (registered by a fixture and in each worker) --------------
class Broken(Encoding):
    """Raises in the forward pass."""

    def qk(self, layer, ctx, q, k):
        raise RuntimeError("broken on purpose")


class Crashing(Encoding):
    """Kills its worker process in the forward pass (like a segfault or the OOM killer)."""

    def qk(self, layer, ctx, q, k):
        os._exit(3)


TEST_ENCODINGS = {"test-broken": Broken, "test-crash": Crashing}


def register_test_encodings() -> None:
    for name, cls in TEST_ENCODINGS.items():
        if name not in ENCODINGS:
            register_encoding(name)(cls)


@pytest.fixture
def failing_encodings():
    register_test_encodings()
    yield
    for name in TEST_ENCODINGS:
        ENCODINGS.remove(name)


def keys(rows) -> Counter:
    return Counter(r.run_key for r in rows)


# -- grid expansion ------------------------------------------------------------------------
def test_grid_expands_globs_in_order_and_dedups():
    configs = expand(spec(encodings=["nope", "rand-*", "rand-rope"], seeds=[0, 1], lrs=[1e-3]))
    names = list(dict.fromkeys(c.encoding for c in configs))
    assert names[0] == "nope" and names.count("rand-rope") == 1
    assert all(n == "nope" or n.startswith("rand-") for n in names)
    assert len(configs) == len(names) * 2 == len({c.run_key for c in configs})
    assert [c.seed for c in configs[:2]] == [0, 1]
    assert all(c.steps == 3 and c.preset == "smoke" and c.lr == 1e-3 for c in configs)


def test_encoding_options_go_only_to_encodings_that_have_them():
    configs = expand(spec(encodings=["nope", "rand-rope"], encoding_options={"max_length": 999}))
    by_name = {c.encoding: c for c in configs}
    assert by_name["rand-rope"].encoding_options["max_length"] == 999
    assert by_name["nope"].encoding_options == {}
    with pytest.raises(ConfigError, match="no selected encoding has option 'max_lenght'"):
        expand(spec(encodings=["nope", "rand-rope"], encoding_options={"max_lenght": 9}))


def test_a_file_option_that_the_selected_encodings_lack_is_a_warning_not_an_error():
    """`sweep cpu-repro-bucket --pe kerple` failed: the file's rand-relative option
    (lookup) reached no selected encoding, which was an error."""
    with pytest.warns(UserWarning, match="no selected encoding has option 'lookup'; ignored"):
        configs = expand(spec(encodings=["kerple"], encoding_options={"lookup": ["intended"]}))
    assert [c.encoding_options for c in configs] == [configs[0].encoding_options]
    assert "lookup" not in configs[0].encoding_options


def test_a_list_of_option_values_is_a_grid_axis_for_encodings_that_declare_it():
    grid = spec(encodings=["alibi", "rand-relative"], seeds=[0, 1],
                encoding_options={"lookup": ["intended", "released"]})  # fmt: skip
    configs = expand(grid)
    lookups = [(c.encoding, c.encoding_options.get("lookup"), c.seed) for c in configs]
    assert lookups == [
        ("alibi", None, 0), ("alibi", None, 1),
        ("rand-relative", "intended", 0), ("rand-relative", "intended", 1),
        ("rand-relative", "released", 0), ("rand-relative", "released", 1),
    ]  # fmt: skip
    assert len({c.run_key for c in configs}) == 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encodings": ["dpe*"]}, "no encoding matches 'dpe*'"),
        ({"encodings": ["alibj"]}, "did you mean 'alibi'"),
        ({"encodings": ["nope"], "tasks": ["*strng*"]}, "no task matches '*strng*'"),
        ({"encodings": []}, "no encodings given"),
    ],
)
def test_bad_names_are_one_line_errors(kwargs, message):
    with pytest.raises((ConfigError, UnknownNameError), match=message.replace("*", r"\*")):
        expand(spec(**kwargs))


def test_sweep_file_is_validated_with_file_and_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("tasks: [parity_check]\nencodings: [nope]\nseed: 3\n")
    with pytest.raises(ConfigError, match=r"s\.yaml:3: unknown key 'seed'"):
        load_sweep(path)
    path.write_text("tasks: [parity_check]\noverrides:\n  steps: 2\n  stpes: 3\n")
    with pytest.raises(ConfigError, match=r"s\.yaml:4: unknown setting 'stpes'"):
        load_sweep(path)
    path.write_text("tasks: [parity_check\nencodings: nope\n")
    with pytest.raises(ConfigError, match=r"s\.yaml:\d+: malformed YAML"):
        load_sweep(path)
    path.write_text("tasks: [parity_check]\nencodings: [nope]\nseeds: 0-2\nlrs: [1e-3]\n")
    loaded = load_sweep(path)
    assert loaded.seeds == [0, 1, 2] and loaded.lrs == [1e-3]  # YAML reads 1e-3 as a string


def test_example_sweep_file_is_valid():
    example = load_sweep(ROOT / "sweeps" / "example.yaml")
    assert len(expand(example)) == 12 and example.preset == "smoke"


# -- running ---------------------------------------------------------------------------------
def test_failures_are_recorded_and_the_sweep_goes_on(tmp_path, failing_encodings):
    """A raising run and a worker-killing run both become failed rows; the others finish.

    test-crash runs first, beside a healthy run that becomes a suspect when the pool breaks:
    the suspects are re-run one at a time, so only test-crash is recorded as failed.
    """
    board = tmp_path / "board.jsonl"
    configs = expand(spec(encodings=["test-crash", "nope", "test-broken"], seeds=[0, 1]))
    executor = LocalExecutor(2, "cpu", tmp_path / "runs", initializer=register_test_encodings)
    result = run_sweep(configs, executor, board)
    rows = read_rows(board).rows
    assert keys(rows) == Counter(c.run_key for c in configs)  # each run exactly once
    status = {(r.encoding, r.seed): (r.status, r.error) for r in rows}
    assert status[("nope", 0)][0] == status[("nope", 1)][0] == "ok"
    assert status[("test-broken", 0)] == ("failed", "RuntimeError: broken on purpose")
    assert status[("test-crash", 1)] == ("failed", WORKER_DIED)
    assert len(result.failed) == 4 and verify(board).ok


def test_cli_sweep_exits_nonzero_with_a_summary(tmp_path, failing_encodings):
    from che_bench.cli import main

    board = tmp_path / "board.jsonl"
    args = ["sweep", "--task", "parity_check", "--pe", "nope", "--pe", "test-broken",
            "--preset", "smoke", "--executor", "inline", "--leaderboard", str(board),
            "--run-dir", str(tmp_path / "runs")]  # fmt: skip
    args += [f"--set={k}={v}" for k, v in TINY.items()]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "1 ok, 1 failed" in result.output
    assert "FAILED   parity_check × test-broken" in result.output
    assert "RuntimeError: broken on purpose" in result.output
    assert [r.status for r in read_rows(board).rows] == ["ok", "failed"]


def che_bench(*args: str, cwd: Path, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "che_bench.cli", *args], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen,
    )  # fmt: skip


def write_sweep(path: Path, seeds: str) -> Path:
    lines = ["tasks: [parity_check]", "encodings: [nope, alibi]", f"seeds: {seeds}",
             "preset: smoke", f"overrides: {json.dumps(TINY)}", "jobs: 2"]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_sweep_runs_the_grid_once_and_resumes(tmp_path):
    board = tmp_path / "board.jsonl"
    sweep_file = write_sweep(tmp_path / "s.yaml", "0-1")
    first = che_bench("sweep", str(sweep_file), "--leaderboard", str(board), cwd=tmp_path)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert "4 runs (1 tasks × 2 encodings × 1 lr × 2 seeds); 0 already ok" in out
    assert len(re.findall(r"^\[\d/4\] ok ", out, re.M)) == 4 and "4 ok, 0 failed" in out
    rows = read_rows(board).rows
    expected = {c.run_key for c in expand(load_sweep(sweep_file))}
    assert keys(rows) == Counter(expected)
    # a larger grid resumes: only the two new seeds' runs happen
    second = che_bench("sweep", str(write_sweep(sweep_file, "0-2")), "--leaderboard", str(board),
                       "--executor", "inline", cwd=tmp_path)  # fmt: skip
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert "4 already ok" in out and "2 to run" in out and "2 ok, 0 failed" in out
    rows = read_rows(board).rows
    assert keys(rows) == Counter({c.run_key for c in expand(load_sweep(sweep_file))})
    assert not any((tmp_path / "runs").glob("*/checkpoint.pt"))


def test_ctrl_c_stops_cleanly_and_a_rerun_completes(tmp_path):
    board = tmp_path / "board.jsonl"
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text(
        "tasks: [parity_check, reverse_string]\nencodings: [nope, rope, alibi]\nseeds: 0-1\n"
        f"preset: smoke\noverrides: {json.dumps({**TINY, 'steps': 20})}\njobs: 2\n"
    )
    proc = che_bench("sweep", str(sweep_file), "--leaderboard", str(board), cwd=tmp_path,
                     start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(read_rows(board).rows) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole process group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted:" in out and "run the same command again to resume" in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    done = read_rows(board).rows
    assert 2 <= len(done) < 12 and verify(board).ok
    assert not list(Path(f"{board}.claims").glob("*-s*"))  # the runs cut short are unclaimed
    rerun = che_bench("sweep", str(sweep_file), "--leaderboard", str(board), cwd=tmp_path)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert keys(read_rows(board).rows) == Counter(
        {c.run_key for c in expand(load_sweep(sweep_file))}
    )


def test_pending_skips_only_ok_runs(tmp_path):
    """A killed sweep left some rows: ok ones are skipped, failed ones are run again."""
    import dataclasses

    from che_bench.results.leaderboard import append_rows
    from che_bench.results.record import RunRecord

    board = tmp_path / "board.jsonl"
    configs = expand(spec(encodings=["nope"], seeds=[0, 1, 2]))
    rows = [RunRecord.begin(c, "cpu:x86_64") for c in configs[:2]]
    rows[0] = dataclasses.replace(rows[0], status="ok", score=0.5)
    append_rows(board, rows)  # rows[1] keeps status "failed"
    assert [c.run_key for c in pending(configs, board)] == [c.run_key for c in configs[1:]]
    assert pending(configs, tmp_path / "absent.jsonl") == configs


@pytest.mark.ray
def test_ray_executor_runs_a_sweep(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    path = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, path)))  # for Ray's workers
    board = tmp_path / "board.jsonl"
    configs = expand(spec(encodings=["nope", "alibi"], seeds=[0, 1]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        executor = RayExecutor("cpu", None, cpus_per_run=1)
        assert executor.gpus == 0
        result = run_sweep(configs, executor, board)
    finally:
        ray.shutdown()
    assert keys(read_rows(board).rows) == Counter(c.run_key for c in configs)
    assert [r.status for r in result.rows] == ["ok"] * 4
    # same seed, same config: the Ray rows equal the in-process ones
    inline = {r.run_key: r.score for r in run_sweep(configs[:1], InlineExecutor("cpu"), None).rows}
    assert {r.run_key: r.score for r in result.rows if r.run_key in inline} == inline


def test_missing_ray_is_one_line_error(monkeypatch):
    from che_bench.running.executors import make_executor

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(CheBenchError, match=r"install che-bench\[ray\]"):
        make_executor("ray")
