"""Every bad input a user can give: one line on stderr, exit 2, no traceback, nothing written.

Each case goes through the real command group (``che_bench.cli.main``) in a fresh folder;
afterwards neither a leaderboard row nor a run directory may exist there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from che_bench.cli import main

RUN = ["run", "--task", "parity_check", "--preset", "smoke", "--leaderboard", "board.jsonl",
       "--run-dir", "runs"]  # fmt: skip
SWEEP = ["sweep", "--task", "parity_check", "--pe", "alibi", "--preset", "smoke",
         "--leaderboard", "board.jsonl", "--run-dir", "runs"]  # fmt: skip
SMOKE_PRESET = "steps: 2\nbatch_size: 4\ntest_lengths: [41, 42]\neval_samples: 2\n"

# (id, files to write first {name: text or bytes}, arguments, words the one line must hold)
CASES: list[tuple[str, dict[str, str | bytes], list[str], str]] = [
    (
        "num_heads 0",
        {"p.yaml": "model: {num_heads: 0}\n"},
        ["--pe", "alibi", "--preset", "p.yaml"],
        "model.num_heads must be an integer >= 1",
    ),
    (
        "dropout abc",
        {"p.yaml": "model: {dropout: abc}\n"},
        ["--pe", "alibi", "--preset", "p.yaml"],
        "model.dropout must be a number in [0, 1)",
    ),
    (
        "non-utf8 preset",
        {"p.yaml": b"steps: \xff\xfe\n"},
        ["--pe", "alibi", "--preset", "p.yaml"],
        "is not UTF-8",
    ),
    (
        "billion laughs",
        {"p.yaml": "a: &a [1, 1]\nb: &b [*a, *a]\nc: [*b, *b]\n"},
        ["--pe", "alibi", "--preset", "p.yaml"],
        "aliases (*name) are not allowed",
    ),
    (
        "duplicate key",
        {"p.yaml": "steps: 2\nsteps: 3\n"},
        ["--pe", "alibi", "--preset", "p.yaml"],
        "duplicate key 'steps'",
    ),
    (
        "steps 10^85",
        {"p.yaml": "steps: 10^85\n"},
        ["--pe", "alibi", "--preset", "p.yaml"],
        "steps must be an integer",
    ),
    (
        "eval_dropout no",
        {"p.yaml": 'eval_dropout: "no"\n'},
        ["--pe", "alibi", "--preset", "p.yaml"],
        "eval_dropout must be true or false",
    ),
    (
        "eval_seed -1",
        {"p.yaml": "eval_seed: -1\n"},
        ["--pe", "alibi", "--preset", "p.yaml"],
        "eval_seed must be an integer >= 0",
    ),
    (
        "d_model -8",
        {"p.yaml": "model: {d_model: -8}\n"},
        ["--pe", "alibi", "--preset", "p.yaml"],
        "model.d_model must be an integer >= 1",
    ),
    (
        "d_model 64.0",
        {"p.yaml": "model: {d_model: 64.0}\n"},
        ["--pe", "alibi", "--preset", "p.yaml"],
        "model.d_model must be an integer",
    ),
    (
        "d_model % heads",
        {"p.yaml": "model: {d_model: 60}\n"},
        ["--pe", "alibi", "--preset", "p.yaml"],
        "must be divisible by model.num_heads",
    ),
    (
        "num_layers 0",
        {"p.yaml": "model: {num_layers: 0}\n"},
        ["--pe", "alibi", "--preset", "p.yaml"],
        "model.num_layers must be an integer >= 1",
    ),
    (
        "num_layers true",
        {"p.yaml": "model: {num_layers: true}\n"},
        ["--pe", "alibi", "--preset", "p.yaml"],
        "model.num_layers must be an integer",
    ),
    (
        "float train lengths",
        {"p.yaml": SMOKE_PRESET + "train_lengths: [1.5, 20]\n"},
        ["--pe", "alibi", "--preset", "p.yaml"],
        "train lengths: expected two integers",
    ),
    ("dapev2 kernel 4", {}, ["--pe", "dapev2-kerple", "--pe-opt", "kernel=4"], "kernel"),
    ("dapev2 kernel 0", {}, ["--pe", "dapev2-kerple", "--pe-opt", "kernel=0"], "kernel"),
    ("dapev2 kernel -3", {}, ["--pe", "dapev2-kerple", "--pe-opt", "kernel=-3"], "kernel"),
    ("dape hidden 0", {}, ["--pe", "dape-kerple", "--pe-opt", "hidden=0"], "hidden"),
    ("dape hidden -5", {}, ["--pe", "dape-kerple", "--pe-opt", "hidden=-5"], "hidden"),
    ("max_length 0", {}, ["--pe", "rand-rope", "--pe-opt", "max_length=0"], "max_length"),
    ("max_length -1", {}, ["--pe", "learned", "--pe-opt", "max_length=-1"], "max_length"),
    (
        "max_length too short",
        {},
        ["--pe", "learned", "--pe-opt", "max_length=30"],
        "supports sequences up to 30 tokens but length 43 needs 44",
    ),
    ("steps 10**12", {}, ["--pe", "alibi", "--steps", str(10**12)], "steps must be at most"),
    ("seeds 0-100000", {}, ["--pe", "alibi", "--seeds", "0-100000"], "at most 1000 seeds"),
    ("seeds 3-1", {}, ["--pe", "alibi", "--seeds", "3-1"], "is empty (LO > HI)"),
    ("lr nan", {}, ["--pe", "alibi", "--lr", "nan"], "is not a finite number"),
    (
        "leaderboard /proc",
        {},
        ["--pe", "alibi", "--leaderboard", "/proc/version"],
        "kernel file system",
    ),
    (
        "leaderboard under a file",
        {},
        ["--pe", "alibi", "--leaderboard", "/etc/passwd/x.jsonl"],
        "is not a directory",
    ),
    (
        "leaderboard fifo",
        {"fifo.jsonl": "FIFO"},
        ["--pe", "alibi", "--leaderboard", "fifo.jsonl"],
        "is not a regular file",
    ),
]
SWEEP_CASES: list[tuple[str, dict[str, str | bytes], list[str], str]] = [
    ("set task_params", {}, ["--set", "task_params={a: 1}"], "has no parameter a"),
    ("set causal maybe", {}, ["--set", "causal=maybe"], "causal must be true or false"),
    ("set eval_seed list", {}, ["--set", "eval_seed=[1,2]"], "eval_seed must be an integer"),
    ("set float lengths", {}, ["--set", "test_lengths=[41.5, 50]"], "expected two integers"),
    ("set model typo", {}, ["--set", "model.widht=32"], "unknown model setting(s): widht"),
    ("set model heads", {}, ["--set", "model.d_model=30"], "must be divisible by model.num_heads"),
    ("set dotted scalar", {}, ["--set", "steps.x=3"], "only model.FIELD or task_params.FIELD"),
    ("cpus-per-run -1", {}, ["--cpus-per-run", "-1"], "'-1' must be > 0"),
    ("gpus-per-run nan", {}, ["--gpus-per-run", "nan"], "is not a finite number"),
    ("seeds too many", {}, ["--seeds", "0-100000"], "at most 1000 seeds"),
    ("non-utf8 sweep", {"s.yaml": b"tasks: [\xff]\n"}, ["s.yaml"], "is not UTF-8"),
]
OTHER_CASES: list[tuple[str, dict[str, str | bytes], list[str], str]] = [
    (
        "sample huge",
        {},
        ["sample", "--task", "reverse_string", "--length", "100000000"],
        "100000000 is not in the range 1<=x<=10000",
    ),
    (
        "check min-drop nan",
        {},
        ["check", "--min-drop", "nan", "--loss-rtol", "nan"],
        "is not a finite number",
    ),
    ("check loss-rtol nan", {}, ["check", "--loss-rtol", "nan"], "is not a finite number"),
    ("check alpha 0", {}, ["check", "--alpha", "0"], "must be > 0"),
    ("check min-loss-rise -1", {}, ["check", "--min-loss-rise", "-1"], "must be >= 0"),
]
ALL = (
    [(i, f, RUN + a, m) for i, f, a, m in CASES]
    + [(i, f, SWEEP + a, m) for i, f, a, m in SWEEP_CASES]
    + OTHER_CASES
)  # fmt: skip


@pytest.mark.parametrize(("files", "args", "message"), [c[1:] for c in ALL],
                         ids=[c[0] for c in ALL])  # fmt: skip
def test_bad_input_is_refused_with_one_line(tmp_path, monkeypatch, files, args, message):
    monkeypatch.chdir(tmp_path)
    for name, content in files.items():
        if content == "FIFO":
            os.mkfifo(name)
        elif isinstance(content, bytes):
            Path(name).write_bytes(content)
        else:
            Path(name).write_text(content)
    before = set(os.listdir(tmp_path))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    assert message in lines[0], lines[0]
    assert set(os.listdir(tmp_path)) == before  # no leaderboard, no run directory
