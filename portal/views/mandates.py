"""Service providers and mandates on the web: the employer's page "who can reach our data and why"
with its provider form, the provider's clients with the staff assignments, and a provider's staff
member who picks a client employer and acts for it.

Thin views: the rules live in mandates.operations; every page asks the decision point."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError

from access import operations as ops
from access.catalogue import ACCESS_MANAGEMENT, Tier
from access.clock import today
from access.decision import Decision, decide
from access.errors import DomainError, NotFound
from access.models import Person
from access.queries import access_matrix
from audit.operations import record
from mandates import operations as mops
from mandates.groups import load_groups
from mandates.models import Mandate, MandateStatus
from mandates.queries import (Client, clients_of_staff, current_assignments_by_mandate, mandates_of_employer,
                              mandates_of_provider, recent_provider_activity)
from portal.context import catalogue, current_subject, request_context
from portal.database import get_session
from portal.forms import ButtonForm, EndMandateForm, ProviderFormForm, apply_domain_error, choices
from portal.gate import check, gated, public, self_gated
from portal.messages import error_text, group_name, mandate_kind_label, mandate_status_label, provider_kind_label

bp = Blueprint("mandates", __name__)


def app_name(code: str) -> str:
    """An application's name in the user's language (the code for one no longer in the catalogue)."""
    from flask_babel import get_locale

    app = catalogue().get(code)
    return app.name(str(get_locale() or "nl")) if app is not None else code


for _helper in (app_name, group_name, mandate_kind_label, mandate_status_label, provider_kind_label):
    bp.add_app_template_global(_helper)

ACTING_KEY = "acting_for"
QUARTERS_OFFERED = 5  # the current quarter and the next four


def form_status(error: DomainError) -> int:
    """A refusal of what was typed in a form is a 422, also when the operation says "not found"
    (an unregistered provider KBO): the page itself exists."""
    if isinstance(error, NotFound) and error.field not in (None, "mandate_id"):
        return 422
    return error.status


def _allowed(enterprise_id: int, action: str, application: str = ACCESS_MANAGEMENT) -> bool:
    """What the decision point would answer, to show or hide a button (not logged: the POST asks again)."""
    return decide(get_session(), current_subject(), enterprise_id, application, action, catalogue=catalogue()).allowed


def scope_groups(mandate: Mandate) -> list[tuple[str, list[str]]]:
    """A mandate's applications grouped as the employer entrusted them: [(group name, [application names])]."""
    from flask_babel import get_locale

    locale = str(get_locale() or "nl")
    grouped: dict[str, list[str]] = {}
    for item in mandate.scope:
        app = catalogue().get(item.application)
        grouped.setdefault(item.application_group, []).append(app.name(locale) if app else item.application)
    return [(group_name(code), names) for code, names in grouped.items()]


def quarter_starts(day: date, count: int = QUARTERS_OFFERED) -> list[date]:
    first = mops.quarter_start(day)
    return [mops.add_months(first, 3 * n) for n in range(count)]


def is_open(mandate: Mandate) -> bool:
    """Pending, or accepted and not yet past its last day: the employer may still withdraw or end it."""
    if mandate.status is MandateStatus.PENDING:
        return True
    return mandate.status is MandateStatus.ACCEPTED and (mandate.end_date is None or mandate.end_date >= today())


# --- the employer: who can reach our data and why -------------------------------------------


def _provider_form(formdata=None) -> ProviderFormForm:
    from flask_babel import get_locale

    form = ProviderFormForm(formdata=formdata)
    form.start_date.choices = choices((d.isoformat(), d.isoformat()) for d in quarter_starts(today()))
    locale = str(get_locale() or "nl")
    form.groups.choices = choices((group.code, group.name(locale)) for group in load_groups().all())
    return form


def _providers_page(enterprise_id: int, status: int = 200, form: ProviderFormForm | None = None,
                    end_errors: dict[int, str] | None = None):
    db = get_session()
    enterprise = ops.get_enterprise(db, enterprise_id)
    mandates = mandates_of_employer(db, enterprise.id)
    can_manage = _allowed(enterprise.id, "manage_providers")
    return render_template(
        "mandates/providers.html", enterprise=enterprise, rows=access_matrix(db, enterprise),
        mandates=mandates, activity=recent_provider_activity(db, enterprise.id), can_manage=can_manage,
        form=form or _provider_form(), end_form=EndMandateForm(formdata=None), end_errors=end_errors or {},
        is_open=is_open, scope_groups=scope_groups, groups=load_groups().all()), status


@bp.route("/enterprises/<int:enterprise_id>/providers")
@gated(ACCESS_MANAGEMENT, "view")
def providers(enterprise_id: int):
    return _providers_page(enterprise_id)


@bp.route("/enterprises/<int:enterprise_id>/providers/forms", methods=["POST"])
@gated(ACCESS_MANAGEMENT, "manage_providers")
def file_form(enterprise_id: int):
    db = get_session()
    enterprise = ops.get_enterprise(db, enterprise_id)
    form = _provider_form(request.form)
    if not form.validate_on_submit():
        return _providers_page(enterprise_id, 422, form=form)
    try:
        start = date.fromisoformat(form.start_date.data or "")
    except ValueError:
        form.start_date.errors = [_("Choose the quarter from which the provider acts for you.")]
        return _providers_page(enterprise_id, 422, form=form)
    try:
        provider = mops.find_provider_by_kbo(db, form.provider_kbo.data)
        mandate = mops.file_provider_form(
            db, enterprise, provider, start, form.groups.data or [], contract_declared=form.contract_declared.data,
            contract_date=form.contract_date.data, contract_reference=form.contract_reference.data,
            groups=load_groups(), by=request_context())
    except DomainError as error:
        apply_domain_error(form, error)
        return _providers_page(enterprise_id, form_status(error), form=form)
    flash(_("Provider form for %(provider)s filed. It takes effect once %(provider)s accepts it, at the earliest "
            "on %(day)s.", provider=provider.enterprise.name, day=mandate.start_date.isoformat()), "success")
    return redirect(url_for("mandates.providers", enterprise_id=enterprise_id))


@bp.route("/enterprises/<int:enterprise_id>/providers/<int:mandate_id>/end", methods=["POST"])
@gated(ACCESS_MANAGEMENT, "manage_providers")
def end(enterprise_id: int, mandate_id: int):
    db = get_session()
    mandate = db.get(Mandate, mandate_id)
    if mandate is None or mandate.employer_id != enterprise_id:
        abort(404)
    form = EndMandateForm()
    if not form.validate_on_submit():
        return _providers_page(enterprise_id, 422, end_errors={mandate_id: _("Give a valid last day.")})
    was_pending = mandate.status is MandateStatus.PENDING
    try:
        mops.end_mandate(db, mandate, form.end_date.data, by=request_context())
    except DomainError as error:
        return _providers_page(enterprise_id, error.status, end_errors={mandate_id: error_text(error)})
    if was_pending:
        flash(_("The provider form for %(provider)s is withdrawn.", provider=mandate.provider.enterprise.name),
              "success")
    else:
        flash(_("%(provider)s may act for you until %(day)s inclusive.", provider=mandate.provider.enterprise.name,
                day=mandate.end_date.isoformat()), "success")
    return redirect(url_for("mandates.providers", enterprise_id=enterprise_id))


# --- the provider: its clients and who of its staff works for which --------------------------


def _provider_or_404(enterprise_id: int):
    db = get_session()
    enterprise = ops.get_enterprise(db, enterprise_id)
    provider = mops.provider_of_enterprise(db, enterprise.id)
    if provider is None:
        abort(404, description=_("%(name)s (%(kbo)s) is not registered as a service provider, so it has no clients "
                                 "in the portal.", name=enterprise.name, kbo=enterprise.kbo_display))
    return enterprise, provider


def _mandate_of_provider(enterprise_id: int, mandate_id: int) -> Mandate:
    """The mandate, if it is this provider's; another provider's client is not even confirmed to exist."""
    mandate = get_session().get(Mandate, mandate_id)
    if mandate is None or mandate.provider.enterprise_id != enterprise_id:
        abort(404)
    return mandate


def _clients_page(enterprise_id: int, status: int = 200, error: str | None = None):
    db = get_session()
    enterprise, provider = _provider_or_404(enterprise_id)
    mandates = mandates_of_provider(db, enterprise.id)
    active = [m for m in mandates if m.status is MandateStatus.ACCEPTED and is_open(m)]
    by_mandate = current_assignments_by_mandate(db, [m.id for m in active])
    assigned = {m.id: {(a.person_id, a.application) for a in by_mandate.get(m.id, [])} for m in active}
    return render_template(
        "mandates/clients.html", enterprise=enterprise, provider=provider,
        pending=[m for m in mandates if m.status is MandateStatus.PENDING], active=active,
        history=[m for m in mandates if m.status is not MandateStatus.PENDING and m not in active],
        staff=access_matrix(db, enterprise), assigned=assigned, error=error,
        can_decide=_allowed(enterprise.id, "decide_mandates"), can_assign=_allowed(enterprise.id, "assign_staff"),
        scope_groups=scope_groups), status


@bp.route("/enterprises/<int:enterprise_id>/clients")
@gated(ACCESS_MANAGEMENT, "view")
def clients(enterprise_id: int):
    return _clients_page(enterprise_id)


def _decide_form(enterprise_id: int, mandate_id: int, accept: bool):
    db = get_session()
    enterprise, _provider = _provider_or_404(enterprise_id)
    mandate = _mandate_of_provider(enterprise_id, mandate_id)
    if not ButtonForm().validate_on_submit():
        return _clients_page(enterprise_id, 400)
    try:
        mops.decide_provider_form(db, mandate, enterprise, accept, by=request_context())
    except DomainError as error:
        return _clients_page(enterprise_id, error.status, error=error_text(error))
    if accept:
        flash(_("You accepted the provider form of %(employer)s; you act for it from %(day)s.",
                employer=mandate.employer.name, day=mandate.effective_from.isoformat()), "success")
    else:
        flash(_("You declined the provider form of %(employer)s.", employer=mandate.employer.name), "success")
    return redirect(url_for("mandates.clients", enterprise_id=enterprise_id))


@bp.route("/enterprises/<int:enterprise_id>/clients/<int:mandate_id>/accept", methods=["POST"])
@gated(ACCESS_MANAGEMENT, "decide_mandates")
def accept(enterprise_id: int, mandate_id: int):
    return _decide_form(enterprise_id, mandate_id, True)


@bp.route("/enterprises/<int:enterprise_id>/clients/<int:mandate_id>/decline", methods=["POST"])
@gated(ACCESS_MANAGEMENT, "decide_mandates")
def decline(enterprise_id: int, mandate_id: int):
    return _decide_form(enterprise_id, mandate_id, False)


@bp.route("/enterprises/<int:enterprise_id>/clients/<int:mandate_id>/staff/<int:person_id>/<application>",
          methods=["POST"])
@gated(ACCESS_MANAGEMENT, "assign_staff")
def toggle_staff(enterprise_id: int, mandate_id: int, person_id: int, application: str):
    db = get_session()
    enterprise, _provider = _provider_or_404(enterprise_id)
    mandate = _mandate_of_provider(enterprise_id, mandate_id)
    if not ButtonForm().validate_on_submit():
        return _clients_page(enterprise_id, 400)
    person = db.get(Person, person_id)
    if person is None:
        abort(404)
    grant = request.form.get("grant")
    if grant not in ("0", "1"):
        return _clients_page(enterprise_id, 422, error=_("Choose to assign (grant=1) or to withdraw (grant=0)."))
    try:
        if grant == "1":
            mops.assign_staff(db, enterprise, mandate, person, application, catalogue=catalogue(),
                              by=request_context())
        else:
            mops.unassign_staff(db, enterprise, mandate, person, application, by=request_context())
    except DomainError as error:
        return _clients_page(enterprise_id, error.status, error=error_text(error))
    return redirect(url_for("mandates.clients", enterprise_id=enterprise_id) + f"#client-{mandate.id}")


# --- the staff member: for whom may I work, and acting for one of them ----------------------


@dataclass(frozen=True)
class Acting:
    """The client employer a staff member is acting for in this session."""

    employer_id: int
    name: str
    kbo: str
    provider: str
    provider_kbo: str


def _client(person_id: int | None, enterprise_id: int, provider_enterprise_id: int | None = None) -> Client | None:
    for client in clients_of_staff(get_session(), person_id):
        if client.employer.id == enterprise_id and provider_enterprise_id in (None, client.provider_enterprise.id):
            return client
    return None


def acting_for() -> Acting | None:
    """The employer the logged-in staff member acts for, re-checked on every request: when the
    employer is no longer among his clients (mandate ended, assignment withdrawn, link ended), the
    choice is dropped silently."""
    if "acting_for" in g:
        return g.acting_for
    g.acting_for = None
    held = session.get(ACTING_KEY)
    if not held or not current_user.is_authenticated:
        return None
    try:
        client = _client(current_user.account.person_id, int(held.get("enterprise_id", 0)),
                         held.get("provider_enterprise_id"))
    except SQLAlchemyError:
        return None  # an error page after a failed transaction: no banner rather than a second error
    except (TypeError, ValueError, AttributeError):
        client = None
    if client is None:
        session.pop(ACTING_KEY, None)
        return None
    g.acting_for = Acting(client.employer.id, client.employer.name, client.employer.kbo_display,
                          client.provider_enterprise.name, client.provider_enterprise.kbo_display)
    return g.acting_for


@bp.app_context_processor
def _acting_for_banner():
    return {"acting_for": acting_for}


@bp.route("/work-for")
@login_required
@public
def work_for():
    """The employers whose mandate of the person's provider is in force and for which the provider
    assigned him: those and only those (clients_of_staff reads nothing else)."""
    from mandates.queries import is_provider_staff

    db = get_session()
    person_id = current_subject().person_id
    return render_template("mandates/work_for.html", clients=clients_of_staff(db, person_id),
                           is_staff=is_provider_staff(db, person_id), acting=acting_for(),
                           button=ButtonForm(formdata=None))


def _candidate_applications() -> list[str]:
    """Applications worth listing for an employer: those a login is needed for (free ones are open to all)."""
    return [app.code for app in catalogue().applications() if app.tier is not Tier.FREE]


def _decisions(enterprise_id: int) -> list[Decision]:
    """The decision point's answer for every candidate application (shown, not logged)."""
    db, subject = get_session(), current_subject()
    return [decide(db, subject, enterprise_id, code, "open", catalogue=catalogue())
            for code in _candidate_applications()]


def _most_telling_refusal(decisions: list[Decision]) -> str:
    """The application whose refusal best explains why this person cannot work for the employer:
    one the mandate path answered (it names the provider), else the first candidate."""
    return next((d for d in decisions if d.provider_enterprise_id is not None), decisions[0]).application


@bp.route("/work-for/<int:enterprise_id>", methods=["POST"])
@self_gated
def start_acting(enterprise_id: int):
    subject = current_subject()
    client = _client(subject.person_id, enterprise_id, request.form.get("provider_enterprise_id", type=int))
    if client is None:
        # Ask the decision point: its refusal (logged) says why, naming the provider when there is one.
        check(_most_telling_refusal(_decisions(enterprise_id)), "act_for", enterprise_id)
        abort(403, description=_("This employer is not among the employers your provider lets you work for."))
    db = get_session()
    allowed = [code for code in client.applications
               if decide(db, subject, enterprise_id, code, "open", catalogue=catalogue()).allowed]
    check((allowed or list(client.applications))[0], "act_for", enterprise_id)
    record(db, request_context(), action="acting_for.start", outcome="success", enterprise_id=enterprise_id,
           provider_enterprise_id=client.provider_enterprise.id,
           details={"mandate_id": client.mandate.id, "applications": list(client.applications)})
    session[ACTING_KEY] = {"enterprise_id": enterprise_id, "provider_enterprise_id": client.provider_enterprise.id}
    g.pop("acting_for", None)
    flash(_("You now act for %(name)s (%(kbo)s) via %(provider)s.", name=client.employer.name,
            kbo=client.employer.kbo_display, provider=client.provider_enterprise.name), "success")
    return redirect(url_for("mandates.work", enterprise_id=enterprise_id))


@bp.route("/work-for/stop", methods=["POST"])
@login_required
@public
def stop_acting():
    held = session.pop(ACTING_KEY, None)
    g.pop("acting_for", None)
    if held:
        record(get_session(), request_context(), action="acting_for.stop", outcome="success",
               enterprise_id=_existing_enterprise(held.get("enterprise_id")),
               provider_enterprise_id=_existing_enterprise(held.get("provider_enterprise_id")))
        flash(_("You no longer act for a client employer."), "success")
    return redirect(url_for("mandates.work_for"))


def _existing_enterprise(value) -> int | None:
    from access.models import Enterprise

    return value if isinstance(value, int) and get_session().get(Enterprise, value) is not None else None


@bp.route("/enterprises/<int:enterprise_id>/work")
@self_gated
def work(enterprise_id: int):
    """The applications this person may open for the employer, and along which path."""
    db, subject = get_session(), current_subject()
    decisions = _decisions(enterprise_id)
    allowed = [d for d in decisions if d.allowed]
    # One logged decision for the page: the first allowed application, or the most telling refusal.
    check(allowed[0].application if allowed else _most_telling_refusal(decisions), "list_work", enterprise_id)
    enterprise = ops.get_enterprise(db, enterprise_id)
    return render_template("mandates/work.html", enterprise=enterprise, decisions=allowed,
                           client=_client(subject.person_id, enterprise_id), button=ButtonForm(formdata=None),
                           acting=acting_for())
