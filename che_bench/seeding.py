"""Explicit seeding: every random stream of a run derives from its seed, none from globals."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys (stable across platforms and processes)."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def data_rng(seed: int) -> np.random.Generator:
    """The training-data stream of run ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, 0]))


def torch_generator(device: torch.device, *keys: int) -> torch.Generator:
    """A torch.Generator on ``device`` seeded from ``keys`` (dropout, PE noise)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(*keys))
    return generator


@contextlib.contextmanager
def isolated_init_seed(seed: int) -> Iterator[None]:
    """Seed parameter initialisation without touching the caller's global RNG state.

    ``torch.nn.init`` draws from the global generator; forking it makes model
    construction a pure function of ``seed`` while leaving the global state as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, 1))
        yield
