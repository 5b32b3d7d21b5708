"""Run Alembic migrations from code (CLI, tests, benchmark)."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

ROOT = Path(__file__).resolve().parent.parent


def alembic_config() -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return config


def upgrade(bind: Engine | Connection, revision: str = "head") -> None:
    config = alembic_config()
    if isinstance(bind, Engine) and bind.dialect.name == "sqlite":
        _upgrade_sqlite(bind, config, revision)
    elif isinstance(bind, Engine):
        with bind.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    else:
        config.attributes["connection"] = bind
        command.upgrade(config, revision)


class ForeignKeyViolation(RuntimeError):
    pass


def _upgrade_sqlite(engine: Engine, config: Config, revision: str) -> None:
    """SQLite's batch migrations copy a table and drop the old one; with foreign keys enforced, dropping
    a table that other rows refer to fails (it deletes its rows first). As SQLite's documentation asks
    for ALTER TABLE work, enforcement is switched off around the migration (the pragma only acts outside
    a transaction), every reference is checked before the commit, and enforcement is switched on again."""
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise ForeignKeyViolation(f"the migration would leave broken references: {broken[:5]}")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")
