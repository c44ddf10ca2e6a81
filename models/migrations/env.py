"""Alembic environment: the URL comes from `models.db.upgrade` or CLERK_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context

from models import Base
from models.db import engine_for

config = context.config
url = config.attributes.get("url") or os.environ.get("CLERK_DATABASE_URL", "sqlite:///./clerk.db")
engine = engine_for(url)

sqlite = engine.dialect.name == "sqlite"
with engine.connect() as connection:
    if sqlite:
        # SQLite alters a table by copying it and dropping the old one; with foreign keys
        # on, that drop would cascade into every table pointing at it. The pragma only
        # takes effect outside a transaction, hence before `begin`.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    with connection.begin():
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        context.run_migrations()
        if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
            raise RuntimeError(f"migration left {len(broken)} rows pointing nowhere, e.g. {broken[0]}")
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
