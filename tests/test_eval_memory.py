"""The evaluation memory budget changes how evaluation runs, never what it returns.

Exactness only (no timing): a budget so tight that every query chunk is one row must give
the same per-length accuracies as an unbounded one, and the same logits up to float32
rounding. The full-size measurement (T = 1,500, 512 samples, peak RSS) is
``benchmarks/bench_eval_memory.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from che_bench.config import resolve
from che_bench.encodings import list_encodings
from che_bench.generators import get_task
from che_bench.running.runner import build_model
from che_bench.seeding import torch_generator
from che_bench.training.evaluate import EvalSpec, evaluate, query_chunk_for

#: Every registered encoding, plugins included: chunking must be exact for all of them.
ENCODINGS = list_encodings()
CPU = torch.device("cpu")
UNBOUNDED = 2**62


def test_query_chunk_bounds() -> None:
    assert query_chunk_for(4, 30, UNBOUNDED) is None
    assert query_chunk_for(4, 30, 1) == 1
    chunks = [query_chunk_for(32, 1500, budget) for budget in (2**26, 2**28, 2**30)]
    assert all(c is not None and 1 <= c < 1500 for c in chunks)
    assert chunks == sorted(chunks)  # more memory, bigger blocks


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_tight_budget_gives_identical_accuracy(encoding: str) -> None:
    config = resolve(
        "duplicate_string",
        encoding,
        preset="smoke",
        eval_samples=10,
        eval_batch_size=4,  # 3 sub-batches, the last one short
        train_lengths=(1, 4),
        test_lengths=(5, 7),
    )
    task = get_task(config.task)
    model = build_model(config)
    assert query_chunk_for(config.eval_batch_size, 3 * 5, 1) == 1
    spec = EvalSpec.from_config(config)
    tight = evaluate(model, task, spec, CPU, max_memory=1)
    unbounded = evaluate(model, task, spec, CPU, max_memory=UNBOUNDED)
    assert tight.accuracy_by_length == unbounded.accuracy_by_length
    assert list(tight.accuracy_by_length) == [5, 6, 7]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_chunked_logits_match(encoding: str) -> None:
    config = resolve("duplicate_string", encoding, preset="smoke")
    task = get_task(config.task)
    model = build_model(config).eval()
    batch = task.sample(np.random.default_rng(0), 3, 9)
    inputs = torch.from_numpy(batch.inputs.copy())
    k = batch.targets.shape[1]
    with torch.no_grad():
        whole = model(inputs, k, generator=torch_generator(CPU, 1, 2), query_chunk=None)
        for chunk in (1, 4, 10):
            chunked = model(inputs, k, generator=torch_generator(CPU, 1, 2), query_chunk=chunk)
            torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-5)
