"""Django's SMTP backend, with a message costing one round trip fewer per step.

EMAIL_URL=smtp://… selects this backend (see settings). It differs from Django's in two ways
that matter when a digest run sends thousands of messages over one connection:

- RFC 2920 PIPELINING: when the server offers it, MAIL FROM, RCPT TO and DATA go out in one
  write and their replies are read together, so a message takes two round trips, not four.
  Every reply is still checked, in order, with smtplib's meaning for each.
- Plain ASCII addresses, nearly every reader's, are not run through the standard library's
  header parser (sanitize_address) on every message; any other address still is.
"""

import smtplib

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend as DjangoEmailBackend

from .mailer import _PLAIN_ADDRESS, _address


class EmailBackend(DjangoEmailBackend):
    def _send(self, email_message):
        recipients = email_message.recipients()
        if not recipients:
            return False
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        from_email = _address(email_message.from_email, encoding)
        recipients = [_address(addr, encoding) for addr in recipients]
        content = email_message.message().as_bytes(linesep="\r\n")
        try:
            if self._can_pipeline(from_email, recipients):
                send_pipelined(self.connection, from_email, recipients, content)
            else:
                self.connection.sendmail(from_email, recipients, content)
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True

    def _can_pipeline(self, from_email: str, recipients: list[str]) -> bool:
        connection = self.connection
        connection.ehlo_or_helo_if_needed()
        return (
            connection.does_esmtp
            and connection.has_extn("pipelining")
            and from_email.isascii()
            and all(address.isascii() for address in recipients)
        )


def send_pipelined(connection: smtplib.SMTP, sender: str, recipients: list[str], content: bytes):
    """smtplib.SMTP.sendmail over PIPELINING: the same checks and exceptions, fewer waits.
    Addresses are ASCII (the caller makes sure)."""
    options = f" SIZE={len(content)}" if connection.has_extn("size") else ""
    commands = [
        f"MAIL FROM:{_quoted(sender)}{options}",
        *(f"RCPT TO:{_quoted(address)}" for address in recipients),
        "DATA",
    ]
    if any("\r" in command or "\n" in command for command in commands):
        raise ValueError(f"an address contains a line break: {commands!r}")
    connection.send("".join(f"{command}\r\n" for command in commands))
    # Every command gets a reply, whatever happened to the ones before it.
    mail_reply = connection.getreply()
    rcpt_replies = [connection.getreply() for _ in recipients]
    data_code, data_reply = connection.getreply()
    if data_code == 354 and (
        mail_reply[0] != 250 or all(code not in (250, 251) for code, _ in rcpt_replies)
    ):
        # A server that should have refused DATA: end the empty message it now expects.
        connection.send(b".\r\n")
        data_code, data_reply = connection.getreply()
        data_code = data_code if data_code != 250 else 554
    if mail_reply[0] != 250:
        _abandon(connection, mail_reply[0])
        raise smtplib.SMTPSenderRefused(*mail_reply, sender)
    refused = {
        address: reply
        for address, reply in zip(recipients, rcpt_replies, strict=True)
        if reply[0] not in (250, 251)
    }
    if any(code == 421 for code, _ in refused.values()):
        connection.close()
        raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(recipients):
        _abandon(connection, data_code)
        raise smtplib.SMTPRecipientsRefused(refused)
    if data_code != 354:
        _abandon(connection, data_code)
        raise smtplib.SMTPDataError(data_code, data_reply)
    connection.send(_data(content))
    code, reply = connection.getreply()
    if code != 250:
        _abandon(connection, code)
        raise smtplib.SMTPDataError(code, reply)
    return refused


def _quoted(address: str) -> str:
    """smtplib.quoteaddr (which parses the address) for all but plain addresses."""
    return f"<{address}>" if _PLAIN_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)


def _data(content: bytes) -> bytes:
    """The message as DATA sends it: lines starting with a dot get another (RFC 5321
    4.5.2), then the end marker. smtplib's regex for the dots costs more than the rest of the
    SMTP exchange; most messages have no such line."""
    if content.startswith(b".") or b"\n." in content:
        content = smtplib._quote_periods(content)
    if not content.endswith(b"\r\n"):
        content += b"\r\n"
    return content + b".\r\n"


def _abandon(connection: smtplib.SMTP, code: int) -> None:
    """After a refusal, as smtplib does: a 421 means the server is closing; otherwise RSET."""
    if code == 421:
        connection.close()
    else:
        connection._rset()
