"""A real PostgreSQL server for tests: `initdb` and `pg_ctl` in a temp dir, on 127.0.0.1.

Debian's `postgresql` package puts its programs in /usr/lib/postgresql/<version>/bin;
`.ci/run` installs it when it is missing. PostgreSQL refuses to run as root, so
as root the server runs as the package's `postgres` user. `missing()` says why
none can be started here (the test is then skipped with that reason).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from _mlflow_server import free_port

USER = "rkdo"
DATABASE = "mlflow"


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


def _run_as() -> list[str]:
    """How to run the server's programs: as `postgres` when we are root."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def missing() -> str | None:
    """Why no PostgreSQL server can be started here, or None."""
    if _bin_dir() is None:
        return "PostgreSQL is not installed (no pg_ctl); .ci/run installs Debian's postgresql"
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError):
            pwd.getpwnam("postgres")
            return None if shutil.which("runuser") else "running as root without runuser"
        return "running as root, and there is no postgres user to run PostgreSQL as"
    return None


class PostgresServer:
    """One cluster in a fresh temp dir, listening on 127.0.0.1:<free port> only."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rkdo-pg-"))  # not under pytest's root-only tmp
        self.port = free_port()
        # The driver named as docker-compose.yml names it (psycopg2, installed in the image).
        self.uri = f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, program: str, *args: str) -> None:
        command = [*_run_as(), str(_bin_dir() / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def start(self) -> str:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        self._run("initdb", "-D", str(data), "-U", USER, "--auth=trust", "--no-sync")
        options = f"-p {self.port} -h 127.0.0.1 -k {self.dir}"
        log = str(self.dir / "server.log")
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", log, "-w", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, DATABASE)
        return self.uri

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
