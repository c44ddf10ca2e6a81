"""The contract's commands, driven the way users and scripts drive them."""

from __future__ import annotations

import contextlib
import csv
import json
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deployments.cli import main
from tests.flows.conftest import World

ROOT = Path(__file__).resolve().parents[2]


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_run_json_prints_one_object_and_exports_follow_the_contract(world: World, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert main(["run", "order-intake", "--json"]) == 0
    out = capsys.readouterr().out
    [summary] = _json_lines(out)
    for key in ("flow", "state", "fetched", "created", "updated", "unchanged", "held", "quarantined", "reasons", "alerts_sent", "channels"):
        assert key in summary
    assert summary["channels"]["shopify"]["fetched"] == summary["fetched"]

    assert main(["export", "orders", "--format", "jsonl"]) == 0
    orders = _json_lines(capsys.readouterr().out)
    assert len(orders) == summary["created"]
    held = [o for o in orders if o["status"] == "held"]
    assert held and all(o["reasons"] for o in held)
    assert all(o["reasons"] == [] for o in orders if o["status"] != "held")
    sample = orders[0]
    for key in ("channel", "external_id", "number", "status", "reasons", "currency", "total", "placed_at", "lines", "ship_to_country"):
        assert key in sample
    assert {"sku", "quantity", "unit_price"} <= set(sample["lines"][0])
    assert "email" not in json.dumps(orders) and all("ship_to" not in o for o in orders)

    assert main(["export", "orders", "--format", "jsonl", "--include-pii"]) == 0
    with_pii = _json_lines(capsys.readouterr().out)
    assert any(o.get("email") for o in with_pii) and any(o.get("ship_to") for o in with_pii)

    assert main(["export", "quarantine", "--format", "jsonl"]) == 0
    quarantined = _json_lines(capsys.readouterr().out)
    assert len(quarantined) == summary["quarantined"]
    assert all({"channel", "external_id", "reason", "detail", "received_at"} <= set(q) and "payload" not in q for q in quarantined)

    for fmt in ("csv", "xlsx"):
        target = tmp_path / f"orders.{fmt}"
        assert main(["export", "orders", "--format", fmt, "--output", str(target)]) == 0
        assert target.stat().st_size > 1000
    with (tmp_path / "orders.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == len(orders)


def test_a_refused_token_fails_the_run_with_one_line_naming_the_variable(world: World, use_env, capsys) -> None:  # type: ignore[no-untyped-def]
    use_env(world.env | {"CLERK_SHOPIFY_ACCESS_TOKEN": "shpat_wrong"})
    assert main(["run", "order-intake", "--json"]) == 1
    captured = capsys.readouterr()
    [summary] = _json_lines(captured.out)
    assert summary["state"] == "Failed"
    assert "CLERK_SHOPIFY_ACCESS_TOKEN" in summary["error"]
    assert any(line.startswith("error: ") and "CLERK_SHOPIFY_ACCESS_TOKEN" in line for line in captured.err.splitlines())
    assert len(world.slack.messages) == 1 and "failed" in world.slack.messages[0].text


def test_import_catalog_lands_good_rows_and_names_bad_lines(database_url: str, use_env, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    use_env({"CLERK_DATABASE_URL": database_url})
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "sku,title,price,currency,moq\n"
        "A-1,Mug,12.50,USD,\n"
        "A-2,Bowl,abc,USD,\n"
        ",Nameless,1.00,USD,\n"
        "A-3,Plate,3.00,usd,6\n"
        "A-4,Cup,2.00,XYZ,\n"
        "A-1,Mug again,1.00,USD,\n"
    )
    assert main(["import", "catalog", str(catalog)]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["imported"] == 2
    bad_lines = sorted(int(line.split(":")[1]) for line in captured.err.splitlines() if line.startswith(str(catalog)))
    assert bad_lines == [3, 4, 6, 7]

    stock = tmp_path / "stock.csv"
    stock.write_text("sku,on_hand,location\nA-1,10,\nA-3,-1,\nNOPE,4,\nA-3,7,back\n")
    assert main(["import", "stock", str(stock)]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"imported": 2, "rejected": 2, "ledger_entries": 2, "orders_held": 0}
    assert main(["import", "stock", str(stock)]) == 1
    assert json.loads(capsys.readouterr().out)["ledger_entries"] == 0  # same counts again: no new entries

    assert main(["export", "nonsense"]) == 2


def test_missing_required_column_is_refused_whole(database_url: str, use_env, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    use_env({"CLERK_DATABASE_URL": database_url})
    bad = tmp_path / "catalog.csv"
    bad.write_text("sku,title\nA-1,Mug\n")
    assert main(["import", "catalog", str(bad)]) == 2
    assert "price" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["run", "no-such-flow"]])
def test_unknown_flow_is_a_usage_error(argv: list[str], capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(argv) == 2


def _lines_until(process: subprocess.Popen[str], last_line: str) -> list[str]:
    """What a serving subprocess prints, up to and including `last_line`."""
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or lines[-1] != last_line:
        line = process.stdout.readline()
        assert line, f"exited before {last_line!r}; printed {lines}"
        lines.append(line.rstrip("\n"))
    return lines


@contextlib.contextmanager
def _served(argv: list[str]) -> Iterator[subprocess.Popen[str]]:
    """Runs `python ARGV` for the block (killed if it outlasts a minute), then stops it with SIGTERM."""
    process = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        yield process
    finally:
        watchdog.cancel()
        process.terminate()
        assert process.wait(timeout=30) == 0  # SIGTERM is a clean stop


def test_clerk_sandbox_prints_urls_and_settings_that_reach_every_sandbox(tmp_path: Path) -> None:
    from integrations.settings import Settings
    from integrations.wiring import enabled_channels

    with _served(["-m", "deployments.cli", "sandbox", "--orders", "90"]) as process:
        lines = _lines_until(process, "Ctrl-C stops them.")
        dotenv = tmp_path / ".env"
        dotenv.write_text("\n".join(line for line in lines if line.startswith("export ")) + "\n")
        pasted = Settings(_env_file=dotenv)  # type: ignore[call-arg]
        assert enabled_channels(pasted) == ["shopify", "woocommerce", "magento"]
        assert pasted.slack_channel == "#clerk-alerts" and pasted.slack_bot_token
        env = dict(shlex.split(line)[1].split("=", 1) for line in lines if line.startswith("export CLERK_"))
        urls = {line.split()[0]: line.split()[1] for line in lines if line.startswith("  ")}
        assert set(urls) == {"shopify", "woocommerce", "magento", "slack", "easypost", "stripe"}
        assert pasted.carrier == "easypost" and pasted.stripe_api_key

        shop = httpx.post(f"{env['CLERK_SHOPIFY_SHOP_URL']}/admin/api/{env['CLERK_SHOPIFY_API_VERSION']}/graphql.json",
                          json={"query": "{ shop { name } }"},
                          headers={"X-Shopify-Access-Token": env["CLERK_SHOPIFY_ACCESS_TOKEN"]})
        assert shop.status_code == 200 and shop.json()["data"]["shop"]["name"]
        woo = httpx.get(f"{env['CLERK_WOOCOMMERCE_URL']}/wp-json/wc/v3/orders", params={"per_page": 1},
                        auth=(env["CLERK_WOOCOMMERCE_KEY"], env["CLERK_WOOCOMMERCE_SECRET"]))
        assert woo.status_code == 200 and len(woo.json()) == 1
        mage = httpx.get(f"{env['CLERK_MAGENTO_URL']}/rest/{env['CLERK_MAGENTO_STORE']}/V1/orders",
                         params={"searchCriteria[pageSize]": 1},
                         headers={"Authorization": f"Bearer {env['CLERK_MAGENTO_TOKEN']}"})
        assert mage.status_code == 200 and len(mage.json()["items"]) == 1
        slack = httpx.post(f"{env['CLERK_SLACK_API_URL']}auth.test",
                           headers={"Authorization": f"Bearer {env['CLERK_SLACK_BOT_TOKEN']}"})
        assert slack.json()["ok"] is True
        assert env["CLERK_SLACK_CHANNEL"] == "#clerk-alerts"  # quoted for the shell, read back whole
        stripe = httpx.get(f"{env['CLERK_STRIPE_API_URL']}/v1/refunds",
                           headers={"Authorization": f"Bearer {env['CLERK_STRIPE_API_KEY']}"})
        assert stripe.status_code == 200 and stripe.json()["object"] == "list"
        carrier = httpx.get(f"{env['CLERK_EASYPOST_API_URL']}/v2/shipments", auth=(env["CLERK_EASYPOST_API_KEY"], ""))
        assert carrier.status_code == 200

        # One store behind the three storefronts: its 90 orders are dealt among them.
        stats = [httpx.get(f"{urls[name]}/sandbox/stats").json() for name in ("shopify", "woocommerce", "magento")]
        assert sum(s["orders"] for s in stats) == 90 and all(s["orders"] for s in stats)


def test_python_m_integrations_sandbox_all_prints_one_json_line_per_sandbox() -> None:
    with _served(["-m", "integrations.sandbox", "all", "--orders", "30", "--woocommerce-key", "ck_mine"]) as process:
        assert process.stdout is not None
        ready = [json.loads(process.stdout.readline()) for _ in range(3)]
    assert [r["vendor"] for r in ready] == ["shopify", "woocommerce", "magento"]
    assert {"token", "api_version"} <= set(ready[0]) and ready[1]["key"] == "ck_mine"
    assert {"token", "store_code"} <= set(ready[2]) and len({r["url"] for r in ready}) == 3
