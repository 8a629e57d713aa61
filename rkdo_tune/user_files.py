"""Reading a file the user names (a search space, a `train --config`): text, or one clear line.

Whatever the path is, the result is its UTF-8 text or a `UsageError` naming the
path and the reason: no such file, a directory, a FIFO, a device, no
permission, too large, not UTF-8. A FIFO is refused from its `stat`, and the
file is opened with O_NONBLOCK, so that nothing here ever blocks.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from rkdo_tune.errors import UsageError

MAX_INPUT_BYTES = 1 << 20  # 1 MiB: a YAML config or space is a few KiB


def _kind(mode: int) -> str | None:
    """What a non-regular file is, for the error line; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    return "is not a regular file"


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot read file ({exc.strerror or type(exc).__name__})"


def _too_large(size: int, limit: int) -> str:
    unit = f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"
    return f"is {size} bytes, over the {unit} limit for an input file"


def _read_bytes(path: Path, limit: int) -> bytes:
    try:
        kind = _kind(os.stat(path).st_mode)
        if kind is not None:
            raise UsageError(f"{path}: {kind}")
        # O_NONBLOCK: should the path become a FIFO after the stat, open() still returns.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            kind = _kind(info.st_mode)
            if kind is not None:
                raise UsageError(f"{path}: {kind}")
            if info.st_size > limit:
                raise UsageError(f"{path}: {_too_large(info.st_size, limit)}")
            data = handle.read(limit + 1)  # st_size can lie (a growing file, /proc)
    except OSError as exc:
        raise UsageError(f"{path}: {_os_reason(exc)}") from None
    except ValueError:  # a NUL byte in the path
        raise UsageError(f"{path!r}: not a valid path") from None
    if len(data) > limit:
        raise UsageError(f"{path}: {_too_large(len(data), limit)}")
    return data


def read_text_file(path: Path, *, limit: int = MAX_INPUT_BYTES) -> str:
    """The UTF-8 text of the regular file `path`, at most `limit` bytes (a BOM is dropped)."""
    data = _read_bytes(path, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
        raise UsageError(f"{path}: not UTF-8 text (invalid {where})") from None
