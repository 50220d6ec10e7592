"""The exceptions the CLI turns into one-line user messages (exit 2)."""

from __future__ import annotations


class BenchError(Exception):
    """A problem with the user's input; the message names it and the fix."""


class DataError(BenchError):
    """A dataset is unknown, missing, corrupt or in the wrong format."""


class ConfigError(BenchError):
    """A flag, budget, search space or config value is invalid."""


class PluginError(BenchError):
    """A plugin failed to import or to register."""
