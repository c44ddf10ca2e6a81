"""A local SMTP server on asyncio that records what it is sent, with injectable faults.

It speaks enough of RFC 5321 for a mail client: EHLO/HELO, AUTH PLAIN and LOGIN (RFC 4954,
offered only when credentials are set, and then required before MAIL), MAIL FROM, RCPT TO,
DATA with dot-unstuffing, RSET, NOOP and QUIT. It offers no STARTTLS: it listens on loopback
in plain text. Every message accepted at the end of DATA is parsed and recorded, counted by
its Message-ID so a test can tell "sent once" from "sent twice".

Faults hit transactions (a MAIL FROM and what follows): `refuse_next` answers 421 and hangs
up, `drop_after_data_next` records the message and hangs up without the final reply (the
client cannot know it was delivered), and `Faults` rates draw one fault per transaction
from a seeded RNG: error (421 and hang up), throttle (451), timeout (a late reply),
malformed (a garbled reply) and drop (as `drop_after_data_next`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from integrations.sandbox.faults import Faults

_PATH = re.compile(r"(?i)(FROM|TO):\s*<([^<>]*)>(?:\s+.*)?")


@dataclass(frozen=True)
class ReceivedMail:
    """One message the sandbox accepted at the end of DATA."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    raw: bytes  # as received, dot-unstuffed, CRLF line ends
    user: str | None  # who authenticated, if anyone
    received_at: datetime
    message: EmailMessage = field(repr=False)

    @property
    def message_id(self) -> str | None:
        return self.message["Message-ID"]


@dataclass
class _Transaction:
    """What a session has been told since its last MAIL FROM."""

    mail_from: str
    rcpt_to: list[str] = field(default_factory=list)
    drop_after_data: bool = False


class _HangUp(Exception):
    """Ends the session at once (QUIT, 421, an injected drop)."""


class _Cancelled(Exception):
    """The client answered an AUTH challenge with `*`."""


class SmtpSandbox:
    """The SMTP sandbox: `start()` it, point a client at `url`, read `messages`, `stop()` it."""

    def __init__(
        self,
        credentials: tuple[str, str] | None = None,
        auth_mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN"),
        mailboxes: set[str] | None = None,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        hostname: str = "smtp.sandbox.test",
    ):
        """Sets the server up; nothing listens until `start`.

        Args:
            credentials: The (user, password) AUTH accepts; without them AUTH is not offered.
            auth_mechanisms: The mechanisms offered, of PLAIN and LOGIN.
            mailboxes: Addresses RCPT TO accepts (550 for others); any address when None.
            faults: Fault rates, drawn once per transaction; none by default.
            host: Address to listen on.
            port: Port to listen on; 0 picks a free one.
            hostname: The name the server greets with.
        """
        self.credentials = credentials
        self.auth_mechanisms = tuple(m.upper() for m in auth_mechanisms)
        self.mailboxes = {m.lower() for m in mailboxes} if mailboxes is not None else None
        self.faults = faults or Faults()
        self.hostname = hostname
        self._address = (host, port)
        self._lock = threading.Lock()
        self._messages: list[ReceivedMail] = []
        self._counts: Counter[str] = Counter()
        self._refuse_next = 0
        self._drop_next = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> SmtpSandbox:
        """Listens in a background thread; returns once connections are accepted."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(self._address)
        self._port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(self._loop, sock, ready), name="smtp-sandbox",
                                        daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError(f"SMTP sandbox on {self._address[0]}:{self._port} did not start")
        return self

    def stop(self) -> None:
        """Hangs up on every session and stops listening."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop = self._thread = None

    def __enter__(self) -> SmtpSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """`smtp://host:port`, without credentials."""
        if self._port is None:
            raise RuntimeError("the SMTP sandbox is not started")
        return f"smtp://{self._address[0]}:{self._port}"

    def _serve(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(self._session, sock=sock))
        ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            sessions = asyncio.all_tasks(loop)
            for task in sessions:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*sessions, return_exceptions=True))
            loop.run_until_complete(server.wait_closed())
            loop.close()

    # -- what tests read and steer --------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMail]:
        """Accepted messages, oldest first."""
        with self._lock:
            return list(self._messages)

    def times_received(self, message_id: str) -> int:
        """How many accepted messages carried this Message-ID."""
        with self._lock:
            return self._counts[message_id]

    def reset(self) -> None:
        """Forgets messages and pending one-off faults (not the fault rates)."""
        with self._lock:
            self._messages.clear()
            self._counts.clear()
            self._refuse_next = self._drop_next = 0

    def refuse_next(self, count: int = 1) -> None:
        """Answers the next `count` MAIL FROM with 421 and hangs up (0 calls it off)."""
        with self._lock:
            self._refuse_next = count

    def drop_after_data_next(self, count: int = 1) -> None:
        """Records the next `count` messages, then hangs up instead of answering 250 (0 calls it off)."""
        with self._lock:
            self._drop_next = count

    def _draw_fault(self) -> str | None:
        """This transaction's fault: a pending one-off first, else one drawn from the rates."""
        with self._lock:
            if self._refuse_next:
                self._refuse_next -= 1
                return "error"
            if self._drop_next:
                self._drop_next -= 1
                return "drop"
        return self.faults.draw()

    def _record(self, transaction: _Transaction, raw: bytes, user: str | None) -> None:
        # With policy.default the parser builds EmailMessage objects, whatever its annotation says.
        message: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[assignment]
        received = ReceivedMail(transaction.mail_from, tuple(transaction.rcpt_to), raw, user, datetime.now(UTC), message)
        with self._lock:
            self._messages.append(received)
            if received.message_id:
                self._counts[received.message_id] += 1

    # -- the protocol ---------------------------------------------------------------------------

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, reader, writer)
        try:
            await session.run()
        except (_HangUp, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # `stop` cancels open sessions; ending quietly spares Python 3.11's stream callback,
            # which logs every cancelled handler as an error.
            pass
        finally:
            writer.close()


class _Session:
    """One client connection, command by command."""

    def __init__(self, sandbox: SmtpSandbox, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.sandbox = sandbox
        self.reader = reader
        self.writer = writer
        self.greeted = False
        self.extended = False  # EHLO rather than HELO: AUTH is an extension
        self.user: str | None = None
        self.transaction: _Transaction | None = None

    async def run(self) -> None:
        await self.reply(220, f"{self.sandbox.hostname} ESMTP Clerk sandbox")
        handlers = {"EHLO": self.ehlo, "HELO": self.helo, "AUTH": self.auth, "MAIL": self.mail,
                    "RCPT": self.rcpt, "DATA": self.data, "RSET": self.rset, "NOOP": self.noop, "QUIT": self.quit}
        while True:
            line = await self.read_line()
            if line is None:
                return
            verb, _, argument = line.partition(" ")
            handler = handlers.get(verb.upper())
            if handler is None:
                await self.reply(502, "5.5.2 Command not recognized")
            else:
                await handler(argument.strip())

    async def read_line(self) -> str | None:
        try:
            raw = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None  # the client hung up
        except asyncio.LimitOverrunError:
            await self.reply(500, "5.5.6 Line too long")
            raise _HangUp from None
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    async def reply(self, code: int, *lines: str) -> None:
        text = "".join(f"{code}{'-' if n < len(lines) - 1 else ' '}{line}\r\n" for n, line in enumerate(lines))
        self.writer.write(text.encode())
        await self.writer.drain()

    async def ehlo(self, argument: str) -> None:
        if not argument:
            return await self.reply(501, "5.5.4 EHLO needs a domain")
        self.greeted, self.extended, self.transaction = True, True, None
        lines = [f"{self.sandbox.hostname} greets {argument}", "8BITMIME"]
        if self.sandbox.credentials:
            lines.append("AUTH " + " ".join(self.sandbox.auth_mechanisms))
        await self.reply(250, *lines)

    async def helo(self, argument: str) -> None:
        if not argument:
            return await self.reply(501, "5.5.4 HELO needs a domain")
        self.greeted, self.extended, self.transaction = True, False, None
        await self.reply(250, self.sandbox.hostname)

    async def auth(self, argument: str) -> None:
        if not self.sandbox.credentials or not self.extended:
            return await self.reply(503, "5.5.1 AUTH not available")
        if self.user is not None:
            return await self.reply(503, "5.5.1 Already authenticated")
        if self.transaction is not None:
            return await self.reply(503, "5.5.1 AUTH not allowed during a mail transaction")
        mechanism, _, initial = argument.partition(" ")
        mechanism = mechanism.upper()
        if mechanism not in self.sandbox.auth_mechanisms:
            return await self.reply(504, "5.5.4 Unrecognized authentication type")
        try:
            if mechanism == "PLAIN":
                _, user, password = (await self.auth_answer(initial, "")).split(b"\0")
            else:  # LOGIN: user then password, each in answer to a challenge
                user = await self.auth_answer(initial, "VXNlcm5hbWU6")  # "Username:"
                password = await self.auth_answer("", "UGFzc3dvcmQ6")  # "Password:"
        except _Cancelled:
            return await self.reply(501, "5.7.0 Authentication cancelled")
        except (ValueError, binascii.Error):
            return await self.reply(501, "5.5.2 Cannot decode the response")
        expected = tuple(part.encode() for part in self.sandbox.credentials)
        if (user, password) != expected:
            return await self.reply(535, "5.7.8 Authentication credentials invalid")
        self.user = user.decode()
        await self.reply(235, "2.7.0 Authentication successful")

    async def auth_answer(self, initial: str, challenge: str) -> bytes:
        """The client's decoded answer: the initial response when given, else one to `challenge`."""
        if not initial:
            await self.reply(334, challenge)
            initial = await self.read_line() or "*"
        if initial == "*":
            raise _Cancelled
        return b"" if initial == "=" else base64.b64decode(initial, validate=True)

    async def mail(self, argument: str) -> None:
        if not self.greeted:
            return await self.reply(503, "5.5.1 Send EHLO or HELO first")
        if self.sandbox.credentials and self.user is None:
            return await self.reply(530, "5.7.0 Authentication required")
        if self.transaction is not None:
            return await self.reply(503, "5.5.1 Nested MAIL command")
        path = _PATH.fullmatch(argument)
        if not path or path.group(1).upper() != "FROM":
            return await self.reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
        fault = self.sandbox._draw_fault()
        if fault == "error":
            await self.reply(421, f"4.3.2 {self.sandbox.hostname} Service not available, closing channel")
            raise _HangUp
        if fault == "throttle":
            return await self.reply(451, "4.7.1 Try again later")
        if fault == "malformed":
            self.writer.write(b"OK, whatever you say\r\n")
            return await self.writer.drain()
        if fault == "timeout":
            await asyncio.sleep(self.sandbox.faults.timeout_seconds)
        self.transaction = _Transaction(path.group(2), drop_after_data=fault == "drop")
        await self.reply(250, "2.1.0 OK")

    async def rcpt(self, argument: str) -> None:
        if self.transaction is None:
            return await self.reply(503, "5.5.1 Need MAIL before RCPT")
        path = _PATH.fullmatch(argument)
        if not path or path.group(1).upper() != "TO" or "@" not in path.group(2):
            return await self.reply(501, "5.5.4 Syntax: RCPT TO:<address>")
        address = path.group(2)
        if self.sandbox.mailboxes is not None and address.lower() not in self.sandbox.mailboxes:
            return await self.reply(550, f"5.1.1 <{address}>: Recipient address rejected: mailbox unavailable")
        self.transaction.rcpt_to.append(address)
        await self.reply(250, "2.1.5 OK")

    async def data(self, argument: str) -> None:
        if self.transaction is None or not self.transaction.rcpt_to:
            return await self.reply(503, "5.5.1 Need RCPT before DATA")
        await self.reply(354, "End data with <CR><LF>.<CR><LF>")
        lines: list[bytes] = []
        while True:
            line = await self.reader.readuntil(b"\n")
            if line in (b".\r\n", b".\n"):
                break
            lines.append(line[1:] if line.startswith(b".") else line)  # RFC 5321 4.5.2 transparency
        transaction, self.transaction = self.transaction, None
        self.sandbox._record(transaction, b"".join(lines), self.user)
        if transaction.drop_after_data:
            raise _HangUp
        await self.reply(250, "2.0.0 OK: queued")

    async def rset(self, argument: str) -> None:
        self.transaction = None
        await self.reply(250, "2.0.0 OK")

    async def noop(self, argument: str) -> None:
        await self.reply(250, "2.0.0 OK")

    async def quit(self, argument: str) -> None:
        await self.reply(221, "2.0.0 Bye")
        raise _HangUp
