"""Paperboy's SMTP backend (digest.smtp): Django's, pipelining when the server offers it."""

from email import message_from_bytes, policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest import mailer, services
from digest.models import Digest
from tests.factories import make_paper
from tests.servers import RawSMTPServer
from tests.test_digest_sending import due, now  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


def _send_two(port, settings):
    settings.EMAIL_BACKEND = "digest.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    connection = mailer.open_connection()
    try:
        for to in ("ada@example.org", "grace@example.org"):
            message = mailer.build_email(to=to, subject="Hi", text="Hi", html="<p>Hi</p>")
            mailer.send(message, connection)
    finally:
        connection.close()


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_message_goes_out_whole_whether_or_not_the_server_pipelines(pipelining, settings):
    with RawSMTPServer(pipelining=pipelining) as server:
        _send_two(server.port, settings)

    assert len(server.messages) == 2
    assert b"To: grace@example.org" in server.messages[1]
    together = [read for read in server.reads if b"MAIL FROM" in read and b"RCPT TO" in read]
    if pipelining:
        # MAIL, RCPT and DATA in one write: two round trips a message instead of four.
        assert len(together) == 2 and all(b"\r\nDATA\r\n" in read for read in together)
    else:
        assert together == []


def test_a_refused_recipient_fails_alone_and_the_next_message_goes_through(smtp, settings):
    smtp.refuse("gone@example.org", "550 5.1.1 No such user")
    connection = mailer.open_connection()
    try:
        with pytest.raises(mailer.SendError) as refused:
            mailer.send(
                mailer.build_email(to="gone@example.org", subject="a", text="a"), connection
            )
        mailer.send(mailer.build_email(to="ada@example.org", subject="b", text="b"), connection)
    finally:
        connection.close()

    assert refused.value.permanent and not refused.value.connection_lost
    assert [m["To"] for m in smtp.messages] == ["ada@example.org"]
    assert len(set(smtp.collector.peers)) == 1


def test_a_server_closing_mid_run_costs_one_retry_not_the_rest_of_the_chunk(smtp, now):  # noqa: F811
    """A 421 (the server is closing the connection) mid-batch: that digest is retried
    later, and the rest of the chunk goes out over a new connection."""
    make_paper("LoRA adapters")
    for n in range(4):
        due(email=f"reader{n}@example.org", topics=["LoRA"])
    smtp.refuse("reader1@example.org", "421 4.3.2 Service shutting down")

    services.digest_run()

    statuses = dict(Digest.objects.values_list("subscriber__email", "status"))
    assert statuses == {
        "reader0@example.org": "sent",
        "reader1@example.org": "pending",
        "reader2@example.org": "sent",
        "reader3@example.org": "sent",
    }
    assert sorted(m["To"] for m in smtp.messages) == [
        "reader0@example.org",
        "reader2@example.org",
        "reader3@example.org",
    ]
    assert len(set(smtp.collector.peers)) == 2, "a new connection after the 421"


@given(
    subject=st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85"
        ),
        min_size=1,
        max_size=300,
    )
)
def test_any_subject_reaches_the_reader_as_written(subject):
    """Paperboy encodes non-ASCII subjects itself (RFC 2047 words, folded): a mail reader
    decodes them back to the subject, whatever the characters."""
    message = mailer.build_email(to="ada@example.org", subject=subject, text="Hi")
    raw = message.message().as_bytes(linesep="\r\n")

    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert message_from_bytes(raw, policy=policy.default)["Subject"] == mailer.header_safe(subject)


@pytest.mark.django_db(transaction=True)
def test_a_run_sends_from_its_sender_threads_and_records_every_outcome(smtp):
    """Outside a transaction, as in a worker, a chunk is rendered in one thread and sent and
    recorded by others: each reader gets one message, each outcome is in the database."""
    make_paper("LoRA adapters")
    readers = [due(email=f"reader{n}@example.org", topics=["LoRA"]) for n in range(60)]
    smtp.refuse("reader7@example.org", "550 5.1.1 No such user")
    smtp.refuse("reader8@example.org", "451 4.3.0 Mailbox busy")

    services.digest_run()

    statuses = dict(Digest.objects.values_list("subscriber__email", "status"))
    assert statuses.pop("reader7@example.org") == "failed"
    assert statuses.pop("reader8@example.org") == "pending"
    assert set(statuses.values()) == {"sent"} and len(statuses) == len(readers) - 2
    received = sorted(m["To"] for m in smtp.messages if m["To"].startswith("reader"))
    assert received == sorted(statuses)
    assert len(set(smtp.collector.peers)) <= services._Sender.SENDERS
