"""Real servers on loopback for the tests: an SMTP sink (aiosmtpd) and an HTTP server."""

import asyncio
import contextlib
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Collector:
    def __init__(self, delay: float = 0.0, pipelining: bool = True):
        self.delay = delay
        self.pipelining = pipelining
        self.messages: list[EmailMessage] = []
        self.envelopes = []
        self.peers = []  # the client address of each message's connection
        self.quits = 0  # connections the client closed politely
        self.lock = threading.Lock()
        self.refuse: dict[str, str] = {}

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        """aiosmtpd reads pipelined commands in order; say so when asked to (RFC 2920)."""
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        self.quits += 1
        return "221 Bye"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)
            self.envelopes.append(envelope)
            self.peers.append(session.peer)
        return "250 Message accepted for delivery"


class SMTPSink:
    """aiosmtpd on 127.0.0.1: every accepted message, parsed, in `messages`. It offers
    PIPELINING, as mail servers do, unless told not to."""

    def __init__(self, delay: float = 0.0, pipelining: bool = True):
        self.collector = _Collector(delay, pipelining)
        self.port = free_port()
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        return list(self.collector.messages)

    def refuse(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        self.collector.refuse[address] = reply

    def clear(self) -> None:
        self.collector.messages.clear()


class RawSMTPServer:
    """A bare SMTP server on 127.0.0.1 (one connection at a time) that keeps every read it
    made from the client, so a test sees which commands arrived together: pipelined ones do.
    It accepts every message and keeps them as bytes in `messages`."""

    def __init__(self, *, pipelining: bool):
        self.pipelining = pipelining
        self.reads: list[bytes] = []
        self.messages: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.listener.close()

    def _serve(self):
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                with client:
                    self._session(client)

    def _session(self, client: socket.socket):
        client.sendall(b"220 raw ESMTP\r\n")
        buffer, data = b"", None
        while chunk := client.recv(65536):
            self.reads.append(chunk)
            buffer += chunk
            while True:
                if data is not None:
                    end = buffer.find(b"\r\n.\r\n")
                    if end < 0:
                        break
                    self.messages.append(buffer[:end])
                    buffer, data = buffer[end + 5 :], None
                    client.sendall(b"250 2.0.0 queued\r\n")
                    continue
                line, found, rest = buffer.partition(b"\r\n")
                if not found:
                    break
                buffer, verb = rest, line[:4].upper()
                if verb == b"EHLO":
                    extensions = b"250-PIPELINING\r\n" if self.pipelining else b""
                    client.sendall(b"250-raw\r\n" + extensions + b"250 8BITMIME\r\n")
                elif verb == b"DATA":
                    data = b""
                    client.sendall(b"354 go ahead\r\n")
                elif verb == b"QUIT":
                    client.sendall(b"221 bye\r\n")
                    return
                else:
                    client.sendall(b"250 OK\r\n")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class LoopbackHTTPServer:
    """A real HTTP server on 127.0.0.1 in a thread, for `with` blocks."""

    def __init__(self, handler):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"


class StaticHTTPServer(LoopbackHTTPServer):
    """Serves the files of one folder."""

    def __init__(self, directory: Path):
        super().__init__(partial(_QuietHandler, directory=str(directory)))

    def url(self, name: str) -> str:
        return self.base_url + name


def text_part(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_part(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()
