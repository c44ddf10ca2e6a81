"""Marketplace order files: rows grouped into orders, read through a column mapping; only `Unreadable` escapes."""

from __future__ import annotations

import re
import tracemalloc
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from domain.orders import CatalogPrice, ChannelOrder, Lifecycle, Risk, expected_total, hold_reasons
from domain.reasons import Hold
from integrations.marketplace_csv import (
    MappingError,
    OrderFile,
    OrderFileError,
    OrderMapping,
    bundled_mappings,
    load_mapping,
)
from integrations.marketplace_csv.mapping import mapping_from_toml
from integrations.protocols import OrderSource, Unreadable

HEADER = "order_id,placed_at,status,currency,sku,title,quantity,unit_price,line_discount,shipping,tax,order_total," \
         "email,ship_name,ship_street1,ship_city,ship_postal_code,ship_country"


def _file(tmp_path: Path, text: str, mapping: OrderMapping | None = None, name: str = "orders.csv") -> OrderFile:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return OrderFile(path, "etsy", mapping or OrderMapping())


def _read(tmp_path: Path, text: str, mapping: OrderMapping | None = None) -> list[ChannelOrder | Unreadable]:
    return _read_source(_file(tmp_path, text, mapping))


def _read_source(source: OrderFile) -> list[ChannelOrder | Unreadable]:
    results: list[ChannelOrder | Unreadable] = []
    for payload in source.payloads:
        try:
            results.append(source.parse_order(payload))
        except Unreadable as exc:
            results.append(exc)
    return results


def _one(tmp_path: Path, rows: str, mapping: OrderMapping | None = None, header: str = HEADER) -> ChannelOrder:
    [order] = _read(tmp_path, f"{header}\n{rows}", mapping)
    assert isinstance(order, ChannelOrder), order
    return order


def _unreadable(tmp_path: Path, rows: str, mapping: OrderMapping | None = None, header: str = HEADER) -> Unreadable:
    [problem] = _read(tmp_path, f"{header}\n{rows}", mapping)
    assert isinstance(problem, Unreadable), problem
    return problem


def test_the_default_mapping_reads_a_generic_export(tmp_path: Path) -> None:
    order = _one(tmp_path, (
        "A-1,2026-10-01 10:00:00,paid,usd,MUG-1,Mug,2,10.00,1.00,5.00,1.50,25.50,ann@example.com,"
        "Ann Lee,1 Main St,Portland,97201,us\n"
        "A-1,,,,BOWL-2,Bowl,1,1.00,,,,,,,,,,\n"
    ))
    assert order.channel == "etsy" and order.external_id == "A-1" and order.number == "A-1"
    assert order.placed_at == datetime(2026, 10, 1, 10, 0, tzinfo=UTC) == order.updated_at
    assert order.lifecycle == Lifecycle.OPEN and order.currency == "USD" and order.risk == Risk.NONE
    assert [(line.sku, line.title, line.quantity, line.unit_price, line.discount) for line in order.lines] == [
        ("MUG-1", "Mug", Decimal(2), Decimal("10.00"), Decimal("1.00")),
        ("BOWL-2", "Bowl", Decimal(1), Decimal("1.00"), Decimal(0)),
    ]
    assert (order.total, order.shipping, order.tax, order.discounts) == (
        Decimal("25.50"), Decimal("5.00"), Decimal("1.50"), Decimal("1.00"))
    assert order.ship_to is not None and order.ship_to.country == "US" and order.ship_to.street1 == "1 Main St"
    assert order.customer is not None and order.customer.email == "ann@example.com"


def test_without_an_order_total_column_the_total_is_what_the_order_adds_up_to(tmp_path: Path) -> None:
    order = _one(tmp_path, "A-1,2026-10-01T10:00:00Z,,USD,MUG-1,Mug,3,10.00,2.00,4.00,1.00\n",
                 header="order_id,placed_at,status,currency,sku,title,quantity,unit_price,line_discount,shipping,tax")
    assert order.total == Decimal("33.00") == expected_total(order)  # 30 - 2 + 4 + 1: total_mismatch cannot fire


def test_a_custom_mapping_renames_columns_and_keeps_the_defaults_for_the_rest(tmp_path: Path) -> None:
    mapping = mapping_from_toml({
        "timezone": "Europe/Berlin",
        "date_format": "%d/%m/%Y %H:%M",
        "columns": {"order_id": "Order No", "placed_at": "Date", "sku": "Item SKU", "quantity": "Qty",
                    "unit_price": "Price", "ship_street2": ["Addr 2", "Addr 3"], "status": "State"},
        "status": {"Awaiting Pickup": "open", "Picked Up": "fulfilled"},
    })
    header = "Order No,Date,State,currency,Item SKU,Qty,Price,Addr 2,Addr 3"
    order = _one(tmp_path, "W-7,03/10/2026 09:30,Picked Up,EUR,BOX-1,12,3.50,Hall B,Gate 4\n", mapping, header)
    assert order.placed_at == datetime(2026, 10, 3, 7, 30, tzinfo=UTC)  # 09:30 in Berlin, summer time
    assert order.lifecycle == Lifecycle.FULFILLED and order.currency == "EUR"  # `currency` kept its default column
    assert order.lines[0].quantity == Decimal(12) and order.lines[0].unit_price == Decimal("3.50")
    assert order.ship_to is not None and order.ship_to.street2 == "Hall B, Gate 4"
    assert _file(tmp_path, f"{header}\n", mapping).missing_columns() == []
    assert _file(tmp_path, "Order No,Date\n", mapping).missing_columns() == [
        ("status", "State"), ("ship_street2", "Addr 2"), ("ship_street2", "Addr 3"), ("sku", "Item SKU"),
        ("quantity", "Qty"), ("unit_price", "Price"),
    ]


AMAZON_HEADER = (
    "order-id\torder-item-id\tpurchase-date\tpayments-date\tbuyer-email\tbuyer-name\tbuyer-phone-number\tsku\t"
    "product-name\tquantity-purchased\tcurrency\titem-price\titem-tax\tshipping-price\tshipping-tax\t"
    "item-promotion-discount\tship-promotion-discount\tship-service-level\trecipient-name\tship-address-1\t"
    "ship-address-2\tship-address-3\tship-city\tship-state\tship-postal-code\tship-country\tship-phone-number"
)
AMAZON_ROWS = [
    "114-3941689-8772232\t52986411826454\t2026-10-01T08:15:02+00:00\t2026-10-01T08:15:02+00:00\t"
    "x9k2@marketplace.amazon.com\tJane Doe\t\tAPP-001-M\tMerino Sweater - M\t2\tUSD\t59.98\t4.35\t5.99\t0.43\t"
    "-5.00\t0.00\tStandard\tJane Doe\t12 Oak Ave\t\t\tPortland\tOR\t97201\tUS\t+15035550123",
    "114-3941689-8772232\t52986411826455\t2026-10-01T08:15:02+00:00\t2026-10-01T08:15:02+00:00\t"
    "x9k2@marketplace.amazon.com\tJane Doe\t\tHOM-003-SAND\tCeramic Vase - Sand\t1\tUSD\t24.50\t1.78\t0.00\t0.00\t"
    "0.00\t0.00\tStandard\tJane Doe\t12 Oak Ave\t\t\tPortland\tOR\t97201\tUS\t+15035550123",
    "112-0000001-0000001\t61000000000001\t2026-10-01T09:01:00-07:00\t2026-10-01T09:01:00-07:00\t"
    "q1@marketplace.amazon.com\tLi Wei\t\tKIT-004-STANDARD\tChef's Knife\t3\tUSD\t30.00\t2.18\t8.99\t0.00\t"
    "0.00\t-8.99\tStandard\tLi Wei\t400 Pine Rd\tApt 4\tBuilding B\tSeattle\tWA\t98101\tUS\t",
    "113-5555555-1234567\t70000000000001\t2026-10-02T10:00:00+00:00\t2026-10-02T10:00:00+00:00\t"
    "r2@marketplace.amazon.com\tSam Roe\t\tTOY-007-STANDARD\tKite\t1\tUSD\t19.00\t0.00\t4.99\t0.00\t"
    "0.00\t0.00\tExpedited\tSam Roe\t5 Elm St\t\t\tAustin\tTX\t73301\tUS\t",
    "114-3941689-8772232\t52986411826456\t2026-10-01T08:15:02+00:00\t2026-10-01T08:15:02+00:00\t"
    "x9k2@marketplace.amazon.com\tJane Doe\t\tSTA-010-A5\tDot Grid Notebook - A5\t1\tUSD\t12.00\t0.87\t0.00\t0.00\t"
    "0.00\t0.00\tStandard\tJane Doe\t12 Oak Ave\t\t\tPortland\tOR\t97201\tUS\t+15035550123",
    "113-5555555-1234567\t70000000000002\t2026-10-02T10:00:00+00:00\t2026-10-02T10:00:00+00:00\t"
    "r2@marketplace.amazon.com\tSam Roe\t\tTOY-008-STANDARD\tPuzzle 1000\t2\tUSD\t39.98\t0.00\t0.00\t0.00\t"
    "0.00\t0.00\tExpedited\tSam Roe\t5 Elm St\t\t\tAustin\tTX\t73301\tUS\t",
]


def test_the_bundled_amazon_mapping_reads_an_order_report(tmp_path: Path) -> None:
    assert "amazon" in bundled_mappings()
    source = _file(tmp_path, "\n".join([AMAZON_HEADER, *AMAZON_ROWS]) + "\n", load_mapping("amazon"), "orders.txt")
    # The Order Report lists orders the seller is to ship: no status, no fulfillment channel.
    assert source.missing_columns() == [("status", "order-status"), ("requires_shipping", "fulfillment-channel")]
    assert [[row["line"] for row in p["rows"]] for p in source.payloads] == [[2, 3, 6], [4], [5, 7]]
    jane, li, sam = (source.parse_order(p) for p in source.payloads)
    assert all(order.requires_shipping and order.lines[0].requires_shipping for order in (jane, li, sam))

    assert jane.external_id == jane.number == "114-3941689-8772232" and jane.lifecycle == Lifecycle.OPEN
    assert jane.placed_at == datetime(2026, 10, 1, 8, 15, 2, tzinfo=UTC)
    assert [(line.sku, line.quantity, line.unit_price) for line in jane.lines] == [
        ("APP-001-M", Decimal(2), Decimal("29.99")), ("HOM-003-SAND", Decimal(1), Decimal("24.50")),
        ("STA-010-A5", Decimal(1), Decimal("12.00")),
    ]
    assert jane.lines[0].discount == Decimal("5.00")  # Amazon writes promotions as negative amounts
    assert (jane.shipping, jane.tax, jane.discounts) == (Decimal("5.99"), Decimal("7.43"), Decimal("5.00"))
    assert jane.total == Decimal("104.90")  # 96.48 of lines - 5.00 + 5.99 + 7.43
    assert jane.customer is not None and jane.customer.email == "x9k2@marketplace.amazon.com"
    assert jane.ship_to is not None and (jane.ship_to.name, jane.ship_to.province, jane.ship_to.phone) == (
        "Jane Doe", "OR", "+15035550123")

    assert li.placed_at == datetime(2026, 10, 1, 16, 1, tzinfo=UTC)
    assert li.lines[0].unit_price == Decimal("10.00") and li.discounts == Decimal("8.99")
    assert li.total == Decimal("32.18")  # free shipping: its promotion cancels it
    assert li.ship_to is not None and li.ship_to.street2 == "Apt 4, Building B"
    assert li.customer is not None and li.customer.phone is None
    assert [line.unit_price for line in sam.lines] == [Decimal("19.00"), Decimal("19.99")]
    assert sam.total == Decimal("63.97")


def test_the_amazon_mapping_also_reads_the_all_orders_report(tmp_path: Path) -> None:
    header = "amazon-order-id\tpurchase-date\torder-status\tsku\tquantity\tcurrency\titem-price\tship-country"
    source = _file(tmp_path, f"{header}\n"
                   "205-1\t2026-10-01T08:00:00+00:00\tShipped - Delivered to Buyer\tKITE-1\t2\tEUR\t20.00\tDE\n"
                   "205-2\t2026-10-01T09:00:00+00:00\tCancelled\tKITE-1\t1\tEUR\t10.00\tDE\n",
                   load_mapping("amazon"), "all-orders.txt")
    delivered, cancelled = (source.parse_order(p) for p in source.payloads)
    assert delivered.external_id == "205-1" and delivered.lifecycle == Lifecycle.FULFILLED
    assert delivered.lines[0].unit_price == Decimal("10.00") and delivered.ship_to is not None
    assert cancelled.lifecycle == Lifecycle.CANCELLED
    assert ("ship_street1", "ship-address-1") in source.missing_columns()


def test_the_amazon_fulfillment_channel_says_who_ships(tmp_path: Path) -> None:
    header = ("amazon-order-id\tpurchase-date\torder-status\tfulfillment-channel\tsku\tquantity\tcurrency\t"
              "item-price\tship-city\tship-postal-code\tship-country")
    source = _file(tmp_path, f"{header}\n"
                   "206-1\t2026-10-01T08:00:00+00:00\tUnshipped\tAmazon\tKITE-1\t1\tEUR\t10.00\tBerlin\t10115\tDE\n"
                   "206-2\t2026-10-01T09:00:00+00:00\tUnshipped\tMerchant\tKITE-1\t1\tEUR\t10.00\tBerlin\t10115\tDE\n"
                   "206-3\t2026-10-01T10:00:00+00:00\tUnshipped\tMarketplace\tKITE-1\t1\tEUR\t10.00\tBerlin\t10115\tDE\n",
                   load_mapping("amazon"), "all-orders.txt")
    by_amazon, by_seller, unknown = _read_source(source)
    assert isinstance(by_amazon, ChannelOrder) and isinstance(by_seller, ChannelOrder)
    assert (by_amazon.requires_shipping, by_amazon.lines[0].requires_shipping) == (False, False)
    assert (by_seller.requires_shipping, by_seller.lines[0].requires_shipping) == (True, True)
    # The report has no name or street: only the order the seller ships waits for one.
    catalog = {"KITE-1": CatalogPrice(Decimal("10.00"), "EUR")}
    assert hold_reasons(by_amazon, catalog) == []
    assert hold_reasons(by_seller, catalog) == [Hold.INCOMPLETE_ADDRESS]
    assert isinstance(unknown, Unreadable)
    assert (unknown.reason, unknown.detail, unknown.external_id) == (
        "malformed", "line 4: requires_shipping 'Marketplace' is not in the mapping's [requires_shipping] table", "206-3")


def test_a_requires_shipping_column_marks_digital_lines(tmp_path: Path) -> None:
    header = "order_id,placed_at,currency,sku,quantity,unit_price,requires_shipping"
    mixed = _one(tmp_path, "M,2026-10-01,USD,EBOOK,1,5,no\nM,,,MUG,1,10,yes\n", header=header)
    assert [line.requires_shipping for line in mixed.lines] == [False, True] and mixed.requires_shipping
    digital = _one(tmp_path, "D,2026-10-01,USD,EBOOK,1,5,No\nD,,,CARD,1,25,false\n", header=header)
    assert not digital.requires_shipping and not any(line.requires_shipping for line in digital.lines)
    unsaid = _one(tmp_path, "U,2026-10-01,USD,EBOOK,1,5,\n", header=header)
    assert unsaid.requires_shipping and unsaid.lines[0].requires_shipping  # blank: checked for an address
    download = mapping_from_toml({"requires_shipping": {"Download": False}})
    assert not _one(tmp_path, "W,2026-10-01,USD,EBOOK,1,5,download\n", download, header).requires_shipping
    assert _unreadable(tmp_path, "X,2026-10-01,USD,EBOOK,1,5,download\n", header=header).detail == (
        "line 2: requires_shipping 'download' is not in the mapping's [requires_shipping] table")


def test_decimal_comma_exports(tmp_path: Path) -> None:
    mapping = mapping_from_toml({"delimiter": ";", "decimal_comma": True})
    header = HEADER.replace(",", ";")
    order = _one(tmp_path, "EU-1;2026-10-01T10:00:00+02:00;;EUR;SKU-1;Lampe;2;1.234,56;10;4,5;;2.473,62\n"
                 "EU-1;;;;SKU-2;Kabel;1;12,5;;;;\n", mapping, header)
    assert [line.unit_price for line in order.lines] == [Decimal("1234.56"), Decimal("12.5")]
    assert (order.shipping, order.discounts, order.total) == (Decimal("4.5"), Decimal(10), Decimal("2473.62"))
    problem = _unreadable(tmp_path, "EU-2;2026-10-01;;EUR;SKU-1;Lampe;1;12.50;;;;12,50\n", mapping, header)
    assert problem.detail == "line 2: unit_price '12.50' is not a number"  # a dot only groups thousands here


def test_a_decimal_point_export_takes_thousands_commas_but_not_a_decimal_comma(tmp_path: Path) -> None:
    order = _one(tmp_path, 'US-1,2026-10-01,,USD,SKU-1,TV,1,"1,234.50",,,,"1,234.50"\n')
    assert order.lines[0].unit_price == Decimal("1234.50") == order.total
    assert _unreadable(tmp_path, 'US-2,2026-10-01,,USD,SKU-1,TV,1,"12,50",,,,12.50\n').detail == (
        "line 2: unit_price '12,50' is not a number")


MALFORMED = [
    ("amount", "A,2026-10-01,,USD,S,T,1,N/A,,,,1\n", "line 2: unit_price 'N/A' is not a number", "A"),
    ("quantity", "A,2026-10-01,,USD,S,T,1,1,,,,1\nA,,,,S2,T,two,1,,,,\n",
     "line 3: quantity 'two' is not a number", "A"),
    ("date", "A,yesterday,,USD,S,T,1,1,,,,1\n", "line 2: placed_at 'yesterday' is not a date and time", "A"),
    ("no date", "A,,,USD,S,T,1,1,,,,1\n", "line 2: placed_at is empty", "A"),
    ("no order id", ",2026-10-01,,USD,S,T,1,1,,,,1\n", "line 2: order_id is empty", None),
    ("status", "A,2026-10-01,on hold,USD,S,T,1,1,,,,1\n",
     "line 2: status 'on hold' is not in the mapping's [status] table", "A"),
    ("no price", "A,2026-10-01,,USD,S,T,1,,,,,1\n", "line 2: unit_price is empty", "A"),
    ("no total", "A,2026-10-01,,USD,S,T,1,1,,,,\n", "line 2: order_total is empty", "A"),
    ("shipping", "A,2026-10-01,,USD,S,T,1,1,,12.50.00,,1\n", "line 2: shipping '12.50.00' is not a number", "A"),
    ("too many cells", "A,2026-10-01,,USD,S,T,1,1,,,,1,,,,,,,surplus\n",
     "line 2: more cells than the header has columns", "A"),
]


@pytest.mark.parametrize(("rows", "detail", "external_id"), [case[1:] for case in MALFORMED],
                         ids=[case[0] for case in MALFORMED])
def test_each_unreadable_value_is_malformed_and_names_its_line(
    tmp_path: Path, rows: str, detail: str, external_id: str | None
) -> None:
    problem = _unreadable(tmp_path, rows)
    assert (problem.reason, problem.detail, problem.external_id) == ("malformed", detail, external_id)


def test_rows_without_an_order_id_stand_alone(tmp_path: Path) -> None:
    results = _read(tmp_path, f"{HEADER}\n,2026-10-01,,USD,S,T,1,1,,,,1\nA,2026-10-01,,USD,S,T,1,1,,,,1\n"
                              ",2026-10-01,,USD,S,T,1,1,,,,1\n")
    assert [r.detail if isinstance(r, Unreadable) else r.external_id for r in results] == [
        "line 2: order_id is empty", "A", "line 4: order_id is empty"]


@pytest.mark.parametrize(("quantity", "as_read"), [("0", "0"), ("-1", "-1"), ("1.5", "1.5"), ("2.00", "2.00"), ("", None)])
def test_quantities_are_kept_as_read_for_the_quality_suite(tmp_path: Path, quantity: str, as_read: str | None) -> None:
    order = _one(tmp_path, f"A,2026-10-01,,USD,S,T,{quantity},1,,,,1\n")
    read = order.lines[0].quantity
    assert (None if read is None else str(read)) == as_read


def test_rows_that_are_not_lines_leave_an_order_without_lines(tmp_path: Path) -> None:
    order = _one(tmp_path, "A,2026-10-01,,BYR,,,,,,5.00,,5.00\n")
    assert order.lines == () and order.currency == "BYR"  # no_line_items and unknown_currency are the suite's


def test_the_quality_suite_judges_what_the_file_said(tmp_path: Path) -> None:
    from tasks.quality import quality_failures

    orders = _read(tmp_path, f"{HEADER}\nQ0,2026-10-01,,USD,S,T,0,1,,,,0\nQH,2026-10-01,,USD,S,T,1.5,1,,,,1.5\n"
                             "QC,2026-10-01,,BYR,S,T,1,1,,,,1\nQN,2026-10-01,,USD,,,,,,,,0\n"
                             "OK,2026-10-01,,USD,S,T,2,1,,,,2\nOK2,2026-10-01,,USD,S,T,2.00,1,,,,2\n")
    assert all(isinstance(order, ChannelOrder) for order in orders)
    reasons = {orders[i].external_id: reason for i, (reason, _) in quality_failures(orders).items()}  # type: ignore[union-attr]
    assert reasons == {"Q0": "invalid_quantity", "QH": "invalid_quantity", "QC": "unknown_currency",
                       "QN": "no_line_items"}


def test_one_orders_rows_spread_through_the_file_are_grouped_in_file_order(tmp_path: Path) -> None:
    source = _file(tmp_path, f"{HEADER}\n"
                   "A,2026-10-01,,USD,A-1,T,1,1,,,,6\n"
                   "B,2026-10-01,,USD,B-1,T,1,1,,,,3\n"
                   "A,,,,A-2,T,2,1,,,,\n"
                   "\n"
                   "B,2026-10-01,,USD,B-2,T,2,1,,,,3\n"
                   "A,,,,A-3,T,3,1,,,,\n")
    assert [(p["order_id"], [row["line"] for row in p["rows"]]) for p in source.payloads] == [
        ("A", [2, 4, 7]), ("B", [3, 6])]
    a, b = (source.parse_order(p) for p in source.payloads)
    assert [line.sku for line in a.lines] == ["A-1", "A-2", "A-3"] and a.total == Decimal(6)
    assert [line.sku for line in b.lines] == ["B-1", "B-2"]


def test_a_later_row_may_not_contradict_an_order_level_value(tmp_path: Path) -> None:
    currency, b = _read(tmp_path, f"{HEADER}\nA,2026-10-01,,USD,S,T,1,1,,,,2\nB,2026-10-01,,USD,S,T,1,1,,,,1\n"
                                  "A,2026-10-01,,EUR,S2,T,1,1,,,,2\n")
    assert isinstance(currency, Unreadable) and isinstance(b, ChannelOrder)
    assert currency.detail == "lines 2 and 4: currency differs ('USD', 'EUR')" and currency.external_id == "A"
    street = _unreadable(tmp_path, "A,2026-10-01,,USD,S,T,1,1,,,,2,,,1 Main St,,,\n"
                                   "A,,,,S2,T,1,1,,,,,,,9 Side Rd,,,\n")
    assert street.detail == "lines 2 and 3: ship_street1 differs"  # personal data is never quoted
    same_moment = _one(tmp_path, "A,2026-10-01T10:00:00Z,,USD,S,T,1,1,,,,2\nA,2026-10-01 10:00:00,,USD,S2,T,1,1,,,,2.00\n")
    assert same_moment.total == Decimal(2)


STATUS_ROWS = [
    ("pending", Lifecycle.OPEN), ("Unshipped", Lifecycle.OPEN), ("PAID", Lifecycle.OPEN),
    ("processing", Lifecycle.OPEN), ("", Lifecycle.OPEN), ("shipped", Lifecycle.FULFILLED),
    ("Delivered", Lifecycle.FULFILLED), ("completed", Lifecycle.FULFILLED), ("cancelled", Lifecycle.CANCELLED),
    ("Canceled", Lifecycle.CANCELLED), ("refunded", Lifecycle.CLOSED), ("closed", Lifecycle.CLOSED),
    ("Shipped - Delivered to Buyer", Lifecycle.FULFILLED), ("on hold", Lifecycle.OPEN),
]


def test_the_status_table_row_by_row(tmp_path: Path) -> None:
    mapping = mapping_from_toml({"status": {"On Hold": "open"}})
    rows = "".join(f"O{n},2026-10-01,{word},USD,S,T,1,1,,,,1\n" for n, (word, _) in enumerate(STATUS_ROWS))
    orders = _read(tmp_path, f"{HEADER}\n{rows}", mapping)
    assert [order.lifecycle for order in orders] == [lifecycle for _, lifecycle in STATUS_ROWS]  # type: ignore[union-attr]


def test_taxes_included_and_risk_columns(tmp_path: Path) -> None:
    header = "order_id,placed_at,currency,sku,quantity,unit_price,tax,taxes_included,risk"
    order = _one(tmp_path, "A,2026-10-01,GBP,S,1,12.00,2.00,Yes,High\n", header=header)
    assert order.taxes_included and order.risk == Risk.HIGH and order.total == Decimal("12.00")
    assert _unreadable(tmp_path, "A,2026-10-01,GBP,S,1,12.00,2.00,maybe,\n", header=header).detail == (
        "line 2: taxes_included 'maybe' is not yes or no")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "cp1252"])
def test_the_file_is_an_order_source_served_a_batch_at_a_time(tmp_path: Path, encoding: str) -> None:
    # O1 is split: its second row comes after O3. A title spans two lines; a row has no id; one line is blank.
    path = tmp_path / "orders.csv"
    path.write_text(f"{HEADER}\n"
                    "O0,2026-10-01,,USD,S,T,1,1,,,,1\n"
                    'O1,2026-10-01,,USD,S,"Café\nmug",1,1,,,,2\n'
                    "O2,2026-10-01,,USD,S,T,1,1,,,,1\n"
                    ",2026-10-01,,USD,S,T,1,1,,,,1\n"
                    "\n"
                    "O3,2026-10-01,,USD,S,Thé,1,1,,,,1\n"
                    "O1,,,,S2,Crème,1,1,,,,\n"
                    "O4,2026-10-01,,USD,S,T,1,1,,,,1\n", encoding=encoding)  # utf-8-sig and utf-16 start with a BOM
    mapping = mapping_from_toml({"encoding": encoding})
    source = OrderFile(path, "etsy", mapping)
    assert isinstance(source, OrderSource) and list(source.catalog_pages()) == []
    assert len(source.payloads) == 6
    assert [p["order_id"] for p in source.payloads] == ["O0", "O1", "O2", None, "O3", "O4"]
    pages, cursor = [], None
    while True:
        # Each page from a fresh reader of the file: the cursor alone says where to go on from.
        page = OrderFile(path, "etsy", mapping).changed_orders(None, cursor, 2)
        assert page.high_water is None
        pages.append([(p["order_id"], [row["line"] for row in p["rows"]]) for p in page.payloads])
        if page.cursor is None:
            break
        cursor = page.cursor
    assert pages == [[("O0", [2]), ("O1", [3, 9])], [("O2", [5]), (None, [6])], [("O3", [8]), ("O4", [10])]]
    [split] = [p for p in source.payloads if p["order_id"] == "O1"]
    assert [line.title for line in source.parse_order(split).lines] == ["Café\nmug", "Crème"]


def _peak_while_paging(source: OrderFile, limit: int) -> tuple[list[int], int]:
    """Rows of each order as the pages serve them, and the peak memory of serving them."""
    rows: list[int] = []
    tracemalloc.start()
    try:
        cursor = None
        while True:
            page = source.changed_orders(None, cursor, limit)
            rows += [len(payload["rows"]) for payload in page.payloads]
            if page.cursor is None:
                return rows, tracemalloc.get_traced_memory()[1]
            cursor = page.cursor
    finally:
        tracemalloc.stop()


def test_paging_through_50000_rows_holds_a_page_not_the_file(tmp_path: Path) -> None:
    # 25,000 orders of two rows, and order S whose second row is the file's last.
    rows = "".join(f"O{n},2026-10-01,USD,SKU-{line},1,12.50\n" for n in range(25_000) for line in (1, 2))
    source = _file(tmp_path, f"order_id,placed_at,currency,sku,quantity,unit_price\nS,2026-10-01,USD,S,1,1\n"
                             f"{rows}S,,,S2,1,1\n")
    assert len(source.payloads) == 25_001  # reads the file once, before the baseline is measured
    tracemalloc.start()
    try:
        whole = list(source.payloads)  # the baseline: every order's rows at once
        held_whole = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [row["line"] for row in whole[0]["rows"]] == [2, 50_003]
    del whole

    served, peak = _peak_while_paging(OrderFile(source.path, "etsy", OrderMapping()), 500)
    assert len(served) == 25_001 and sum(served) == 50_002 and served[0] == 2
    # A page is 500 of the 25,001 orders; the file's order ids are held once, while it is first read.
    assert peak < held_whole / 10, (peak, held_whole)


@pytest.mark.parametrize(("data", "complaint"), [
    ({"order_id": "Order"}, "column names go under [columns]"),
    ({"columns": {"order_idd": "x"}}, "unknown field(s) in [columns]: order_idd"),
    ({"columns": {"order_id": ""}}, "order_id must name a column"),
    ({"status": {"held": "waiting"}}, "use open, fulfilled, closed or cancelled"),
    ({"requires_shipping": {"digital": "no"}}, "use true (the merchant ships) or false"),
    ({"requires_shipping": "fulfillment-channel"}, "[columns], [status] and [requires_shipping] must be tables"),
    ({"timezone": "Mars/Olympus"}, "is unknown"),
    ({"delimiter": ";;"}, "delimiter must be one character"),
])
def test_a_mapping_that_cannot_be_used_is_refused(data: dict, complaint: str) -> None:
    with pytest.raises(MappingError, match=re.escape(complaint)):
        mapping_from_toml(data)


def test_mapping_files_by_name_or_path(tmp_path: Path) -> None:
    custom = tmp_path / "portal.toml"
    custom.write_text('delimiter = ";"\n[columns]\norder_id = "PO"\n')
    assert load_mapping(str(custom)).delimiter == ";" and load_mapping(None) == OrderMapping()
    with pytest.raises(MappingError, match="no mapping file 'ebay'"):
        load_mapping("ebay")
    custom.write_text("delimiter = \n")
    with pytest.raises(MappingError, match="portal.toml"):
        load_mapping(str(custom))


def test_a_file_that_cannot_be_imported_is_refused_whole(tmp_path: Path) -> None:
    with pytest.raises(OrderFileError, match="no order id column"):
        _file(tmp_path, "sku,quantity\nA,1\n")
    with pytest.raises(OrderFileError, match="is empty"):
        _file(tmp_path, "")
    with pytest.raises(OrderFileError, match="channel"):
        OrderFile(tmp_path / "orders.csv", "not a channel!", OrderMapping())
    latin = tmp_path / "latin.csv"
    latin.write_bytes(f"{HEADER}\nA,2026-10-01,,EUR,S,Caf\xe9,1,1,,,,1\n".encode("latin-1"))
    with pytest.raises(OrderFileError, match="latin.csv:2: not utf-8-sig text"):
        len(OrderFile(latin, "etsy", OrderMapping()).payloads)  # counting the orders reads the whole file
    as_latin = OrderFile(latin, "etsy", mapping_from_toml({"encoding": "latin-1"}))
    [payload] = as_latin.payloads
    assert as_latin.parse_order(payload).lines[0].title == "Café"


def test_optional_payment_columns_say_who_took_the_money(tmp_path: Path) -> None:
    header = "order_id,placed_at,status,currency,sku,title,quantity,unit_price,payment_gateway,payment_reference"
    order = _one(tmp_path, "A-1,2026-10-01T10:00:00Z,,USD,MUG-1,Mug,1,10.00,Stripe,pi_123\n"
                           "A-1,2026-10-01T10:00:00Z,,USD,MUG-2,Mug,1,10.00,,\n", header=header)
    assert order.payment is not None and (order.payment.gateway, order.payment.reference) == ("stripe", "pi_123")
    without = _one(tmp_path, "A-2,2026-10-01T10:00:00Z,,USD,MUG-1,Mug,1,10.00\n",
                   header="order_id,placed_at,status,currency,sku,title,quantity,unit_price")
    assert without.payment is None
