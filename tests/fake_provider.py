"""A stand-in for an email provider's HTTP API, served over real HTTP on loopback."""

import json
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from tests.servers import LoopbackHTTPServer


@dataclass
class Request:
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


class FakeProvider(LoopbackHTTPServer):
    """Answers each POST with the next queued (status, body), or a success made by
    `success(request)` when the queue is empty; records every request."""

    def __init__(self, success):
        self.success = success
        self.requests: list[Request] = []
        self.queue: list[tuple[int, dict]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                request = Request(self.path, dict(self.headers), self.rfile.read(length))
                provider.requests.append(request)
                status, body = provider.queue.pop(0) if provider.queue else (200, None)
                payload = json.dumps(body if body is not None else provider.success(request))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return self.base_url


def postmark_success(request: Request) -> dict:
    return {
        "To": request.json()["To"],
        "SubmittedAt": "2026-11-28T12:00:00Z",
        "MessageID": str(uuid.uuid4()),
        "ErrorCode": 0,
        "Message": "OK",
    }


def mailgun_success(request: Request) -> dict:
    return {"id": f"<{uuid.uuid4().hex}@example.org>", "message": "Queued. Thank you."}
