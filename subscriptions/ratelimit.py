"""Fixed-window rate limits kept in the Django cache (Redis when REDIS_URL is set), counted
per email address and per client IP. RATELIMIT_ENABLE=false turns them all off (load tests).

A window is `period` seconds long; the first hit creates the counter with that timeout and
later hits increment it atomically, so a burst can reach at most twice the limit across a
window boundary, which is fine for keeping bots and typos from flooding inboxes."""

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int  # seconds


# scope -> (per address, per client IP)
RATES = {
    "signup": (Rate(5, 600), Rate(30, 600)),
    "link": (Rate(5, 600), Rate(30, 600)),
    "preview_email": (Rate(3, 3600), Rate(10, 3600)),
    "preview": (None, Rate(120, 60)),
}


class RateLimited(Exception):
    def __init__(self, scope: str, retry_after: int):
        super().__init__(scope)
        self.scope = scope
        self.retry_after = retry_after


def client_ip(request) -> str:
    """The client's address; behind a proxy (BEHIND_PROXY), the one it forwarded."""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def _hit(name: str, rate: Rate) -> int | None:
    """Counts one hit; returns the seconds to wait when over the limit, else None."""
    window = int(time.time()) // rate.period
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    key = f"rl:{digest}:{window}"
    if cache.add(key, 1, timeout=rate.period + 1):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=rate.period + 1)
            count = 1
    if count > rate.limit:
        return rate.period - int(time.time()) % rate.period
    return None


def check(request, scope: str, *, email: str = "", subject: str = "") -> None:
    """Count a request in `scope` for its client IP and for the address (or other subject);
    raises RateLimited when either is over its limit."""
    if not settings.RATELIMIT_ENABLE:
        return
    per_subject, per_ip = RATES[scope]
    waits = []
    subject = (email or subject).lower()
    if per_subject and subject:
        waits.append(_hit(f"{scope}:s:{subject}", per_subject))
    if per_ip:
        waits.append(_hit(f"{scope}:ip:{client_ip(request)}", per_ip))
    waits = [w for w in waits if w is not None]
    if waits:
        raise RateLimited(scope, max(waits))
