"""Delivery benchmark: a full digest run for many subscribers with two Celery worker
processes, on PostgreSQL and Redis, sending over SMTP to a counting sink on loopback.

    python benchmarks/bench_delivery.py [--subscribers 100000] [--papers 1000] [--workers 2]

The last line printed is one JSON object of figures. The floor (rendering plus MIME building
alone, in this process) is measured in the same run on the same data."""

import argparse
import collections
import contextlib
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_matching import make_papers, make_topics, recorded_papers  # noqa: E402
from benchmarks.common import free_port, reset_database, settle_database  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subscribers", type=int, default=100_000)
    p.add_argument("--papers", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--chunk", type=int, default=500)
    p.add_argument("--floor-sample", type=int, default=2000)
    p.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/paperboy_bench")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    p.add_argument("--seed", type=int, default=7)
    return p.parse_args()


def peak_mb(pid: int) -> float:
    """Peak resident memory of a process and its children (VmHWM), in MB."""
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total = max(total, int(line.split()[1]) / 1024)
        except OSError:
            pass
    return total


def populate(args, rng):
    from django.utils import timezone

    from scraper.models import Paper
    from subscriptions.models import Subscriber, Topic

    now = timezone.now()
    recorded = recorded_papers()
    papers = [
        Paper(
            paper_id=f"2611.{i:05d}",
            title=paper["title"],
            abstract=paper["abstract"],
            authors=paper["authors"],
            organization="Example Lab",
            upvotes=rng.randint(0, 150),
            hf_url=f"https://huggingface.co/papers/2611.{i:05d}",
            arxiv_url=f"https://arxiv.org/abs/2611.{i:05d}",
            pdf_url=f"https://arxiv.org/pdf/2611.{i:05d}",
        )
        for i, paper in enumerate(make_papers(recorded, args.papers, rng))
    ]
    Paper.objects.bulk_create(papers, batch_size=1000)
    queries = make_topics(recorded, 20_000, rng)
    due_at = now - timedelta(minutes=30)
    batch = 5000
    for start in range(0, args.subscribers, batch):
        subs = Subscriber.objects.bulk_create(
            [
                Subscriber(
                    email=f"reader{i}@bench.example.org",
                    status=Subscriber.Status.ACTIVE,
                    confirmed_at=now,
                    next_digest_at=due_at,
                )
                for i in range(start, min(start + batch, args.subscribers))
            ]
        )
        topics = []
        for s in subs:
            for q in set(rng.sample(queries, rng.randint(1, 5))):
                topics.append(Topic(subscriber=s, query=q))
        Topic.objects.bulk_create(topics, batch_size=5000)
    return now


def measure_floor(sample: int, now) -> tuple[float, int]:
    """Rendering plus MIME building alone, one process: digests per second."""
    from digest import services
    from digest.models import Digest
    from digest.selectors import DigestEntry
    from subscriptions.models import Subscriber

    subs = list(
        Subscriber.objects.order_by("pk").prefetch_related("topics", "sources")[: sample * 2]
    )
    matches = services.papers_for_subscribers(
        subscribers=subs, papers=services.recent_papers(now=now)
    )
    work = []
    for s in subs:
        if matches[s.pk] and len(work) < sample:
            d = Digest(
                pk=s.pk,
                subscriber=s,
                period_key="floor",
                subject=services.digest_subject(
                    count=len(matches[s.pk]), top_title=matches[s.pk][0].paper.title
                ),
                more_count=max(0, len(matches[s.pk]) - s.max_papers),
            )
            items = [
                DigestEntry(m.paper, r, m.topics, sorted(m.terms))
                for r, m in enumerate(matches[s.pk], 1)
            ]
            work.append((d, items, s))
    start = time.perf_counter()
    size = 0
    for d, items, s in work:
        size += len(services.digest_message(d, items, s).message().as_bytes())
    elapsed = time.perf_counter() - start
    return len(work) / elapsed, size // max(1, len(work))


def main():
    args = parse_args()
    rng = random.Random(args.seed)
    stats_file = Path(tempfile.mkstemp(suffix=".json")[1])
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": args.database,
        "REDIS_URL": args.redis,
        "EMAIL_URL": f"smtp://127.0.0.1:{port}",
        "DIGEST_CHUNK_SIZE": str(args.chunk),
        "SITE_URL": "https://paperboy.example.org",
        "SECURE_SSL_REDIRECT": "false",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("ANYMAIL_ESP", None)
    os.environ.update(env)
    reset_database(args.database)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.backends.signals import connection_created
    from django.db.models import Max
    from django.utils import timezone

    from config.celery import app, collect_garbage_less_often
    from digest import services, tasks
    from digest.models import Digest

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    now = populate(args, rng)
    settle_database()
    print(
        f"populated {args.subscribers} subscribers in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )
    t0 = time.perf_counter()
    collect_garbage_less_often()  # as in the workers
    floor, message_bytes = measure_floor(args.floor_sample, now)
    print(f"floor measured in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    print(f"floor: {floor:.0f} digests/s, {message_bytes} bytes per message", file=sys.stderr)

    sink = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "smtp_sink.py"), str(port), str(stats_file)],
        stdout=subprocess.PIPE,
    )
    sink.stdout.readline()
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    subprocess.run(
        [*celery, "purge", "-f", "-Q", "mail,celery"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    workers = [
        subprocess.Popen(
            [
                *celery,
                "worker",
                "-Q",
                "mail,celery",
                "--concurrency",
                "1",
                "--pool",
                "solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"bench{i}@%h",
                "--loglevel",
                "WARNING",
            ],
            env=env,
            cwd=ROOT,
        )
        for i in range(args.workers)
    ]
    time.sleep(3)  # workers connect

    # Queries per digest: one chunk in this process, counted, before the workers' run; the
    # sender threads' queries too (each thread has its own connection).
    ids = services.subscribers_due(now=now)
    probe_ids, ids = ids[: args.chunk], ids[args.chunk :]
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    def count_on(connection, **kwargs):
        connection.execute_wrappers.append(count)

    connection_created.connect(count_on)
    try:
        with connection.execute_wrapper(count):
            probe = services.digests_send_chunk(subscriber_ids=probe_ids, now=now)
    finally:
        connection_created.disconnect(count_on)
    probe_run = Digest.objects.filter(subscriber_id=probe_ids[0]).values_list("run_id", flat=True)[
        0
    ]
    queries_per_digest = len(queries) / max(1, len(probe_ids))

    print(f"probe chunk sent; {len(ids)} subscribers to the workers", file=sys.stderr)
    app.conf.task_always_eager = False
    started = timezone.now()
    for chunk in services.chunked(ids, args.chunk):
        tasks.send_digest_chunk.delay(chunk, now.isoformat(), None)
    # The run ends at the last digest settled, read from the rows the workers wrote: checking
    # for the end costs the machine a count over the table, so it is done only every 2 s.
    settled = ("sent", "empty", "failed")
    while Digest.objects.filter(status__in=settled).count() < args.subscribers:
        time.sleep(2)
        if (timezone.now() - started).total_seconds() > 3600:
            raise SystemExit("the run did not finish within an hour")
    last = Digest.objects.exclude(run_id=probe_run).aggregate(
        sent=Max("sent_at"), created=Max("created_at")
    )
    wall = (max(t for t in last.values() if t) - started).total_seconds()
    print(f"run finished in {wall:.1f}s", file=sys.stderr)

    peaks = [peak_mb(w.pid) for w in workers]
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait(30)
    sink.send_signal(signal.SIGTERM)
    sink.wait(30)
    stats = json.loads(stats_file.read_text())
    stats_file.unlink()

    # Time per digest: each chunk's span (first reserved to last sent) over its digests.
    spans = collections.defaultdict(list)
    for run_id, created, sent_at in (
        Digest.objects.filter(status="sent")
        .exclude(run_id=probe_run)
        .values_list("run_id", "created_at", "sent_at")
    ):
        spans[run_id].append((created, sent_at))
    per_digest = [
        (max(s for _, s in rows) - min(c for c, _ in rows)).total_seconds() * 1000 / len(rows)
        for rows in spans.values()
    ]
    sent = Digest.objects.filter(status="sent").count()
    doubled = sum(1 for n in stats["recipients"].values() if n > 1)
    result = {
        "benchmark": "delivery",
        "subscribers": args.subscribers,
        "due": args.subscribers,
        "with_papers": sent,
        "sink_received": stats["messages"],
        "exactly_once": stats["messages"] == sent and doubled == 0,
        "digests_per_s": round((args.subscribers - len(probe_ids)) / wall, 1),
        "floor_digests_per_s": round(floor, 1),
        "p50_ms": round(statistics.median(per_digest), 2) if per_digest else None,
        "p95_ms": round(statistics.quantiles(per_digest, n=20)[-1], 2)
        if len(per_digest) > 1
        else None,
        "peak_mb": round(max(peaks), 1),
        "bench_process_peak_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
        "queries_per_digest": round(queries_per_digest, 2),
        "seconds": round(wall, 1),
        "workers": args.workers,
        "message_bytes": message_bytes,
    }
    print(f"probe chunk: {probe}", file=sys.stderr)
    sent_to = set(Digest.objects.filter(status="sent").values_list("subscriber__email", flat=True))
    missing = sorted(sent_to - set(stats["recipients"]))
    if missing:
        print(f"sent but not received: {len(missing)}, e.g. {missing[:5]}", file=sys.stderr)
    print(json.dumps(result))
    return 0 if result["exactly_once"] else 1


if __name__ == "__main__":
    os.setpgrp()  # so a failed run can take its sink and workers down with it
    try:
        sys.exit(main())
    except BaseException:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.killpg(0, signal.SIGTERM)
        raise
