"""Operations on providers, affiliations, provider forms and staff assignments.

Like access.operations: each applies the rules, flushes, and writes its audit record in the
same transaction; none commits. Changes that touch an employer's providers first lock the
employer's row (SELECT ... FOR UPDATE on PostgreSQL; SQLite serialises writers with
BEGIN IMMEDIATE), so the checks that span rows (overlapping periods) hold under concurrency;
the partial unique indexes on `mandates` hold the one-extra-provider rule even without it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from access.catalogue import Catalogue
from access.clock import today, utcnow
from access.errors import Conflict, NotFound, ValidationError
from access.models import Enterprise, Person
from access.operations import (
    _flush_or_refuse,
    _notify,
    _required,
    current_local_admin,
    current_membership,
    require_direct_authority,
)
from access.validators import format_kbo, normalise_kbo
from audit.operations import RequestContext, record
from mandates.groups import Groups
from mandates.models import (
    OPEN_FORM_STATUSES,
    Mandate,
    MandateApplication,
    MandateKind,
    MandateStatus,
    Provider,
    ProviderKind,
    StaffAssignment,
)

DEFAULT_MINIMUM_TERM_MONTHS = 36  # seed 000: "een minimale contractduur (die meestal drie jaar is)"
DEFAULT_NOTICE_MONTHS = 6         # seed 000: "een opzegtermijn van zes maanden"
_RECOGNITION_NUMBER = re.compile(r"^[0-9A-Za-z./-]{1,20}$")


# --- dates -----------------------------------------------------------------------------


def is_quarter_start(day: date) -> bool:
    """Seed 000: a switch takes effect only on 1 January, 1 April, 1 July or 1 October."""
    return day.day == 1 and day.month in (1, 4, 7, 10)


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _require_quarter_start(day: date, field_name: str) -> None:
    if not is_quarter_start(day):
        raise ValidationError(
            "A provider relationship starts on the first day of a quarter (1 January, 1 April, 1 July or "
            "1 October), not on %(day)s.", field_name, day=day.isoformat())


# --- providers ---------------------------------------------------------------------------


def register_provider(session: Session, enterprise: Enterprise, kind: ProviderKind | str,
                      recognition_number: str | None = None, *, by: RequestContext) -> Provider:
    try:
        kind = ProviderKind(kind)
    except ValueError:
        raise ValidationError("Unknown kind of provider '%(kind)s'.", "kind", kind=kind) from None
    number = (recognition_number or "").strip() or None
    if kind is ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT:
        if number is None:
            raise ValidationError("An erkend sociaal secretariaat needs its recognition number.", "recognition_number")
        if not _RECOGNITION_NUMBER.match(number):
            raise ValidationError("A recognition number has at most 20 letters, digits, dots, slashes or dashes.",
                                  "recognition_number")
    elif number is not None:
        raise ValidationError("Only an erkend sociaal secretariaat has a recognition number.", "recognition_number")
    if session.scalar(select(Provider.id).where(Provider.enterprise_id == enterprise.id)):
        raise Conflict("%(kbo)s is already registered as a service provider.", "kbo", kbo=enterprise.kbo_display)
    if number and session.scalar(select(Provider.id).where(Provider.recognition_number == number)):
        raise Conflict("Recognition number %(number)s belongs to another secretariat.", "recognition_number",
                       number=number)
    provider = Provider(enterprise_id=enterprise.id, kind=kind, recognition_number=number,
                        registered_at=utcnow(), registered_by_id=by.actor_person_id)
    _flush_or_refuse(session, provider, Conflict(
        "%(kbo)s is already registered as a service provider.", "kbo", kbo=enterprise.kbo_display))
    record(session, by, action="provider.register", outcome="success", enterprise_id=enterprise.id,
           details={"after": {"kind": kind.value, "recognition_number": number}})
    return provider


def find_provider_by_kbo(session: Session, kbo: str, field_name: str = "provider_kbo") -> Provider:
    number = normalise_kbo(kbo, field_name)
    provider = session.scalar(select(Provider).join(Enterprise, Enterprise.id == Provider.enterprise_id)
                              .where(Enterprise.kbo_number == number))
    if provider is None:
        raise NotFound("%(kbo)s is not a registered service provider.", field_name, kbo=format_kbo(number))
    return provider


def provider_of_enterprise(session: Session, enterprise_id: int) -> Provider | None:
    return session.scalar(select(Provider).where(Provider.enterprise_id == enterprise_id))


def get_mandate(session: Session, mandate_id: int) -> Mandate:
    mandate = session.get(Mandate, mandate_id)
    if mandate is None:
        raise NotFound("Unknown mandate.", "mandate_id")
    return mandate


def _lock_employer(session: Session, employer: Enterprise) -> None:
    session.execute(select(Enterprise.id).where(Enterprise.id == employer.id).with_for_update())


def _require_employer(employer: Enterprise, field_name: str = "employer_kbo") -> None:
    if not employer.is_employer:
        raise ValidationError("%(kbo)s is not an employer (it has no RSZ number); only employers entrust "
                              "their social-security applications to a provider.", field_name,
                              kbo=employer.kbo_display)


def _scope_rows(groups: Groups, group_codes: list[str]) -> list[MandateApplication]:
    return [MandateApplication(application_group=code, application=app)
            for code in group_codes for app in groups.get(code).applications]


def mandate_snapshot(mandate: Mandate) -> dict[str, object]:
    iso = lambda d: d.isoformat() if d else None  # noqa: E731
    return {"kind": mandate.kind.value, "status": mandate.status.value, "provider_id": mandate.provider_id,
            "start_date": iso(mandate.start_date), "end_date": iso(mandate.end_date),
            "effective_from": iso(mandate.effective_from),
            "groups": sorted({item.application_group for item in mandate.scope})}


def _audit(session: Session, by: RequestContext, action: str, mandate: Mandate, before=None, *,
           record_reason: str | None = None, record_path: list[str] | None = None, **details) -> None:
    record(session, by, action=action, outcome="success", enterprise_id=mandate.employer_id, reason=record_reason,
           path=record_path,
           provider_enterprise_id=mandate.provider.enterprise_id,
           details={"mandate_id": mandate.id, "provider": mandate.provider.enterprise.name,
                    **({"before": before} if before is not None else {}),
                    "after": mandate_snapshot(mandate), **details})


def _notify_admin(session: Session, enterprise: Enterprise, kind: str, subject: str, body: str) -> None:
    admin = current_local_admin(session, enterprise.id)
    if admin is not None:
        _notify(session, admin.person, kind, subject, body)


def _provider_label(provider: Provider) -> str:
    return f"{provider.enterprise.name} ({provider.enterprise.kbo_display})"


# --- affiliations with an erkend sociaal secretariaat ------------------------------------


@dataclass(frozen=True)
class SwitchWarning:
    """A contract term the switch does not respect: shown, and recorded, but not a refusal."""

    template: str
    params: dict[str, object]

    @property
    def text(self) -> str:
        return self.template % self.params


class SwitchNeedsConfirmation(ValidationError):
    """The switch breaks a recorded contract term: nothing is written until the officer confirms."""

    def __init__(self, warnings: list[SwitchWarning]) -> None:
        super().__init__("The switch does not respect the terms of the current affiliation; confirm to record "
                         "it anyway.", "acknowledge_warnings")
        self.warnings = warnings


@dataclass
class AffiliationResult:
    affiliation: Mandate
    ended: Mandate | None = None
    warnings: list[SwitchWarning] = field(default_factory=list)


def affiliations_of(session: Session, employer_id: int) -> list[Mandate]:
    return list(session.scalars(select(Mandate).where(
        Mandate.employer_id == employer_id, Mandate.kind == MandateKind.AFFILIATION).order_by(Mandate.start_date)))


def current_affiliation(session: Session, employer_id: int, day: date | None = None) -> Mandate | None:
    day = day or today()
    return session.scalar(select(Mandate).where(
        Mandate.employer_id == employer_id, Mandate.kind == MandateKind.AFFILIATION,
        Mandate.status == MandateStatus.ACCEPTED, Mandate.start_date <= day,
        or_(Mandate.end_date.is_(None), Mandate.end_date >= day)))


def switch_warnings(current: Mandate, new_start: date, notice_date: date | None) -> list[SwitchWarning]:
    """Seed 000: usually a minimum term of 3 years and a notice of 6 months, by registered letter."""
    warnings = []
    if current.minimum_term_months:
        term_end = add_months(current.start_date, current.minimum_term_months)
        if new_start < term_end:
            warnings.append(SwitchWarning(
                "The minimum term of %(months)s months of the current affiliation (since %(since)s) runs until "
                "%(until)s.", {"months": current.minimum_term_months, "since": current.start_date.isoformat(),
                               "until": term_end.isoformat()}))
    if current.notice_months:
        if notice_date is None:
            warnings.append(SwitchWarning("No date of notice was given for the current affiliation.", {}))
        elif add_months(notice_date, current.notice_months) > new_start:
            warnings.append(SwitchWarning(
                "Notice given on %(notice)s: a notice of %(months)s months ends on %(until)s, after the new start "
                "%(start)s.", {"notice": notice_date.isoformat(), "months": current.notice_months,
                               "until": add_months(notice_date, current.notice_months).isoformat(),
                               "start": new_start.isoformat()}))
    return warnings


def record_affiliation(session: Session, employer: Enterprise, secretariat: Provider, start_date: date, *,
                       groups: Groups, by: RequestContext, affiliation_number: str | None = None,
                       minimum_term_months: int | None = DEFAULT_MINIMUM_TERM_MONTHS,
                       notice_months: int | None = DEFAULT_NOTICE_MONTHS, notice_date: date | None = None,
                       acknowledge_warnings: bool = False) -> AffiliationResult:
    """Record the employer's affiliation with an erkend sociaal secretariaat. From its start the
    secretariat is the employer's provider with no form. An open affiliation that started earlier
    is the one being left: it ends the day before, and its notice date is recorded."""
    _require_employer(employer)
    if not secretariat.is_secretariat:
        raise ValidationError("%(provider)s is not an erkend sociaal secretariaat.", "secretariat_kbo",
                              provider=_provider_label(secretariat))
    _require_quarter_start(start_date, "start_date")
    for name, value in (("minimum_term_months", minimum_term_months), ("notice_months", notice_months)):
        if value is not None and not 0 <= value <= 120:
            raise ValidationError("A term in months lies between 0 and 120.", name)
    number = (affiliation_number or "").strip() or None
    if number and len(number) > 40:
        raise ValidationError("An affiliation number has at most 40 characters.", "affiliation_number")
    if notice_date is not None and notice_date > start_date:
        raise ValidationError("The notice cannot be given after the new affiliation starts.", "notice_date")
    _lock_employer(session, employer)

    leaving: Mandate | None = None
    for other in affiliations_of(session, employer.id):
        if other.end_date is not None and other.end_date < start_date:
            continue  # ended before the new one starts
        if other.end_date is None and other.start_date < start_date and leaving is None:
            leaving = other  # the switch: this one ends the day before
            continue
        if other.end_date is not None:  # two templates, so that both translate whole
            raise Conflict("%(kbo)s is already affiliated with %(provider)s from %(start)s until %(end)s; "
                           "affiliations with an erkend sociaal secretariaat cannot overlap.", "start_date",
                           kbo=employer.kbo_display, provider=_provider_label(other.provider),
                           start=other.start_date.isoformat(), end=other.end_date.isoformat())
        raise Conflict("%(kbo)s is already affiliated with %(provider)s from %(start)s; affiliations with "
                       "an erkend sociaal secretariaat cannot overlap.", "start_date", kbo=employer.kbo_display,
                       provider=_provider_label(other.provider), start=other.start_date.isoformat())
    if leaving is not None and leaving.provider_id == secretariat.id:
        raise Conflict("%(kbo)s is already affiliated with %(provider)s.", "secretariat_kbo",
                       kbo=employer.kbo_display, provider=_provider_label(secretariat))
    _refuse_if_form_provider(session, employer, secretariat, start_date)

    warnings = switch_warnings(leaving, start_date, notice_date) if leaving is not None else []
    if warnings and not acknowledge_warnings:
        raise SwitchNeedsConfirmation(warnings)

    ended = None
    if leaving is not None:
        before = mandate_snapshot(leaving)
        leaving.end_date = start_date - timedelta(days=1)
        leaving.notice_date = notice_date
        leaving.ended_at, leaving.ended_by_id = utcnow(), by.actor_person_id
        session.flush()
        _audit(session, by, "mandate.affiliation.end", leaving, before, notice_date=
               notice_date.isoformat() if notice_date else None, reason="switch")
        ended = leaving

    affiliation = Mandate(
        kind=MandateKind.AFFILIATION, employer_id=employer.id, provider_id=secretariat.id,
        status=MandateStatus.ACCEPTED, start_date=start_date, effective_from=start_date,
        contract_declared=False, affiliation_number=number, minimum_term_months=minimum_term_months,
        notice_months=notice_months, filed_by_id=by.actor_person_id, filed_at=utcnow(),
        scope=_scope_rows(groups, [g.code for g in groups.secretariat_defaults()]))
    _flush_or_refuse(session, affiliation, Conflict(
        "Someone else changed this employer's affiliation at the same time; reload and try again.", "start_date"))
    _audit(session, by, "mandate.affiliation.record", affiliation,
           warnings=[w.text for w in warnings] or None, affiliation_number=number)
    _notify_admin(session, secretariat.enterprise, "mandate-affiliation",
                  f"New client: {employer.name}",
                  f"{employer.name} ({employer.kbo_display}) is affiliated with your secretariat from "
                  f"{start_date.isoformat()}. Assign your staff to it in the portal.")
    return AffiliationResult(affiliation, ended, warnings)


def _refuse_if_form_provider(session: Session, employer: Enterprise, provider: Provider, start: date) -> None:
    """The same provider cannot hold both the affiliation and the one other place."""
    form = session.scalar(select(Mandate).where(
        Mandate.employer_id == employer.id, Mandate.kind == MandateKind.FORM, Mandate.provider_id == provider.id,
        Mandate.status.in_(OPEN_FORM_STATUSES), or_(Mandate.end_date.is_(None), Mandate.end_date >= start)))
    if form is not None:
        raise Conflict("%(provider)s is already the other provider of %(kbo)s by form; end that form first.",
                       "secretariat_kbo", provider=_provider_label(provider), kbo=employer.kbo_display)


# --- the provider form ------------------------------------------------------------------


def _holder_of_extra_place(session: Session, employer: Enterprise, start: date) -> Mandate | None:
    return session.scalar(select(Mandate).where(
        Mandate.employer_id == employer.id, Mandate.kind == MandateKind.FORM,
        Mandate.status.in_(OPEN_FORM_STATUSES),
        or_(Mandate.end_date.is_(None), Mandate.end_date >= start)).order_by(Mandate.id).limit(1))


def _one_extra_provider_refusal(employer: Enterprise, holder: Mandate | None) -> Conflict:
    name = _provider_label(holder.provider) if holder is not None else "another provider"
    return Conflict(
        "Next to its erkend sociaal secretariaat an employer may appoint only one other provider, and "
        "%(kbo)s already has one: %(provider)s. End that relationship first.", "provider_kbo",
        kbo=employer.kbo_display, provider=name)


def file_provider_form(session: Session, employer: Enterprise, provider: Provider, start_date: date,
                       group_codes: list[str], *, contract_declared: bool, contract_date: date | None,
                       contract_reference: str | None, groups: Groups, by: RequestContext) -> Mandate:
    """The employer's local administrator entrusts groups of applications to a provider, from a quarter."""
    if contract_declared is not True:
        raise ValidationError(
            "Declare that a written contract with this provider exists, with the mentions of article 16 of the law "
            "of 8 December 1992 (today article 28 GDPR): without it no provider may be appointed.",
            "contract_declared")
    if contract_date is None:
        raise ValidationError("The date of the contract is required.", "contract_date")
    if contract_date > today():
        raise ValidationError("The contract date cannot lie in the future.", "contract_date")
    reference = _required(contract_reference, "contract_reference", "Contract reference", 100)
    codes = list(dict.fromkeys(group_codes or []))
    if not codes:
        raise ValidationError("Choose at least one group of applications.", "groups")
    for code in codes:
        if groups.get(code) is None:
            raise ValidationError("Unknown group of applications '%(group)s'.", "groups", group=code)
    _require_employer(employer)
    _require_quarter_start(start_date, "start_date")
    if start_date < quarter_start(today()):
        raise ValidationError("A provider form starts in the current quarter or a later one, not on %(day)s.",
                              "start_date", day=start_date.isoformat())
    if provider.enterprise_id == employer.id:
        raise ValidationError("An enterprise cannot be its own service provider.", "provider_kbo")
    _lock_employer(session, employer)
    affiliation = session.scalar(select(Mandate).where(
        Mandate.employer_id == employer.id, Mandate.kind == MandateKind.AFFILIATION,
        Mandate.provider_id == provider.id, Mandate.status == MandateStatus.ACCEPTED,
        or_(Mandate.end_date.is_(None), Mandate.end_date >= start_date)))
    if affiliation is not None:
        raise Conflict("%(provider)s is already the erkend sociaal secretariaat of %(kbo)s: it needs no form.",
                       "provider_kbo", provider=_provider_label(provider), kbo=employer.kbo_display)
    holder = _holder_of_extra_place(session, employer, start_date)
    if holder is not None:
        raise _one_extra_provider_refusal(employer, holder)

    mandate = Mandate(
        kind=MandateKind.FORM, employer_id=employer.id, provider_id=provider.id, status=MandateStatus.PENDING,
        start_date=start_date, contract_declared=True, contract_date=contract_date, contract_reference=reference,
        filed_by_id=by.actor_person_id, filed_at=utcnow(), scope=_scope_rows(groups, codes))
    try:
        # Added inside the savepoint: begin_nested() flushes what is pending *before* its SAVEPOINT,
        # so a row added earlier would be inserted outside it and its failure would end the whole
        # transaction (PendingRollbackError on the query below) instead of only this insert.
        with session.begin_nested():
            session.add(mandate)
            session.flush()
    except IntegrityError:
        # A concurrent request took the place first (uq_mandates_one_extra_provider): name it.
        # (Rolling back the savepoint already took the new rows out of the session.)
        raise _one_extra_provider_refusal(employer, _holder_of_extra_place(session, employer, start_date)) from None
    _audit(session, by, "mandate.form.file", mandate, contract_date=contract_date.isoformat(),
           contract_reference=reference)
    _notify_admin(session, provider.enterprise, "mandate-form",
                  f"Provider form from {employer.name}",
                  f"{employer.name} ({employer.kbo_display}) appointed your enterprise as its service provider "
                  f"from {start_date.isoformat()}. Accept or decline the form in the portal.")
    return mandate


def decide_provider_form(session: Session, mandate: Mandate, provider_enterprise: Enterprise, accept: bool, *,
                         by: RequestContext) -> Mandate:
    """The provider's local administrator accepts or declines (both parties validate)."""
    if mandate.kind is not MandateKind.FORM or mandate.provider.enterprise_id != provider_enterprise.id:
        raise NotFound("Unknown mandate.", "mandate_id")
    if mandate.status is not MandateStatus.PENDING:
        raise Conflict("This provider form is no longer pending (it is %(status)s).", "mandate_id",
                       status=mandate.status.value)
    before = mandate_snapshot(mandate)
    mandate.decided_at, mandate.decided_by_id = utcnow(), by.actor_person_id
    if accept:
        mandate.status = MandateStatus.ACCEPTED
        # Access starts at the later of acceptance and the start date.
        mandate.effective_from = max(mandate.start_date, today())
    else:
        mandate.status = MandateStatus.DECLINED
    session.flush()
    _audit(session, by, "mandate.form.accept" if accept else "mandate.form.decline", mandate, before)
    _notify_admin(session, mandate.employer, "mandate-form-decided",
                  f"Provider form {'accepted' if accept else 'declined'}",
                  f"{provider_enterprise.name} {'accepted' if accept else 'declined'} your provider form"
                  + (f"; it acts for you from {mandate.effective_from.isoformat()}." if accept else "."))
    return mandate


def end_mandate(session: Session, mandate: Mandate, end_date: date | None, *, by: RequestContext,
                reason: str | None = None, path: list[str] | None = None) -> Mandate:
    """The employer (its local administrator) or an officer ends a relationship. The end date is
    the last day the provider may act (inclusive, like a link's). A pending form is withdrawn."""
    if mandate.status is MandateStatus.PENDING:
        before = mandate_snapshot(mandate)
        mandate.status = MandateStatus.WITHDRAWN
        mandate.ended_at, mandate.ended_by_id = utcnow(), by.actor_person_id
        session.flush()
        _audit(session, by, "mandate.form.withdraw", mandate, before)
        return mandate
    if mandate.status is not MandateStatus.ACCEPTED:
        raise Conflict("This mandate is %(status)s already.", "mandate_id", status=mandate.status.value)
    if end_date is None:
        raise ValidationError("The end date is required.", "end_date")
    if end_date < mandate.start_date:
        raise ValidationError("The end date cannot be before the start date (%(start)s).", "end_date",
                              start=mandate.start_date.isoformat())
    yesterday = today() - timedelta(days=1)
    if end_date < yesterday:
        raise ValidationError("The end date cannot lie before yesterday: access already used is history. "
                              "Choose yesterday to end access at once.", "end_date")
    if mandate.end_date is not None and mandate.end_date <= end_date:
        raise ValidationError("This mandate already ends on %(end)s.", "end_date", end=mandate.end_date.isoformat())
    before = mandate_snapshot(mandate)
    mandate.end_date = end_date
    mandate.ended_at, mandate.ended_by_id = utcnow(), by.actor_person_id
    session.flush()
    _audit(session, by, f"mandate.{mandate.kind.value}.end", mandate, before, record_reason=reason,
           record_path=path)
    _notify_admin(session, mandate.provider.enterprise, "mandate-ended",
                  f"Mandate of {mandate.employer.name} ends",
                  f"{mandate.employer.name} ({mandate.employer.kbo_display}) ended your mandate; its last day is "
                  f"{end_date.isoformat()}.")
    return mandate


def revoke_mandate(session: Session, mandate: Mandate, *, by: RequestContext) -> Mandate:
    """A portal officer revokes a provider form: from this moment it allows nothing."""
    if mandate.kind is not MandateKind.FORM:
        raise ValidationError("An affiliation is ended, not revoked: record its end date.", "mandate_id")
    if mandate.status not in OPEN_FORM_STATUSES:
        raise Conflict("This provider form is %(status)s already.", "mandate_id", status=mandate.status.value)
    before = mandate_snapshot(mandate)
    mandate.status = MandateStatus.REVOKED
    mandate.ended_at, mandate.ended_by_id = utcnow(), by.actor_person_id
    session.flush()
    _audit(session, by, "mandate.form.revoke", mandate, before)
    for enterprise in (mandate.employer, mandate.provider.enterprise):
        _notify_admin(session, enterprise, "mandate-revoked", "Provider form revoked",
                      f"The portal officer revoked the provider form of {mandate.employer.name} for "
                      f"{mandate.provider.enterprise.name}.")
    return mandate


# --- staff assignments -------------------------------------------------------------------


def _mandate_of_provider(mandate: Mandate, provider_enterprise: Enterprise) -> None:
    if mandate.provider.enterprise_id != provider_enterprise.id:
        # Another provider's client: do not even confirm that the mandate exists.
        raise NotFound("%(kbo)s has no mandate for this client.", "mandate_id", kbo=provider_enterprise.kbo_display)


def assign_staff(session: Session, provider_enterprise: Enterprise, mandate: Mandate, person: Person,
                 application: str, *, catalogue: Catalogue, by: RequestContext) -> StaffAssignment:
    """The provider decides which of its staff works for which client on which application,
    within what the client entrusted to it."""
    _mandate_of_provider(mandate, provider_enterprise)
    if mandate.status is not MandateStatus.ACCEPTED or (mandate.end_date is not None and mandate.end_date < today()):
        raise Conflict("The mandate of %(kbo)s is not in force; staff can be assigned only under an accepted, "
                       "running mandate.", "mandate_id", kbo=mandate.employer.kbo_display)
    app = catalogue.get(application)
    if app is None:
        raise ValidationError("Unknown application '%(application)s'.", "application", application=application)
    if application not in mandate.applications():
        raise ValidationError("%(application)s is not within the mandate %(kbo)s gave your enterprise.",
                              "application", application=app.name("en"), kbo=mandate.employer.kbo_display)
    if current_membership(session, provider_enterprise.id, person.id) is None:
        raise ValidationError("%(person)s is not designated as staff of %(provider)s; designate him first.",
                              "person_id", person=person.full_name, provider=provider_enterprise.kbo_display)
    require_direct_authority(session, provider_enterprise, person)
    existing = session.scalar(select(StaffAssignment).where(
        StaffAssignment.mandate_id == mandate.id, StaffAssignment.person_id == person.id,
        StaffAssignment.application == application, StaffAssignment.revoked_at.is_(None)))
    if existing is not None:
        raise Conflict("%(person)s is already assigned to %(kbo)s for %(application)s.", "application",
                       person=person.full_name, kbo=mandate.employer.kbo_display, application=app.name("en"))
    assignment = StaffAssignment(mandate_id=mandate.id, person_id=person.id, application=application,
                                 assigned_by_id=by.actor_person_id, assigned_at=utcnow())
    _flush_or_refuse(session, assignment, Conflict(
        "%(person)s is already assigned to %(kbo)s for %(application)s.", "application",
        person=person.full_name, kbo=mandate.employer.kbo_display, application=app.name("en")))
    record(session, by, action="mandate.staff.assign", outcome="success", enterprise_id=mandate.employer_id,
           provider_enterprise_id=provider_enterprise.id, application=application,
           details={"mandate_id": mandate.id, "person_id": person.id, "person": person.full_name,
                    "after": {"application": application, "assigned": True}})
    return assignment


def unassign_staff(session: Session, provider_enterprise: Enterprise, mandate: Mandate, person: Person,
                   application: str, *, by: RequestContext) -> StaffAssignment:
    _mandate_of_provider(mandate, provider_enterprise)
    assignment = session.scalar(select(StaffAssignment).where(
        StaffAssignment.mandate_id == mandate.id, StaffAssignment.person_id == person.id,
        StaffAssignment.application == application, StaffAssignment.revoked_at.is_(None)))
    if assignment is None:
        raise NotFound("%(person)s is not assigned to %(kbo)s for this application.", "application",
                       person=person.full_name, kbo=mandate.employer.kbo_display)
    assignment.revoked_at, assignment.revoked_by_id = utcnow(), by.actor_person_id
    session.flush()
    record(session, by, action="mandate.staff.unassign", outcome="success", enterprise_id=mandate.employer_id,
           provider_enterprise_id=provider_enterprise.id, application=application,
           details={"mandate_id": mandate.id, "person_id": person.id, "person": person.full_name,
                    "before": {"application": application, "assigned": True},
                    "after": {"application": application, "assigned": False}})
    return assignment


# --- narrowing a mandate's scope ---------------------------------------------------------------


def mandate_in_force(mandate: Mandate, day: date | None = None) -> bool:
    """Accepted and not ended by `day` (it may start later): what the employer has entrusted today."""
    day = day or today()
    return mandate.status is MandateStatus.ACCEPTED and (mandate.end_date is None or mandate.end_date >= day)


def remove_from_scope(session: Session, mandate: Mandate, application: str, *, by: RequestContext,
                      reason: str | None = None, path: list[str] | None = None) -> Mandate:
    """The employer takes one application out of a mandate in force (an access review revoking a mandate
    scope: reviews/operations.py). The provider's staff assignments on it end with it. When it is the
    mandate's only application, the mandate itself ends (end_mandate): from yesterday, so that access stops
    at once, or on its start date if it has not started yet (the earliest end a mandate can have). A
    mandate with an empty scope would hold the employer's one provider place while allowing nothing."""
    if not mandate_in_force(mandate):
        raise Conflict("This mandate is no longer in force.", "mandate_id")
    entry = next((item for item in mandate.scope if item.application == application), None)
    if entry is None:
        raise NotFound("'%(application)s' is not within this mandate.", "application", application=application)
    if len(mandate.scope) == 1:
        last_day = max(today() - timedelta(days=1), mandate.start_date)
        return end_mandate(session, mandate, last_day, by=by, reason=reason, path=path)
    _lock_employer(session, mandate.employer)
    before = {**mandate_snapshot(mandate), "applications": mandate.applications()}
    assignments = list(session.scalars(select(StaffAssignment).where(
        StaffAssignment.mandate_id == mandate.id, StaffAssignment.application == application,
        StaffAssignment.revoked_at.is_(None))))
    for assignment in assignments:
        assignment.revoked_at, assignment.revoked_by_id = utcnow(), by.actor_person_id
    mandate.scope.remove(entry)  # delete-orphan: the scope row goes
    session.flush()
    _audit(session, by, "mandate.scope.remove", mandate, before, record_reason=reason, record_path=path,
           application=application, applications=mandate.applications(),
           staff_unassigned=[a.person_id for a in assignments])
    _notify_admin(session, mandate.provider.enterprise, "mandate-scope-narrowed",
                  f"Mandate of {mandate.employer.name} narrowed",
                  f"{mandate.employer.name} ({mandate.employer.kbo_display}) took {application} out of your "
                  "mandate; your staff can no longer use it for this client.")
    return mandate
