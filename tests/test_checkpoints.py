"""A checkpoint is never lost to a bad moment: a damaged one is moved aside, a failed run
keeps its own, one from another device type is refused and kept, stale temp files go."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from che_bench.config import resolve
from che_bench.errors import ConfigError
from che_bench.generators import get_task
from che_bench.running import runner
from che_bench.running.runner import RunHooks, build_model, execute
from che_bench.training.checkpoints import CheckpointWarning
from che_bench.training.train import Trainer

SETTINGS = {
    "steps": 6,
    "checkpoint_every": 4,
    "batch_size": 8,
    "eval_samples": 4,
    "test_lengths": (41, 42),
}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def tiny(**overrides):
    return resolve("parity_check", "alibi", preset="smoke", **{**SETTINGS, **overrides})


@pytest.fixture(scope="module")
def straight():
    return execute(tiny(), device="cpu", run_dir=None)


def checkpoint_of(config, run_dir, device="cpu"):
    """Train ``config`` with checkpoints under ``run_dir``; the one left at step 4."""
    execute(config, device=device, run_dir=run_dir)
    path = run_dir / config.run_key / "checkpoint.pt"
    assert path.is_file()
    return path


DAMAGE = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "garbage": lambda p: p.write_bytes(os.urandom(4096)),
    "empty": lambda p: p.write_bytes(b""),
    "not-a-dict": lambda p: torch.save([1, 2, 3], p),
    "missing-keys": lambda p: torch.save({"config_hash": tiny().config_hash, "step": 4}, p),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_is_moved_aside_and_the_run_restarts(tmp_path, straight, damage):
    config = tiny()
    path = checkpoint_of(config, tmp_path)
    DAMAGE[damage](path)
    damaged = path.read_bytes()
    resumed: list[int] = []
    with pytest.warns(CheckpointWarning, match=r"unreadable .*moved it to checkpoint\.pt\.corrupt"):
        row = execute(
            config, device="cpu", run_dir=tmp_path, hooks=RunHooks(on_resume=resumed.append)
        )
    assert resumed == []  # started from step 0 ...
    assert row.status == "ok", row.error  # ... and trained exactly as an uninterrupted run
    assert (row.final_loss, row.score) == (straight.final_loss, straight.score)
    assert (path.parent / "checkpoint.pt.corrupt").read_bytes() == damaged


def test_a_failed_run_keeps_its_checkpoint_and_a_retry_resumes(tmp_path, monkeypatch, straight):
    config = tiny()
    board = tmp_path / "board.jsonl"

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(runner, "evaluate", out_of_memory)
    failed = runner.run(config, leaderboard=board, device="cpu", run_dir=tmp_path)
    assert failed.status == "failed" and "out of memory" in failed.error
    path = tmp_path / config.run_key / "checkpoint.pt"
    assert path.is_file()  # kept: the user can retry

    monkeypatch.undo()
    resumed: list[int] = []
    hooks = RunHooks(on_resume=resumed.append)
    retried = runner.run(config, leaderboard=board, device="cpu", run_dir=tmp_path, hooks=hooks)
    assert resumed == [4] and retried.status == "ok"
    assert (retried.final_loss, retried.score) == (straight.final_loss, straight.score)
    assert not path.exists()  # an ok run's checkpoint goes
    assert [json.loads(line)["status"] for line in board.read_text().splitlines()] == [
        "failed",
        "ok",
    ]


def as_if_written_on_cuda(path, *, legacy: bool) -> None:
    """Rewrite ``path`` as a CUDA run would have: a 16-byte generator state (seed, offset)
    and the device type, or (``legacy``) no device type, as before it was stored."""
    state = torch.load(path, weights_only=False)
    assert state.get("device", "cpu") == "cpu"
    state["generator"] = torch.zeros(16, dtype=torch.uint8)
    if legacy:
        state.pop("device", None)
    else:
        state["device"] = "cuda"
    torch.save(state, path)


@pytest.mark.parametrize("legacy", [False, True], ids=["device-stored", "legacy"])
def test_a_checkpoint_from_another_device_is_refused_and_kept(tmp_path, legacy):
    config = tiny()
    path = checkpoint_of(config, tmp_path)
    as_if_written_on_cuda(path, legacy=legacy)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="written on cuda, not cpu: resume it with --device cuda"):
        runner.run(config, leaderboard=tmp_path / "board.jsonl", device="cpu", run_dir=tmp_path)
    assert path.read_bytes() == before
    assert not (tmp_path / "board.jsonl").exists()


def test_the_cli_says_how_to_resume_on_the_right_device_and_exits_2(tmp_path):
    config = tiny()
    path = checkpoint_of(config, tmp_path / "runs")
    as_if_written_on_cuda(path, legacy=False)
    args = ["run", "--task", "parity_check", "--pe", "alibi", "--preset", "smoke"]
    for key, value in SETTINGS.items():
        text = "-".join(map(str, value)) if isinstance(value, tuple) else str(value)
        args += [f"--{key.replace('_', '-')}", text]
    result = subprocess.run(
        [sys.executable, "-m", "che_bench.cli", *args, "--device", "cpu",
         "--run-dir", str(tmp_path / "runs"), "--leaderboard", str(tmp_path / "board.jsonl")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "resume it with --device cuda" in errors[0]
    assert "Traceback" not in result.stderr
    assert path.is_file()


@pytest.mark.parametrize("device", DEVICES)
def test_resumed_adam_step_counters_stay_on_the_cpu(tmp_path, device):
    """Adam keeps ``step`` on the CPU (unless capturable/fused); a resume must too. On CUDA a
    checkpoint loaded onto the GPU would put them there (one host sync per parameter)."""
    config = tiny()
    checkpoint_of(config, tmp_path, device)
    torch_device = torch.device(device)
    model = build_model(config, torch_device)
    trainer = Trainer(model, get_task(config.task), config, torch_device,
                      tmp_path / config.run_key / "checkpoint.pt")  # fmt: skip
    assert trainer.try_resume() == 4
    states = list(trainer.optimizer.state.values())
    assert states and all(s["step"].device.type == "cpu" for s in states)
    assert all(s["exp_avg"].device.type == device for s in states)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_real_cuda_checkpoint_is_refused_on_cpu(tmp_path):
    config = tiny()
    path = checkpoint_of(config, tmp_path, "cuda")
    with pytest.raises(ConfigError, match="--device cuda"):
        execute(config, device="cpu", run_dir=tmp_path)
    assert path.is_file()


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path, straight):
    config = tiny()
    folder = tmp_path / config.run_key
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        (folder / f"checkpoint.tmp{dead.pid}").write_bytes(b"half a checkpoint")
        (folder / f"checkpoint.tmp{alive.pid}").write_bytes(b"being written")
        row = execute(config, device="cpu", run_dir=tmp_path)
        assert not (folder / f"checkpoint.tmp{dead.pid}").exists()
        assert (folder / f"checkpoint.tmp{alive.pid}").exists()  # its writer may finish
    finally:
        alive.kill()
        alive.wait()
    assert (row.status, row.final_loss) == ("ok", straight.final_loss)
