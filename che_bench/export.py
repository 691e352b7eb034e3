"""Task data for other frameworks: the samples che-bench trains and scores on, as files.

Length ℓ's samples are drawn exactly as che-bench's evaluator draws its test set:
``task.sample(numpy.random.default_rng(SeedSequence([seed, ℓ])), samples, ℓ)``. With the
default seed (``eval_seed`` = 1) and ``samples`` equal to a run's ``eval_samples`` (512 in
the ``paper`` preset), lengths 41-500 are the test set every model is scored on, and lengths
1-40 with 64 samples are its in-distribution set (``train_eval_samples``). Training draws
its batches from a different stream (one random length per step), which this does not
reproduce.

Two layouts:

* ``npz`` (default, NumPy only): one ``length_NNNN.npz`` per length, holding fixed-shape
  arrays ``inputs`` int64 [S, N], ``targets`` int64 [S, K], ``mask`` bool [S, K] and
  ``lengths`` int64 [S]; one length per file is one fixed-shape batch, the unit a jitted
  JAX function or a PyTorch ``TensorDataset`` takes without padding. The archives are
  written with fixed timestamps, so the same call writes byte-identical files.
* ``parquet`` (pyarrow, the ``export`` extra): one ``data.parquet`` with a ``length`` column
  and list columns, one row group per length: what Hugging Face ``datasets`` and pandas
  load in one call (``load_dataset("parquet", data_files=...)``).

Both write ``meta.json`` last: the task, its parameters, seed, lengths, samples, the
vocabulary and the che-bench version and code revision that generated the data (the
generators have no version of their own), and each file's SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from che_bench.errors import CheBenchError, ConfigError
from che_bench.generators import Batch, Task, build_task, resolve_task_params
from che_bench.seeding import eval_rng

FORMATS = ("npz", "parquet")
META = "meta.json"
PARQUET = "data.parquet"
#: A zip entry's earliest representable time: archives do not depend on when they were made.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

Progress = Callable[[int, int, int], None]  # (done, total, length)


def draw(task: Task, seed: int, length: int, samples: int) -> Batch:
    """The ``samples`` samples of ``length`` that ``seed`` names (the evaluator's stream)."""
    return task.sample(eval_rng(seed, length), samples, length)


def npz_name(length: int) -> str:
    return f"length_{length:04d}.npz"


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """``numpy.savez_compressed`` with fixed entry times: equal arrays, equal bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.ascontiguousarray(array), allow_pickle=False)


def arrays_of(batch: Batch, length: int) -> dict[str, np.ndarray]:
    """The arrays of one length's file; ``lengths`` holds the requested length N per sample
    (``inputs`` may be shorter: modular_arithmetic uses odd lengths)."""
    return {
        "inputs": batch.inputs.astype(np.int64, copy=False),
        "targets": batch.targets.astype(np.int64, copy=False),
        "mask": batch.mask.astype(bool, copy=False),
        "lengths": np.full(batch.inputs.shape[0], length, dtype=np.int64),
    }


def pyarrow_parquet() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or a one-line error naming the extra."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise CheBenchError(
            "--format parquet needs pyarrow: install che-bench[export] "
            "(pip install 'che-bench[export]'), or use --format npz"
        ) from None
    return pyarrow, pyarrow.parquet


def _lists(pa: Any, matrix: np.ndarray) -> Any:
    """A [S, W] array as a pyarrow list column of S lists of W values."""
    rows, width = matrix.shape
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(matrix.reshape(-1)))


def parquet_table(pa: Any, batch: Batch, length: int) -> Any:
    arrays = arrays_of(batch, length)
    samples = arrays["inputs"].shape[0]
    return pa.table({
        "length": pa.array(arrays["lengths"]),
        "index": pa.array(np.arange(samples, dtype=np.int64)),
        "inputs": _lists(pa, arrays["inputs"]),
        "targets": _lists(pa, arrays["targets"]),
        "mask": _lists(pa, arrays["mask"]),
    })  # fmt: skip


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare(out: Path, force: bool) -> None:
    """Create ``out``; refuse a non-empty one unless ``force`` (which removes only the
    files an earlier export wrote there)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory; pass another -o DIR")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ConfigError(f"{out} is not empty; pass --force to overwrite, or another -o DIR")
        for old in [*out.glob("length_*.npz"), out / PARQUET, out / META]:
            old.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def vocabulary(task: Task) -> dict[str, Any]:
    """What the ids mean, as ``che-bench sample`` decodes them (None: an id is itself)."""
    symbols = task.input_symbols, task.output_symbols
    return {
        "input_size": task.input_size,
        "output_size": task.output_size,
        "input_symbols": None if symbols[0] is None else list(symbols[0]),
        "output_symbols": None if symbols[1] is None else list(symbols[1]),
        "terminator": task.terminator,
    }


def eval_seed() -> int:
    """The seed of che-bench's test sets: ``RunConfig.eval_seed``'s default."""
    from che_bench.config import RunConfig

    return RunConfig.__dataclass_fields__["eval_seed"].default


def check_request(lengths: Sequence[int], samples: int, seed: int, fmt: str) -> None:
    from che_bench.config import MAX_LENGTH

    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not lengths or min(lengths) < 1 or max(lengths) > MAX_LENGTH:
        raise ConfigError(f"lengths must lie in 1..{MAX_LENGTH:,}, got {list(lengths)[:3]}...")
    if samples < 1 or seed < 0:
        raise ConfigError(f"need samples >= 1 and seed >= 0, got {samples} and {seed}")


def export(
    task_name: str,
    lengths: Sequence[int],
    samples: int,
    out: Path,
    *,
    seed: int | None = None,
    fmt: str = "npz",
    task_params: Mapping[str, Any] | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write ``samples`` samples of each of ``lengths`` of task ``task_name`` to ``out`` (a
    new or empty directory, or any with ``force``) in ``fmt``; ``seed`` defaults to the
    test-set seed. Returns what ``meta.json`` holds."""
    from che_bench import __version__
    from che_bench.results.provenance import code_identity

    lengths = sorted({int(n) for n in lengths})
    seed = eval_seed() if seed is None else int(seed)
    check_request(lengths, samples, seed, fmt)
    params = resolve_task_params(task_name, dict(task_params or {}))
    task = build_task(task_name, params)
    pa, pq = pyarrow_parquet() if fmt == "parquet" else (None, None)
    prepare(out, force)
    files: list[dict[str, Any]] = []
    writer = None
    try:
        for done, length in enumerate(lengths, start=1):
            batch = draw(task, seed, length, samples)
            if fmt == "npz":
                write_npz(out / npz_name(length), arrays_of(batch, length))
                files.append({"length": length, "file": npz_name(length)})
            else:
                table = parquet_table(pa, batch, length)
                writer = writer or pq.ParquetWriter(out / PARQUET, table.schema)
                writer.write_table(table)
            if progress is not None:
                progress(done, len(lengths), length)
    finally:
        if writer is not None:
            writer.close()
    if fmt == "parquet":
        files.append({"lengths": len(lengths), "file": PARQUET})
    for entry in files:
        entry["sha256"] = sha256(out / entry["file"])
    meta = {
        "task": task.name,
        "task_params": params,
        "level": task.level,
        "seed": seed,
        "samples": samples,
        "lengths": lengths,
        "format": fmt,
        "sampling": "length L: task.sample(numpy.random.default_rng(numpy.random.SeedSequence("
        "[seed, L])), samples, L), as che-bench evaluates (its test set: seed 1, "
        "samples = eval_samples)",
        "arrays": {
            "inputs": "int64 [samples, N'] token ids, N' = task.input_length(N) (N but for "
            "modular_arithmetic, which needs odd lengths)",
            "targets": "int64 [samples, K] class ids, K = the task's output length for N",
            "mask": "bool [samples, K] the target positions that count for accuracy",
            "lengths": "int64 [samples] the requested length N",
        },
        "vocabulary": vocabulary(task),
        "chance": task.chance,
        "che_bench": __version__,
        "code": code_identity(),
        "files": files,
    }
    (out / META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta
