"""Alembic environment: the URL comes from `models.db.upgrade` or CLERK_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context

from models import Base
from models.db import engine_for

config = context.config
url = config.attributes.get("url") or os.environ.get("CLERK_DATABASE_URL", "sqlite:///./clerk.db")
engine = engine_for(url)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=engine.dialect.name == "sqlite",  # SQLite alters tables by copy
        compare_type=True,
    )
    context.run_migrations()
