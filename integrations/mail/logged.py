"""Mail written to the log instead of sent, for when CLERK_SMTP_URL is not set."""

from __future__ import annotations

import logging

from domain.redact import redact
from integrations.protocols import Email

log = logging.getLogger("clerk.mail")


def summary(email: Email) -> str:
    """What logs may say of an email: subject, recipient domain, Message-ID and attachment names.

    The recipient's address stays out (only its domain shows), as does the body.
    """
    names = ", ".join(filename for filename, _, _ in email.attachments) or "no attachments"
    return f"{redact(email.subject)!r} to @{email.recipient_domain} as {email.message_id} ({redact(names)})"


class LoggingMailer:
    """Logs each email instead of sending it."""

    def __init__(self, logger: logging.Logger = log):
        self._logger = logger

    def send(self, email: Email) -> str:
        """Logs the email's summary; returns its Message-ID as if it had been sent."""
        self._logger.warning("mail only logged (CLERK_SMTP_URL is not set): %s", summary(email))
        return email.message_id
