"""Hypothesis fuzzing of every registered task over lengths 1..2000 and batch sizes 1..64.

Every batch must be well formed: shapes and dtypes as ``output_length`` says, ids in range,
a mask that is all-true or, for a task with a ``terminator``, the prefix through its first
occurrence (never empty) followed by zero padding, and labels that ``targets_for``
reproduces from the inputs alone.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from che_bench.generators import get_task, list_tasks

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("name", list_tasks())
@FUZZ
@given(
    length=st.one_of(st.integers(1, 64), st.integers(1, 2000)),
    batch_size=st.integers(1, 64),
    seed=st.integers(0, 2**63 - 1),
)
def test_fuzz_batches_are_well_formed(name, length, batch_size, seed):
    task = get_task(name)
    batch = task.sample(np.random.default_rng(seed), batch_size, length)
    k = task.output_length(length)
    assert batch.inputs.shape == (batch_size, task.input_length(length))
    assert batch.targets.shape == (batch_size, k) and batch.mask.shape == (batch_size, k)
    assert batch.inputs.dtype == np.int64 and batch.targets.dtype == np.int64
    assert batch.mask.dtype == bool
    assert batch.inputs.min() >= 0 and batch.inputs.max() < task.input_size
    assert batch.targets.min() >= 0 and batch.targets.max() < task.output_size
    assert batch.mask.any(axis=1).all()
    if task.terminator is not None:
        is_end = batch.targets == task.terminator
        assert is_end.any(axis=1).all()
        first = is_end.argmax(axis=1)
        assert np.array_equal(batch.mask, np.arange(k)[None, :] <= first[:, None])
        after = np.where(batch.mask, 0, batch.targets)
        assert (after == 0).all()  # zero padding after the terminator
    else:
        assert batch.mask.all()
    targets, mask = task.targets_for(batch.inputs)
    assert np.array_equal(targets, batch.targets) and np.array_equal(mask, batch.mask)
