"""A run killed part-way with SIGKILL, then run again, ends exactly like an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path


from models import Order
from models.db import upgrade
from tests.flows.conftest import start_world
from tests.flows.state import rows_in, snapshot

ROOT = Path(__file__).resolve().parents[2]


def _clerk(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    from prefect.settings import PREFECT_API_URL

    child_env = os.environ | env | {"PREFECT_API_URL": PREFECT_API_URL.value() or ""}
    return subprocess.Popen(
        [sys.executable, "-m", "deployments.cli", "run", "order-intake", "--json"],
        cwd=cwd, env=child_env | {"PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )


def test_sigkill_mid_backfill_then_rerun_matches_an_uninterrupted_run(database_url: str, tmp_path: Path, use_env) -> None:  # type: ignore[no-untyped-def]
    from deployments.runs import run_flow

    config = tmp_path / "clerk.toml"
    config.write_text("[intake]\nbatch_size = 25\nbackfill_batch_size = 25\n")
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    upgrade(reference_url)
    with ExitStack() as stack:
        reference = start_world(stack, reference_url, orders=600)
        use_env(reference.env | {"CLERK_CONFIG": str(config)})
        _, ok = run_flow("order-intake", {})
        assert ok
    expected = snapshot(reference_url)
    total = len(expected["orders"])

    with ExitStack() as stack:
        world = start_world(stack, database_url, orders=600)
        child = _clerk(world.env | {"CLERK_CONFIG": str(config)}, tmp_path)
        deadline = time.monotonic() + 120
        while rows_in(database_url, Order) < total // 3:
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
        stored_at_kill = rows_in(database_url, Order)
        assert 0 < stored_at_kill < total, stored_at_kill

        rerun = _clerk(world.env | {"CLERK_CONFIG": str(config)}, tmp_path)
        out, _ = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, out
    import json

    summary = json.loads(out)
    assert summary["created"] == total - stored_at_kill
    assert snapshot(database_url) == expected
