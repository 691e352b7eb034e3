"""Issue acceptance: `che-bench run --task solve_equation --pe <every encoding>` at smoke size."""

from __future__ import annotations

import pytest

from che_bench.config import resolve
from che_bench.encodings import list_encodings
from che_bench.running.runner import execute

TINY = {"steps": 2, "batch_size": 4, "eval_samples": 2, "eval_batch_size": 2,
        "train_lengths": (1, 8), "test_lengths": (41, 41)}  # fmt: skip


@pytest.mark.parametrize("encoding", list_encodings())
def test_solve_equation_smoke_run(encoding):
    row = execute(resolve("solve_equation", encoding, preset="smoke", **TINY), run_dir=None)
    assert row.status == "ok", row.error
    assert row.encoding == encoding and row.steps == 2
    assert list(row.accuracy_by_length) == ["41"]
    assert 0.0 <= row.score <= 1.0
