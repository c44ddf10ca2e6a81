"""WooCommerce and Magento under 20% injected faults end exactly where a fault-free run does.

Shopify's twin is `test_order_intake.test_twenty_percent_faults_end_in_the_fault_free_state`.
Neither channel has a bulk export, so the first sync is the paginated path; a second round
(orders edited and added upstream, still faulty) takes the incremental path from the
watermark the first one left.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.flows.conftest import World, start_world
from tests.flows.state import snapshot

ORDERS = 250
# Small pages: more requests, so 20% of them makes a fair number of faults, and several batches.
CONFIG = "[intake]\nbatch_size = 20\n"
MAX_RUNS = 4  # a run that gives up on an upstream is rerun, as a scheduler would
_references: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}


def _run_until_completed() -> tuple[dict[str, Any], int]:
    """Runs intake until one run completes; returns its summary and how many runs it took."""
    from deployments.runs import run_flow

    for attempt in range(1, MAX_RUNS + 1):
        summary, ok = run_flow("order-intake", {})
        if ok:
            return summary, attempt
    raise AssertionError(f"order-intake did not complete in {MAX_RUNS} runs: {summary}")


def _change_upstream(world: World, channel: str) -> int:
    """The same edits and new orders in every world built from the same seed (a fixed clock).

    Returns how many orders were edited (a small store has only a few open, untricky ones).
    """
    app = world.apps[channel]
    later = world.store.spec.clock + timedelta(hours=6)
    edited = len(app.edit(10, at=later))
    assert edited >= 2
    assert len(app.add_orders(15, at=later)) == 15
    return edited


def _config(where: Path) -> Path:
    path = where / "clerk.toml"
    path.write_text(CONFIG)
    return path


def _reference(channel: str, tmp_path_factory: pytest.TempPathFactory, use_env) -> tuple[dict[str, Any], dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Snapshots of a fault-free first sync and second round (SQLite), once per channel."""
    if channel not in _references:
        from models.db import upgrade

        where = tmp_path_factory.mktemp(f"clean-{channel}")
        url = f"sqlite:///{where / 'clean.db'}"
        upgrade(url)
        with ExitStack() as stack:
            clean = start_world(stack, url, orders=ORDERS, channels=(channel,))
            use_env(clean.env | {"CLERK_CONFIG": str(_config(where))})
            first, runs = _run_until_completed()
            assert runs == 1 and first["channels"][channel]["fetched"] == ORDERS
            after_first = snapshot(url)
            _change_upstream(clean, channel)
            _run_until_completed()
            _references[channel] = (after_first, snapshot(url))
    return _references[channel]


@pytest.mark.parametrize("channel", ["woocommerce", "magento"])
def test_twenty_percent_faults_end_in_the_fault_free_state(
    channel: str, database_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, use_env  # type: ignore[no-untyped-def]
) -> None:
    from integrations.sandbox.faults import Faults

    clean_first, clean_second = _reference(channel, tmp_path_factory, use_env)
    faults = Faults.uniform(0.2, seed=3, timeout_seconds=1.5)
    with ExitStack() as stack:
        faulty = start_world(stack, database_url, orders=ORDERS, faults=faults, channels=(channel,))
        use_env(faulty.env | {"CLERK_HTTP_TIMEOUT_SECONDS": "0.5", "CLERK_HTTP_MAX_ATTEMPTS": "12",
                              "CLERK_CONFIG": str(_config(tmp_path))})
        first, _ = _run_until_completed()
        assert snapshot(database_url) == clean_first
        edited = _change_upstream(faulty, channel)
        second, _ = _run_until_completed()
        injected = sum(faults.injected.values())
        requests = faulty.apps[channel].stats["requests"]
    assert first["channels"][channel]["fetched"] == ORDERS
    assert second["created"] == 15 and 1 <= second["updated"] <= edited, second
    assert injected >= 3, (faults.injected, requests)
    assert injected / requests > 0.1, (faults.injected, requests)
    assert snapshot(database_url) == clean_second
