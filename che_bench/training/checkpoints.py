"""Checkpoint files: atomic writes, and reading one back without ever losing it.

A checkpoint is written to ``checkpoint.tmp<pid>``, fsynced and renamed over
``checkpoint.pt``, so a crash leaves the old one or the new one, never half of one; the temp
file of a writer killed mid-write is removed by the next run that starts. A checkpoint that
cannot be read is moved to ``checkpoint.pt.corrupt`` (with a :class:`CheckpointWarning`)
and the run starts afresh; one written on another device type is refused with a
:class:`~che_bench.errors.ConfigError` and left in place.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from che_bench.errors import ConfigError

#: What a checkpoint must hold to be resumed from.
REQUIRED_KEYS = ("config_hash", "step", "model", "optimizer", "data_rng", "generator")


class CheckpointWarning(UserWarning):
    """A checkpoint could not be read; it was moved aside and the run starts from step 0."""


def write_atomic(path: Path, state: dict) -> None:
    """Write a temp file, fsync, rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_checkpoint(
    path: Path, model_state: dict[str, torch.Tensor], config_hash: str, device: torch.device
) -> dict | None:
    """The state in ``path`` if it is a checkpoint of ``config_hash`` for a model with
    ``model_state``'s tensors, loaded on the CPU; None if there is none or it belongs to
    another config. An unreadable file is moved aside (None, with a warning); one written
    on another device type than ``device``'s raises ConfigError."""
    remove_stale_temps(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        problem = checkpoint_problem(state, model_state, config_hash)
    except OSError:
        raise  # unreadable for a reason other than its contents: not ours to move
    except Exception as exc:  # torch.load raises many kinds for a damaged file
        first = (str(exc).strip() or "?").splitlines()[0].split(". ")[0]
        problem = f"{type(exc).__name__}: {first[:120]}"
    if problem is not None:
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        warnings.warn(
            f"checkpoint {path} is unreadable ({problem}); moved it to {aside.name} and "
            "starting from step 0",
            CheckpointWarning,
            stacklevel=2,
        )
        return None
    if state["config_hash"] != config_hash:
        return None
    written_on = checkpoint_device(state)
    if written_on != device.type:
        raise ConfigError(
            f"checkpoint {path} was written on {written_on}, not {device.type}: resume it "
            f"with --device {written_on}, or delete it to start over"
        )
    return state


def checkpoint_problem(
    state: object, model_state: dict[str, torch.Tensor], config_hash: str
) -> str | None:
    """What makes ``state`` unreadable as a checkpoint, or None. A checkpoint of another
    config (``config_hash``) is not compared with ``model_state``."""
    if not isinstance(state, dict):
        return f"holds a {type(state).__name__}, not a dict"
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        return "lacks " + ", ".join(missing)
    if state["config_hash"] != config_hash:
        return None
    expected = {name: tuple(t.shape) for name, t in model_state.items()}
    try:
        stored = {name: tuple(t.shape) for name, t in state["model"].items()}
    except (AttributeError, TypeError):
        return "its model state is not a dict of tensors"
    return None if stored == expected else "its model state does not fit this model"


def checkpoint_device(state: dict) -> str:
    """The device type ``state`` was written on. Older checkpoints do not say; a CUDA
    generator's state is 16 bytes (seed and offset), a CPU one's is not."""
    if "device" in state:
        return str(state["device"])
    return "cuda" if state["generator"].numel() == 16 else "cpu"


def remove_stale_temps(path: Path) -> None:
    """Delete the ``<stem>.tmp<pid>`` files of writers no longer alive (killed mid-write)."""
    if not path.parent.is_dir():
        return
    for tmp in path.parent.glob(f"{path.stem}.tmp*"):
        pid = tmp.suffix.removeprefix(".tmp")
        if pid.isdigit() and not pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether another process ``pid`` runs (this one is not writing while it resumes)."""
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True
