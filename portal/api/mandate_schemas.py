"""Request and response bodies of the mandates API (providers, affiliations, provider forms, staff)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool

from mandates.operations import DEFAULT_MINIMUM_TERM_MONTHS, DEFAULT_NOTICE_MONTHS
from portal.api.schemas import EnterpriseOut, Input, MatrixRowOut

# Free text that is stored: no control characters (PostgreSQL refuses NUL in text, and a
# reference with a line break in it is never what was meant).
_PLAIN = r"^[^\x00-\x1f\x7f]*$"
Kbo = Annotated[str, Field(max_length=20, description="KBO/BCE number, with or without dots")]
Months = Annotated[int, Field(ge=0, le=120)]
ProviderKindName = Literal["erkend_sociaal_secretariaat", "accountant", "software_bureau", "other_intermediary"]


class ProviderIn(Input):
    kbo: Kbo
    kind: ProviderKindName
    recognition_number: str | None = Field(default=None, max_length=20, pattern=_PLAIN,
                                           description="Only (and required) for an erkend sociaal secretariaat")


class AffiliationIn(Input):
    secretariat_kbo: Kbo
    start_date: date = Field(description="The first day of a quarter")
    affiliation_number: str | None = Field(default=None, max_length=40, pattern=_PLAIN)
    minimum_term_months: Months | None = Field(default=DEFAULT_MINIMUM_TERM_MONTHS,
                                               description="null: no minimum term recorded")
    notice_months: Months | None = Field(default=DEFAULT_NOTICE_MONTHS, description="null: no notice recorded")
    notice_date: date | None = Field(default=None,
                                     description="When the employer gave notice to the secretariat it leaves")
    acknowledge_warnings: StrictBool = Field(
        default=False, description="Record a switch that breaks the current affiliation's terms anyway")


class ProviderFormIn(Input):
    provider_kbo: Kbo
    start_date: date = Field(description="The first day of the current or a later quarter")
    groups: list[Annotated[str, Field(max_length=40)]] = Field(max_length=20,
                                                               description="Codes of GET /mandate-groups")
    contract_declared: StrictBool = Field(
        default=False, description="A written contract with the mentions of art. 16 of the law of 8 December 1992 "
                                   "(art. 28 GDPR) exists")
    contract_date: date | None = None
    contract_reference: str | None = Field(default=None, max_length=100, pattern=_PLAIN)


class EndMandateIn(Input):
    end_date: date | None = Field(default=None, description="The last day the provider may act (inclusive); "
                                                            "leave out to withdraw a pending form")


class FormDecisionIn(Input):
    accept: StrictBool


class PartyOut(BaseModel):
    id: int
    kbo: str
    name: str


class ProviderOut(BaseModel):
    id: int
    enterprise: PartyOut
    kind: str
    recognition_number: str | None
    registered_at: datetime


class GroupOut(BaseModel):
    code: str
    name: str
    applications: list[str]


class MandateOut(BaseModel):
    id: int
    kind: Literal["affiliation", "form"]
    status: Literal["pending", "accepted", "declined", "withdrawn", "revoked"]
    active_today: bool
    employer: PartyOut
    provider: PartyOut
    provider_kind: str
    groups: list[GroupOut]
    applications: list[str]
    start_date: date
    effective_from: date | None
    end_date: date | None
    contract_declared: bool
    contract_date: date | None
    contract_reference: str | None
    affiliation_number: str | None
    minimum_term_months: int | None
    notice_months: int | None
    notice_date: date | None
    filed_at: datetime
    decided_at: datetime | None
    ended_at: datetime | None


class AffiliationOut(BaseModel):
    affiliation: MandateOut
    ended: MandateOut | None = Field(description="The affiliation this switch ended (the day before), if any")
    warnings: list[str] = Field(description="The switch warnings that were acknowledged")


class ActivityOut(BaseModel):
    provider: PartyOut | None
    person_id: int | None
    person: str
    actions: int
    last_at: datetime


class EmployerMandatesOut(BaseModel):
    """Who can reach the employer's data, and why."""

    enterprise: EnterpriseOut
    users: list[MatrixRowOut]
    providers: list[MandateOut]
    provider_activity: list[ActivityOut]


class AssignmentOut(BaseModel):
    person_id: int
    person: str
    application: str
    assigned_at: datetime


class ClientOut(BaseModel):
    mandate: MandateOut
    staff: list[AssignmentOut]


class StaffAssignmentOut(BaseModel):
    mandate_id: int
    person_id: int
    application: str
    assigned: bool


class MyClientOut(BaseModel):
    mandate_id: int
    employer: PartyOut
    provider: PartyOut
    applications: list[str]


class MandateGroupOut(BaseModel):
    code: str
    names: dict[str, str]
    applications: list[str]
    secretariat_default: bool
