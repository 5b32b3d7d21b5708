"""Alembic environment. The connection comes from the caller (portal.migrate) or DATABASE_URL."""
from __future__ import annotations

from alembic import context

from db import Base, database_url_from_env, import_all_models, make_engine

import_all_models()
target_metadata = Base.metadata


def run_with(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode recreates tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_with(connection)
else:
    engine = make_engine(context.config.attributes.get("url") or database_url_from_env())
    with engine.connect() as conn:
        run_with(conn)
    engine.dispose()
