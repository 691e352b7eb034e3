"""The Slurm executor, run through submitit's LocalExecutor: real job subprocesses, no Slurm.

Each job is a fresh Python process (submitit pickles the call, runs it, pickles the record
back), so these tests check what a cluster would see: one row per run written by the
parent, resume, failed and killed jobs recorded, cancelled jobs gone, one-line errors.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import submitit
from click.testing import CliRunner
from test_sweep import (  # noqa: F401 - failing_encodings is a fixture
    TINY,
    failing_encodings,
    keys,
    register_test_encodings,
    spec,
)

from che_bench.cli import main
from che_bench.errors import CheBenchError, ConfigError
from che_bench.results.leaderboard import read_rows, verify
from che_bench.running.claims import pid_alive
from che_bench.running.executors import make_executor
from che_bench.running.slurm import CLUSTER_ENV, SlurmExecutor, parse_slurm_time
from che_bench.running.sweep import expand, run_sweep

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GRID = ["--task", "parity_check", "--pe", "nope", "--pe", "alibi", "--preset", "smoke"]
GRID += [f"--set={k}={v}" for k, v in TINY.items()]


@pytest.fixture
def jobs_import_tests(monkeypatch):
    """Jobs run in a fresh process: let them import test_sweep's encodings by name."""
    path = [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, path)))


def sweep(tmp_path: Path, *args: str):
    board, runs = tmp_path / "board.jsonl", tmp_path / "runs"
    argv = ["sweep", *GRID, "--leaderboard", str(board), "--run-dir", str(runs), *args]
    return CliRunner().invoke(main, argv)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("90", 90), ("4:00:00", 240), ("0:30:01", 31), ("1-12", 2160), ("2-0:10:00", 2890)],
)
def test_slurm_time_is_minutes_or_h_mm_ss(text, minutes):
    assert parse_slurm_time(text) == minutes


@pytest.mark.parametrize("text", ["4:00", "abc", "0", "1h", "-5"])
def test_a_bad_slurm_time_is_one_line_error(text):
    with pytest.raises(ConfigError, match="--slurm-time"):
        parse_slurm_time(text)


def test_auto_device_is_settled_on_the_driver_from_the_gpu_request():
    assert SlurmExecutor("auto", gpus_per_run=1).device == "cuda"
    assert SlurmExecutor("auto").device == SlurmExecutor("auto", gpus_per_run=0).device == "cpu"
    assert SlurmExecutor("cuda").gpus == 1
    with pytest.raises(ConfigError, match="needs --gpus-per-run 1 or more"):
        SlurmExecutor("cuda", gpus_per_run=0)
    with pytest.raises(ConfigError, match="whole number"):
        SlurmExecutor("auto", gpus_per_run=0.5)


def test_cli_sweep_on_slurm_jobs_writes_each_row_once_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv(CLUSTER_ENV, "local")
    first = sweep(tmp_path, "--executor", "slurm", "--jobs", "2", "--slurm-time", "5")
    assert first.exit_code == 0, first.output
    assert "2 to run on submitit's local cluster" in first.output
    assert "2 ok, 0 failed" in first.output
    rows = read_rows(tmp_path / "board.jsonl").rows
    configs = expand(spec(encodings=["nope", "alibi"]))
    assert keys(rows) == Counter(c.run_key for c in configs)
    assert all(r.status == "ok" and r.device.startswith("cpu") for r in rows)
    results = sorted((tmp_path / "runs" / "slurm").glob("*/*_result.pkl"))
    assert len(results) == 2  # each run was its own job, which returned the record
    again = sweep(tmp_path, "--executor", "slurm", "--jobs", "2")
    assert again.exit_code == 0, again.output
    assert "2 already ok" in again.output and "0 to run" in again.output
    assert len(read_rows(tmp_path / "board.jsonl").rows) == 2
    assert sorted((tmp_path / "runs" / "slurm").glob("*/*_result.pkl")) == results


@pytest.mark.usefixtures("failing_encodings", "jobs_import_tests")
def test_raising_and_killed_jobs_become_failed_rows_and_the_sweep_goes_on(tmp_path, monkeypatch):
    """test-broken raises in its job; test-crash kills its job's process (os._exit), so the
    job ends with no result. At most two jobs are in flight: the third config is taken from
    the lazy iterable only once a job has finished."""
    monkeypatch.setattr(submitit.Job, "_results_timeout_s", 1)  # no shared-FS grace period
    board = tmp_path / "board.jsonl"
    configs = expand(spec(encodings=["test-crash", "test-broken", "nope"]))
    executor = SlurmExecutor("cpu", tmp_path / "runs", jobs=2, time_min=5, cluster="local",
                             initializer=register_test_encodings)  # fmt: skip
    in_flight: list[int] = []
    seen: list[str] = []
    original = executor.map_unordered

    def counted(source):
        def tap():
            for config in source:
                in_flight.append(len(in_flight) - len(seen))
                yield config

        for record in original(tap()):
            seen.append(record.run_key)
            yield record

    monkeypatch.setattr(executor, "map_unordered", counted)
    result = run_sweep(configs, executor, board)
    # jobs in flight when each config was taken: 0, 1, then 1 or 0 (one or both of the first
    # two finished by the same poll) — never 2, which would be a third job beside two
    assert in_flight[:2] == [0, 1] and in_flight[2] in (0, 1), in_flight
    rows = read_rows(board).rows
    assert keys(rows) == Counter(c.run_key for c in configs) and verify(board).ok
    status = {r.encoding: (r.status, r.error) for r in rows}
    assert status["nope"] == ("ok", None)
    assert status["test-broken"] == ("failed", "RuntimeError: broken on purpose")
    assert status["test-crash"][0] == "failed"
    assert status["test-crash"][1].startswith("UncompletedJobError: slurm job ")
    assert "ended without a result" in status["test-crash"][1]
    assert len(result.failed) == 2
    assert not list(Path(f"{board}.claims").glob("*-s*"))


def job_processes(marker: str) -> list[int]:
    """Live processes whose command line names ``marker`` (the jobs' folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid = int(cmdline.parent.name)
        if marker in text and pid_alive(pid):
            found.append(pid)
    return found


def test_an_interrupted_sweep_cancels_its_running_jobs(tmp_path):
    folder = tmp_path / "slurm"
    executor = SlurmExecutor("cpu", None, jobs=2, time_min=5, cluster="local", folder=folder)
    (long_run,) = expand(spec(encodings=["nope"], overrides={**TINY, "steps": 100_000}))

    def configs():
        yield long_run
        deadline = time.monotonic() + 60
        while len(job_processes(str(folder))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # submitit's job controller, then the job's own process
        assert len(job_processes(str(folder))) == 2, "the job never started"
        raise KeyboardInterrupt  # Ctrl-C while the first job runs

    with pytest.raises(KeyboardInterrupt):
        list(executor.map_unordered(configs()))
    deadline = time.monotonic() + 30
    while job_processes(str(folder)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job_processes(str(folder)) == []
    assert not list(folder.glob("*/*_result.pkl"))


def test_missing_submitit_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # makes `import submitit` fail
    with pytest.raises(CheBenchError, match=r"pip install 'che-bench\[slurm\]'"):
        make_executor("slurm")
    result = sweep(tmp_path, "--executor", "slurm")
    assert result.exit_code == 2
    assert "pip install 'che-bench[slurm]'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_slurm_options_with_another_executor_are_one_line_errors(tmp_path):
    result = sweep(tmp_path, "--executor", "local", "--slurm-partition", "gpu")
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == "error: --slurm-partition applies only to --executor slurm, not local"
    )


def test_dry_run_plans_a_gpu_sweep_without_submitting(tmp_path, monkeypatch):
    monkeypatch.delenv(CLUSTER_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here, as on a laptop
    args = ["--executor", "slurm", "--slurm-partition", "gpu", "--slurm-time", "4:00:00"]
    result = sweep(tmp_path, *args, "--gpus-per-run", "1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "2 to run on Slurm (partition gpu), device cuda, 1 GPU / 1 CPU per run" in result.output
    assert "240 min per job" in result.output and "estimated cost" in result.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "board.jsonl").exists()
    # without --dry-run, the missing sbatch is one line and nothing stays claimed
    result = sweep(tmp_path, *args)
    assert result.exit_code == 2
    assert "needs Slurm's sbatch on PATH" in result.output
    assert not list(Path(f"{tmp_path / 'board.jsonl'}.claims").glob("*-s*"))
