"""A local Slack Web API: `chat.postMessage` and `auth.test`, with Slack's errors and rate limit.

Like Slack, refusals are HTTP 200 with `{"ok": false, "error": …}`; posting faster than the
per-channel rate is HTTP 429 with `Retry-After`. Block Kit is checked against the limits
Clerk uses (header, section, context and divider blocks: their count, text lengths, fields
and elements), so a message this sandbox accepts is one Slack would accept. Every accepted message is recorded.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from integrations.sandbox.faults import FaultInjector, Faults

_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{8,}")
_TEXT_TYPES = ("plain_text", "mrkdwn")
_MAX_TEXT = 40_000


@dataclass(frozen=True)
class PostedMessage:
    """One message the sandbox accepted."""

    channel: str  # as the client named it
    channel_id: str
    text: str | None
    blocks: list[dict[str, Any]] | None
    ts: str
    received_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "received_at": self.received_at.isoformat()}


@dataclass(frozen=True)
class Refusal:
    """One request the sandbox refused, for tests to assert on."""

    method: str
    error: str
    status: int


class SlackSandbox:
    """The sandbox app (an ASGI callable, faults in front) and what it recorded."""

    bot_id = "B0SANDBOX"
    user_id = "U0SANDBOX"
    team_id = "T0SANDBOX"

    def __init__(
        self,
        token: str,
        faults: Faults,
        per_channel_per_second: float,
        enforce_rate_limit: bool,
        channels: Iterable[str] | None,
    ):
        self.token = token
        self.faults = faults
        self.min_interval = 1.0 / per_channel_per_second
        self.enforce_rate_limit = enforce_rate_limit
        self.channels = frozenset(channels) if channels is not None else None
        self._lock = threading.Lock()
        self._messages: list[PostedMessage] = []
        self._refusals: list[Refusal] = []
        self._last_post: dict[str, float] = {}
        self._sequence = 0
        routes = [
            Route("/api/chat.postMessage", self._post_message, methods=["POST"]),
            Route("/api/auth.test", self._auth_test, methods=["POST", "GET"]),
            Route("/api/{method}", self._unknown_method, methods=["POST", "GET"]),
            Route("/sandbox/messages", self._list_messages, methods=["GET"]),
            Route("/sandbox/refusals", self._list_refusals, methods=["GET"]),
            Route("/sandbox/reset", self._reset, methods=["POST"]),
        ]
        self.app = FaultInjector(Starlette(routes=routes), faults, self._throttled)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    @property
    def messages(self) -> list[PostedMessage]:
        """Accepted messages, oldest first."""
        with self._lock:
            return list(self._messages)

    @property
    def refusals(self) -> list[Refusal]:
        """Refused requests (errors, rate limits, injected throttling), oldest first."""
        with self._lock:
            return list(self._refusals)

    def reset(self) -> None:
        """Forgets messages, refusals and rate-limit windows."""
        with self._lock:
            self._messages.clear()
            self._refusals.clear()
            self._last_post.clear()

    def channel_id(self, channel: str) -> str | None:
        """The id for a channel name or id, or None when the workspace has no such channel."""
        if self.channels is None:
            exists = bool(_CHANNEL_ID.fullmatch(channel)) or (channel.startswith("#") and len(channel) > 1)
        else:
            exists = channel in self.channels or f"#{channel}" in self.channels
        if not exists:
            return None
        if _CHANNEL_ID.fullmatch(channel):
            return channel
        return "C" + hashlib.sha1(channel.lstrip("#").encode()).hexdigest()[:10].upper()

    async def _post_message(self, request: Request) -> Response:
        method = "chat.postMessage"
        args, error = await _arguments(request)
        error = error or self._auth_error(request, args)
        if error:
            return self._refuse(method, error)
        channel = str(args.get("channel") or "")
        channel_id = self.channel_id(channel)
        if channel_id is None:
            return self._refuse(method, "channel_not_found")
        text = args.get("text")
        blocks, error = _blocks(args.get("blocks"))
        if error:
            return self._refuse(method, error)
        if not text and not blocks:
            return self._refuse(method, "no_text")
        if text is not None and len(str(text)) > _MAX_TEXT:
            return self._refuse(method, "msg_too_long")
        with self._lock:
            now = time.monotonic()
            wait = self._last_post.get(channel_id, -math.inf) + self.min_interval - now
            if self.enforce_rate_limit and wait > 0:
                self._refusals.append(Refusal(method, "ratelimited", 429))
                return _ratelimited(math.ceil(wait))
            self._last_post[channel_id] = now
            self._sequence += 1
            ts = f"{int(time.time())}.{self._sequence % 1_000_000:06d}"
            posted = PostedMessage(channel, channel_id, text, blocks, ts, datetime.now(UTC))
            self._messages.append(posted)
        message = {"type": "message", "text": text or "", "user": self.user_id, "bot_id": self.bot_id, "ts": ts}
        if blocks:
            message["blocks"] = blocks
        return JSONResponse({"ok": True, "channel": channel_id, "ts": ts, "message": message})

    async def _auth_test(self, request: Request) -> Response:
        args, error = await _arguments(request)
        error = error or self._auth_error(request, args)
        if error:
            return self._refuse("auth.test", error)
        return JSONResponse(
            {
                "ok": True,
                "url": "https://clerk-sandbox.slack.com/",
                "team": "Clerk Sandbox",
                "user": "clerk",
                "team_id": self.team_id,
                "user_id": self.user_id,
                "bot_id": self.bot_id,
                "is_enterprise_install": False,
            }
        )

    async def _unknown_method(self, request: Request) -> Response:
        return self._refuse(request.path_params["method"], "unknown_method", status=404)

    async def _list_messages(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "messages": [m.to_json() for m in self.messages]})

    async def _list_refusals(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "refusals": [asdict(r) for r in self.refusals]})

    async def _reset(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"ok": True})

    async def _throttled(self, request: Request) -> Response:
        with self._lock:
            self._refusals.append(Refusal(request.url.path.rsplit("/", 1)[-1], "ratelimited", 429))
        return _ratelimited(1)

    def _auth_error(self, request: Request, args: dict[str, Any]) -> str | None:
        header = request.headers.get("authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else args.get("token")
        if not token:
            return "not_authed"
        return None if token == self.token else "invalid_auth"

    def _refuse(self, method: str, error: str, status: int = 200) -> Response:
        with self._lock:
            self._refusals.append(Refusal(method, error, status))
        return JSONResponse({"ok": False, "error": error}, status_code=status)


def create_slack_app(
    token: str = "xoxb-sandbox",
    faults: Faults | None = None,
    per_channel_per_second: float = 1.0,
    enforce_rate_limit: bool = True,
    channels: Iterable[str] | None = None,
) -> SlackSandbox:
    """A Slack sandbox to serve (for example with `serve_in_thread`).

    Args:
        token: The one bot token accepted.
        faults: Fault rates; none by default. Injected throttling answers like Slack's 429.
        per_channel_per_second: Messages accepted per channel per second.
        enforce_rate_limit: False accepts every message, however fast.
        channels: Channel names or ids that exist; by default any `#name` or id.
    """
    return SlackSandbox(token, faults or Faults(), per_channel_per_second, enforce_rate_limit, channels)


def _ratelimited(retry_after: int) -> Response:
    return JSONResponse(
        {"ok": False, "error": "ratelimited"}, status_code=429, headers={"Retry-After": str(max(1, retry_after))}
    )


async def _arguments(request: Request) -> tuple[dict[str, Any], str | None]:
    # Slack takes form-encoded or JSON bodies (slack_sdk posts chat.postMessage as JSON and
    # auth.test as a form); multipart would need python-multipart, which Clerk never sends.
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type == "application/json":
        try:
            args = json.loads(body or b"{}")
        except ValueError:
            return {}, "invalid_json"
        return (args, None) if isinstance(args, dict) else ({}, "json_not_object")
    if content_type in ("", "application/x-www-form-urlencoded"):
        return dict(parse_qsl(body.decode("utf-8", "replace"))), None
    return {}, "invalid_form_data"


def _blocks(raw: Any) -> tuple[list[dict[str, Any]] | None, str | None]:
    if raw is None or raw == "":
        return None, None
    if isinstance(raw, str):  # form bodies carry blocks as a JSON string
        try:
            raw = json.loads(raw)
        except ValueError:
            return None, "invalid_blocks_format"
    if not isinstance(raw, list) or not all(isinstance(b, dict) for b in raw):
        return None, "invalid_blocks_format"
    if len(raw) > 50 or not all(_valid_block(b) for b in raw):
        return None, "invalid_blocks"
    return raw, None


def _valid_block(block: dict[str, Any]) -> bool:
    kind = block.get("type")
    if kind == "divider":
        return True
    if kind == "header":
        return _valid_text(block.get("text"), 150, ("plain_text",))
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            return False
        text_ok = text is None or _valid_text(text, 3000)
        fields_ok = fields is None or (
            isinstance(fields, list) and 0 < len(fields) <= 10 and all(_valid_text(f, 2000) for f in fields)
        )
        return text_ok and fields_ok
    if kind == "context":
        elements = block.get("elements")
        return isinstance(elements, list) and 0 < len(elements) <= 10 and all(_valid_text(e, 3000) for e in elements)
    return False  # Clerk sends no other kinds; anything else is a mistake worth a refusal


def _valid_text(obj: Any, limit: int, types: tuple[str, ...] = _TEXT_TYPES) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("type") in types
        and isinstance(obj.get("text"), str)
        and 0 < len(obj["text"]) <= limit
    )
