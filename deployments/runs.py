"""Running a flow now, from the command line, and reading its summary."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import sys
from typing import Any

FLOWS = {
    "order-intake": "flows.order_intake:order_intake",
    "import-orders": "flows.order_import:import_orders",
    "restock-check": "flows.restock_check:restock_check",
    "sync-stock": "flows.stock_sync:stock_sync",
    "await-approval": "flows.approvals:await_approval",
    "ship-orders": "flows.ship_orders:ship_orders",
    "track-shipments": "flows.track_shipments:track_shipments",
    "process-returns": "flows.process_returns:process_returns",
}


def quiet_prefect_defaults() -> None:
    """No telemetry (there may be no internet) and no per-flow heartbeat wait at exit."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_UI_ENABLED", "false" if not os.environ.get("PREFECT_API_URL") else "true")


def install_redaction() -> None:
    """Every log handler Prefect set up scrubs personal data before it writes or ships a line."""
    from domain.redact import RedactingFilter

    redacting = RedactingFilter()
    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(redacting)


def load_flow(name: str) -> Any:
    if name not in FLOWS:
        raise KeyError(f"unknown flow {name!r}; known: {', '.join(sorted(FLOWS))}")
    module, attribute = FLOWS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs; a value is read as JSON when it parses, else a comma list or a string."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param wants KEY=VALUE, got {pair!r}")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw.split(",") if "," in raw else raw
    return params


def run_flow(name: str, params: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Runs the flow in this process; returns (summary with `state`, completed?)."""
    from integrations.settings import cached_settings
    from models.db import upgrade

    flow = load_flow(name)
    upgrade(cached_settings().database_url)
    install_redaction()
    state = flow(**params, return_state=True)
    if state.is_completed():
        return {"flow": name, "state": state.name, **state.result()}, True
    error = state.result(raise_on_failure=False)
    message = str(error) if isinstance(error, BaseException) else state.message or "failed"
    return {"flow": name, "state": state.name, "alerts_sent": 0, "error": message}, False


@contextlib.contextmanager
def stdout_to_stderr() -> Any:
    """Keeps standard output for the one JSON summary: everything else goes to stderr."""
    real = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield real
    finally:
        sys.stdout = real
