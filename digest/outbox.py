"""The default email backend: keeps every message in the database, to be read at /outbox/
while DEBUG is on, so a local run needs no mail server."""

from django.core.mail.backends.base import BaseEmailBackend

from .models import OutboxMessage


class OutboxBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        for message in email_messages:
            mime = message.message()
            html = next(
                (
                    content
                    for content, kind in getattr(message, "alternatives", [])
                    if kind == "text/html"
                ),
                "",
            )
            OutboxMessage.objects.create(
                from_email=message.from_email,
                to=", ".join(message.recipients()),
                subject=str(mime["Subject"]),
                headers={k: str(v) for k, v in mime.items()},
                text=message.body,
                html=html,
                raw=mime.as_string(),
            )
        return len(email_messages)
