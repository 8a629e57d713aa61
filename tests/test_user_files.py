"""A file the user names is read as UTF-8 text, or refused in one line that says why."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from rkdo_tune.errors import UsageError
from rkdo_tune.user_files import MAX_INPUT_BYTES, read_text_file

NOBODY = 65534


def _refusal(path: Path) -> str:
    """The one line `read_text_file` raises; fails the test if it blocks for 10 s."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(read_text_file, path)
        with pytest.raises(UsageError) as caught:
            future.result(timeout=10)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and len(message.splitlines()) == 1
    return message


def test_regular_utf8_file_is_read_and_a_bom_dropped(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_bytes("\ufeffname: été\n".encode())
    assert read_text_file(path) == "name: été\n"


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # nobody writes to it: opening it for reading would block
    assert "is a FIFO" in _refusal(fifo)


def test_directory_device_and_missing_file_say_what_they_are(tmp_path):
    assert _refusal(tmp_path).endswith("is a directory")
    assert "is a device" in _refusal(Path("/dev/null"))
    assert _refusal(tmp_path / "missing.yaml").endswith("no such file")


def test_not_utf8_names_the_offending_byte(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert _refusal(path).endswith("not UTF-8 text (invalid byte 0xe9 at offset 9)")


def test_over_one_mebibyte_is_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_INPUT_BYTES + 1))
    assert "over the 1 MiB limit" in _refusal(path)
    path.write_bytes(b"#" * MAX_INPUT_BYTES)
    assert len(read_text_file(path)) == MAX_INPUT_BYTES


def _read_as_nobody(path: Path) -> str:
    """What `read_text_file(path)` says in a forked child that dropped root for user nobody."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no exec, so it needs no interpreter that nobody may run
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                read_text_file(path)
                message = "read"
            except UsageError as exc:
                message = str(exc)
            os.write(write_end, message.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    return message


def test_unreadable_file_is_permission_denied():
    """chmod 000 stops everyone but root: as root, the read runs as user nobody."""
    folder = Path(tempfile.mkdtemp(prefix="rkdo-perm-"))
    try:
        folder.chmod(0o755)
        path = folder / "secret.yaml"
        path.write_text("name: x\n")
        path.chmod(0o000)
        if os.geteuid() != 0:
            assert _refusal(path).endswith("permission denied")
        else:
            assert _read_as_nobody(path) == f"{path}: permission denied"
    finally:
        shutil.rmtree(folder)
