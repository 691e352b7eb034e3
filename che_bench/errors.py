"""User-facing errors. The CLI prints one line and exits with code 2."""

from __future__ import annotations


class CheBenchError(Exception):
    """An error the user can fix; the message says how."""


class UnknownNameError(CheBenchError, KeyError):
    """An unknown task, encoding, preset or option name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(CheBenchError, ValueError):
    """A malformed card, preset, sweep file or CLI value."""


class PluginError(CheBenchError):
    """A plugin that cannot be loaded or registers a taken name."""


class LeaderboardError(CheBenchError):
    """A leaderboard file that cannot be read or written."""
