"""Alerts to Slack through `chat.postMessage`, or to the log when Slack is not configured.

Every string that leaves here passes through `domain.redact.redact`, whatever the caller
already did: alerts are meant to be free of personal data, and this is the last place to
make sure.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from http.client import IncompleteRead, RemoteDisconnected
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import (
    BackoffRetryIntervalCalculator,
    ConnectionErrorRetryHandler,
    HttpRequest,
    HttpResponse,
    Jitter,
    RateLimitErrorRetryHandler,
    RetryState,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

from domain.redact import redact
from integrations.protocols import Alert, UpstreamError

log = logging.getLogger("clerk.alerts")

# Block Kit and chat.postMessage limits, from Slack's reference.
HEADER_LIMIT = 150
SECTION_TEXT_LIMIT = 3000
FIELD_LIMIT = 2000
FIELDS_PER_SECTION = 10
FALLBACK_LIMIT = 3000  # Slack truncates `text` at 40,000 characters; notifications want far less
# Alerts point at work, they do not list it: the flow run's artifacts hold the full list.
MAX_LINES = 20
LINE_LIMIT = 300
MAX_COUNTS = 30

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_SEVERITY_EMOJI = {"info": ":information_source:", "warning": ":warning:", "error": ":rotating_light:"}

_TOKEN_ERRORS = {
    "not_authed": "no bot token was sent",
    "invalid_auth": "Slack does not accept the bot token",
    "account_inactive": "the bot token belongs to a deleted user or workspace",
    "token_revoked": "the bot token was revoked",
    "token_expired": "the bot token has expired",
    "not_allowed_token_type": "this is not a bot token (xoxb-…)",
    "missing_scope": "the bot token lacks the chat:write scope",
    "no_permission": "the bot token lacks permission to post",
}
_CHANNEL_ERRORS = {
    "channel_not_found": "Slack does not know channel {channel}",
    "not_in_channel": "the bot is not a member of {channel}; invite it there",
    "is_archived": "channel {channel} is archived",
    "restricted_action": "the workspace does not let the bot post in {channel}",
    "restricted_action_read_only_channel": "channel {channel} is read-only",
}


class SlackError(UpstreamError):
    """Slack refused an alert, or could not be reached after retries.

    Attributes:
        code: Slack's error code (`invalid_auth`, `channel_not_found`, `ratelimited`…),
            or `http_<status>` / `unreachable` / `bad_response` for transport failures.
        setting: The CLERK_* variable to fix, when the refusal is ours to fix.
    """

    def __init__(self, code: str, message: str, setting: str | None = None):
        super().__init__(message, setting=setting)
        self.code = code


def build_message(alert: Alert) -> dict[str, Any]:
    """The `chat.postMessage` arguments for an alert: fallback `text` and Block Kit `blocks`.

    Args:
        alert: The alert; its strings are redacted again here.

    Returns:
        `{"text": str, "blocks": list}`, within Block Kit's size limits.
    """
    emoji = _SEVERITY_EMOJI.get(alert.severity)
    title = redact(alert.title)
    heading = f"{emoji} {title}" if emoji else title
    counts = sorted(((redact(str(k)), v) for k, v in alert.counts.items()), key=lambda kv: (-kv[1], kv[0]))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(heading, HEADER_LIMIT), "emoji": True}}
    ]
    blocks += _count_sections(counts)
    blocks += _line_sections(alert.lines)
    blocks.append({"type": "context", "elements": _context_elements(alert)})
    summary = ", ".join(f"{value} {reason}" for reason, value in counts)
    fallback = f"{title}: {summary}" if summary else title
    return {"text": _mrkdwn(fallback, FALLBACK_LIMIT), "blocks": blocks}


def _count_sections(counts: list[tuple[str, int]]) -> list[dict[str, Any]]:
    shown = counts[:MAX_COUNTS]
    rest = sum(value for _, value in counts[MAX_COUNTS:])
    fields = [
        {"type": "mrkdwn", "text": f"{_mrkdwn(reason, FIELD_LIMIT - 20)}: *{value}*"} for reason, value in shown
    ]
    if rest:
        fields.append({"type": "mrkdwn", "text": f"other: *{rest}*"})
    return [
        {"type": "section", "fields": fields[start : start + FIELDS_PER_SECTION]}
        for start in range(0, len(fields), FIELDS_PER_SECTION)
    ]


def _line_sections(lines: Sequence[str]) -> list[dict[str, Any]]:
    items = [f"• {_mrkdwn(redact(line), LINE_LIMIT)}" for line in lines[:MAX_LINES]]
    if len(lines) > MAX_LINES:
        items.append(f"_…and {len(lines) - MAX_LINES} more_")
    sections: list[list[str]] = []
    for item in items:
        if sections and sum(len(i) + 1 for i in sections[-1]) + len(item) <= SECTION_TEXT_LIMIT:
            sections[-1].append(item)
        else:
            sections.append([item])
    return [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(chunk)}} for chunk in sections]


def _context_elements(alert: Alert) -> list[dict[str, Any]]:
    elements = [{"type": "mrkdwn", "text": f"Clerk · incident `{_mrkdwn(redact(alert.incident), 200)}`"}]
    if alert.link:
        # A link, not a button: a button makes Slack expect the app to answer interactions.
        url = redact(alert.link).replace("&", "&amp;").replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
        elements.append({"type": "mrkdwn", "text": f"<{url}|Open the flow run>"})
    return elements


def _mrkdwn(raw: str, limit: int) -> str:
    # Slack reads &, < and > as control characters (links, mentions such as <!channel>),
    # so text from orders is escaped; clipping counts escaped lengths so no entity is cut.
    text = _escape(raw)
    if len(text) <= limit:
        return text
    pieces: list[str] = []
    size = 0
    for char in raw:
        piece = _ESCAPES.get(char, char)
        if size + len(piece) > limit - 1:
            break
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces) + "…"


def _escape(raw: str) -> str:
    return raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _EqualJitter(Jitter):
    """Sleeps between half and all of the backoff, so waits scale with `backoff_seconds`."""

    def recalculate(self, duration: float) -> float:
        return duration / 2 + random.random() * duration / 2


class _ServerErrorRetryHandler(ServerErrorRetryHandler):
    """slack_sdk's handler retries 500 and 503 only; proxies in front of Slack add 502 and 504."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code in (500, 502, 503, 504)


class SlackNotifier:
    """Posts alerts to one Slack channel with a bot token."""

    def __init__(
        self,
        token: str,
        channel: str,
        base_url: str = "https://slack.com/api/",
        *,
        max_retries: int = 3,
        timeout: float = 30.0,
        backoff_seconds: float = 0.5,
    ):
        """Builds the client; nothing is sent until `send`.

        Args:
            token: Bot token (CLERK_SLACK_BOT_TOKEN).
            channel: Channel name (`#alerts`) or id (CLERK_SLACK_CHANNEL).
            base_url: Web API base (CLERK_SLACK_API_URL).
            max_retries: Retries in all, across rate limits (which wait `Retry-After`),
                5xx answers, dropped connections and garbled bodies (which back off).
            timeout: Seconds to wait for each answer.
            backoff_seconds: First backoff; doubles on each retry.
        """
        self.channel = channel
        self.base_url = base_url
        intervals = BackoffRetryIntervalCalculator(backoff_factor=backoff_seconds, jitter=_EqualJitter())
        self._client = WebClient(
            token=token,
            base_url=base_url,
            timeout=timeout,
            retry_handlers=[
                RateLimitErrorRetryHandler(max_retry_count=max_retries),
                _ServerErrorRetryHandler(max_retry_count=max_retries, interval_calculator=intervals),
                # A connection dropped mid-answer or a garbled body most likely means the
                # message was not posted (Slack answers whole or not at all), and a lost
                # alert costs more than a rare duplicate. Read timeouts are not retried:
                # Slack is probably still posting.
                ConnectionErrorRetryHandler(
                    max_retry_count=max_retries,
                    interval_calculator=intervals,
                    error_types=[URLError, ConnectionResetError, RemoteDisconnected, IncompleteRead, json.JSONDecodeError],
                ),
            ],
        )

    def send(self, alert: Alert) -> str | None:
        """Posts the alert.

        Returns:
            The message's Slack `ts`.

        Raises:
            SlackError: Slack refused the message (`ok: false`), kept failing after the
                retries, or could not be reached; `setting` names the variable to fix.
        """
        message = build_message(alert)
        try:
            response = self._client.chat_postMessage(channel=self.channel, text=message["text"], blocks=message["blocks"])
        except SlackApiError as exc:
            raise self._refusal(exc.response.status_code, exc.response.data) from None
        except URLError as exc:
            raise SlackError(
                "unreachable",
                f"Slack API at {self.base_url} could not be reached ({exc.reason}): check CLERK_SLACK_API_URL",
                setting="CLERK_SLACK_API_URL",
            ) from None
        except (OSError, IncompleteRead, json.JSONDecodeError) as exc:
            raise SlackError("bad_response", f"no complete answer from Slack API at {self.base_url}: {exc!r}") from None
        return response.get("ts")

    def _refusal(self, status: int, data: Any) -> SlackError:
        code = data.get("error", "") if isinstance(data, dict) else ""
        if status not in (200, 429) or code.startswith("Received a response in a non-JSON format"):
            # Not Slack's JSON: a wrong base URL (4xx, HTML) or a server that kept failing (5xx).
            setting = None if status >= 500 else "CLERK_SLACK_API_URL"
            hint = "; check CLERK_SLACK_API_URL" if setting else " after retries"
            return SlackError(f"http_{status}", f"Slack API at {self.base_url} answered HTTP {status}{hint}", setting)
        if code in _TOKEN_ERRORS:
            return SlackError(code, f"{_TOKEN_ERRORS[code]} ({code}): check CLERK_SLACK_BOT_TOKEN", "CLERK_SLACK_BOT_TOKEN")
        if code in _CHANNEL_ERRORS:
            reason = _CHANNEL_ERRORS[code].format(channel=self.channel)
            return SlackError(code, f"{reason} ({code}): check CLERK_SLACK_CHANNEL", "CLERK_SLACK_CHANNEL")
        if code in ("ratelimited", "rate_limited"):
            return SlackError(code, "Slack kept rate-limiting chat.postMessage after retries")
        return SlackError(code or "unknown", f"Slack refused chat.postMessage ({code or 'no error code'})")


class LogNotifier:
    """Alerts written to the log, for when Slack is not configured."""

    _LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

    def __init__(self, logger: logging.Logger = log):
        self._logger = logger

    def send(self, alert: Alert) -> None:
        """Logs the alert (redacted) at its severity; there is no message reference."""
        self._logger.log(self._LEVELS.get(alert.severity, logging.WARNING), "%s", render_text(alert))


def render_text(alert: Alert) -> str:
    """The alert as redacted plain text: title, counts, lines and link, one per line."""
    parts = [
        alert.title,
        *(f"{reason}: {value}" for reason, value in sorted(alert.counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        *(f"- {line}" for line in alert.lines),
        *([f"flow run: {alert.link}"] if alert.link else []),
    ]
    return redact("\n".join(parts))
