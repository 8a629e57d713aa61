"""A SQLite tracking store is created or upgraded once, under a file lock beside the database.

MLflow creates and migrates a SQLite store's tables, without any lock, the
first time a process builds a client's store. Two sweeps started at once on a
fresh `mlflow.db` then run the same migrations side by side: both fail, and
the `_alembic_tmp_*` tables they leave behind break every later client. So
each process builds its first client while it holds `<database>.lock`: one
process migrates, the others then find the tables in place. Nothing here
imports MLflow; the caller passes the function that builds the client.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from filelock import FileLock, Timeout

from rkdo_tune.errors import EnvironmentFailure
from rkdo_tune.tracking._uri import sqlite_path

LOCK_SUFFIX = ".lock"
LOCK_TIMEOUT_S = 300.0  # creating a store takes seconds; a holder this slow is stuck
SQLITE_TIMEOUT_S = 30.0
LEFTOVER_PREFIX = "_alembic_tmp_"  # alembic's copy of a table during a SQLite migration

Built = TypeVar("Built")
_prepared: set[str] = set()  # stores this process has already checked and built


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + LOCK_SUFFIX)


def leftover_migration_tables(database: Path) -> list[str]:
    """`_alembic_tmp_*` tables: a schema upgrade that began and never finished."""
    if not database.is_file():
        return []
    with contextlib.closing(sqlite3.connect(database, timeout=SQLITE_TIMEOUT_S)) as db:
        rows = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ? ESCAPE '!'",
            (LEFTOVER_PREFIX.replace("_", "!_") + "%",),
        ).fetchall()
    return sorted(name for (name,) in rows)


def half_migrated_message(uri: str, database: Path, tables: list[str]) -> str:
    """One line: which file, what is wrong, and the two commands that repair it."""
    drops = " ".join(f"DROP TABLE {name};" for name in tables)
    return (
        f"tracking URI {uri}: {database} is half-migrated (table {', '.join(tables)} was left "
        f"by an interrupted MLflow schema upgrade); back the file up, then repair it with: "
        f"sqlite3 {database} '{drops}' && mlflow db upgrade {uri}"
    )


def use_write_ahead_log(database: Path) -> None:
    """WAL journal: readers and the one writer stop blocking each other (kept in the file).

    Several sweeps and their trials write one store at once; in the default
    rollback journal every reader waits for each writer. WAL needs every
    process on one machine, which a SQLite store shared by Ray workers is anyway.
    """
    with contextlib.closing(sqlite3.connect(database, timeout=SQLITE_TIMEOUT_S)) as db:
        if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            db.execute("PRAGMA journal_mode=WAL")


def prepared_store(uri: str, build: Callable[[], Built]) -> Built:
    """`build()` (a client whose first call created or upgraded the store) under the lock.

    `uri` is a sqlite:/// URI; only the first call per store and process takes the lock.
    """
    database = sqlite_path(uri)
    if database is None:
        raise ValueError(f"not a SQLite tracking URI: {uri}")
    if uri in _prepared:
        return build()
    lock = lock_path(database)
    try:
        with FileLock(lock, timeout=LOCK_TIMEOUT_S):
            leftovers = leftover_migration_tables(database)
            if leftovers:
                raise EnvironmentFailure(half_migrated_message(uri, database, leftovers))
            built = build()
            use_write_ahead_log(database)
    except Timeout:
        raise EnvironmentFailure(
            f"tracking URI {uri}: another process has held {lock} for over "
            f"{LOCK_TIMEOUT_S:.0f} s while creating the store; is it stuck?"
        ) from None
    except (OSError, sqlite3.Error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EnvironmentFailure(f"tracking URI {uri}: cannot open {database}: {reason}") from None
    _prepared.add(uri)
    return built
