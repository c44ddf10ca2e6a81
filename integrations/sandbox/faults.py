"""Fault injection shared by every sandbox: 5xx, timeouts, throttling, bad bodies, drops.

Faults are drawn from a seeded RNG so a failing test can be replayed. Paths under
`/sandbox/` (control and inspection endpoints) are never faulted.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

ThrottleResponse = Callable[[Request], Awaitable[Response]]


@dataclass
class Faults:
    """Rates (0..1) of each fault, drawn independently per request in this order."""

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    throttle_rate: float = 0.0
    malformed_rate: float = 0.0
    drop_rate: float = 0.0
    timeout_seconds: float = 3.0
    seed: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    _rng: random.Random = field(init=False, repr=False)
    _status_rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        # A stream of its own, so which 5xx is sent never shifts which requests are faulted.
        self._status_rng = random.Random(self.seed + 1)

    @classmethod
    def uniform(cls, rate: float, seed: int = 0, timeout_seconds: float = 3.0) -> Faults:
        """Splits one overall fault rate evenly across every kind of fault."""
        each = rate / 5
        return cls(each, each, each, each, each, timeout_seconds=timeout_seconds, seed=seed)

    def update(self, **rates: float) -> None:
        for name, value in rates.items():
            if name == "seed":
                self._rng = random.Random(int(value))
            elif hasattr(self, name) and not name.startswith("_"):
                setattr(self, name, float(value))

    def draw(self) -> str | None:
        """The fault to inject into this request, if any."""
        with self._lock:
            for kind in ("error", "timeout", "throttle", "malformed", "drop"):
                rate = getattr(self, f"{kind}_rate")
                if rate and self._rng.random() < rate:
                    self.injected[kind] = self.injected.get(kind, 0) + 1
                    return kind
        return None

    def error_status(self) -> int:
        """Which 5xx to answer with, from the same seeded draw."""
        with self._lock:
            return self._status_rng.choice([500, 502, 503, 504])


class FaultInjector:
    """ASGI middleware applying `Faults` in front of a sandbox."""

    def __init__(self, app: ASGIApp, faults: Faults, throttled: ThrottleResponse):
        self.app = app
        self.faults = faults
        self.throttled = throttled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/sandbox/"):
            await self.app(scope, receive, send)
            return
        fault = self.faults.draw()
        if fault is None:
            await self.app(scope, receive, send)
        elif fault == "error":
            await Response("upstream error", status_code=self.faults.error_status())(scope, receive, send)
        elif fault == "timeout":
            await asyncio.sleep(self.faults.timeout_seconds)
            await self.app(scope, receive, send)
        elif fault == "throttle":
            await (await self.throttled(Request(scope, receive)))(scope, receive, send)
        elif fault == "malformed":
            body = b'{"data": {"orders": {"nodes": [{"id": "gid://'
            await Response(body, media_type="application/json")(scope, receive, send)
        else:  # drop: promise a body, send part of it, then close the connection
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
            await send({"type": "http.response.body", "body": b'{"data": ', "more_body": True})
            raise ConnectionAbortedError("sandbox dropped the connection on purpose")
