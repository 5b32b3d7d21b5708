"""Command line: `flask --app wsgi ...`. Same operations as the web, one transaction per command."""
from __future__ import annotations

import contextlib
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from access import operations as ops
from access.errors import DomainError, NotFound
from audit.operations import CLI_CONTEXT
from mandates import operations as mops
from mandates.models import ProviderKind

db_cli = AppGroup("db", help="Database schema (Alembic migrations).")
officer_cli = AppGroup("officer", help="Portal officers.")
enterprise_cli = AppGroup("enterprise", help="Enterprises.")
demo_cli = AppGroup("demo", help="The demo data set.")
provider_cli = AppGroup("provider", help="Service providers (erkende sociale secretariaten, accountants, ...).")
affiliation_cli = AppGroup("affiliation", help="Employers' affiliations with an erkend sociaal secretariaat.")
certificates_cli = AppGroup("certificates", help="Enterprises' qualified certificates: revocation and expiry.")
oauth_cli = AppGroup("oauth", help="The machine API's OAuth 2 (client assertions and access tokens).")
audit_cli = AppGroup("audit", help="The audit trail: its hash chain and signed checkpoints.")


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
        if not session.info.get("shared"):  # a test's session outlives the command
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


@officer_cli.command("reset-second-factor")
@click.argument("login")
def reset_second_factor(login) -> None:
    """Reset the second factor of an account (user name or user-id), for instance the last portal officer's
    who lost his: every factor, recovery code and session ends and a new initial credential is printed
    once (the person chooses a new password and sets up a new factor at his next login). Audited."""
    with transaction() as session:
        account = ops.find_account_by_login(session, login)
        if account is None:
            raise NotFound("No account with this user name or user-id.", "login")
        credential = ops.reset_second_factor(session, account.person, by=CLI_CONTEXT,
                                             initial_password_days=current_app.config["INITIAL_PASSWORD_DAYS"])
    click.echo(f"Second factor of {account.person.full_name} reset. User-id {credential.user_id}, initial password "
               f"(shown once): {credential.password}  (expires {credential.expires_at:%Y-%m-%d})")


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


_DATE = click.DateTime(formats=["%Y-%m-%d"])


@provider_cli.command("register")
@click.argument("kbo")
@click.option("--kind", required=True, type=click.Choice([kind.value for kind in ProviderKind]))
@click.option("--recognition-number", default=None, help="Required for an erkend sociaal secretariaat.")
def register_provider(kbo, kind, recognition_number) -> None:
    """Register the enterprise KBO (already registered) as a service provider."""
    with transaction() as session:
        enterprise = ops.find_enterprise_by_kbo(session, kbo)
        provider = mops.register_provider(session, enterprise, kind, recognition_number, by=CLI_CONTEXT)
        click.echo(f"Registered {enterprise.kbo_display} {enterprise.name} as {provider.kind.value}"
                   + (f" (recognition number {provider.recognition_number})" if provider.recognition_number else "")
                   + f" (provider id {provider.id}).")


@affiliation_cli.command("record")
@click.argument("employer_kbo")
@click.argument("secretariat_kbo")
@click.argument("start_date", type=_DATE, metavar="START_DATE")
@click.option("--affiliation-number", default=None)
@click.option("--minimum-term-months", type=click.IntRange(0, 120), default=mops.DEFAULT_MINIMUM_TERM_MONTHS,
              show_default=True)
@click.option("--notice-months", type=click.IntRange(0, 120), default=mops.DEFAULT_NOTICE_MONTHS, show_default=True)
@click.option("--notice-date", type=_DATE, default=None, metavar="YYYY-MM-DD",
              help="When the employer gave notice to its current secretariat.")
@click.option("--acknowledge-warnings", is_flag=True, help="Record a switch that breaks the current terms anyway.")
def record_affiliation(employer_kbo, secretariat_kbo, start_date, affiliation_number, minimum_term_months,
                       notice_months, notice_date, acknowledge_warnings) -> None:
    """Record that EMPLOYER_KBO is affiliated with SECRETARIAT_KBO from START_DATE (first day of a quarter).
    A current affiliation with another secretariat ends the day before."""
    from mandates.groups import load_groups

    with transaction() as session:
        employer = ops.find_enterprise_by_kbo(session, employer_kbo, "employer_kbo")
        secretariat = mops.find_provider_by_kbo(session, secretariat_kbo, "secretariat_kbo")
        try:
            result = mops.record_affiliation(
                session, employer, secretariat, start_date.date(), groups=load_groups(), by=CLI_CONTEXT,
                affiliation_number=affiliation_number, minimum_term_months=minimum_term_months,
                notice_months=notice_months, notice_date=notice_date.date() if notice_date else None,
                acknowledge_warnings=acknowledge_warnings)
        except mops.SwitchNeedsConfirmation as error:
            for warning in error.warnings:
                click.echo(f"Warning: {warning.text}", err=True)
            click.echo("Nothing was recorded. Run again with --acknowledge-warnings to record the switch anyway.",
                       err=True)
            raise
        if result.ended is not None:
            click.echo(f"Ended the affiliation with {result.ended.provider.enterprise.name} on "
                       f"{result.ended.end_date.isoformat()}.")
        for warning in result.warnings:
            click.echo(f"Acknowledged: {warning.text}")
        click.echo(f"{employer.kbo_display} {employer.name} is affiliated with {secretariat.enterprise.name} from "
                   f"{result.affiliation.start_date.isoformat()} (mandate id {result.affiliation.id}).")


@affiliation_cli.command("end")
@click.argument("employer_kbo")
@click.argument("end_date", type=_DATE, metavar="END_DATE")
def end_affiliation(employer_kbo, end_date) -> None:
    """End EMPLOYER_KBO's open affiliation (the one without an end date); END_DATE is the secretariat's
    last day (inclusive)."""
    with transaction() as session:
        employer = ops.find_enterprise_by_kbo(session, employer_kbo, "employer_kbo")
        affiliation = next((a for a in mops.affiliations_of(session, employer.id) if a.end_date is None), None)
        if affiliation is None:
            raise NotFound("%(kbo)s has no open affiliation with an erkend sociaal secretariaat.", "employer_kbo",
                           kbo=employer.kbo_display)
        mops.end_mandate(session, affiliation, end_date.date(), by=CLI_CONTEXT)
        click.echo(f"The affiliation of {employer.kbo_display} with {affiliation.provider.enterprise.name} ends on "
                   f"{affiliation.end_date.isoformat()}.")


@demo_cli.command("load")
def demo_load() -> None:
    """Load the demo data set (once) and print the demo logins."""
    from examples.demo import DEMO_PASSWORD, DEMO_TOTP_SECRET, load_demo

    with transaction() as session:
        logins = load_demo(session)
    click.echo("Demo logins (password for all: %s):" % DEMO_PASSWORD)
    for login in logins:
        click.echo(f"  {login.username:<12} {login.description}")
    click.echo(f"Second factor of every demo account: the authenticator-app key {DEMO_TOTP_SECRET}\n"
               "  (add it to an app such as FreeOTP or Aegis, or run `.venv/bin/flask --app wsgi demo code` "
               "for the current code).")


@demo_cli.command("code")
def demo_code() -> None:
    """Print the current code of the demo authenticator app (as a phone with the demo key would)."""
    import pyotp

    from access.clock import utcnow
    from access.second_factor import TOTP_STEP_SECONDS
    from examples.demo import DEMO_TOTP_SECRET

    step = int(utcnow().timestamp()) // TOTP_STEP_SECONDS
    seconds_left = TOTP_STEP_SECONDS - int(utcnow().timestamp()) % TOTP_STEP_SECONDS
    click.echo(f"{pyotp.TOTP(DEMO_TOTP_SECRET).generate_otp(step)}  (valid {seconds_left} s more; "
               "each code works once per account)")


def _trust_list(path: str | None):
    """The trust list the web uses (PORTAL_TRUST_LIST, default config/trust-list.toml), or the file given."""
    import tomllib

    from certificates.validation import load_trust_list
    from portal.trust import current_trust_list, trust_list_path

    try:
        return load_trust_list(path) if path else current_trust_list()
    except (OSError, tomllib.TOMLDecodeError, ValueError) as error:
        click.echo(f"Cannot read the trust list {path or trust_list_path()}: {error}", err=True)
        sys.exit(2)


@certificates_cli.command("recheck")
@click.option("--trust-list", "trust_list", type=click.Path(dir_okay=False), default=None,
              help="A trust list file (TOML) instead of the configured one.")
def certificates_recheck(trust_list) -> None:
    """Re-check the revocation of every active certificate against the trust list's current CRLs and
    OCSP responses; a certificate its CA revoked is revoked in the portal (it stops working at once)."""
    from certificates.operations import recheck_revocation

    trust = _trust_list(trust_list)
    with transaction() as session:
        result = recheck_revocation(session, trust, by=CLI_CONTEXT)
        lines = [f"Revoked: {c.fingerprint} {c.subject} ({c.enterprise.kbo_display} {c.enterprise.name}): "
                 f"{c.revocation_reason}" for c in result.revoked]
        unknown = [f"Status unknown: {c.fingerprint} {c.subject} ({c.enterprise.kbo_display} {c.enterprise.name}): "
                   f"{detail}" for c, detail in result.undetermined]
    click.echo(f"Checked {result.checked} active certificate(s); {len(result.revoked)} revoked by their CA.")
    for line in lines:
        click.echo(line)
    if unknown:
        # Hard-fail reporting: refresh the trust list's CRLs (or OCSP responses) and run again.
        for line in unknown:
            click.echo(line, err=True)
        raise SystemExit(1)


@certificates_cli.command("warn-expiry")
def certificates_warn_expiry() -> None:
    """Warn local administrators (outbox) of certificates expiring in 60, 30, 14, 7 and 1 days, each once."""
    from certificates.operations import send_expiry_warnings

    with transaction() as session:
        sent = send_expiry_warnings(session, by=CLI_CONTEXT)
    click.echo(f"{sent} expiry warning(s) sent to the outbox.")


@oauth_cli.command("purge")
def oauth_purge() -> None:
    """Forget the jtis of expired client assertions and the access tokens that expired."""
    from certificates.clients import purge_expired

    with transaction() as session:
        purged = purge_expired(session, by=CLI_CONTEXT)
    click.echo(f"Purged {purged.used_assertions} used client assertion(s) and {purged.access_tokens} expired "
               "access token(s).")


@audit_cli.command("verify")
@click.option("--public-key", "public_keys", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="PEM key (public, or the private key file) to check the checkpoints' signatures with; "
                   "repeatable. Default: the configured AUDIT_SIGNING_KEY.")
def audit_verify(public_keys) -> None:
    """Check the whole audit chain and every checkpoint; exit 1 naming the first broken record."""
    from audit.chain import record_verification, verify
    from audit.checkpoints import load_public_key
    from audit.operations import record

    keys = [load_public_key(path) for path in public_keys]
    configured = current_app.extensions["portal.audit_settings"].signing_key
    if not keys and configured is not None:
        keys = [configured.public_key()]
    factory = current_app.extensions["portal.session_factory"]
    session = factory()
    try:
        if session.get_bind().dialect.name == "postgresql" and not session.info.get("shared"):
            # One snapshot for the walk and the counts while others append. Read only: a chain
            # write in a snapshot older than the head would collide with the head's seq.
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        result = verify(session, public_keys=keys)
        session.rollback()
    finally:
        if not session.info.get("shared"):
            session.close()
    with transaction() as session:
        record_verification(session, result, by_label=CLI_CONTEXT.actor_label)
        first = result.first_broken
        record(session, CLI_CONTEXT, action="audit.verify", outcome="success" if result.ok else "failure",
               reason=str(first) if first else None,
               details={"records": result.records, "links": result.links, "checkpoints": result.checkpoints,
                        "problems": result.problem_count,
                        "first_broken_seq": first.seq if first else None,
                        "first_broken_record_id": first.record_id if first else None})
    for line in result.report():
        click.echo(line)
    sys.exit(0 if result.ok else 1)


@audit_cli.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain from the last checkpoint up to its head now."""
    from audit.checkpoints import write_checkpoint

    key = current_app.extensions["portal.audit_settings"].signing_key
    if key is None:
        click.echo("No signing key: set AUDIT_SIGNING_KEY (PORTAL_AUDIT_SIGNING_KEY) to an Ed25519 PEM private key; "
                   "no checkpoint written.", err=True)
        sys.exit(2)
    with transaction() as session:
        checkpoint = write_checkpoint(session, key)
    if checkpoint is None:
        click.echo("Nothing to sign: the last checkpoint already covers the head of the chain.")
    else:
        click.echo(f"Checkpoint seq {checkpoint.seq_from}..{checkpoint.seq_to}: head {checkpoint.head_hash}, "
                   f"Merkle root {checkpoint.merkle_root}, key {checkpoint.key_id[:16]}")


@audit_cli.command("alerts")
def audit_alerts() -> None:
    """Scan the audit records committed since the last scan against the alert rules (config/alerts.toml);
    write each new alert to the outbox of the officers who may see it. Run it every minute (cron or a
    systemd timer); the officers' dashboard and alerts page scan too."""
    from access.clock import utcnow
    from audit.alerts import scan_alerts

    with transaction() as session:
        result = scan_alerts(session, utcnow(), current_app.extensions["portal.alert_rules"])
        created = [(alert.id, alert.rule, alert.key) for alert in result.created]
    click.echo(f"Examined {result.examined} record(s) up to chain position {result.last_seq}; "
               f"{len(created)} new alert(s), {len(result.updated)} updated.")
    for alert_id, rule, key in created:
        click.echo(f"Alert {alert_id}: {rule} {key}")


@audit_cli.command("purge")
@click.option("--dry-run", is_flag=True, help="Count the expired records per kind; remove and write nothing.")
def audit_purge(dry_run: bool) -> None:
    """Remove the audit records past their retention period (config/retention.toml) that a signed
    checkpoint covers; their links and the checkpoints stay, so `audit verify` still checks the chain."""
    from audit.retention import RetentionConfigError, load_policy, purge

    try:
        policy = load_policy(current_app.config.get("AUDIT_RETENTION"))
    except RetentionConfigError as error:
        click.echo(f"Refused (retention configuration): {error}", err=True)
        sys.exit(2)
    with transaction() as session:
        result = purge(session, policy, by=CLI_CONTEXT, dry_run=dry_run)  # a dry run only counts
    for line in result.report():
        click.echo(line)


reviews_cli = AppGroup("reviews", help="Access review campaigns.")


@reviews_cli.command("close-due")
def reviews_close_due() -> None:
    """Close the access reviews whose last day to answer has passed (run daily): flag what is unanswered,
    revoke it if the review says so, keep the report. One transaction per review: a review that cannot
    close is reported (exit 1) without holding back the others."""
    from access.clock import today
    from reviews.models import AccessReview
    from reviews.operations import close_review, due_reviews

    factory = current_app.extensions["portal.session_factory"]
    with transaction() as session:
        due = [review.id for review in due_reviews(session, today())]
    failed = 0
    for review_id in due:
        session = factory()
        try:
            review = close_review(session, session.get(AccessReview, review_id), by=CLI_CONTEXT)
            counts = review.report["counts"]
            session.commit()
            click.echo(f"Access review {review_id} closed: {counts['confirmed']} confirmed, {counts['revoked']} "
                       f"revoked by the reviewer, {counts['revoked_at_deadline']} revoked at the deadline, "
                       f"{counts['flagged']} flagged, {counts['gone']} already gone.")
        except DomainError as error:
            session.rollback()
            failed += 1
            click.echo(f"Access review {review_id} not closed: {error.message}", err=True)
        finally:
            if not session.info.get("shared"):
                session.close()
    click.echo(f"{len(due) - failed} access review(s) closed.")
    if failed:
        sys.exit(1)


def init_app(app: Flask) -> None:
    app.cli.add_command(reviews_cli)
    for group in (db_cli, officer_cli, enterprise_cli, provider_cli, affiliation_cli, demo_cli, certificates_cli,
                  oauth_cli, audit_cli):
        app.cli.add_command(group)
