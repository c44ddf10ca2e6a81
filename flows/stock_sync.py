"""sync-stock: every connected channel shows Clerk's available units, written once per change.

read (ledger levels, what each channel was last told) → decide (changed SKUs in batches) →
act (per batch: counts compared on the channel, changed ones written, outcome recorded) →
alert (one message naming the counts someone changed on a channel).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from domain.stock_sync import plan_pushes, summarise_conflicts
from flows.alerting import run_link, trouble_reported
from integrations.protocols import Alert, UpstreamError
from integrations.settings import cached_settings
from integrations.wiring import enabled_channels
from tasks.alerts import incident_already_sent, mark_told, send_alert
from tasks.stock_sync import StockToSync, find_untold_conflicts, load_stock_to_sync, push_stock

FLOW = "sync-stock"
BATCH_SIZE = 100


def _sync_channel(channel: str, stock: StockToSync, batch_size: int, failures: dict[str, str]) -> dict[str, int]:
    """Pushes a channel's changed counts a batch at a time; a batch that fails ends the channel's turn."""
    plan = plan_pushes(stock.available, stock.pushed.get(channel, {}), batch_size, stock.sold_since.get(channel))
    counts = {"pushed": 0, "unchanged": plan.unchanged, "conflicts": 0, "behind": 0, "unknown": 0}
    for number, batch in enumerate(plan.batches):
        # The run's own key: a retry of this batch reuses it, a later run's push of the same counts does not.
        state = push_stock(channel, quote(batch), f"{FLOW}:{flow_run.get_id()}:{channel}:{number}",
                           return_state=True)
        if not state.is_completed():
            failures[channel] = state.message or "failed"
            break
        report = state.result()
        counts["pushed"] += len(report.written)
        counts["unchanged"] += len(report.already)
        counts["conflicts"] += len(report.conflicts)
        counts["behind"] += len(report.behind)
        counts["unknown"] += len(report.unknown)
    return counts


@flow(name=FLOW)
def stock_sync(channels: list[str] | None = None, batch_size: int = BATCH_SIZE) -> dict[str, Any]:
    """Pushes available stock to every enabled channel: only SKUs whose count changed since the
    last push (and open conflicts, to see them settled), `batch_size` SKUs to a task.

    A count someone changed on a channel since Clerk's last push is not overwritten: it is
    recorded and told to the clerks once. A channel that fails does not stop the others; the
    run then fails, and the next one takes up what is left.

    Returns:
        The run's summary (the contract's `--json` object, without `state`).
    """
    names = channels or enabled_channels(cached_settings())
    logger = get_run_logger()
    failures: dict[str, str] = {}
    with trouble_reported(FLOW):
        stock = load_stock_to_sync(names)
        counts = {channel: _sync_channel(channel, stock, batch_size, failures) for channel in names}
        alerts_sent = _tell_clerks()
        if failures:
            raise UpstreamError("stock not synced to " + "; ".join(f"{c}: {why}" for c, why in failures.items()))
    summary = {
        "flow": FLOW,
        "pushed": sum(c["pushed"] for c in counts.values()),
        "conflicts": sum(c["conflicts"] for c in counts.values()),
        "alerts_sent": alerts_sent,
        "channels": counts,
    }
    create_table_artifact([{"channel": name} | tally for name, tally in counts.items()],
                          key="sync-stock-summary", description="Stock counts by channel, this run")
    logger.info("sync-stock: %s", summary)
    return summary


def _tell_clerks() -> int:
    """One message for the conflicts no alert has named yet; the keys told go in its summary."""
    conflicts = find_untold_conflicts(FLOW)
    text = summarise_conflicts(FLOW, conflicts)
    if text is None:
        return 0
    sent, reference = 0, None
    if not incident_already_sent(text.incident):
        reference = send_alert(Alert(text.incident, text.title, text.lines, text.counts, run_link()))
        sent = 1
    mark_told([], text.incident, FLOW, flow_run.get_id(), reference,
              {"counts": text.counts, "conflicts": [conflict.key for conflict in conflicts]})
    return sent
