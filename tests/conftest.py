"""Shared test setup: small thread count (CI has 2 cores) and no stray plugins' side effects."""

import os

import pytest
import torch

# Under pytest-xdist (`pytest -n 2`, as CI runs it) each of the two workers gets one core.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


@pytest.fixture
def one_torch_thread():
    """In-process runs use one thread, like the pool's workers (fast on a busy machine):
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")`` in a module."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
