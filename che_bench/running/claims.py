"""Claims: which process is running which run of a leaderboard, so that no run runs twice.

Before a process runs a run_key into a leaderboard (``che-bench run``, or a sweep just before
it dispatches a cell), it creates the claim file ``<leaderboard>.claims/<run_key>`` with
``O_CREAT | O_EXCL``, which exactly one process can do. The file holds the claimant's pid,
host name and start time; it is removed once the run's row is appended, or when the run
fails to start or is interrupted. A process that finds a live claim skips that run and
says who has it ("claimed by pid N on host H since T"), so overlapping sweeps into one
leaderboard split their shared cells between them.

A claim whose holder is gone is stale and is taken over:

- on this host, when its pid no longer runs (or now names another process: the start time
  recorded from ``/proc`` differs, or it is a zombie);
- from another host, when it has not been refreshed for :data:`CLAIM_EXPIRY_S` (10
  minutes). A holder touches its claims every :data:`HEARTBEAT_S` (1 minute) from a
  background thread, so only a holder that died, or whose host did, lets them expire.

Takeovers and releases hold an ``flock`` on ``<leaderboard>.claims/.lock`` and judge the
claim again under it, so two processes never both take over the same stale claim.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from che_bench.errors import LeaderboardError

#: Seconds between two refreshes of a holder's claims.
HEARTBEAT_S = 60.0
#: A claim from another host is stale once it has not been refreshed for this long.
CLAIM_EXPIRY_S = 600.0
#: A claim file that cannot be parsed (its writer died between create and write) is stale
#: once it is this old; younger, it is being written and counts as live.
UNREADABLE_GRACE_S = 30.0
HOST = socket.gethostname()


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state, start time in clock ticks since boot)`` of process ``pid`` from
    ``/proc/<pid>/stat``; None where there is no such file (no /proc, or no such pid)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()  # the command name may hold ")"
    except (OSError, IndexError):
        return None
    return fields[0].decode(), int(fields[19])


def pid_alive(pid: int, start: int | None = None) -> bool:
    """Whether process ``pid`` of this host runs (a zombie does not) and, if ``start`` is
    given, is the process that had that start time (not a later one that reuses the pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    stat = proc_stat(pid)
    if stat is None:
        return True
    return stat[0] not in "ZX" and start in (None, stat[1])


@dataclass(frozen=True)
class Holder:
    """Who holds a claim. ``pid_start`` tells a pid reused by another process apart (None
    where /proc is missing); ``token`` tells two claimants in one process apart."""

    pid: int
    host: str
    started: str
    token: str
    pid_start: int | None = None

    @classmethod
    def me(cls) -> Holder:
        stat = proc_stat(os.getpid())
        return cls(os.getpid(), HOST, _utc_now(), uuid.uuid4().hex, stat and stat[1])

    @property
    def who(self) -> str:
        return f"pid {self.pid} on host {self.host}" if self.pid > 0 else "a process starting"

    def describe(self) -> str:
        return f"{self.who} since {self.started}"


def read_claim(path: Path) -> tuple[Holder, float] | None:
    """The holder of the claim at ``path`` and the seconds since it was last refreshed;
    None if there is no claim. An unparseable file gives a holder with pid 0."""
    try:
        age = time.time() - path.stat().st_mtime
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        data = None
    names = [f.name for f in fields(Holder)]
    if isinstance(data, dict) and isinstance(data.get("pid"), int) and data["pid"] > 0:
        return Holder(**{k: data.get(k) for k in names}), age  # newer fields are ignored
    since = datetime.fromtimestamp(time.time() - age, UTC).isoformat(timespec="seconds")
    return Holder(0, "?", since, ""), age


def is_stale(holder: Holder, age: float) -> bool:
    """Whether the claim's holder is gone (see the module docstring for the rules)."""
    if holder.pid <= 0:
        return age > UNREADABLE_GRACE_S
    if holder.host == HOST:
        return not pid_alive(holder.pid, holder.pid_start)
    return age > CLAIM_EXPIRY_S


class Claims:
    """The claims this process holds in one leaderboard's claim folder. As a context
    manager it refreshes them every :data:`HEARTBEAT_S` and releases what is still held
    on exit."""

    def __init__(self, leaderboard: Path) -> None:
        self.folder = Path(os.fspath(leaderboard) + ".claims")
        self.me = Holder.me()
        self.held: set[str] = set()
        self._stop = threading.Event()
        self._heart: threading.Thread | None = None

    def __enter__(self) -> Claims:
        self._heart = threading.Thread(target=self._beat, name="che-bench-claims", daemon=True)
        self._heart.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for run_key in list(self.held):
            self.release(run_key)

    def claim(self, run_key: str) -> Holder | None:
        """Claim ``run_key``: None when it is now ours, else the live holder."""
        path = self.folder / run_key
        while True:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:  # FileExistsError too: a file is in the folder's place
                raise self._unwritable(e) from None
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                found = read_claim(path)
                if found is None:
                    continue  # released meanwhile: try again
                if found[0].token == self.me.token:
                    return None
                if not is_stale(*found):
                    return found[0]
                with self._locked():  # judged again under the lock: only one takes it over
                    found = read_claim(path)
                    if found is not None and is_stale(*found):
                        path.unlink()
                continue
            except OSError as e:
                raise self._unwritable(e) from None
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(asdict(self.me) | {"started": _utc_now()}))
            self.held.add(run_key)
            return None

    def release(self, run_key: str) -> None:
        """Remove our claim of ``run_key`` (not one that another process took over)."""
        if run_key not in self.held:
            return
        self.held.discard(run_key)
        path = self.folder / run_key
        with self._locked():
            found = read_claim(path)
            if found is not None and found[0].token == self.me.token:
                path.unlink()

    def _unwritable(self, e: OSError) -> LeaderboardError:
        why = f"{e.strerror or e}; it must be a folder this process can write to"
        return LeaderboardError(f"cannot claim runs in {self.folder}: {why}")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            for run_key in tuple(self.held):
                with contextlib.suppress(OSError):
                    os.utime(self.folder / run_key)
