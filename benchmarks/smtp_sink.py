"""A counting SMTP sink for benchmarks: speaks just enough ESMTP for smtplib (with PIPELINING,
as mail servers offer it), counts each message and its recipients, and writes its totals as
JSON when it gets SIGTERM. It parses nothing but the commands, so it costs the machine far
less than a full server would.

    python benchmarks/smtp_sink.py PORT STATS_FILE
"""

import asyncio
import collections
import json
import signal
import sys

TERMINATOR = b"\r\n.\r\n"


class Sink:
    def __init__(self):
        self.messages = 0
        self.recipients = collections.Counter()


class SinkProtocol(asyncio.Protocol):
    def __init__(self, sink: Sink):
        self.sink = sink
        self.buf = b""
        self.in_data = False
        self.scan_from = 0
        self.rcpts = []

    def connection_made(self, transport):
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data):
        self.buf += data
        while self.buf:
            if self.in_data:
                end = self.buf.find(TERMINATOR, max(0, self.scan_from - 4))
                if end < 0:
                    self.scan_from = len(self.buf)
                    return
                self.sink.messages += 1
                self.sink.recipients.update(self.rcpts)
                self.buf = self.buf[end + len(TERMINATOR) :]
                self.in_data, self.scan_from, self.rcpts = False, 0, []
                self.transport.write(b"250 2.0.0 queued\r\n")
                continue
            end = self.buf.find(b"\r\n")
            if end < 0:
                return
            line, self.buf = self.buf[:end], self.buf[end + 2 :]
            self.command(line)

    def command(self, line: bytes):
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            self.transport.write(b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
        elif verb == b"MAIL":
            self.rcpts = []
            self.transport.write(b"250 2.1.0 OK\r\n")
        elif verb == b"RCPT":
            address = line.split(b":", 1)[1].strip().split(b" ")[0].strip(b"<>")
            self.rcpts.append(address.decode("utf-8", "replace").lower())
            self.transport.write(b"250 2.1.5 OK\r\n")
        elif verb == b"DATA":
            self.in_data = True
            self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == b"QUIT":
            self.transport.write(b"221 2.0.0 Bye\r\n")
            self.transport.close()
        else:  # RSET, NOOP and the rest
            if verb == b"RSET":
                self.rcpts = []
            self.transport.write(b"250 2.0.0 OK\r\n")


async def main(port: int, stats_file: str):
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SinkProtocol(sink), "127.0.0.1", port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    with open(stats_file, "w") as f:
        json.dump({"messages": sink.messages, "recipients": dict(sink.recipients)}, f)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
