"""prefect.yaml and `clerk serve` describe the same deployments, and their entrypoints load."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from deployments.runs import FLOWS
from deployments.serve import ON_DEMAND, SCHEDULES

ROOT = Path(__file__).resolve().parents[2]


def _prefect_yaml() -> dict:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


def test_every_deployment_in_prefect_yaml_is_served_on_the_same_schedule() -> None:
    deployments = {d["name"]: d for d in _prefect_yaml()["deployments"]}
    assert set(deployments) == set(SCHEDULES) | set(ON_DEMAND)
    for name, schedule in SCHEDULES.items():
        assert deployments[name]["schedules"] == [schedule]
        assert deployments[name]["concurrency_limit"] == 1
    for name in ON_DEMAND:  # started by other runs, many at once
        assert "schedules" not in deployments[name] and "concurrency_limit" not in deployments[name]


def test_entrypoints_name_the_flows_the_cli_runs() -> None:
    for deployment in _prefect_yaml()["deployments"]:
        path, function = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, function)
        assert flow.name == deployment["name"]
        assert FLOWS[deployment["name"]] == f"{module.__name__}:{function}"


def test_order_intake_runs_every_fifteen_minutes_and_restock_check_nightly() -> None:
    assert SCHEDULES["order-intake"] == {"interval": 15 * 60}
    assert SCHEDULES["restock-check"] == {"cron": "30 2 * * *"}


def test_serve_builds_every_deployment_with_its_schedule() -> None:
    from deployments.serve import deployments

    built = {d.name: d for d in deployments()}
    assert set(built) == set(SCHEDULES) | set(ON_DEMAND)
    assert built["await-approval"].schedules in (None, []) and built["await-approval"].concurrency_limit is None
    assert built["restock-check"].schedules[0].schedule.cron == "30 2 * * *"
    assert built["order-intake"].schedules[0].schedule.interval.total_seconds() == 900


def test_the_shopify_sandbox_keeps_the_options_and_ready_line_the_bench_reads() -> None:
    from integrations.sandbox.__main__ import build_parser, build_sandboxes, ready_line

    argv = ["shopify", "--orders", "12", "--seed", "3", "--port", "0", "--restore-rate", "250.0"]
    args = build_parser().parse_args(argv)
    assert (args.orders, args.seed, args.port, args.restore_rate) == (12, 3, 0, 250.0)
    shop = build_sandboxes(["shopify"], orders=12, seed=3)["shopify"]
    try:
        line = ready_line("shopify", shop, "http://127.0.0.1:1")
    finally:
        shop.close()
    assert list(line) == ["vendor", "url", "token", "api_version"]
    assert len(shop.store.orders) == 12
