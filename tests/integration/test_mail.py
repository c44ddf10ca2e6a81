"""SmtpMailer (smtplib) against the SMTP sandbox over loopback; LoggingMailer, settings and wiring.

A purchase order mail that fails with `maybe_sent` may have reached the supplier all the
same (the sandbox's lost-reply fault records it): the restock flow retries it with the same
Message-ID, and that Message-ID is the key that tells a resend from a second order.
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import pytest

from integrations import wiring
from integrations.documents.purchase_order import (
    PurchaseOrderDocument,
    PurchaseOrderLine,
    render_purchase_order,
    ship_to_lines,
)
from integrations.mail import (
    LoggingMailer,
    MailError,
    MailRefused,
    SmtpMailer,
    TransientMailError,
    build_mailer,
    parse_smtp_url,
)
from integrations.protocols import Email, InvalidEmail
from integrations.sandbox.faults import Faults
from integrations.sandbox.smtp import SmtpSandbox
from integrations.settings import Settings, ShipFrom

USER = "clerk@shop.example"
PASSWORD = "s3cr@t/pa:ss#1"  # every character a URL has to percent-encode
SENDER = "Clerk <clerk@shop.example>"
SUPPLIER = "orders@acme.example"
PDF = render_purchase_order(PurchaseOrderDocument(
    number="PO-20261126-ACME", supplier="Acme Supply", created_at=datetime(2026, 11, 26, tzinfo=UTC),
    currency="USD", lines=[PurchaseOrderLine("ACME-0001", "Widget", 12, Decimal("4.25"))],
    ship_to=ship_to_lines(ShipFrom()),
))
ORDER_MAIL = Email(
    to=SUPPLIER,
    subject="Purchase order PO-20261126-ACME",
    body="Hello,\n\nplease find our purchase order attached.\n.\nA line that was a lone dot stays one.\n",
    message_id="<po-PO-20261126-ACME@clerk>",
    attachments=[("PO-20261126-ACME.pdf", "application/pdf", PDF)],
)


@pytest.fixture(scope="module")
def _served() -> Iterator[SmtpSandbox]:
    with SmtpSandbox(credentials=(USER, PASSWORD)) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(_served: SmtpSandbox) -> SmtpSandbox:
    """A sandbox that requires AUTH, shared by the module and reset for each test."""
    _served.reset()
    return _served


def _url(sandbox: SmtpSandbox, user: str | None = USER, password: str = PASSWORD, query: str = "") -> str:
    login = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
    return sandbox.url.replace("smtp://", f"smtp://{login}") + query


def _mailer(url: str, timeout: float = 5.0) -> SmtpMailer:
    return SmtpMailer(url, SENDER, timeout=timeout, local_hostname="clerk.test")


def _mail(n: int) -> Email:
    return Email(SUPPLIER, f"Purchase order PO-{n}", "See attached.", f"<po-PO-{n}@clerk>")


def _closed_port() -> int:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assert_no_secret(exc: BaseException, *texts: str) -> None:
    shown = "".join(traceback.format_exception(exc)) + repr(exc) + "".join(texts)
    for secret in (PASSWORD, quote(PASSWORD, safe="")):
        assert secret not in shown


# -- over the wire ------------------------------------------------------------------------------


def test_purchase_order_mail_arrives_with_its_headers_and_pdf(
    sandbox: SmtpSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="clerk.mail")
    before = datetime.now(UTC).replace(microsecond=0)
    assert _mailer(_url(sandbox)).send(ORDER_MAIL) == ORDER_MAIL.message_id
    (received,) = sandbox.messages
    message = received.message
    assert (received.mail_from, received.rcpt_to, received.user) == ("clerk@shop.example", (SUPPLIER,), USER)
    assert (message["From"], message["To"], message["Subject"], message["Message-ID"]) == (
        SENDER, SUPPLIER, ORDER_MAIL.subject, ORDER_MAIL.message_id)
    assert before <= parsedate_to_datetime(message["Date"]) <= datetime.now(UTC)
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == ORDER_MAIL.body
    (attachment,) = message.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content_type()) == ("PO-20261126-ACME.pdf", "application/pdf")
    assert attachment.get_content() == PDF
    assert sandbox.times_received(ORDER_MAIL.message_id) == 1
    assert "@acme.example" in caplog.text and SUPPLIER not in caplog.text


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_with_a_percent_encoded_password(mechanism: str) -> None:
    with SmtpSandbox(credentials=(USER, PASSWORD), auth_mechanisms=(mechanism,)) as sandbox:
        _mailer(_url(sandbox)).send(_mail(1))
        assert [m.user for m in sandbox.messages] == [USER]


def test_a_421_is_transient_and_nothing_is_recorded(sandbox: SmtpSandbox) -> None:
    sandbox.refuse_next()
    mailer = _mailer(_url(sandbox))
    with pytest.raises(TransientMailError) as caught:
        mailer.send(ORDER_MAIL)
    assert (caught.value.code, caught.value.maybe_sent) == (421, False)
    assert sandbox.messages == []
    mailer.send(ORDER_MAIL)  # the retry the flow's task makes
    assert sandbox.times_received(ORDER_MAIL.message_id) == 1
    sandbox.refuse_next(5)
    sandbox.refuse_next(0)  # calls the refusals off
    mailer.send(_mail(2))
    assert sandbox.times_received(_mail(2).message_id) == 1


def test_a_reply_lost_after_data_is_transient_though_the_message_arrived(sandbox: SmtpSandbox) -> None:
    sandbox.drop_after_data_next()
    mailer = _mailer(_url(sandbox))
    with pytest.raises(TransientMailError) as caught:
        mailer.send(ORDER_MAIL)
    assert caught.value.maybe_sent
    assert "may have been delivered" in str(caught.value)
    assert sandbox.times_received(ORDER_MAIL.message_id) == 1
    mailer.send(ORDER_MAIL)
    # Two copies, one Message-ID: the key the supplier's mail system (and Clerk's ledger) deduplicates on.
    assert sandbox.times_received(ORDER_MAIL.message_id) == 2
    assert {m.message_id for m in sandbox.messages} == {ORDER_MAIL.message_id}


def test_a_wrong_password_is_refused_without_being_shown(sandbox: SmtpSandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MailRefused) as caught:
        _mailer(_url(sandbox, password=PASSWORD + "x")).send(ORDER_MAIL)
    assert (caught.value.code, caught.value.setting) == (535, "CLERK_SMTP_URL")
    assert "CLERK_SMTP_URL" in str(caught.value)
    _assert_no_secret(caught.value, caplog.text)
    assert sandbox.messages == []


def test_an_unreachable_server_is_transient_without_showing_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"smtp://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@127.0.0.1:{_closed_port()}"
    mailer = _mailer(url)
    with pytest.raises(TransientMailError) as caught:
        mailer.send(ORDER_MAIL)
    assert not caught.value.maybe_sent
    assert "ConnectionRefusedError" in str(caught.value)
    _assert_no_secret(caught.value, caplog.text, repr(mailer), repr(mailer.target))


def test_no_login_where_one_is_required_names_the_url_setting(sandbox: SmtpSandbox) -> None:
    with pytest.raises(MailRefused) as caught:
        _mailer(_url(sandbox, user=None)).send(ORDER_MAIL)
    assert (caught.value.code, caught.value.setting) == (530, "CLERK_SMTP_URL")


def test_starttls_asked_for_but_not_offered_is_refused(sandbox: SmtpSandbox) -> None:
    with pytest.raises(MailRefused) as caught:
        _mailer(_url(sandbox, query="?starttls=1")).send(ORDER_MAIL)
    assert caught.value.setting == "CLERK_SMTP_URL" and "STARTTLS" in str(caught.value)
    assert sandbox.messages == []


def test_an_unknown_mailbox_is_refused_naming_only_its_domain() -> None:
    with SmtpSandbox(mailboxes={SUPPLIER}) as sandbox:
        mailer = _mailer(sandbox.url)
        with pytest.raises(MailRefused) as caught:
            mailer.send(Email("nobody@acme.example", "Purchase order", "x", "<po-x@clerk>"))
        mailer.send(_mail(1))
        assert [m.rcpt_to for m in sandbox.messages] == [(SUPPLIER,)]
    assert (caught.value.code, caught.value.setting) == (550, None)
    assert "recipient at acme.example" in str(caught.value) and "nobody@" not in str(caught.value)


def test_a_server_too_slow_to_answer_is_transient() -> None:
    with SmtpSandbox(faults=Faults(timeout_rate=1.0, timeout_seconds=1.0)) as sandbox:
        with pytest.raises(TransientMailError) as caught:
            _mailer(sandbox.url, timeout=0.5).send(ORDER_MAIL)
        assert "timed out" in str(caught.value) and not caught.value.maybe_sent
        assert sandbox.messages == []


def test_retrying_through_seeded_faults_delivers_every_mail_with_duplicates_only_from_lost_replies() -> None:
    faults = Faults.uniform(0.5, seed=3, timeout_seconds=1.5)
    with SmtpSandbox(faults=faults) as sandbox:
        mailer = _mailer(sandbox.url, timeout=0.5)
        maybe_sent = 0
        for n in range(12):
            for _attempt in range(30):
                try:
                    mailer.send(_mail(n))
                    break
                except TransientMailError as exc:
                    maybe_sent += exc.maybe_sent
        counts = [sandbox.times_received(_mail(n).message_id) for n in range(12)]
    assert set(faults.injected) == {"error", "timeout", "throttle", "malformed", "drop"}
    assert all(count >= 1 for count in counts)
    assert sum(counts) - 12 == faults.injected["drop"] == maybe_sent


def test_sandbox_speaks_smtp_by_hand() -> None:
    with SmtpSandbox() as sandbox, socket.create_connection(("127.0.0.1", int(sandbox.url.rsplit(":", 1)[1]))) as sock:
        stream = sock.makefile("rwb")

        def say(line: bytes) -> bytes:
            stream.write(line + b"\r\n")
            stream.flush()
            return stream.readline()

        assert stream.readline().startswith(b"220 ")
        assert say(b"MAIL FROM:<a@b.example>").startswith(b"503")  # no greeting yet
        assert say(b"HELO me").startswith(b"250")
        assert say(b"NOOP").startswith(b"250")
        assert say(b"RCPT TO:<x@y.example>").startswith(b"503")
        assert say(b"MAIL FROM:<a@b.example>").startswith(b"250")
        assert say(b"RSET").startswith(b"250")
        assert say(b"DATA").startswith(b"503")
        assert say(b"MAIL FROM:<a@b.example>").startswith(b"250")
        assert say(b"RCPT TO:<x@y.example>").startswith(b"250")
        assert say(b"DATA").startswith(b"354")
        stream.write(b"Message-ID: <m1@test>\r\nSubject: hi\r\n\r\n..leading dot\r\nend\r\n.\r\n")
        stream.flush()
        assert stream.readline().startswith(b"250")
        assert say(b"VRFY x").startswith(b"502")
        assert say(b"QUIT").startswith(b"221")
    (received,) = sandbox.messages
    assert received.raw.endswith(b"\r\n.leading dot\r\nend\r\n")  # dot-unstuffed
    assert sandbox.times_received("<m1@test>") == 1


# -- settings, the log, wiring ------------------------------------------------------------------


def test_without_an_smtp_url_mail_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    mailer = build_mailer(Settings(smtp_url=None, smtp_from=None))
    assert isinstance(mailer, LoggingMailer)
    assert isinstance(build_mailer(Settings(smtp_url="  ", smtp_from=None)), LoggingMailer)
    with caplog.at_level(logging.INFO, logger="clerk.mail"):
        assert mailer.send(ORDER_MAIL) == ORDER_MAIL.message_id
    assert "mail only logged" in caplog.text
    for shown in ("@acme.example", ORDER_MAIL.subject, ORDER_MAIL.message_id, "PO-20261126-ACME.pdf"):
        assert shown in caplog.text
    assert SUPPLIER not in caplog.text and "please find" not in caplog.text


def test_an_smtp_url_without_a_sender_names_the_from_setting() -> None:
    with pytest.raises(MailError) as caught:
        build_mailer(Settings(smtp_url="smtp://127.0.0.1:2525", smtp_from=None))
    assert caught.value.setting == "CLERK_SMTP_FROM"
    with pytest.raises(MailError) as caught:
        build_mailer(Settings(smtp_url="smtp://127.0.0.1:2525", smtp_from="Clerk"))
    assert caught.value.setting == "CLERK_SMTP_FROM"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example", ("mail.example", 25, False, False, None, None)),
        ("smtp://mail.example:587?starttls=1", ("mail.example", 587, False, True, None, None)),
        ("SMTPS://u%40shop.example:p%2F%3A%23@mail.example", ("mail.example", 465, True, False, "u@shop.example", "p/:#")),
        ("smtps://u:@[::1]:2465/", ("::1", 2465, True, False, "u", "")),
    ],
)
def test_smtp_urls_are_read(url: str, expected: tuple) -> None:
    target = parse_smtp_url(url)
    assert (target.host, target.port, target.implicit_tls, target.starttls, target.username, target.password) == expected
    if target.password:
        assert target.password not in repr(target) and target.password not in target.redacted_url
        assert target.redacted_url == "smtps://u%40shop.example:***@mail.example:465"


@pytest.mark.parametrize(
    "url",
    [
        "https://u:hunter2@mail.example",
        "smtps://u:hunter2@mail.example?starttls=1",
        "smtp://u:hunter2@mail.example?tls=1",
        "smtp://u:hunter2@mail.example:port",
        "smtp://u:hun#ter2@mail.example",
        "smtp://u:hunter2@mail.example/inbox",
        "smtp://u:hünter2@mail.example",
        "smtp://u@mail.example",
        "smtp://:25",
    ],
)
def test_unusable_smtp_urls_name_the_setting_without_echoing_it(url: str) -> None:
    with pytest.raises(MailError) as caught:
        parse_smtp_url(url)
    assert caught.value.setting == "CLERK_SMTP_URL"
    assert "hunter2" not in str(caught.value) and "ter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"to": "Acme <orders@acme.example>"}, "bad_recipient"),
        ({"to": "orders@acme.example, x@y.example"}, "bad_recipient"),
        ({"to": "orders@localhost"}, "bad_recipient"),
        ({"subject": "PO\r\nBcc: everyone@example.com"}, "bad_subject"),
        ({"message_id": "po-1@clerk"}, "bad_message_id"),
        ({"message_id": "<po 1@clerk>"}, "bad_message_id"),
        ({"attachments": [("po.pdf", "pdf", b"%PDF")]}, "bad_attachment"),
        ({"attachments": [("po.pdf", "application/pdf", "text, not bytes")]}, "bad_attachment"),
    ],
)
def test_an_email_that_cannot_be_sent_names_its_reason(change: dict, reason: str) -> None:
    fields = {"to": SUPPLIER, "subject": "PO", "body": "", "message_id": "<po-1@clerk>", **change}
    with pytest.raises(InvalidEmail) as caught:
        Email(**fields)
    assert caught.value.reason == reason


@pytest.fixture
def fresh_wiring() -> Iterator[None]:
    wiring.reset()
    yield
    wiring.reset()


def test_wiring_builds_the_mailer_from_the_environment(
    fresh_wiring: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLERK_SMTP_URL", raising=False)
    assert isinstance(wiring.mailer(), LoggingMailer)
    with SmtpSandbox() as sandbox:
        monkeypatch.setenv("CLERK_SMTP_URL", sandbox.url)
        monkeypatch.setenv("CLERK_SMTP_FROM", SENDER)
        wiring.reset()
        mailer = wiring.mailer()
        assert mailer is wiring.mailer() and isinstance(mailer, SmtpMailer)
        mailer.send(_mail(7))
        assert sandbox.times_received("<po-PO-7@clerk>") == 1
