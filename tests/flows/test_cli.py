"""The contract's commands, driven the way users and scripts drive them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from deployments.cli import main
from tests.flows.conftest import World


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
    assert json.loads(captured.out) == {"imported": 2, "rejected": 2, "ledger_entries": 2}
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
