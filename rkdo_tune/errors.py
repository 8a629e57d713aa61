"""Errors that mean "the user asked for something wrong", kept apart from bugs.

The CLI turns every `UsageError` into one line on stderr and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import re

MAX_MESSAGE_CHARS = 1000
# What str.splitlines() or a terminal would break on or act upon: C0/C1 controls (tab aside),
# the Unicode line and paragraph separators, and lone surrogates (undecodable file names).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def one_line(text: str) -> str:
    """`text` with every line break and control character escaped, at most ~1000 characters.

    Messages quote user input (keys, values, file names), which may hold any character.
    """
    text = _CONTROL.sub(
        lambda m: m.group().encode("unicode_escape", "backslashreplace").decode(), text
    )
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + " ..."
    return text


class UsageError(Exception):
    """A user mistake: a bad flag, config value, file or missing dataset.

    The message is one line (enforced: see `one_line`) and names the file, key and
    value involved.
    """

    exit_code = 2

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(one_line(str(message)), *args)


class DataNotFoundError(UsageError):
    """A dataset is not on disk and downloading was not asked for (or failed)."""


class EnvironmentFailure(UsageError):
    """Something outside the user's input is unreachable (tracking server, cluster)."""

    exit_code = 1


class InvalidValue(UsageError):
    """A value breaks a range or choice rule: ``alpha=1.5 is invalid: it must lie in (0, 1]``.

    `key`, `value` and `rule` stay readable, so a caller can restate the error in its own
    terms (the config names its source, a search space the key path of the value).
    """

    def __init__(self, key: str, value: object, rule: str) -> None:
        super().__init__(f"{key}={value!r} is invalid: {rule}")
        self.key, self.value, self.rule = key, value, rule


def check_value(holds: bool, key: str, value: object, rule: str) -> None:
    """Raise `InvalidValue(key, value, rule)` unless `holds`: the package's one check helper."""
    if not holds:
        raise InvalidValue(key, value, rule)
