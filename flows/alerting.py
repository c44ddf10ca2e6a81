"""Telling the clerks: one message per run for what needs a person, one more if the run had trouble."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_run_logger
from prefect.runtime import flow_run

from domain.attention import AlertText, summarise
from domain.redact import redact
from integrations.protocols import Alert
from tasks.alerts import find_untold, incident_already_sent, mark_told, send_alert


def run_link() -> str | None:
    """The flow run's page in the Prefect UI; None when no UI is configured (the ephemeral server)."""
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_UI_URL

    run_id = flow_run.get_id()
    return f"{PREFECT_UI_URL.value()}/flow-runs/flow-run/{run_id}" if run_id and PREFECT_UI_URL.value() else None


def tell_clerks(flow: str, flow_run_id: str | None, link: str | None) -> int:
    """Posts one alert for every hold and quarantine not yet told; returns alerts sent (0 or 1)."""
    items = find_untold()
    text = summarise(flow, items)
    if text is None:
        return 0
    sent, reference = 0, None
    if not incident_already_sent(text.incident):
        reference = send_alert(Alert(text.incident, text.title, text.lines, text.counts, link))
        sent = 1
    mark_told(items, text.incident, flow, flow_run_id, reference, {"counts": text.counts})
    return sent


def report_trouble(flow: str, flow_run_id: str | None, link: str | None, error: BaseException) -> None:
    """Best effort: a failing Slack must not hide the failure being reported."""
    alert = Alert(
        incident=f"{flow}:failed:{flow_run_id}",
        title=f"{flow} failed",
        lines=(redact(f"{type(error).__name__}: {error}")[:500],),
        link=link,
        severity="error",
    )
    try:
        send_alert.fn(alert)
    except Exception as exc:  # noqa: BLE001 - the original error is re-raised by the caller
        get_run_logger().warning("could not post the failure alert: %s", type(exc).__name__)


@contextmanager
def trouble_reported(flow_name: str) -> Iterator[None]:
    """Runs a flow's work; a failure is posted to the clerks (best effort), then raised."""
    try:
        yield
    except Exception as exc:
        report_trouble(flow_name, flow_run.get_id(), run_link(), exc)
        raise


def tell_once(flow: str, text: AlertText | None, forms: dict[str, str]) -> int:
    """Posts `text`, with a link to each decision's form in the Prefect UI, unless the very
    same was already told; returns alerts sent (0 or 1)."""
    if text is None or incident_already_sent(text.incident):
        return 0
    lines = (*text.lines, *(f"decide {subject} in the Prefect UI: {page}" for subject, page in sorted(forms.items())))
    reference = send_alert(Alert(text.incident, text.title, lines, text.counts, run_link()))
    mark_told([], text.incident, flow, flow_run.get_id(), reference, {"counts": text.counts})
    return 1
