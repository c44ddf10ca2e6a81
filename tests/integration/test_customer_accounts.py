"""One customer across channels: accounts per channel, matched by email, on both databases."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa
from sqlalchemy import func, select

from domain.intake import Decision, Outcome
from domain.orders import Customer as Buyer
from domain.orders import Status
from models import Customer, CustomerAccount, CustomerPII, Order
from models.db import engine_for, unit_of_work, upgrade
from models.intake import email_key, store_decisions
from tests.unit.factories import order


def _store(url: str, channel: str, external_id: str, buyer: Buyer | None) -> None:
    placed = replace(order(external_id), channel=channel, customer=buyer)
    with unit_of_work(url) as session:
        store_decisions(session, channel, [Decision(placed, Outcome.CREATED, Status.ACCEPTED)], {})


def _customer_of(url: str, channel: str, external_id: str) -> int | None:
    with unit_of_work(url) as session:
        return session.scalar(select(Order.customer_id).where(Order.channel == channel, Order.external_id == external_id))


def test_the_same_email_on_three_channels_is_one_customer(database_url: str) -> None:
    _store(database_url, "shopify", "1", Buyer("gid://shopify/Customer/9", "Ana.Lima@Example.com", first_name="Ana"))
    _store(database_url, "woocommerce", "1", Buyer("57", " ana.lima@example.com ", first_name="Ana"))
    _store(database_url, "magento", "1", Buyer(None, "ana.lima@example.COM", first_name="Anna"))  # a guest
    _store(database_url, "woocommerce", "2", Buyer("58", "bo@example.com"))
    ana = {_customer_of(database_url, channel, "1") for channel in ("shopify", "woocommerce", "magento")}
    assert len(ana) == 1 and None not in ana
    assert _customer_of(database_url, "woocommerce", "2") not in ana
    with unit_of_work(database_url) as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 2
        accounts = session.execute(select(CustomerAccount.channel, CustomerAccount.external_id)
                                   .where(CustomerAccount.customer_id.in_(ana))).all()
        assert sorted(channel for channel, _ in accounts) == ["magento", "shopify", "woocommerce"]
        assert all("@" not in external_id for _, external_id in accounts)  # a guest's key is a digest
        pii = session.scalars(select(CustomerPII).where(CustomerPII.customer_id.in_(ana))).one()
        assert (pii.first_name, pii.email_key) == ("Anna", email_key("ana.lima@example.com"))  # the latest wins


def test_an_account_stays_with_its_customer_and_no_email_means_no_match(database_url: str) -> None:
    _store(database_url, "shopify", "1", Buyer("gid://shopify/Customer/9", "ana@example.com"))
    _store(database_url, "shopify", "2", Buyer("gid://shopify/Customer/9", "ana.new@example.com"))  # email changed
    _store(database_url, "woocommerce", "1", Buyer("77", None))
    _store(database_url, "magento", "1", Buyer("77", None))
    assert _customer_of(database_url, "shopify", "1") == _customer_of(database_url, "shopify", "2")
    assert _customer_of(database_url, "woocommerce", "1") != _customer_of(database_url, "magento", "1")
    _store(database_url, "magento", "2", None)
    assert _customer_of(database_url, "magento", "2") is None


def test_two_new_accounts_with_one_email_in_one_batch_share_a_new_customer(database_url: str) -> None:
    orders = [replace(order(str(n)), channel="woocommerce", customer=Buyer(str(70 + n), "twin@example.com"))
              for n in (1, 2)]
    with unit_of_work(database_url) as session:
        store_decisions(session, "woocommerce", [Decision(o, Outcome.CREATED, Status.ACCEPTED) for o in orders], {})
    assert _customer_of(database_url, "woocommerce", "1") == _customer_of(database_url, "woocommerce", "2")


def _downgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from models.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    command.downgrade(config, revision)


def test_migrating_a_0001_database_keeps_every_customer_as_an_account(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    with engine_for(url).begin() as conn:
        conn.execute(sa.text("INSERT INTO customers (id, channel, external_id, created_at) VALUES "
                             "(1, 'shopify', 'gid://shopify/Customer/9', '2026-11-01 00:00:00'), "
                             "(2, 'shopify', 'guest:abc', '2026-11-01 00:00:00')"))
        conn.execute(sa.text("INSERT INTO customer_pii (customer_id, email) VALUES (1, 'Ana@Example.com'), (2, NULL)"))
    upgrade(url)
    with unit_of_work(url) as session:
        assert session.execute(select(CustomerAccount.customer_id, CustomerAccount.channel, CustomerAccount.external_id)
                               .order_by(CustomerAccount.customer_id)).all() == [
            (1, "shopify", "gid://shopify/Customer/9"), (2, "shopify", "guest:abc")]
        assert session.execute(select(CustomerPII.customer_id, CustomerPII.email_key)
                               .order_by(CustomerPII.customer_id)).all() == [(1, email_key("ana@example.com")), (2, None)]
    _downgrade(url, "0002")  # and back: the customers keep their one account each
    with engine_for(url).begin() as conn:
        assert conn.execute(sa.text("SELECT id, channel, external_id FROM customers ORDER BY id")).all() == [
            (1, "shopify", "gid://shopify/Customer/9"), (2, "shopify", "guest:abc")]
