"""Shared fixtures: a fresh database on SQLite and on the machine's PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

PG_BASE = os.environ.get("CLERK_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_available() -> bool:
    import sqlalchemy

    try:
        with sqlalchemy.create_engine(PG_BASE).connect():
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_ok() -> bool:
    return _postgres_available()


def _fresh_postgres_schema() -> tuple[str, str]:
    import sqlalchemy

    schema = f"clerk_{uuid.uuid4().hex[:12]}"
    with sqlalchemy.create_engine(PG_BASE, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    return f"{PG_BASE}?options=-csearch_path%3D{schema}", schema


def _drop_postgres_schema(schema: str) -> None:
    import sqlalchemy

    with sqlalchemy.create_engine(PG_BASE, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A migrated, empty database of each kind, one per test."""
    from models.db import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'clerk.db'}"
        upgrade(url)
        yield url
        return
    if not request.getfixturevalue("postgres_ok"):
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")
    url, schema = _fresh_postgres_schema()
    upgrade(url)
    try:
        yield url
    finally:
        from models.db import engine_for

        engine_for(url).dispose()
        _drop_postgres_schema(schema)
