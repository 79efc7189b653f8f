"""The one builder for every email Paperboy sends, and the one place that sends them."""

import binascii
import contextlib
import functools
import random
import re
import smtplib
from email.header import Header
from email.utils import formatdate, make_msgid

from django.conf import settings
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.core.mail.message import forbid_multi_line_headers, sanitize_address
from django.template.loader import render_to_string

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


class SendError(Exception):
    """A message that was not accepted; `permanent` says whether a retry could help, and
    `connection_lost` whether the connection must be reopened before the next message."""

    def __init__(self, message: str, *, permanent: bool, connection_lost: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.connection_lost = connection_lost


class Email(EmailMultiAlternatives):
    """An EmailMultiAlternatives whose MIME form (what SMTP and file backends send) is written
    straight to bytes when it is Paperboy's usual text + HTML pair. Python's email generator
    costs more than rendering a whole digest; this writes the same structure (headers made
    safe by Django's own helpers, bodies 8bit or quoted-printable as Django chooses) in a
    fraction of the time.
    Provider backends (anymail) read the message's fields, not its MIME form."""

    _frozen = None

    def freeze(self) -> None:
        """Build the MIME form now, in this thread, and keep it: the message is final. A
        digest run renders in one thread and sends in another (see digest.services._Sender)."""
        self._frozen = self.message()
        self._frozen.as_bytes(linesep="\r\n")

    def message(self):
        if self._frozen is not None:
            return self._frozen
        if self.attachments or len(self.alternatives) != 1 or self.cc or self.reply_to:
            return super().message()
        html, kind = self.alternatives[0]
        if kind != "text/html":
            return super().message()
        encoding = self.encoding or settings.DEFAULT_CHARSET
        headers = [
            ("Subject", _encoded_header(self.subject)),
            ("From", _address(self.extra_headers.get("From", self.from_email), encoding)),
            ("To", ", ".join(_address(to, encoding) for to in self.to)),
        ]
        names = {name.lower() for name in self.extra_headers}
        if "date" not in names:
            headers.append(("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)))
        if "message-id" not in names:
            headers.append(("Message-ID", make_msgid(domain=message_domain())))
        headers += [
            forbid_multi_line_headers(name, value, encoding)
            for name, value in self.extra_headers.items()
            if name.lower() not in {"from", "to", "cc", "reply-to"}
        ]
        return MIMEBytes(headers, text=self.body, html=html, encoding=encoding)


_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+")


def _address(address: str, encoding: str) -> str:
    """sanitize_address, which parses every address with the standard library's header
    parser, for all but the plain ASCII addresses nearly every reader has."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return address
    return _sanitized(address, encoding)


@functools.lru_cache(maxsize=1024)
def _sanitized(address: str, encoding: str) -> str:
    """The sender's address ("Paperboy <digest@…>") comes up in every message."""
    return sanitize_address(address, encoding)


_WORD_BYTES = 45  # UTF-8 bytes per encoded word: "=?utf-8?b?" + 60 base64 + "?=" is 72


def _encoded_header(value: str) -> str:
    """A header value safe to send: as is when ASCII, else RFC 2047 base64 encoded words,
    one per folded line, none splitting a character (the standard library's Header tries
    both encodings, character by character, to pick the shorter: slow for every message).
    Line breaks are refused, as Django refuses them."""
    if "\n" in value or "\r" in value:
        raise BadHeaderError(f"Header values can't contain newlines (got {value!r})")
    if value.isascii():
        return Header(value).encode()
    data = value.encode()
    words, start = [], 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # inside a character
            end -= 1
        words.append(f"=?utf-8?b?{binascii.b2a_base64(data[start:end], newline=False).decode()}?=")
        start = end
    return "\n ".join(words)


def _lines(text: str) -> str:
    """Line breaks as \\n, whatever they were."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


SMTP_LINE_BYTES = 998  # RFC 5322


def _boundary() -> str:
    """A MIME boundary. It need not be secret, only absent from the parts (checked), so it
    comes from `random`: os.urandom, a system call, lets another thread take the GIL."""
    return f"=_{random.getrandbits(128):032x}"


class MIMEBytes:
    """A multipart/alternative message (text, then HTML) with what backends and tests read of
    an email.message.Message: as_bytes(), as_string(), headers by name, items(). Written as
    bytes once; each part is 8bit, as Django sends UTF-8, unless a line is too long for SMTP
    (then quoted-printable)."""

    def __init__(self, headers: list[tuple[str, str]], *, text: str, html: str, encoding: str):
        text, html = (_lines(text), _lines(html))
        boundary = _boundary()
        while boundary in text or boundary in html:
            boundary = _boundary()
        self._headers = [
            *headers,
            ("MIME-Version", "1.0"),
            ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
        ]
        chunks = ["".join(f"{name}: {value}\n" for name, value in self._headers).encode(), b"\n"]
        for subtype, content in (("plain", text), ("html", html)):
            body = content.encode(encoding)
            if max(map(len, body.split(b"\n"))) <= SMTP_LINE_BYTES:
                transfer_encoding = "8bit"
            else:
                transfer_encoding = "quoted-printable"
                body = binascii.b2a_qp(body, istext=True)
            chunks += [
                f"--{boundary}\n"
                f'Content-Type: text/{subtype}; charset="{encoding}"\n'
                f"Content-Transfer-Encoding: {transfer_encoding}\n\n".encode(),
                body,
                b"\n",
            ]
        chunks.append(f"--{boundary}--\n".encode())
        self._bytes = b"".join(chunks)
        self._converted: tuple[str, bytes] = ("\n", self._bytes)

    def __getitem__(self, name: str) -> str | None:
        return self.get(name)

    def get(self, name: str, default=None):
        name = name.lower()
        return next((v for k, v in self._headers if k.lower() == name), default)

    def items(self) -> list[tuple[str, str]]:
        return list(self._headers)

    def as_bytes(self, unixfrom: bool = False, linesep: str = "\n") -> bytes:
        if self._converted[0] != linesep:
            self._converted = (linesep, self._bytes.replace(b"\n", linesep.encode()))
        return self._converted[1]

    def as_string(self, unixfrom: bool = False, linesep: str = "\n") -> str:
        return self.as_bytes(linesep=linesep).decode("utf-8", "surrogateescape")


def header_safe(value: str, limit: int = 250) -> str:
    """Scraped text bound for a header: no line breaks or control characters, bounded."""
    value = " ".join(_CONTROL.sub(" ", value).split())
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def message_domain() -> str:
    return settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip("> ") or "localhost"


def build_email(
    *,
    to: str,
    subject: str,
    template: str = "",
    context: dict | None = None,
    text: str = "",
    html: str = "",
    unsubscribe_url: str = "",
    message_id: str = "",
) -> "Email":
    """One message from emails/<template>.txt and .html (or from `text` and `html` rendered
    by the caller from them; their CSS comes inlined, see email_templates). With
    `unsubscribe_url`, the message carries the RFC 2369 / RFC 8058 one-click headers and a
    List-Id."""
    if template:
        context = {"site_url": settings.SITE_URL, **(context or {})}
        text = render_to_string(f"emails/{template}.txt", context)
        html = render_to_string(f"emails/{template}.html", context)
    headers = {"Message-ID": message_id or make_msgid(domain=message_domain())}
    if unsubscribe_url:
        targets = [f"<{unsubscribe_url}>"]
        if mailto := getattr(settings, "PAPERBOY_UNSUBSCRIBE_MAILTO", ""):
            targets.append(f"<mailto:{mailto}?subject=unsubscribe>")
        headers["List-Unsubscribe"] = ", ".join(targets)
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        headers["List-Id"] = settings.PAPERBOY_LIST_ID
    message = Email(
        subject=header_safe(subject),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers=headers,
    )
    message.attach_alternative(html, "text/html")
    return message


def open_connection():
    """A connection for a batch of messages, opened now: Django closes a connection after
    each send_messages() call that had to open it, so one opened here stays open for all."""
    connection = get_connection(fail_silently=False)
    # When it cannot be opened, the first send tries again and reports why.
    with contextlib.suppress(OSError, smtplib.SMTPException):
        connection.open()
    return connection


def send(message: EmailMultiAlternatives, connection=None) -> str:
    """Send one message, over `connection` (see open_connection) or, without one, over a
    connection opened and closed for it; returns the provider's message id when it gives
    one. Raises SendError, permanent when the recipient was refused for good."""
    from anymail.exceptions import AnymailError, AnymailRecipientsRefused

    try:
        sent = (connection or get_connection(fail_silently=False)).send_messages([message])
    except AnymailRecipientsRefused as err:
        raise SendError(str(err), permanent=True) from err
    except AnymailError as err:
        raise SendError(str(err), permanent=False) from err
    except smtplib.SMTPRecipientsRefused as err:
        codes = [code for code, _ in err.recipients.values()]
        raise SendError(
            f"recipient refused: {err.recipients}",
            permanent=min(codes) >= 500,
            connection_lost=421 in codes,
        ) from err
    except smtplib.SMTPResponseException as err:
        raise SendError(
            f"SMTP {err.smtp_code}: {err.smtp_error!r}",
            permanent=err.smtp_code >= 500,
            connection_lost=err.smtp_code == 421,
        ) from err
    except smtplib.SMTPServerDisconnected as err:
        raise SendError(f"could not send: {err!r}", permanent=False, connection_lost=True) from err
    except (TimeoutError, OSError) as err:
        raise SendError(f"could not send: {err!r}", permanent=False, connection_lost=True) from err
    except smtplib.SMTPException as err:
        raise SendError(f"could not send: {err!r}", permanent=False) from err
    if not sent:
        raise SendError("the backend accepted no message", permanent=False)
    status = getattr(message, "anymail_status", None)
    if status is None:
        return ""
    if status.status and status.status <= {"rejected", "invalid"}:
        raise SendError(
            f"the provider refused the recipient: {status.esp_response}", permanent=True
        )
    return str(status.message_id or "")
