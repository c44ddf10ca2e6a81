"""WooCommerce and Magento: a `clerk run order-intake --json` killed with SIGKILL part-way, then
run again, ends exactly like an uninterrupted run: no order lost, none twice, no reservation twice.

Shopify's twin is `test_crash_rerun.py` (its first sync is a bulk export). These channels have
none: their first sync is the paginated path, one committed batch (and watermark) at a time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import Order
from models.db import unit_of_work, upgrade
from tests.flows.conftest import start_world
from tests.flows.state import snapshot

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 200
CONFIG = "[intake]\nbatch_size = 40\nbackfill_batch_size = 40\n"  # five batches a run
_references: dict[str, dict] = {}


def _stored_orders(url: str) -> int:
    try:
        with unit_of_work(url) as session:
            return session.scalar(select(func.count()).select_from(Order)) or 0
    except Exception:  # the child may hold SQLite's write lock at that instant
        return 0


def _clerk(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    from prefect.settings import PREFECT_API_URL

    child_env = os.environ | env | {"PREFECT_API_URL": PREFECT_API_URL.value() or "", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "deployments.cli", "run", "order-intake", "--json"],
        cwd=cwd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("channel", ["woocommerce", "magento"])
def test_sigkill_mid_first_sync_then_rerun_matches_an_uninterrupted_run(
    channel: str, database_url: str, tmp_path: Path, use_env, capsys  # type: ignore[no-untyped-def]
) -> None:
    from deployments.cli import main
    from deployments.runs import run_flow

    config = tmp_path / "clerk.toml"
    config.write_text(CONFIG)
    if channel not in _references:  # the uninterrupted run, once per channel for both databases
        reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
        upgrade(reference_url)
        with ExitStack() as stack:
            reference = start_world(stack, reference_url, orders=ORDERS, channels=(channel,))
            use_env(reference.env | {"CLERK_CONFIG": str(config)})
            summary, ok = run_flow("order-intake", {})
            assert ok, summary
        _references[channel] = snapshot(reference_url)
    expected = _references[channel]
    total = len(expected["orders"])
    assert total > 180 and expected["reservations"] and expected["holds"]

    with ExitStack() as stack:
        world = start_world(stack, database_url, orders=ORDERS, channels=(channel,))
        env = world.env | {"CLERK_CONFIG": str(config)}
        child = _clerk(env, tmp_path)
        deadline = time.monotonic() + 120
        try:
            # Several batches must be committed, and some must be left: kill in between.
            while _stored_orders(database_url) < total // 3:
                assert child.poll() is None, "the run ended before it could be killed"
                assert time.monotonic() < deadline, "the run made no progress"
                time.sleep(0.01)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        stored_at_kill = _stored_orders(database_url)
        assert total // 3 <= stored_at_kill < total, stored_at_kill
        served_before_rerun = world.apps[channel].stats["requests"]

        # The rerun in this process (a second interpreter would only add its start-up time).
        use_env(env)
        capsys.readouterr()
        assert main(["run", "order-intake", "--json"]) == 0
        out = capsys.readouterr().out
        assert world.apps[channel].stats["requests"] > served_before_rerun
    [summary] = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert summary["state"] == "Completed"
    assert summary["created"] == total - stored_at_kill, (summary, stored_at_kill)
    assert summary["channels"][channel]["created"] == summary["created"]
    # The rerun resumed from the last committed batch rather than starting over.
    assert summary["channels"][channel]["fetched"] < ORDERS, summary
    assert snapshot(database_url) == expected
