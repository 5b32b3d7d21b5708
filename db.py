"""Database plumbing shared by every domain package: metadata, engine, sessions.

No Flask here: the CLI, the web layer, the benchmark and the tests all build
their sessions from these functions.
"""
from __future__ import annotations

import enum
import os
from typing import Any

from sqlalchemy import Enum, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, sessionmaker, Session

# Explicit constraint names so Alembic migrations and error messages are stable
# across SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def string_enum(cls: type[enum.Enum], name: str, length: int = 32) -> Enum:
    """An enum stored as its values in a plain string column with a CHECK
    constraint: adding a value is a migration of the constraint, not of a type."""
    return Enum(cls, name=name, native_enum=False, create_constraint=True, length=length,
                values_callable=lambda members: [m.value for m in members])


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


DEFAULT_SQLITE_URL = "sqlite:///instance/portal.sqlite3"


def normalise_url(url: str | None) -> str:
    """Accept the usual spellings of a database URL and pick the psycopg 3 driver."""
    if not url:
        return DEFAULT_SQLITE_URL
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def database_url_from_env() -> str:
    return normalise_url(os.environ.get("PORTAL_DATABASE_URL") or os.environ.get("DATABASE_URL"))


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _make_sqlite_engine(url, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _make_sqlite_engine(url: str, **kwargs: Any) -> Engine:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT;
    # SQLAlchemy's documented recipe: turn it off and emit BEGIN ourselves.
    # BEGIN IMMEDIATE takes the write lock up front so two writers never
    # deadlock on a lock upgrade; busy_timeout makes the second one wait.
    path = url.split("///", 1)[-1]
    if path and path != ":memory:" and not path.startswith("file:"):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", 30)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record):  # noqa: ARG001
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if path != ":memory:":
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # A long read (the audit export's stream, see read_only_connection) begins DEFERRED: in WAL mode
        # it reads a snapshot and takes no write lock, so the other requests keep writing meanwhile.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


# Execution option of a connection that only reads (read_only_connection).
READ_ONLY = "portal_read_only"


def read_only_connection(engine: Engine):
    """A connection of its own for a long read that must not block writers: a deferred transaction on
    SQLite (a WAL snapshot, no write lock), a REPEATABLE READ READ ONLY one on PostgreSQL (one snapshot
    for the whole read; with yield_per, a server-side cursor). The caller closes it."""
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return engine.connect().execution_options(**options)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def import_all_models() -> None:
    """Register every mapped class on Base.metadata (Alembic and tests need all of them)."""
    import access.models  # noqa: F401
    import audit.models  # noqa: F401
    import audit.alerts  # noqa: F401  (the alerts' models live with their rules)
    import certificates.models  # noqa: F401
    import mandates.models  # noqa: F401
    import repertory.models  # noqa: F401
    import reviews.models  # noqa: F401
