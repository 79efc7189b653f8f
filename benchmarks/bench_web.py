"""Web benchmark: gunicorn as in the Procfile, on PostgreSQL, rate limits off; a steady load
from a second process on loopback: landing page, sign-up POSTs with their CSRF token,
preferences pages, one-click unsubscribes.

    python benchmarks/bench_web.py [--duration 60] [--rate 220] [--subscribers 2000]

The load is open-loop: requests are started on a fixed schedule (`--rate` per second, spread
over threads), whatever the server's pace, so a slow server shows up as latency and a lower
achieved rate rather than hiding behind fewer requests. Latency is measured from the moment
each request was due to the end of its response. The last line is one JSON object."""

import argparse
import http.client
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import free_port, reset_database  # noqa: E402

MIX = [  # (weight, kind)
    (35, "landing"),
    (20, "signup"),
    (35, "manage"),
    (10, "unsubscribe"),
]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=60.0, help="seconds of measured load")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--rate", type=float, default=220.0, help="requests per second offered")
    p.add_argument("--threads", type=int, default=48)
    p.add_argument("--subscribers", type=int, default=2000)
    p.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 4)))
    p.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/paperboy_webbench")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/10")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--closed",
        action="store_true",
        help="closed loop: each thread sends as fast as it can (finds the server's capacity)",
    )
    p.add_argument("--load", help=argparse.SUPPRESS)  # internal: run as the load process
    return p.parse_args()


def server_env(args, port: int) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": args.database,
        "REDIS_URL": args.redis,
        "RATELIMIT_ENABLE": "false",
        "DEBUG": "false",
        "SECRET_KEY": "bench-web-" + "x" * 40,
        "SITE_URL": f"http://127.0.0.1:{port}",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }


def populate(args, rng) -> dict:
    """Sample papers, and subscribers with a few topics each. Returns their keys and tokens."""
    import django

    django.setup()
    from django.core.cache import cache

    from scraper import parsers, services
    from scraper.models import Source
    from subscriptions.models import Subscriber, Topic
    from subscriptions.selectors import SAMPLE
    from subscriptions.tokens import unsubscribe_token

    cache.clear()
    source = Source.objects.create(
        name="Hugging Face Daily Papers", url="https://huggingface.co/papers", kind="hf_page"
    )
    services.papers_upsert(items=parsers.parse_hf_api(SAMPLE.read_bytes()).papers, source=source)
    words = ["diffusion", "agents", "LLM", "reinforcement learning", '"language model"', "video",
             "safety", "retrieval", "reasoning", "robot", "speech", "3D"]  # fmt: skip
    subscribers = Subscriber.objects.bulk_create(
        [
            Subscriber(email=f"reader{n}@example.org", status="active", confirmed_at=None)
            for n in range(args.subscribers)
        ]
    )
    Topic.objects.bulk_create(
        [
            Topic(subscriber=s, query=q)
            for s in subscribers
            for q in rng.sample(words, rng.randint(1, 4))
        ]
    )
    return {
        "keys": [s.key for s in subscribers],
        "unsubscribe": [unsubscribe_token(s) for s in subscribers],
    }


# --- The load process -------------------------------------------------------------------------


class Client:
    """One keep-alive-less HTTP client (gunicorn's sync workers close every connection)."""

    def __init__(self, port: int):
        self.port = port
        self.cookie = ""
        self.csrf = ""

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, response.getheader("Set-Cookie") or "", data
        finally:
            conn.close()

    def ensure_csrf(self):
        if self.csrf:
            return
        status, cookie, data = self.request("GET", "/")
        match = re.search(r"csrftoken=([^;]+)", cookie)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', data)
        if status != 200 or not match or not token:
            raise RuntimeError(f"no CSRF token from the landing page (status {status})")
        self.cookie, self.csrf = match.group(1), token.group(1).decode()


def one_request(client: Client, kind: str, data: dict, rng: random.Random) -> bool:
    if kind == "landing":
        status, _, _ = client.request("GET", "/")
        return status == 200
    if kind == "signup":
        client.ensure_csrf()
        body = urlencode(
            {
                "csrfmiddlewaretoken": client.csrf,
                "email": f"new-{uuid.uuid4().hex[:12]}@example.org",
                "query": rng.choice(["diffusion", "agents", "LoRA", ""]),
            }
        )
        status, _, page = client.request(
            "POST",
            "/",
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={client.cookie}",
                "Referer": f"http://127.0.0.1:{client.port}/",
            },
        )
        return status == 200 and b"Check your inbox" in page
    if kind == "manage":
        key = rng.choice(data["keys"])
        path = rng.choice(["", "", "schedule/", "history/"])
        status, _, _ = client.request("GET", f"/manage/{key}/{path}")
        return status == 200
    token = rng.choice(data["unsubscribe"])
    status, _, _ = client.request(
        "POST",
        f"/unsubscribe/{token}/",
        body="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return status == 200


def run_load(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    data = spec["data"]
    kinds = [kind for weight, kind in MIX for _ in range(weight)]
    interval = spec["threads"] / spec["rate"]
    start = time.monotonic() + 0.5
    warm_until = start + spec["warmup"]
    end = warm_until + spec["duration"]
    results: list[tuple[str, float, bool, float]] = []
    lock = threading.Lock()

    def worker(n: int):
        rng = random.Random(spec["seed"] * 1000 + n)
        client = Client(spec["port"])
        due = start + interval * n / spec["threads"]
        mine = []
        while due < end:
            now = time.monotonic()
            if spec["closed"]:
                due = max(due, now)
            elif due > now:
                time.sleep(due - now)
            kind = rng.choice(kinds)
            try:
                ok = one_request(client, kind, data, rng)
            except Exception:  # connection refused, timeout: an error, counted
                ok = False
            done = time.monotonic()
            if due >= warm_until:
                mine.append((kind, done - due, ok, done - warm_until))
            due = done if spec["closed"] else due + interval
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(spec["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    Path(spec_path).with_suffix(".out").write_text(json.dumps(results))


# --- Orchestration ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    args = parse_args()
    if args.load:
        run_load(args.load)
        return 0
    rng = random.Random(args.seed)
    port = free_port()
    env = server_env(args, port)
    os.environ.update(env)  # populate() runs Django here, on the same database

    print(f"database {args.database}: reset and migrate", flush=True)
    reset_database(args.database)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    data = populate(args, rng)
    print(f"populated: {args.subscribers} subscribers, sample papers", flush=True)

    gunicorn = Path(sys.executable).with_name("gunicorn")
    # As in the Procfile (access log included), bound to loopback only.
    command = f"{gunicorn} config.wsgi --bind 127.0.0.1:{port} --workers {args.workers}"
    server = subprocess.Popen(
        [*command.split(), "--access-logfile", "-"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _, _ = Client(port).request("GET", "/")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("gunicorn did not come up")
            time.sleep(0.2)
        print(
            f"gunicorn: {args.workers} workers on 127.0.0.1:{port}; load: {args.rate:g} req/s "
            f"offered for {args.duration:g}s (+{args.warmup:g}s warm-up), {args.threads} threads",
            flush=True,
        )
        spec_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_web_{port}.json"
        spec_path.write_text(
            json.dumps(
                {
                    "port": port,
                    "rate": args.rate,
                    "threads": args.threads,
                    "duration": args.duration,
                    "warmup": args.warmup,
                    "seed": args.seed,
                    "closed": args.closed,
                    "data": data,
                }
            )
        )
        subprocess.run([sys.executable, __file__, "--load", str(spec_path)], cwd=ROOT, check=True)
        results = json.loads(spec_path.with_suffix(".out").read_text())
        spec_path.unlink()
        spec_path.with_suffix(".out").unlink()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            _, stderr = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            _, stderr = server.communicate()
        errors_logged = [line for line in stderr.decode().splitlines() if "Error" in line]
        if errors_logged:
            print("server errors:", *errors_logged[:10], sep="\n  ")
        import redis

        redis.Redis.from_url(args.redis).flushdb()  # the confirmation tasks nobody consumed

    latencies = [lat * 1000 for _, lat, _, _ in results]
    errors = sum(1 for _, _, ok, _ in results if not ok)
    # Throughput over the measured window, or longer if the last responses came late.
    elapsed = max([args.duration, *(done for *_, done in results)])
    for kind in [kind for _, kind in MIX]:
        mine = [lat * 1000 for k, lat, _, _ in results if k == kind]
        if mine:
            print(
                f"  {kind:12} {len(mine):6} requests  p50 {statistics.median(mine):6.1f} ms  "
                f"p99 {percentile(mine, 0.99):6.1f} ms"
            )
    summary = {
        "benchmark": "web",
        "rps": round(len(results) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "errors": errors,
        "requests": len(results),
        "offered_rps": args.rate,
        "duration_s": args.duration,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
