"""Errors that mean "the user asked for something wrong", kept apart from bugs.

The CLI turns every `UsageError` into one line on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UsageError(Exception):
    """A user mistake: a bad flag, config value, file or missing dataset.

    The message is one line and names the file, key and value involved.
    """

    exit_code = 2


class DataNotFoundError(UsageError):
    """A dataset is not on disk and downloading was not asked for (or failed)."""


class EnvironmentFailure(UsageError):
    """Something outside the user's input is unreachable (tracking server, cluster)."""

    exit_code = 1
