"""The interface every CHE task shares (Delétang et al., ICLR 2023).

A task is a pure sampler: ``task.sample(rng, batch_size, length)`` returns a
:class:`Batch` of numpy arrays and never touches torch or global random state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
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


@dataclass(frozen=True)
class Example:
    """A golden example of a task built with its default parameters.

    inputs:  the input ids (an actual input length, e.g. odd for modular_arithmetic)
    targets: the expected target ids, ``output_length(len(inputs))`` of them
    mask:    how many leading target positions count for accuracy; None: all of them
    note:    what the ids spell, or where the example comes from
    """

    inputs: Sequence[int]
    targets: Sequence[int]
    mask: int | None = None
    note: str = ""

    def expected_mask(self) -> list[bool]:
        count = len(self.targets) if self.mask is None else self.mask
        return [i < count for i in range(len(self.targets))]


class Task(ABC):
    """A CHE task: the one source of its facts. Subclasses set the class attributes and
    implement ``_sample``; the constructor's keyword arguments are the task's parameters
    (``RunConfig.task_params``), so they need defaults and plain values (int, float, bool, str).
    """

    name: ClassVar[str]
    level: ClassVar[Level]
    input_size: ClassVar[int]
    output_size: ClassVar[int]
    description: ClassVar[str] = ""
    #: Ids decoded for humans by ``che-bench sample``; defaults to the id itself.
    input_symbols: ClassVar[tuple[str, ...] | None] = None
    output_symbols: ClassVar[tuple[str, ...] | None] = None
    #: Default training lengths (N ~ U{1..40}) and test lengths (41..500), those of Delétang
    #: et al. (ICLR 2023) and Ruoss et al. (ACL 2023); a preset or a flag may override them.
    train_lengths: ClassVar[tuple[int, int]] = (1, 40)
    test_lengths: ClassVar[tuple[int, int]] = (41, 500)
    #: Target id that ends the answer; accuracy counts the positions through its first
    #: occurrence. None: every position counts.
    terminator: ClassVar[int | None] = None
    #: Golden examples (default parameters); the tests check ``targets_for`` and ``oracle``.
    examples: ClassVar[tuple[Example, ...]] = ()

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

    def oracle(self, inputs: Sequence[int]) -> list[int]:
        """The targets of one input by the task's plain definition, in plain Python.

        A second, deliberately simple implementation (one sample, no vectorization) that the
        tests hold ``targets_for`` and every sampled batch to. Raises ``ValueError`` for an
        input the generator must never emit. Every built-in task implements this.
        """
        raise NotImplementedError(f"{self.name} has no oracle")

    @property
    def has_oracle(self) -> bool:
        return type(self).oracle is not Task.oracle

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
    """A task whose answer is bits followed by a terminator ``$`` (id 2), then zeros."""

    output_size = 3
    output_symbols = ("0", "1", "$")
    terminator = 2

    @property
    def chance(self) -> float:
        """50%, the random accuracy the papers quote for bit answers (Delétang et al., ICLR
        2023; Ruoss et al., ACL 2023): the answer is bits, 2 only terminates it."""
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
