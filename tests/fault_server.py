"""A real HTTP server on loopback whose answers are scripted per path, to put the scraper's
client through the faults of the real world: slow reads, truncated bodies, 429s, 500s,
redirect loops, huge bodies, 304s. Every request it sees is kept in `requests`."""

import contextlib
import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the status line
    body_delay: float = 0.0  # after the headers, before the body: a read slower than a timeout
    truncate_to: int | None = None  # promise the whole body, send this many bytes, hang up
    stream_bytes: int = 0  # then this many more bytes, in chunks, without a Content-Length
    gzip: bool = False


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    at: float


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection; a body may end at close

    def log_message(self, *args):
        pass

    def do_GET(self):
        server: FaultServer = self.server.fault  # type: ignore[attr-defined]
        server.requests.append(Seen(self.path, dict(self.headers.items()), time.monotonic()))
        reply = server.next_reply(self.path)
        # The client may hang up on purpose (a size limit, a timeout).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send(reply)

    def _send(self, reply: Reply):
        if reply.delay:
            time.sleep(reply.delay)
        body = gzip.compress(reply.body) if reply.gzip else reply.body
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        if reply.gzip:
            self.send_header("Content-Encoding", "gzip")
        if not reply.stream_bytes:
            self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.body_delay:
            time.sleep(reply.body_delay)
        self.wfile.write(body[: reply.truncate_to] if reply.truncate_to is not None else body)
        self.wfile.flush()
        sent = 0
        while sent < reply.stream_bytes:
            chunk = b"x" * min(65536, reply.stream_bytes - sent)
            self.wfile.write(chunk)
            sent += len(chunk)


class FaultServer:
    """Scripts are per path (query string included): each reply is used once, the last one
    for every later request. Unscripted paths (robots.txt among them) answer 404."""

    def __init__(self):
        self.requests: list[Seen] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.fault = self
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def script(self, path: str, *replies: Reply) -> str:
        with self._lock:
            self._scripts[path] = list(replies)
        return self.url(path)

    def next_reply(self, path: str) -> Reply:
        with self._lock:
            replies = self._scripts.get(path)
            if not replies:
                return Reply(status=404, body=b"not found", content_type="text/plain")
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]


def fast_scraper_settings(settings) -> None:
    """Short timeouts and delays, so the fault tests take seconds, not minutes."""
    settings.SCRAPER_CONNECT_TIMEOUT = 0.5
    settings.SCRAPER_READ_TIMEOUT = 0.4
    settings.SCRAPER_RETRIES = 2
    settings.SCRAPER_BACKOFF_SECONDS = 0.01
    settings.SCRAPER_BACKOFF_MAX_SECONDS = 0.05
    settings.SCRAPER_RETRY_AFTER_MAX_SECONDS = 5
    settings.SCRAPER_HOST_DELAY_SECONDS = 0
    settings.SCRAPER_HOST_DELAYS = {}
    settings.SCRAPER_MAX_BYTES = 200_000
    settings.SCRAPER_MAX_REDIRECTS = 5
    settings.SCRAPER_RESPECT_ROBOTS = True
    settings.SCRAPER_ROBOTS_EXEMPT = []
    settings.PAPERBOY_CONTACT_URL = "https://paperboy.example.org/about"
