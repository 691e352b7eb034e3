"""One registry type for tasks and encodings (timm style).

``@REGISTRY.register("name")`` adds a factory; ``REGISTRY.list("dape*")`` filters with
shell-style wildcards; ``REGISTRY.get(name)`` suggests the closest match on a typo.
Plugins add entries through the entry-point group given at construction; they are
loaded lazily, once, each in a worker thread with a time limit: a plugin that raises
anything (``SystemExit`` and ``KeyboardInterrupt`` included), or that does not finish within
``CHE_BENCH_PLUGIN_TIMEOUT`` seconds (default 20), is reported as one warning and skipped
without affecting the others or the exit status. A real Ctrl-C still stops the program.
Set ``CHE_BENCH_DISABLE_PLUGINS=1`` to skip plugin loading altogether.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Generic, TypeVar

from che_bench.errors import PluginError, UnknownNameError

T = TypeVar("T")

DISABLE_PLUGINS_ENV = "CHE_BENCH_DISABLE_PLUGINS"


class PluginWarning(UserWarning):
    """A plugin failed to load; everything else keeps working."""


PLUGIN_TIMEOUT_ENV = "CHE_BENCH_PLUGIN_TIMEOUT"
DEFAULT_PLUGIN_TIMEOUT_S = 20.0


def plugin_timeout() -> float:
    """Seconds one plugin may take to import and register (``CHE_BENCH_PLUGIN_TIMEOUT``)."""
    raw = os.environ.get(PLUGIN_TIMEOUT_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_PLUGIN_TIMEOUT_S
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        warnings.warn(
            f"{PLUGIN_TIMEOUT_ENV}={raw!r} is not a positive number of seconds; "
            f"using {DEFAULT_PLUGIN_TIMEOUT_S:g}",
            PluginWarning,
            stacklevel=2,
        )
        value = DEFAULT_PLUGIN_TIMEOUT_S
    return value


class Registry(Generic[T]):
    """Maps names to entries; ``kind`` names the entries in error messages."""

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._plugins_loaded = entry_point_group is None
        self._loading = threading.local()  # .plugin: the label of the plugin registering
        self._abandoned: set[str] = set()  # plugins that timed out: later adds are ignored
        self._listeners: list[Callable[[str, T], None]] = []
        self.plugin_errors: dict[str, str] = {}

    # -- registration ---------------------------------------------------------------
    def register(self, name: str, entry: T | None = None, *, replace: bool = False):
        """Register ``entry`` under ``name``; usable as a decorator when ``entry`` is None."""

        def add(item: T) -> T:
            self.add(name, item, replace=replace)
            return item

        return add if entry is None else add(entry)

    def add(self, name: str, entry: T, *, replace: bool = False) -> None:
        origin = getattr(self._loading, "plugin", None) or "che_bench"
        if origin in self._abandoned:
            return
        if name in self._entries and not replace:
            raise PluginError(
                f"{self.kind} {name!r} from {origin} is already registered by "
                f"{self._origin[name]}; pick another name"
            )
        self._entries[name] = entry
        self._origin[name] = origin
        for listener in self._listeners:
            listener(name, entry)

    def on_register(self, listener: Callable[[str, T], None]) -> None:
        """Call ``listener(name, entry)`` for every entry, present and future."""
        self._listeners.append(listener)
        for name, entry in list(self._entries.items()):
            listener(name, entry)

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)
        self._origin.pop(name, None)

    # -- lookup ----------------------------------------------------------------------
    def names(self) -> list[str]:
        self.load_plugins()
        return sorted(self._entries)

    def list(self, pattern: str | None = "*") -> list[str]:
        """Sorted names matching a shell-style wildcard (``dape*``, ``*kerple*``)."""
        return [n for n in self.names() if fnmatch.fnmatchcase(n, pattern or "*")]

    def origin(self, name: str) -> str:
        self.get(name)
        return self._origin[name]

    def get(self, name: str) -> T:
        self.load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._entries), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return (
            f"unknown {self.kind} {name!r}; {hint}"
            f"run `che-bench list {self.kind}s` to see all {len(self._entries)}"
        )

    def __contains__(self, name: object) -> bool:
        self.load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    # -- plugins ---------------------------------------------------------------------
    def load_plugins(self) -> None:
        """Import every entry point of the group once; warn about (and skip) broken ones."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        if os.environ.get(DISABLE_PLUGINS_ENV, "").strip() not in ("", "0"):
            return
        timeout = plugin_timeout()
        for ep in metadata.entry_points(group=self.entry_point_group or ""):
            label = f"plugin {ep.name!r} ({ep.value})"
            before = set(self._entries)
            problem = self._load_one(ep, label, timeout)
            if problem is None:
                continue
            for name in set(self._entries) - before:
                self.remove(name)
            self.plugin_errors[ep.name] = problem
            message = f"che-bench: skipped {self.kind} {label}: {problem}"
            warnings.warn(message, PluginWarning, stacklevel=2)

    def _load_one(self, ep: metadata.EntryPoint, label: str, timeout: float) -> str | None:
        """Import and call one entry point in a daemon thread; the problem, or None."""
        outcome: list[str | None] = []

        def load() -> None:
            self._loading.plugin = label
            try:
                loaded = ep.load()
                if callable(loaded):
                    loaded()
                outcome.append(None)
            except BaseException as exc:  # SystemExit too: a plugin never ends the program
                outcome.append(f"{type(exc).__name__}: {exc}")

        worker = threading.Thread(target=load, name=f"che-bench {label}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            self._abandoned.add(label)
            return (
                f"did not finish loading within {timeout:g} s (raise {PLUGIN_TIMEOUT_ENV} "
                "or fix the plugin)"
            )
        return outcome[0] if outcome else "stopped without finishing"
