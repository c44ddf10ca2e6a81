"""Outgoing mail: `build_mailer` picks SMTP or the log from the settings."""

from __future__ import annotations

from integrations.mail.logged import LoggingMailer
from integrations.mail.smtp import (
    MailError,
    MailRefused,
    SmtpMailer,
    TransientMailError,
    build_message,
    parse_smtp_url,
)
from integrations.protocols import Mailer
from integrations.settings import Settings

__all__ = ["LoggingMailer", "MailError", "MailRefused", "SmtpMailer", "TransientMailError", "build_mailer",
           "build_message", "parse_smtp_url"]


def build_mailer(settings: Settings) -> Mailer:
    """SMTP when CLERK_SMTP_URL is set, the log when it is not (or blank).

    Raises:
        MailError: CLERK_SMTP_URL is set but cannot be used, or CLERK_SMTP_FROM is missing
            or not an address: a mistake to report rather than a reason to drop mail quietly.
    """
    url = (settings.smtp_url or "").strip()
    if not url:
        return LoggingMailer()
    if not settings.smtp_from:
        raise MailError("CLERK_SMTP_URL is set but CLERK_SMTP_FROM is not", setting="CLERK_SMTP_FROM")
    # The transport timeout covers SMTP too: one knob for how long Clerk waits on a vendor.
    return SmtpMailer(url, settings.smtp_from, timeout=settings.http_timeout_seconds)
