"""`--log tensorboard|wandb`: what each back end wrote, read back from its own files; the
logger is not part of the run's hash, row or report cell; a failing or missing logger is one
line, never a failed run; a sweep logs in its worker processes."""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from che_bench.cli import main
from che_bench.config import resolve
from che_bench.errors import CheBenchError, ConfigError
from che_bench.results.stats import aggregate
from che_bench.running import loggers
from che_bench.running.curves import CURVE_FILE, read_curve
from che_bench.running.runner import execute

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"steps": 6, "log_every": 2, "batch_size": 8, "train_lengths": (1, 8),
        "test_lengths": (41, 42), "eval_samples": 4, "eval_batch_size": 4,
        "train_eval_samples": 4}  # fmt: skip


def tiny(**changes):
    return resolve("parity_check", "alibi", preset="smoke", **{**TINY, **changes})


def cli(*args: str, **kwargs):
    return CliRunner().invoke(main, list(args), **kwargs)


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard reads from the event files in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {t: [(e.step, e.value) for e in events.Scalars(t)] for t in events.Tags()["scalars"]}


def test_the_logger_changes_no_hash_no_row_and_no_report_cell(tmp_path):
    plain, logged = tiny(), tiny(log="tensorboard", log_dir=str(tmp_path))
    assert logged.run_key == plain.run_key and logged.to_dict() == plain.to_dict()
    rows = [execute(tiny(seed=0, log="tensorboard"), device="cpu", run_dir=tmp_path),
            execute(tiny(seed=1), device="cpu", run_dir=tmp_path)]  # fmt: skip
    assert all("log" not in r.config and "log_dir" not in r.config for r in rows)
    (group,) = aggregate(rows)
    (cell,) = group.cells
    assert cell.headline.n == 2  # both seeds in one cell


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match="log must be one of tensorboard, wandb"):
        tiny(log="mlflow")
    with pytest.raises(ConfigError, match="log_dir is set but no logger"):
        tiny(log_dir="tb")


def test_tensorboard_gets_the_curve_the_evaluation_and_the_config(tmp_path):
    config = tiny(log="tensorboard")
    row = execute(config, device="cpu", run_dir=tmp_path)
    curve = read_curve(tmp_path / row.run_key / CURVE_FILE)
    logged = scalars(tmp_path / row.run_key / "tensorboard")
    assert [s for s, _ in logged["train/loss"]] == [p["step"] for p in curve] == [2, 4, 6]
    assert [v for _, v in logged["train/loss"]] == pytest.approx([p["loss"] for p in curve])
    assert [v for _, v in logged["train/accuracy"]] == pytest.approx([p["accuracy"] for p in curve])
    by_length = {**row.train_accuracy_by_length, **row.accuracy_by_length}
    assert dict(logged["eval/accuracy"]) == pytest.approx({int(k): v for k, v in by_length.items()})
    assert logged["eval/score"] == [(6, pytest.approx(row.score))]
    assert logged["hparams/score"][0][1] == pytest.approx(row.score)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / row.run_key / "tensorboard"))
    events.Reload()
    text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text.strip("`\n")) == config.to_dict()


def test_log_dir_puts_tensorboard_in_a_folder_per_run(tmp_path):
    row = execute(tiny(log="tensorboard", log_dir=str(tmp_path / "tb")), device="cpu",
                  run_dir=tmp_path / "runs")  # fmt: skip
    assert [s for s, _ in scalars(tmp_path / "tb" / row.run_key)["train/loss"]] == [2, 4, 6]
    assert not (tmp_path / "runs" / row.run_key / "tensorboard").exists()


def wandb_records(folder: Path, timeout_s: float = 30.0) -> list:
    """The records of the one offline W&B run under ``folder``, once W&B's service has
    written them all (up to its ``exit`` record; it writes after ``run.finish()`` returns)."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = read_wandb_file(folder)
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        assert time.monotonic() < deadline, "W&B wrote no exit record"
        time.sleep(0.2)


def read_wandb_file(folder: Path) -> list:
    """The records in the ``.wandb`` file under ``folder``: a LevelDB-style log (7-byte file
    header; 32 KiB blocks of records, each a 7-byte header of CRC, length and type: 1 full,
    2 first, 3 middle, 4 last) of W&B's ``Record`` protobufs."""
    from wandb.proto import wandb_internal_pb2

    (path,) = folder.glob("wandb/offline-run-*/run-*.wandb")
    data, position, pending, records = path.read_bytes(), 7, b"", []
    assert data[:4] == b":W&B"
    while position + 7 <= len(data):
        if 32768 - position % 32768 < 7:  # a block's tail too short for a header: padding
            position += 32768 - position % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def item_key(item) -> str:
    """A history or summary item's name (W&B may store ``a/b`` as the nested key a, b)."""
    return item.key or "/".join(item.nested_key)


def test_wandb_offline_gets_the_curve_the_evaluation_the_config_and_the_scores(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-default"))
    config = tiny(log="wandb", log_dir=str(tmp_path / "wb"))
    row = execute(config, device="cpu", run_dir=tmp_path / "runs")
    assert row.status == "ok"
    records = wandb_records(tmp_path / "wb")
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.display_name == row.run_key and run.run_group == "parity_check/alibi"
    logged_config = {i.key: json.loads(i.value_json) for i in run.config.update}
    assert logged_config["encoding"] == "alibi" and logged_config["steps"] == 6
    history = [
        {item_key(i): json.loads(i.value_json) for i in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    train = [h for h in history if "train/loss" in h]
    curve = read_curve(tmp_path / "runs" / row.run_key / CURVE_FILE)
    assert [(h["_step"], h["train/loss"]) for h in train] == [(p["step"], p["loss"]) for p in curve]
    evaluated = {h["eval/length"]: h["eval/accuracy"] for h in history if "eval/length" in h}
    by_length = {**row.train_accuracy_by_length, **row.accuracy_by_length}
    assert evaluated == {int(k): v for k, v in by_length.items()}
    summary = {
        item_key(i): json.loads(i.value_json)
        for r in records
        if r.WhichOneof("record_type") == "summary"
        for i in r.summary.update
    }
    assert summary["score"] == row.score and summary["status"] == "ok"


def test_a_logger_that_raises_is_a_warning_and_the_run_still_ok(tmp_path, monkeypatch):
    def broken(self, progress):
        raise RuntimeError("tracker is down")

    monkeypatch.setattr(loggers.TensorBoardLogger, "step", broken)
    with pytest.warns(loggers.LoggerWarning, match="--log tensorboard failed.*tracker is down"):
        row = execute(tiny(log="tensorboard"), device="cpu", run_dir=tmp_path)
    assert row.status == "ok" and row.score is not None
    assert [p["step"] for p in read_curve(tmp_path / row.run_key / CURVE_FILE)] == [2, 4, 6]


@pytest.mark.parametrize(
    ("backend", "module"), [("wandb", "wandb"), ("tensorboard", "tensorboard")]
)
def test_a_missing_package_is_one_line_naming_the_extra(tmp_path, monkeypatch, backend, module):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(CheBenchError, match=rf"install che-bench\[{backend}\]"):
        loggers.require(backend)
    result = cli("run", "--task", "parity_check", "--pe", "alibi", "--preset", "smoke",
                 "--log", backend, "--leaderboard", str(tmp_path / "lb.jsonl"))  # fmt: skip
    assert result.exit_code == 2 and not (tmp_path / "lb.jsonl").exists()
    assert f"pip install 'che-bench[{backend}]'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_sweep_logs_in_its_worker_processes(tmp_path):
    board, runs = tmp_path / "lb.jsonl", tmp_path / "runs"
    result = cli("sweep", "--task", "parity_check", "--pe", "alibi", "--seeds", "0-1",
                 "--preset", "smoke", "--steps", "4", "--set", "log_every=2",
                 "--set", "batch_size=8", "--set", "train_lengths=1-8",
                 "--set", "test_lengths=41-42", "--set", "eval_samples=4",
                 "--jobs", "2", "--device", "cpu", "--log", "tensorboard",
                 "--log-dir", str(tmp_path / "tb"), "--leaderboard", str(board),
                 "--run-dir", str(runs), catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in board.read_text().splitlines()]
    assert sorted(r["seed"] for r in rows) == [0, 1]
    for row in rows:
        assert [s for s, _ in scalars(tmp_path / "tb" / row["run_key"])["train/loss"]] == [2, 4]
        assert [p["step"] for p in read_curve(runs / row["run_key"] / CURVE_FILE)] == [2, 4]
