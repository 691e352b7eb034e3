"""The interface every CHE task shares (Delétang et al., ICLR 2023).

A task is a pure sampler: ``task.sample(rng, batch_size, length)`` returns a
:class:`Batch` of numpy arrays and never touches torch or global random state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from che_bench.errors import ConfigError

Level = Literal["regular", "dcf", "cs"]


@dataclass(frozen=True)
class Batch:
    """One batch of a single input length.

    inputs:  int64 [B, N] token ids in ``[0, input_size)``
    targets: int64 [B, K] class ids in ``[0, output_size)``, K = ``output_length(N)``
    mask:    bool  [B, K] which target positions count for accuracy (never for the loss)
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray


class Task(ABC):
    """A CHE task. Subclasses set the class attributes and implement ``_sample``."""

    name: ClassVar[str]
    level: ClassVar[Level]
    input_size: ClassVar[int]
    output_size: ClassVar[int]
    description: ClassVar[str] = ""
    #: Ids decoded for humans by ``che-bench sample``; defaults to the id itself.
    input_symbols: ClassVar[tuple[str, ...] | None] = None
    output_symbols: ClassVar[tuple[str, ...] | None] = None

    @abstractmethod
    def output_length(self, length: int) -> int:
        """Number of output positions K for an input of requested length N."""

    def input_length(self, length: int) -> int:
        """Actual input length for a requested length (modular_arithmetic shortens even N)."""
        return length

    @property
    def chance(self) -> float:
        """Random-guess accuracy the papers quote: 1 / output_size."""
        return 1.0 / self.output_size

    def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        """Draw ``batch_size`` samples of requested input length ``length`` using only ``rng``."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator")
        if int(batch_size) < 1 or int(length) < 1:
            raise ConfigError(
                f"{self.name}: batch_size and length must be >= 1, got {batch_size} and {length}"
            )
        batch = self._sample(rng, int(batch_size), int(length))
        k = self.output_length(int(length))
        expected = (int(batch_size), k)
        assert batch.targets.shape == expected, (batch.targets.shape, expected)
        assert batch.mask.shape == expected, (batch.mask.shape, expected)
        return batch

    @abstractmethod
    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        """Task-specific sampling; ``length`` and ``batch_size`` are validated ints >= 1."""

    def targets_for(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic labels ``(targets, mask)`` of well-formed ``inputs`` [B, N].

        ``N`` is the actual input length (for modular_arithmetic, an odd number). Every
        built-in task implements this; golden tests go through it.
        """
        raise NotImplementedError(f"{self.name} does not label arbitrary inputs")

    # -- helpers shared by tasks -----------------------------------------------------
    @staticmethod
    def full_mask(targets: np.ndarray) -> np.ndarray:
        return np.ones(targets.shape, dtype=bool)

    @staticmethod
    def mask_through_first(targets: np.ndarray, token: int = 2) -> np.ndarray:
        """Mask positions 0..(index of the first ``token``) inclusive, row by row."""
        hit = targets == token
        first = np.where(hit.any(axis=1), hit.argmax(axis=1), targets.shape[1] - 1)
        return np.arange(targets.shape[1])[None, :] <= first[:, None]

    def decode_inputs(self, ids: np.ndarray) -> str:
        return _decode(ids, self.input_symbols)

    def decode_targets(self, ids: np.ndarray) -> str:
        return _decode(ids, self.output_symbols)

    def __repr__(self) -> str:
        return f"<task {self.name} ({self.level})>"


class TerminatedBitsTask(Task):
    """A task whose answer is bits followed by a terminator ``$`` (id 2)."""

    output_size = 3
    output_symbols = ("0", "1", "$")

    @property
    def chance(self) -> float:
        """50%, as the papers quote (spec §2): the answer is bits, 2 only terminates it."""
        return 0.5


class UniformInputTask(Task):
    """Inputs are N tokens uniform on ``0..input_size-1``, labelled by ``targets_for``."""

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        inputs = rng.integers(0, self.input_size, size=(batch_size, length))
        return Batch(inputs, *self.targets_for(inputs))


class SameVocabularyTask(UniformInputTask):
    """A string transduction over one vocabulary of ``vocab_size`` tokens, output as long as
    the input."""

    def __init__(self, vocab_size: int = 2) -> None:
        self.vocab_size = int(vocab_size)
        if self.vocab_size < 1:
            raise ConfigError(f"{self.name}: vocab_size must be >= 1, got {vocab_size}")
        self.input_size = self.output_size = self.vocab_size

    def output_length(self, length: int) -> int:
        return length


def _decode(ids: np.ndarray, symbols: tuple[str, ...] | None) -> str:
    if symbols is None:
        return "".join(str(int(i)) for i in ids)
    return " ".join(symbols[int(i)] for i in ids)
