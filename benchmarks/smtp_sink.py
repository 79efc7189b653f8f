"""A counting SMTP sink for benchmarks (aiosmtpd): counts each message and its recipients,
and writes its totals as JSON when it gets SIGTERM.

    python benchmarks/smtp_sink.py PORT STATS_FILE
"""

import collections
import json
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class CountingHandler:
    def __init__(self):
        self.messages = 0
        self.recipients = collections.Counter()

    async def handle_DATA(self, server, session, envelope):
        self.messages += 1
        self.recipients.update(address.lower() for address in envelope.rcpt_tos)
        return "250 2.0.0 queued"


def main(port: int, stats_file: str):
    handler = CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    controller.stop()
    with open(stats_file, "w") as f:
        json.dump({"messages": handler.messages, "recipients": dict(handler.recipients)}, f)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
