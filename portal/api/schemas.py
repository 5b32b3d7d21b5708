"""Request and response bodies of the JSON API."""
from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2000)


class LoginIn(Input):
    login: str = Field(max_length=64)
    password: str = Field(max_length=256)


class CredentialsIn(Input):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


class EnterpriseIn(Input):
    kbo: str = Field(max_length=20)
    name: str = Field(max_length=200)
    street: str = Field(max_length=200)
    postal_code: str = Field(max_length=10)
    city: str = Field(max_length=100)
    legal_form: str = Field(max_length=60)
    rsz_number: str | None = Field(default=None, max_length=20)
    joint_committee: str | None = Field(default=None, max_length=20)


class LinkIn(Input):
    insz: str = Field(max_length=20)
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    email: str | None = Field(default=None, max_length=254)
    kind: Literal["werknemer", "zaakvoerder", "bestuurder", "vennoot", "zelfstandige_medewerker", "derde",
                  "dienstverlener", "tussenpersoon"]
    start_date: date
    end_date: date | None = None


class EndLinkIn(Input):
    end_date: date


class PersonRefIn(Input):
    person_id: int = Field(gt=0, le=2**31 - 1)


class DesignateIn(PersonRefIn):
    role: Literal["user", "co_admin"] = "user"


class ProposalIn(Input):
    name: str | None = Field(default=None, max_length=200)
    street: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=10)
    city: str | None = Field(default=None, max_length=100)
    legal_form: str | None = Field(default=None, max_length=60)
    joint_committee: str | None = Field(default=None, max_length=20)
    motivation: str | None = Field(default=None, max_length=2000)


class ProposalDecisionIn(Input):
    accept: bool
    note: str | None = Field(default=None, max_length=2000)


class Credential(BaseModel):
    user_id: str
    initial_password: str
    expires_at: datetime


class SessionOut(BaseModel):
    authenticated: bool
    csrf_token: str
    login_name: str | None = None
    person_id: int | None = None
    portal_officer: bool = False
    must_choose_credentials: bool = False
    # "none" (not needed), "done" (checked in this session), "required" (send a code to
    # /session/second-factor), or "enrolment-required" (set one up: /account/totp).
    second_factor: str = "none"
    second_factor_at: datetime | None = None


class SecondFactorIn(Input):
    code: str = Field(max_length=40, description="The six digits of the authenticator app, or a recovery code")


class TotpStartOut(BaseModel):
    secret: str
    otpauth_uri: str


class TotpConfirmOut(BaseModel):
    recovery_codes: list[str] = Field(description="Shown once, when the first factor is set up")


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]


class FactorsOut(BaseModel):
    totp: bool
    passkeys: int
    recovery_codes_left: int
    required: bool


class SessionRowOut(BaseModel):
    id: int
    device: str
    ip: str | None
    created_at: datetime
    last_seen_at: datetime
    current: bool


class PasswordChangeIn(Input):
    current: str = Field(max_length=256)
    password: str = Field(max_length=256)
    end_other_sessions: bool = True


class EnterpriseOut(BaseModel):
    id: int
    kbo: str
    name: str
    street: str
    postal_code: str
    city: str
    legal_form: str
    rsz_number: str | None
    joint_committee: str | None
    employer: bool
    social_secretariat: str | None = None


class LinkOut(BaseModel):
    id: int
    person_id: int
    person: str
    kind: str
    start_date: date
    end_date: date | None


class AppointmentOut(BaseModel):
    person_id: int
    role: str
    initial_credential: Credential | None


class MatrixRowOut(BaseModel):
    person_id: int
    name: str
    role: str
    under_direct_authority: bool
    rights: list[str]


class MatrixOut(BaseModel):
    enterprise: EnterpriseOut
    applications: list[str]
    rows: list[MatrixRowOut]


class RightOut(BaseModel):
    person_id: int
    application: str
    granted: bool


class ApplicationOut(BaseModel):
    code: str
    name: str
    tier: str
    path: list[str]


class EnterpriseApplicationsOut(BaseModel):
    enterprise: EnterpriseOut
    role: str
    applications: list[ApplicationOut]


class ProposalOut(BaseModel):
    id: int
    enterprise_id: int
    status: str
    changes: dict
    motivation: str | None
    proposed_at: datetime
    decided_at: datetime | None
    decision_note: str | None


class SecuredRecordOut(BaseModel):
    enterprise: EnterpriseOut
    local_administrator: str | None
    users: int
    rights: int
    links: list[LinkOut]
    history: list[dict]
    proposals: list[ProposalOut]
    access_path: list[str]


class CheckOut(BaseModel):
    """One registration check of a certificate and its outcome."""

    code: str = Field(description="chain, validity, key_usage, key_strength, signature_hash, revocation, "
                                  "qc_compliance, qc_type, policy, identity, unique")
    ok: bool
    detail: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = None
    # A switch of secretariat that breaks the current affiliation's terms (type .../confirmation-required):
    # the warnings to acknowledge with acknowledge_warnings.
    warnings: list[str] | None = None
    # A certificate refused (type .../certificate-refused): every check with its outcome.
    checks: list[CheckOut] | None = None
    # An audit export above the cap (type .../confirmation-required, field confirm): its records and the cap.
    count: int | None = None
    cap: int | None = None
