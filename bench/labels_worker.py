"""Worker roles for the labels benchmark (`bench.labels`), run by `bench.worker`.

Roles:
    labels_ours: the real `ship-orders` flow (deployments.runs.run_flow), after a warm-up.
    labels_floor: the same requests, one order after another (the flow's concurrency), with
        plain httpx: verify the address, create the shipment, read it back, buy the cheapest
        rate, fetch the label file. Nothing stored.
"""

from __future__ import annotations

from typing import Any

from bench.harness import Stopwatch, current_rss_mb, peak_rss_mb


def labels_ours(spec: dict[str, Any]) -> dict[str, Any]:
    from bench.worker import measure_flow

    return measure_flow("labels_ours", "ship-orders", {}, "flows.ship_orders", spec.get("profile"))


def labels_floor(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx
    from sqlalchemy import select

    from integrations.settings import cached_settings
    from models import Order, OrderAddress
    from models.db import unit_of_work

    settings = cached_settings()
    with unit_of_work(settings.database_url) as session:
        orders = session.execute(
            select(Order.id, OrderAddress.name, OrderAddress.street1, OrderAddress.city, OrderAddress.province,
                   OrderAddress.postal_code, OrderAddress.country)
            .join(OrderAddress, OrderAddress.order_id == Order.id).where(Order.status == "accepted").order_by(Order.id)
        ).all()
    ship_from = {"name": "Warehouse", "street1": "1 Dock Rd", "city": "Portland", "state": "OR", "zip": "97201",
                 "country": "US"}
    watch = Stopwatch()
    bought = 0
    rss_before = current_rss_mb()
    with watch.time("run"), httpx.Client(base_url=settings.easypost_api_url.rstrip("/") + "/v2/",
                                         auth=(settings.easypost_api_key or "", ""), timeout=30) as http:
        for order_id, name, street, city, state, postal, country in orders:
            to = {"name": name, "street1": street, "city": city, "state": state, "zip": postal, "country": country}
            http.post("addresses", json={"address": to | {"verify": ["delivery"]}}).raise_for_status()
            shipment = http.post("shipments", json={"shipment": {"from_address": ship_from, "to_address": to,
                                                                 "parcel": {"weight": 16.0}, "reference": f"o{order_id}"}})
            shipment.raise_for_status()
            body = shipment.json()
            rate = min(body["rates"], key=lambda r: float(r["rate"]))
            http.get(f"shipments/{body['id']}").raise_for_status()
            label = http.post(f"shipments/{body['id']}/buy", json={"rate": {"id": rate["id"]}})
            label.raise_for_status()
            http.get(label.json()["postage_label"]["label_url"]).raise_for_status()
            bought += 1
    return {"role": "labels_floor", "times": watch.times, "labels": bought, "rss_after_start_mb": rss_before,
            "peak_rss_mb": peak_rss_mb()}


ROLES = {"labels_ours": labels_ours, "labels_floor": labels_floor}
