"""Command line: `flask --app wsgi ...`. Same operations as the web, one transaction per command."""
from __future__ import annotations

import contextlib
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from access import operations as ops
from access.errors import DomainError
from audit.operations import CLI_CONTEXT

db_cli = AppGroup("db", help="Database schema (Alembic migrations).")
officer_cli = AppGroup("officer", help="Portal officers.")
enterprise_cli = AppGroup("enterprise", help="Enterprises.")
demo_cli = AppGroup("demo", help="The demo data set.")


@contextlib.contextmanager
def transaction():
    """One transaction per command; a refused rule prints its message and exits 2."""
    session = current_app.extensions["portal.session_factory"]()
    try:
        yield session
        session.commit()
    except DomainError as error:
        session.rollback()
        where = f" ({error.field})" if error.field else ""
        click.echo(f"Refused{where}: {error.message}", err=True)
        sys.exit(2)
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


def _engine():
    from db import make_engine

    return current_app.extensions.get("portal.engine") or make_engine(current_app.config["DATABASE_URL"])


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from migrations.runner import upgrade

    upgrade(_engine(), revision)
    click.echo(f"Database at {revision}.")


@officer_cli.command("create")
@click.option("--insz", required=True)
@click.option("--first-name", required=True)
@click.option("--last-name", required=True)
@click.option("--email", default=None)
@click.option("--password", default=None, help="Set a password now (else an initial one is issued).")
def create_officer(insz, first_name, last_name, email, password) -> None:
    """Create a portal officer (institution staff)."""
    with transaction() as session:
        account, credential = ops.create_portal_officer(session, insz=insz, first_name=first_name,
                                                        last_name=last_name, email=email, password=password,
                                                        by=CLI_CONTEXT)
    click.echo(f"Portal officer {first_name} {last_name}: user-id {account.user_id}")
    if credential:
        click.echo(f"Initial password (shown once): {credential.password}  (expires {credential.expires_at:%Y-%m-%d})")


@enterprise_cli.command("register")
@click.option("--kbo", required=True)
@click.option("--name", required=True)
@click.option("--street", required=True)
@click.option("--postal-code", required=True)
@click.option("--city", required=True)
@click.option("--legal-form", required=True)
@click.option("--rsz-number", default=None)
@click.option("--joint-committee", default=None)
def register_enterprise(kbo, name, street, postal_code, city, legal_form, rsz_number, joint_committee) -> None:
    """Register an enterprise (an employer when --rsz-number is given)."""
    with transaction() as session:
        enterprise = ops.register_enterprise(session, kbo=kbo, rsz_number=rsz_number, name=name, street=street,
                                             postal_code=postal_code, city=city, legal_form=legal_form,
                                             joint_committee=joint_committee, by=CLI_CONTEXT)
        click.echo(f"Registered {enterprise.kbo_display} {enterprise.name} (id {enterprise.id}).")


@demo_cli.command("load")
def demo_load() -> None:
    """Load the demo data set (once) and print the demo logins."""
    from examples.demo import DEMO_PASSWORD, load_demo

    with transaction() as session:
        logins = load_demo(session)
    click.echo("Demo logins (password for all: %s):" % DEMO_PASSWORD)
    for login in logins:
        click.echo(f"  {login.username:<12} {login.description}")


def init_app(app: Flask) -> None:
    for group in (db_cli, officer_cli, enterprise_cli, demo_cli):
        app.cli.add_command(group)
