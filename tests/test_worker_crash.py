"""A real Celery worker on Redis, killed in the middle of a digest run: the next run finishes
the job, nobody due is skipped, and at most the messages in flight (sent, not yet recorded:
the sender's bound, UNRECORDED) go out twice."""

import collections
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from digest.models import Digest
from digest.services import _Sender
from tests.factories import make_paper, make_subscriber
from tests.servers import SMTPSink

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
READERS = 24
CHUNK = 4


def redis_url() -> str:
    if settings.REDIS_URL:
        return settings.REDIS_URL
    from config.embedded_redis import embedded_redis_url

    return embedded_redis_url()


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or "postgres"
    return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker_env(smtp_slow):
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url(),
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_slow.port}",
        "DIGEST_CHUNK_SIZE": str(CHUNK),
        "DIGEST_SENDING_STALE_SECONDS": "1",
        "SITE_URL": "http://testserver",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "ANYMAIL_ESP": "",
    }
    celery(env, "purge", "-f", "-Q", "mail,celery")
    return env


@pytest.fixture
def smtp_slow():
    with SMTPSink(delay=0.15) as sink:
        yield sink


def celery(env, *args):
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "config", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def start_worker(env) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "mail,celery",
            "--concurrency",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_killed_mid_run_skips_nobody_and_doubles_at_most_the_messages_in_flight(
    worker_env, smtp_slow
):
    make_paper("Attention is all you need")
    readers = [
        make_subscriber(topics=["attention"], due_at=timezone.now() - timedelta(minutes=5))
        for _ in range(READERS)
    ]

    first = start_worker(worker_env)
    try:
        celery(worker_env, "call", "digest.tasks.send_due_digests")
        wait_until(lambda: len(smtp_slow.messages) >= 6, 60, "the first messages")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    delivered_at_crash = len(smtp_slow.messages)
    assert delivered_at_crash < READERS, "the worker was killed mid-run"

    time.sleep(1.5)  # the abandoned "sending" digest becomes stale
    second = start_worker(worker_env)
    try:
        celery(worker_env, "call", "digest.tasks.send_due_digests")
        wait_until(
            lambda: Digest.objects.filter(status="sent").count() == READERS,
            90,
            "every digest sent",
        )
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(20)

    received = collections.Counter(m["To"] for m in smtp_slow.messages)
    assert set(received) == {r.email for r in readers}, "nobody due is skipped"
    doubled = [to for to, n in received.items() if n > 1]
    assert len(doubled) <= _Sender.UNRECORDED, f"only messages in flight may go twice: {doubled}"
    assert all(n <= 2 for n in received.values())
