"""The one HTTP boundary of the scraper: every fetch goes through `fetch`.

It behaves like a good citizen: one shared connection pool, connect and read timeouts, a
User-Agent naming Paperboy and a contact URL, compression, a size limit on bodies, bounded
redirects, retries with exponential backoff and jitter (honouring Retry-After) on connection
errors, 5xx and 429, conditional GET, a minimum delay between requests to one host (shared by
every process through the cache), and robots.txt. The knobs are the SCRAPER_* settings."""

import email.utils
import hashlib
import logging
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

ROBOTS_AGENT = "Paperboy"
REDIRECTS = {301, 302, 303, 307, 308}


class FetchError(Exception):
    """A fetch that failed; `permanent` says whether retrying later can help. `status` is the
    HTTP status when there was one; `retry_after` the seconds a server asked us to wait."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after


class _Transient(FetchError):
    """One attempt failed in a way the next attempt may not."""


@dataclass
class Response:
    url: str
    status_code: int
    content_type: str
    body: bytes
    etag: str = ""
    last_modified: str = ""
    location: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status_code == 304


def user_agent() -> str:
    return f"Paperboy/0.1 (+{settings.PAPERBOY_CONTACT_URL})"


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def shared_client() -> httpx.Client:
    """The process's one httpx client, so connections to a host are pooled and reused.
    Timeouts and headers are set per request, from the settings of the moment."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(
                follow_redirects=False,  # followed in `fetch`, each hop checked and throttled
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            )
        return _client


def close_shared_client() -> None:
    global _client
    with _client_lock:
        if _client is not None:
            _client.close()
            _client = None


def _timeout() -> httpx.Timeout:
    read = settings.SCRAPER_READ_TIMEOUT
    return httpx.Timeout(read, connect=settings.SCRAPER_CONNECT_TIMEOUT, write=read, pool=read)


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "User-Agent": user_agent(),
        "Accept-Encoding": "gzip, deflate, br",
        "Accept": "text/html, application/json, application/atom+xml, application/rss+xml, "
        "application/xml;q=0.9, */*;q=0.5",
        **(extra or {}),
    }


# --- Politeness: a minimum delay per host, across processes -------------------------------

_local_next: dict[str, float] = {}
_local_lock = threading.Lock()


def host_delay(host: str) -> float:
    """Seconds between two requests to `host`: SCRAPER_HOST_DELAYS (a domain covers its
    subdomains), else SCRAPER_HOST_DELAY_SECONDS; a longer robots.txt Crawl-delay wins."""
    host = host.lower()
    delay = settings.SCRAPER_HOST_DELAY_SECONDS
    for domain, seconds in settings.SCRAPER_HOST_DELAYS.items():
        if host == domain or host.endswith("." + domain):
            delay = seconds
            break
    crawl_delay = _safe_cache_get(f"scraper:crawl-delay:{host}")
    return max(delay, min(float(crawl_delay or 0), 60.0))


def _safe_cache_get(key: str):
    try:
        return cache.get(key)
    except Exception:  # the cache is an optimisation here; Redis being down must not stop us
        logger.warning("cache unavailable reading %s", key, exc_info=True)
        return None


@contextmanager
def _cache_mutex(key: str, *, wait: float = 10.0):
    """A short cross-process critical section on the cache (Redis SET NX)."""
    deadline = time.monotonic() + wait
    acquired = False
    try:
        while not (acquired := cache.add(key, 1, timeout=10)) and time.monotonic() < deadline:
            time.sleep(0.005)
    except Exception:
        logger.warning("cache unavailable for %s; pacing this process only", key, exc_info=True)
    try:
        yield
    finally:
        if acquired:
            try:
                cache.delete(key)
            except Exception:
                logger.warning("cache unavailable releasing %s", key, exc_info=True)


def wait_turn(host: str) -> float:
    """Block until `host` may be asked again; returns the seconds waited. Each caller reserves
    the next free slot, so requests from every worker process are spaced by `host_delay`."""
    delay = host_delay(host)
    if delay <= 0:
        return 0.0
    key = f"scraper:host-next:{host.lower()}"
    with _cache_mutex(f"scraper:host-lock:{host.lower()}"):
        now = time.time()
        with _local_lock:
            next_at = max(_safe_cache_get(key) or 0.0, _local_next.get(host, 0.0))
            start = max(now, next_at)
            _local_next[host] = start + delay
        try:
            cache.set(key, start + delay, timeout=int(delay) + 60)
        except Exception:
            logger.warning("cache unavailable writing %s", key, exc_info=True)
    if start > now:
        time.sleep(start - now)
    return max(0.0, start - now)


# --- One request ---------------------------------------------------------------------------


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _read_body(response: httpx.Response, url: str) -> bytes:
    limit = settings.SCRAPER_MAX_BYTES
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FetchError(
            f"body of {url} is {int(declared):,} bytes, over the {limit:,}-byte limit "
            "(SCRAPER_MAX_BYTES)",
            permanent=True,
            status=response.status_code,
        )
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:  # counts decompressed bytes, so a zip bomb stops here too
            raise FetchError(
                f"body of {url} is over the {limit:,}-byte limit (SCRAPER_MAX_BYTES)",
                permanent=True,
                status=response.status_code,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _get_once(http: httpx.Client, url: str, headers: dict[str, str]) -> Response:
    host = urlsplit(url).hostname or ""
    try:
        with http.stream("GET", url, headers=headers, timeout=_timeout()) as response:
            status = response.status_code
            if status == 304 or status in REDIRECTS:
                return Response(
                    url=str(response.url),
                    status_code=status,
                    content_type=response.headers.get("content-type", ""),
                    body=b"",
                    etag=response.headers.get("etag", ""),
                    last_modified=response.headers.get("last-modified", ""),
                    location=response.headers.get("location", ""),
                )
            if status == 429 or status >= 500 or status == 408:
                raise _Transient(
                    f"HTTP {status} {response.reason_phrase} from {url}".replace("  ", " "),
                    status=status,
                    retry_after=_retry_after(response.headers.get("retry-after")),
                )
            if status >= 400:
                raise FetchError(
                    f"HTTP {status} {response.reason_phrase} from {url}".replace("  ", " "),
                    permanent=True,
                    status=status,
                )
            body = _read_body(response, url)
            return Response(
                url=str(response.url),
                status_code=status,
                content_type=response.headers.get("content-type", ""),
                body=body,
                etag=response.headers.get("etag", ""),
                last_modified=response.headers.get("last-modified", ""),
            )
    except FetchError:
        raise
    except httpx.ConnectTimeout as err:
        raise _Transient(
            f"timed out connecting to {host} after {settings.SCRAPER_CONNECT_TIMEOUT:g} s"
        ) from err
    except httpx.TimeoutException as err:
        raise _Transient(
            f"timed out reading {url}: nothing for {settings.SCRAPER_READ_TIMEOUT:g} s "
            "(SCRAPER_READ_TIMEOUT)"
        ) from err
    except httpx.ConnectError as err:
        reason = str(err) or type(err).__name__
        if any(s in reason for s in ("name resolution", "not known", "nodename nor servname")):
            reason += " (the name does not resolve: is the network up?)"
        raise _Transient(f"could not connect to {host}: {reason}") from err
    except (httpx.RemoteProtocolError, httpx.ReadError) as err:
        raise _Transient(f"connection to {host} broke off while reading {url}: {err}") from err
    except httpx.DecodingError as err:
        raise FetchError(f"could not decompress the body of {url}: {err}", permanent=True) from err
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as err:
        raise FetchError(f"cannot fetch {url!r}: {err}", permanent=True) from err
    except httpx.HTTPError as err:
        raise _Transient(f"could not fetch {url}: {type(err).__name__}: {err}") from err


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter for retry number `attempt` (0-based); at least what
    the server asked for in Retry-After."""
    ceiling = min(
        settings.SCRAPER_BACKOFF_MAX_SECONDS, settings.SCRAPER_BACKOFF_SECONDS * 2**attempt
    )
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


def _get_with_retries(url: str, headers: dict[str, str]) -> Response:
    attempts = settings.SCRAPER_RETRIES + 1
    host = urlsplit(url).hostname or ""
    http = shared_client()  # built (CA bundle loaded) before our turn, not during it
    for attempt in range(attempts):
        wait_turn(host)
        try:
            return _get_once(http, url, headers)
        except _Transient as err:
            if attempt + 1 == attempts:
                raise FetchError(
                    f"{err} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})",
                    status=err.status,
                    retry_after=err.retry_after,
                ) from err.__cause__
            if err.retry_after and err.retry_after > settings.SCRAPER_RETRY_AFTER_MAX_SECONDS:
                raise FetchError(
                    f"{err}: the server asks us to come back in {err.retry_after:.0f} s, longer "
                    "than we wait within a run (SCRAPER_RETRY_AFTER_MAX_SECONDS)",
                    status=err.status,
                    retry_after=err.retry_after,
                ) from err
            delay = backoff_delay(attempt, err.retry_after)
            logger.info("retrying %s in %.2f s: %s", url, delay, err)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _follow(url: str, headers: dict[str, str], *, check_robots: bool) -> Response:
    hops = [url]
    for _ in range(settings.SCRAPER_MAX_REDIRECTS + 1):
        current = hops[-1]
        if check_robots and not robots_exempt(current):
            robots_check(current)
        response = _get_with_retries(current, headers)
        if response.status_code not in REDIRECTS:
            return response
        if not response.location:
            raise FetchError(
                f"HTTP {response.status_code} from {current} without a Location",
                permanent=True,
                status=response.status_code,
            )
        target = urljoin(current, response.location)
        if target in hops:
            chain = " → ".join([*hops, target])
            raise FetchError(f"redirect loop: {chain}", permanent=True, status=response.status_code)
        if urlsplit(target).scheme not in ("http", "https"):
            raise FetchError(f"{current} redirects to {target!r}: not http(s)", permanent=True)
        hops.append(target)
    raise FetchError(
        f"too many redirects from {url}: more than {settings.SCRAPER_MAX_REDIRECTS} "
        "(SCRAPER_MAX_REDIRECTS)",
        permanent=True,
    )


def fetch(url: str, *, etag: str = "", last_modified: str = "") -> Response:
    """GET `url` politely; with `etag` / `last_modified` a conditional GET whose 304 comes
    back as a Response with `not_modified` and no body. Raises FetchError, whose message says
    what went wrong in words an operator can act on, and whose `permanent` says whether the
    same request can succeed later."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"cannot fetch {url!r}: not an absolute http(s) URL", permanent=True)
    conditional = {}
    if etag:
        conditional["If-None-Match"] = etag
    if last_modified:
        conditional["If-Modified-Since"] = last_modified
    return _follow(url, _headers(conditional), check_robots=settings.SCRAPER_RESPECT_ROBOTS)


# --- robots.txt ------------------------------------------------------------------------------


def _robots_text(origin: str) -> str:
    """robots.txt of `origin`, cached. Per RFC 9309: a 4xx means no rules; a 5xx means keep
    off for now, raised as a transient FetchError."""
    key = "scraper:robots:" + hashlib.sha256(origin.encode()).hexdigest()[:32]
    text = _safe_cache_get(key)
    if text is not None:
        return text
    try:
        response = _follow(f"{origin}/robots.txt", _headers(), check_robots=False)
        text = response.body[:512_000].decode("utf-8", "replace")
    except FetchError as err:
        if err.status is not None and 400 <= err.status < 500 and err.status not in (408, 429):
            text = ""
        elif err.status is not None:
            raise FetchError(
                f"robots.txt of {origin} could not be read ({err}); not fetching until it can",
                status=err.status,
                retry_after=err.retry_after,
            ) from err
        else:
            raise
    try:
        cache.set(key, text, timeout=settings.SCRAPER_ROBOTS_CACHE_SECONDS)
    except Exception:
        logger.warning("cache unavailable storing robots.txt of %s", origin, exc_info=True)
    return text


def robots_exempt(url: str) -> bool:
    """Documented machine interfaces (SCRAPER_ROBOTS_EXEMPT: the arXiv API, the Hugging Face
    API) are governed by their own terms of use, which we follow instead: arXiv's robots.txt
    keeps crawlers off /api while its API manual invites programs there, 3 s apart."""
    return url.startswith(tuple(settings.SCRAPER_ROBOTS_EXEMPT))


def robots_check(url: str) -> None:
    """Raise a permanent FetchError if robots.txt keeps Paperboy off `url`; note the host's
    Crawl-delay so `wait_turn` respects it."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    parser = RobotFileParser()
    parser.parse(_robots_text(origin).splitlines())
    if crawl_delay := parser.crawl_delay(ROBOTS_AGENT):
        try:
            cache.set(f"scraper:crawl-delay:{parts.hostname}", float(crawl_delay), timeout=3600)
        except Exception:
            logger.warning("cache unavailable storing a crawl delay", exc_info=True)
    if not parser.can_fetch(ROBOTS_AGENT, url):
        raise FetchError(
            f"robots.txt of {origin} disallows {url} for {ROBOTS_AGENT}", permanent=True
        )
