"""Explicit seeding: every random stream of a run derives from its seed, none from globals.
Imports torch only where a torch generator is made (``export`` and the generators need none)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys (stable across platforms and processes)."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def data_rng(seed: int) -> np.random.Generator:
    """The training-data stream of run ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, 0]))


def eval_rng(seed: int, length: int) -> np.random.Generator:
    """The samples of test length ``length`` under evaluation seed ``seed``: one stream per
    (seed, length), so a length's samples do not depend on which other lengths are scored."""
    return np.random.default_rng(np.random.SeedSequence([seed, length]))


def torch_generator(device: torch.device, *keys: int) -> torch.Generator:
    """A torch.Generator on ``device`` seeded from ``keys`` (dropout, PE noise)."""
    import torch

    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(*keys))
    return generator


@contextlib.contextmanager
def isolated_init_seed(seed: int) -> Iterator[None]:
    """Seed parameter initialisation without touching the caller's global RNG state.

    ``torch.nn.init`` draws from the global generator; forking it makes model
    construction a pure function of ``seed`` while leaving the global state as it was.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, 1))
        yield
