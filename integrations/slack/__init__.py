"""Slack alerts: `build_notifier` picks Slack or the log from the settings."""

from __future__ import annotations

from integrations.protocols import Notifier
from integrations.settings import Settings
from integrations.slack.notifier import LogNotifier, SlackError, SlackNotifier, build_message

__all__ = ["LogNotifier", "SlackError", "SlackNotifier", "build_message", "build_notifier"]


def build_notifier(settings: Settings) -> Notifier:
    """Slack when both the bot token and the channel are set, the log when neither is.

    Raises:
        SlackError: only one of CLERK_SLACK_BOT_TOKEN and CLERK_SLACK_CHANNEL is set, which
            is a mistake to report rather than a reason to drop alerts quietly.
    """
    token, channel = settings.slack_bot_token, settings.slack_channel
    if not token and not channel:
        return LogNotifier()
    if not token or not channel:
        missing = "CLERK_SLACK_CHANNEL" if token else "CLERK_SLACK_BOT_TOKEN"
        present = "CLERK_SLACK_BOT_TOKEN" if token else "CLERK_SLACK_CHANNEL"
        raise SlackError("not_configured", f"{present} is set but {missing} is not", setting=missing)
    return SlackNotifier(
        token,
        channel,
        settings.slack_api_url,
        max_retries=max(settings.http_max_attempts - 1, 0),
        timeout=settings.http_timeout_seconds,
    )
