"""A database of a test's own, for tests that must commit (concurrency) or migrate up and down
(tests/unit/test_migrations.py) without disturbing the suite's shared, savepoint-isolated database.

SQLite: a file under the test's tmp_path (a file, not :memory:, so that several connections share it
and BEGIN IMMEDIATE serialises their writers, as in production).
PostgreSQL: a schema of its own in the test database (only CREATE on the database is needed, not
CREATEDB), put first on every connection's search_path, dropped with everything in it afterwards."""
from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import text
from sqlalchemy.engine import Engine

from db import make_engine
from migrations.runner import upgrade


def backend(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


@contextlib.contextmanager
def isolated_engine(database_url: str, tmp_path: Path, name: str, *, migrate: bool = True,
                    **engine_kwargs: Any) -> Iterator[Engine]:
    if backend(database_url) == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / f'{name}.sqlite3'}", **engine_kwargs)
        try:
            if migrate:
                upgrade(engine)
            yield engine
        finally:
            engine.dispose()
        return

    schema = f"{name}_{uuid.uuid4().hex[:10]}"
    admin = make_engine(database_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    connect_args = dict(engine_kwargs.pop("connect_args", {}), options=f"-csearch_path={schema}")
    engine = make_engine(database_url, connect_args=connect_args, **engine_kwargs)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT current_schema()")) == schema
        if migrate:
            upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
