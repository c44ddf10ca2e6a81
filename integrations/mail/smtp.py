"""Mail over SMTP with the standard library: `CLERK_SMTP_URL` read, the message built, one attempt.

The URL is `smtp://[user:password@]host[:port][?starttls=1]` (port 25 by default) or
`smtps://[user:password@]host[:port]` (TLS from the first byte, port 465 by default). User
and password are percent-encoded in the URL (`@` as `%40`, `#` as `%23`) and sent with AUTH.
`?starttls=1` upgrades a plain connection with STARTTLS and fails if the server does not
offer it: a server that "forgets" STARTTLS is how a password gets sent in clear. Without it,
an `smtp://` connection stays in plain text, which suits a relay on the same host only.

`SmtpMailer.send` makes one attempt and sorts failures: `TransientMailError` when another
attempt may succeed, `MailRefused` when it will not. Neither message carries the password,
the URL or a full address; only `host:port` and the server's reply, redacted.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from domain.redact import redact
from integrations.mail.logged import summary
from integrations.protocols import Email, UpstreamError

log = logging.getLogger("clerk.mail")

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_YES, _NO = ("1", "true", "yes"), ("0", "false", "no")
_URL_SHAPE = "smtp://[user:password@]host[:port][?starttls=1] or smtps://[user:password@]host[:port]"
_REPLY_LIMIT = 200
_SMTP_POLICY = policy.SMTP  # CRLF line ends: smtplib sends bytes as they are
# What the session was doing when it failed, as messages name it.
_STAGES = {"connect": "greeting", "hello": "greeting", "auth": "login", "mail": "sender",
           "rcpt": "recipient", "data": "message"}


class MailError(UpstreamError):
    """Mail could not be handed over, or the mail settings cannot work.

    Attributes:
        code: The SMTP reply code behind the failure, when the server gave one.
        setting: The CLERK_* variable to fix, when the failure is ours to fix.
    """

    def __init__(self, message: str, code: int | None = None, setting: str | None = None):
        super().__init__(message, setting=setting)
        self.code = code


class TransientMailError(MailError):
    """Another attempt may succeed: a 4xx reply, a refused or dropped connection, a timeout.

    Attributes:
        maybe_sent: The failure came after the message was handed over (the final reply
            was lost), so the server may have accepted it. Retry with the same Message-ID:
            it is the key that tells a duplicate from a new message.
    """

    def __init__(self, message: str, code: int | None = None, maybe_sent: bool = False):
        super().__init__(message, code=code)
        self.maybe_sent = maybe_sent


class MailRefused(MailError):
    """The server refused for good (a 5xx reply), or cannot be used as configured."""


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to connect, read from CLERK_SMTP_URL."""

    host: str
    port: int
    implicit_tls: bool  # smtps://
    starttls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        """`host:port`, for messages."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def redacted_url(self) -> str:
        """The URL with the password masked."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = f"{quote(self.username, safe='')}:***@" if self.username else ""
        return f"{scheme}://{user}{self.where}{'?starttls=1' if self.starttls else ''}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """Reads CLERK_SMTP_URL. Error messages never repeat the URL: it may hold a password.

    Raises:
        MailError: the URL cannot be used (setting CLERK_SMTP_URL).
    """
    def bad(problem: str) -> MailError:
        return MailError(f"CLERK_SMTP_URL {problem}; expected {_URL_SHAPE}", setting="CLERK_SMTP_URL")

    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise bad("has an unknown scheme")
    if parts.fragment or parts.path not in ("", "/"):
        raise bad("has a path or a '#' (percent-encode '/' and '#' in user and password)")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise bad("has a port that is not a number (percent-encode ':' in user and password)") from None
    if not parts.hostname:
        raise bad("names no host")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if (username is None) != (password is None):
        raise bad("has a user without a password")
    if not (username or "").isascii() or not (password or "").isascii():
        raise bad("has a user or password that is not ASCII, which SMTP AUTH cannot send")
    starttls = False
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name != "starttls" or value.lower() not in _YES + _NO:
            raise bad(f"has an unknown option {name!r}")
        starttls = value.lower() in _YES
    if starttls and scheme == "smtps":
        raise bad("asks for STARTTLS over smtps://, which is TLS already")
    return SmtpTarget(parts.hostname, port, scheme == "smtps", starttls, username, password)


def build_message(email: Email, sender: str, now: datetime | None = None) -> EmailMessage:
    """The MIME message: From, To, Subject, Date and the caller's Message-ID, text body, attachments.

    Args:
        email: What to send.
        sender: The From header (CLERK_SMTP_FROM), e.g. `Clerk <clerk@shop.example>`.
        now: The Date header; the current time by default.
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = email.message_id
    message.set_content(email.body)
    for filename, content_type, content in email.attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message


class SmtpMailer:
    """Sends each email over a fresh SMTP connection (one a night needs no pool)."""

    def __init__(self, url: str, sender: str, *, timeout: float = 30.0, local_hostname: str | None = None):
        """Reads the settings; nothing connects until `send`.

        Args:
            url: CLERK_SMTP_URL (see the module docstring).
            sender: CLERK_SMTP_FROM, a plain address or `Name <address>`; its address is
                also the envelope sender, where bounces go.
            timeout: Seconds to wait for the connection and for each reply.
            local_hostname: The name to greet with; the host's FQDN by default.

        Raises:
            MailError: the URL or the sender cannot be used; `setting` says which.
        """
        self.target = parse_smtp_url(url)
        address = parseaddr(sender)[1]
        if "@" not in address or not address.isascii():
            raise MailError("CLERK_SMTP_FROM is not an email address", setting="CLERK_SMTP_FROM")
        self.sender = sender
        self.envelope_from = address
        self.timeout = timeout
        self.local_hostname = local_hostname

    def __repr__(self) -> str:
        return f"SmtpMailer({self.target.redacted_url!r})"

    def send(self, email: Email) -> str:
        """Hands the email to the server in one attempt.

        Returns:
            The email's Message-ID.

        Raises:
            TransientMailError: another attempt may succeed; see its `maybe_sent`.
            MailRefused: the server refused for good; `setting` names what to fix when
                it is ours (the user and password, the sender).
        """
        data = build_message(email, self.sender).as_bytes(policy=_SMTP_POLICY)
        stage = "connect"
        smtp: smtplib.SMTP | None = None
        try:
            smtp = self._connect()
            stage = "hello"
            smtp.ehlo_or_helo_if_needed()
            if self.target.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo_or_helo_if_needed()  # the session starts over under TLS
            if self.target.username:
                stage = "auth"
                smtp.login(self.target.username, self.target.password or "")
            stage = "mail"
            _expect_ok(*smtp.mail(self.envelope_from))
            stage = "rcpt"
            _expect_ok(*smtp.rcpt(email.to))
            stage = "data"
            _expect_ok(*smtp.data(data))
        except smtplib.SMTPResponseException as exc:
            raise self._replied(stage, exc.smtp_code, exc.smtp_error, email) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise self._unanswered(stage, exc) from None
        except smtplib.SMTPException as exc:  # STARTTLS or AUTH asked for, not offered
            raise MailRefused(f"SMTP server {self.target.where} cannot do what CLERK_SMTP_URL asks: {exc}",
                              setting="CLERK_SMTP_URL") from None
        except ssl.SSLCertVerificationError as exc:
            raise MailRefused(f"the certificate of SMTP server {self.target.where} does not verify "
                              f"({exc.verify_message}): check the host in CLERK_SMTP_URL",
                              setting="CLERK_SMTP_URL") from None
        except OSError as exc:  # refused, reset, timed out, name not resolved, TLS broken
            if smtp is not None:
                smtp.close()  # no QUIT: a server that stopped answering would keep us waiting again
            raise self._unanswered(stage, exc) from None
        finally:
            if smtp is not None and smtp.sock is not None:
                _quit(smtp)
        log.info("mailed %s", summary(email))
        return email.message_id

    def _connect(self) -> smtplib.SMTP:
        target = self.target
        if target.implicit_tls:
            return smtplib.SMTP_SSL(target.host, target.port, self.local_hostname, timeout=self.timeout,
                                    context=ssl.create_default_context())
        return smtplib.SMTP(target.host, target.port, self.local_hostname, timeout=self.timeout)

    def _replied(self, stage: str, code: int, reply: bytes | str, email: Email) -> MailError:
        """The error for a reply that was not a success, by its class (4xx may pass, 5xx will not)."""
        where, detail = self.target.where, f"{code} {_server_text(reply)}"
        if not 500 <= code < 600:  # 4xx, or a reply that is not SMTP at all (code -1)
            return TransientMailError(
                f"SMTP server {where} put off the {_STAGES[stage]} ({detail})",
                code, maybe_sent=stage == "data" and code < 400,
            )
        if code == 530:
            return MailRefused(f"SMTP server {where} requires a login ({detail}): put user:password in CLERK_SMTP_URL",
                               code, setting="CLERK_SMTP_URL")
        if stage == "auth":
            return MailRefused(f"SMTP server {where} refused the login ({detail}): "
                               "check the user and password in CLERK_SMTP_URL", code, setting="CLERK_SMTP_URL")
        if stage == "mail":
            return MailRefused(f"SMTP server {where} refused the sender ({detail}): check CLERK_SMTP_FROM",
                               code, setting="CLERK_SMTP_FROM")
        if stage == "rcpt":
            return MailRefused(f"SMTP server {where} refused the recipient at {email.recipient_domain} ({detail})", code)
        if stage == "data":
            return MailRefused(f"SMTP server {where} refused the message ({detail})", code)
        return MailRefused(f"SMTP server {where} refused the {_STAGES[stage]} ({detail}): check CLERK_SMTP_URL",
                           code, setting="CLERK_SMTP_URL")

    def _unanswered(self, stage: str, exc: BaseException) -> TransientMailError:
        """The error for a connection that failed, was dropped, or timed out at `stage`."""
        # Dropped after the message went out: the server may have queued it before the reply was lost.
        maybe_sent = stage == "data"
        # smtplib reports a read that failed (a timeout among them) as a disconnection.
        reason = exc.__context__ if isinstance(exc, smtplib.SMTPServerDisconnected) and exc.__context__ else exc
        if isinstance(reason, TimeoutError):
            problem = "timed out"
        elif isinstance(reason, smtplib.SMTPServerDisconnected | ConnectionResetError):
            problem = "the server hung up"
        else:
            problem = f"connection failed ({type(reason).__name__})"
        note = "; the message may have been delivered" if maybe_sent else ""
        return TransientMailError(f"SMTP server {self.target.where}: {problem} at the {_STAGES[stage]}{note}",
                                  maybe_sent=maybe_sent)


def _expect_ok(code: int, reply: bytes) -> None:
    # smtplib returns most replies rather than raising: one path for every reply that is not 2xx.
    if not 200 <= code < 300:
        raise smtplib.SMTPResponseException(code, reply)


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()  # the message's fate is already known; a failed goodbye changes nothing


def _server_text(reply: bytes | str) -> str:
    """The server's words, redacted (a refusal may quote the address) and clipped."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    text = redact(" ".join(text.split()))
    return text if len(text) <= _REPLY_LIMIT else text[: _REPLY_LIMIT - 1] + "…"
