"""Embedded Rays that tests start through the CLI, found and ended by their own temp dir.

A driver killed with SIGKILL leaves its embedded Ray running; every process of
that Ray names the RAY_TMPDIR it was given, so a test ends exactly those.
"""

from __future__ import annotations

import contextlib
import tempfile

import psutil


def short_ray_tmpdir() -> str:
    """A fresh RAY_TMPDIR under /tmp: short, since Ray's socket paths are capped at 107 bytes."""
    return tempfile.mkdtemp(prefix="rkr", dir="/tmp")


def ray_processes_under(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def kill_ray_started_under(marker: str) -> None:
    """SIGKILL every process whose command line names `marker` (a RAY_TMPDIR)."""
    procs = ray_processes_under(marker)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(procs, timeout=10)
