"""`make run`: the web app, a Celery worker and Celery beat in one terminal; Ctrl-C stops all.
Without REDIS_URL, one embedded Redis is started here and shared by the three processes."""

import os
import signal
import subprocess
import sys
import time


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "true")
    import django

    django.setup()
    from django.conf import settings

    if not settings.REDIS_URL:
        from config.embedded_redis import embedded_redis_url

        os.environ["REDIS_URL"] = embedded_redis_url()
    python = sys.executable
    commands = {
        "web": [python, "manage.py", "runserver", os.environ.get("PORT_BIND", "127.0.0.1:8000")],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "celery,scrape,mail",
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
        ],
        "beat": [
            python,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(settings.VAR_DIR / "celerybeat-schedule"),
        ],
    }
    # A SIGTERM (kill, timeout, a process manager) stops everything as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    procs = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}
    print(
        "Paperboy is running on http://127.0.0.1:8000 (outbox: /outbox/). Ctrl-C stops.", flush=True
    )
    try:
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
        failed = [name for name, p in procs.items() if p.poll() is not None]
        print(f"stopped: {', '.join(failed)} exited", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C or SIGTERM (often sent to the whole group) must not cut this short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        from config.embedded_redis import embedded_redis_stop

        embedded_redis_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
