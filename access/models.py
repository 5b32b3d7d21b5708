"""Enterprises, persons, their links, accounts, roles and rights."""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    JSON,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from access.validators import fold_for_search, format_kbo
from db import Base, string_enum


class LinkKind(enum.Enum):
    """How a person is tied to an enterprise (seed 001)."""

    WERKNEMER = "werknemer"
    ZAAKVOERDER = "zaakvoerder"
    BESTUURDER = "bestuurder"
    VENNOOT = "vennoot"
    ZELFSTANDIGE_MEDEWERKER = "zelfstandige_medewerker"
    DERDE = "derde"
    DIENSTVERLENER = "dienstverlener"
    TUSSENPERSOON = "tussenpersoon"

    @property
    def is_direct_authority(self) -> bool:
        return self in DIRECT_AUTHORITY_KINDS


# Only these links put a person under the enterprise's direct authority
# (rechtstreeks gezag); self-employed collaborators, third parties, providers
# and intermediaries never qualify.
DIRECT_AUTHORITY_KINDS = frozenset(
    {LinkKind.WERKNEMER, LinkKind.ZAAKVOERDER, LinkKind.BESTUURDER, LinkKind.VENNOOT}
)


class Role(enum.Enum):
    LOCAL_ADMIN = "local_admin"
    CO_ADMIN = "co_admin"
    USER = "user"


class Enterprise(Base):
    __tablename__ = "enterprises"

    id: Mapped[int] = mapped_column(primary_key=True)
    kbo_number: Mapped[str] = mapped_column(String(10), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_folded: Mapped[str] = mapped_column(String(200))  # kept in step with name, for search
    street: Mapped[str] = mapped_column(String(200))
    postal_code: Mapped[str] = mapped_column(String(10))
    city: Mapped[str] = mapped_column(String(100))
    legal_form: Mapped[str] = mapped_column(String(60))
    rsz_number: Mapped[str | None] = mapped_column(String(10), unique=True)
    joint_committee: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("length(kbo_number) = 10", name="kbo_ten_digits"),
        # An employer has both an RSZ number and a joint committee; others have neither.
        CheckConstraint("(rsz_number IS NULL) = (joint_committee IS NULL)", name="employer_fields_together"),
        Index("ix_enterprises_name_folded", "name_folded"),
    )

    @validates("name")
    def _fold_name(self, key: str, value: str) -> str:  # noqa: ARG002
        self.name_folded = fold_for_search(value)
        return value

    @property
    def is_employer(self) -> bool:
        return self.rsz_number is not None

    @property
    def kbo_display(self) -> str:
        return format_kbo(self.kbo_number)

    @property
    def address(self) -> str:
        return f"{self.street}, {self.postal_code} {self.city}"


class Person(Base):
    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(primary_key=True)
    insz: Mapped[str] = mapped_column(String(11), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    account: Mapped["Account | None"] = relationship(back_populates="person", uselist=False)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class Link(Base):
    """A person's tie to an enterprise over a period (end date inclusive, open when null)."""

    __tablename__ = "links"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    kind: Mapped[LinkKind] = mapped_column(string_enum(LinkKind, "link_kind"))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    enterprise: Mapped[Enterprise] = relationship()
    person: Mapped[Person] = relationship()

    __table_args__ = (
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="end_not_before_start"),
        Index("ix_links_person_enterprise", "person_id", "enterprise_id"),
        Index("ix_links_enterprise", "enterprise_id"),
    )

    def active_on(self, day: date) -> bool:
        return self.start_date <= day and (self.end_date is None or self.end_date >= day)


class Account(Base):
    """Login credentials of a natural person. One per person."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), unique=True)
    user_id: Mapped[str] = mapped_column(String(20), unique=True)  # issued by the portal
    username: Mapped[str | None] = mapped_column(String(64))  # chosen at first login
    username_lower: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    initial_password_hash: Mapped[str | None] = mapped_column(String(200))
    initial_password_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_portal_officer: Mapped[bool] = mapped_column(Boolean, default=False)
    is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    person: Mapped[Person] = relationship(back_populates="account")

    __table_args__ = (
        CheckConstraint(
            "password_hash IS NOT NULL OR initial_password_hash IS NOT NULL", name="has_a_credential"
        ),
    )

    @property
    def must_choose_credentials(self) -> bool:
        return self.password_hash is None

    @property
    def login_name(self) -> str:
        return self.username or self.user_id


class Membership(Base):
    """A person's role in an enterprise's access management: local administrator, co-administrator or user.

    The role rests on a direct-authority link; the decision point checks that
    link at request time, so an ended link ends the role at once.
    """

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    role: Mapped[Role] = mapped_column(string_enum(Role, "membership_role"))
    appointed_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))

    enterprise: Mapped[Enterprise] = relationship()
    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    appointed_by: Mapped[Person | None] = relationship(foreign_keys=[appointed_by_id])

    __table_args__ = (
        # One current role per person and enterprise, and one current local
        # administrator per enterprise: enforced by the database, not only here.
        Index(
            "uq_memberships_current_person",
            "enterprise_id",
            "person_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
        Index(
            "uq_memberships_one_local_admin",
            "enterprise_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL AND role = 'local_admin'"),
            sqlite_where=text("ended_at IS NULL AND role = 'local_admin'"),
        ),
        Index("ix_memberships_person", "person_id"),
    )


class Right(Base):
    """A user's right on one application for one enterprise."""

    __tablename__ = "rights"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    application: Mapped[str] = mapped_column(String(40))
    granted_by_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))

    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    granted_by: Mapped[Person] = relationship(foreign_keys=[granted_by_id])

    __table_args__ = (
        Index(
            "uq_rights_current",
            "person_id",
            "enterprise_id",
            "application",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
            sqlite_where=text("revoked_at IS NULL"),
        ),
        Index("ix_rights_enterprise", "enterprise_id"),
    )


class OutboxMessage(Base):
    """Mail waiting for the mail adapter. Written in the transaction of the change that caused it."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(40))
    recipient_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    recipient_email: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL"),
              sqlite_where=text("sent_at IS NULL")),
    )


class SecurityOfficer(Base):
    """A security officer (veiligheidsconsulent): reviews the audit trail of one enterprise, or, with no
    enterprise, of the institution (every enterprise). Next to, never instead of, the person's membership
    role (a local administrator may be his enterprise's security officer too).

    An enterprise's officer is appointed and ended by its local administrator and rests on a
    direct-authority link, checked by the decision point at request time like a membership; the
    institution's officer is appointed by a portal officer (access/security_officers.py)."""

    __tablename__ = "security_officers"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))  # None: the institution
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    appointed_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))

    enterprise: Mapped[Enterprise | None] = relationship()
    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    appointed_by: Mapped[Person | None] = relationship(foreign_keys=[appointed_by_id])

    __table_args__ = (
        # One current appointment per person and enterprise, and per person at the institution.
        Index(
            "uq_security_officers_current",
            "enterprise_id",
            "person_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL AND enterprise_id IS NOT NULL"),
            sqlite_where=text("ended_at IS NULL AND enterprise_id IS NOT NULL"),
        ),
        Index(
            "uq_security_officers_current_institution",
            "person_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL AND enterprise_id IS NULL"),
            sqlite_where=text("ended_at IS NULL AND enterprise_id IS NULL"),
        ),
        Index("ix_security_officers_person", "person_id"),
    )


class SavedFilter(Base):
    """A filter a person saved under a name on a screen (`kind`, e.g. "audit": the review screen).
    `params` holds the filter's fields as strings, parsed again when used."""

    __tablename__ = "saved_filters"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_saved_filters_person_kind_name", "person_id", "kind", "name", unique=True),
    )


class UserSession(Base):
    """A login session kept on the server (issue 6): the cookie holds a random token, the row its hash.
    A person sees his sessions and ends any of them; idle and absolute timeouts are checked against
    `last_seen_at` and `created_at`. `second_factor_at` is when the second factor was last checked in
    this session (None: password only so far; the session reaches the second-factor step, or the
    enrolment of a first factor, and nothing else); step-up asks for it to be recent.
    `challenge` is the one WebAuthn challenge this session may answer (cleared when used: no replay)."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    second_factor_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    second_factor_method: Mapped[str | None] = mapped_column(String(20))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    challenge: Mapped[str | None] = mapped_column(String(128))
    challenge_purpose: Mapped[str | None] = mapped_column(String(20))
    challenge_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_reason: Mapped[str | None] = mapped_column(String(40))

    account: Mapped[Account] = relationship()

    __table_args__ = (
        CheckConstraint("ended_at IS NULL OR ended_reason IS NOT NULL", name="ended_with_reason"),
        Index("ix_user_sessions_account_open", "account_id", postgresql_where=text("ended_at IS NULL"),
              sqlite_where=text("ended_at IS NULL")),
    )


class TotpFactor(Base):
    """An authenticator app (TOTP, RFC 6238: 30 s steps, 6 digits, SHA-1 as the apps expect).
    Unconfirmed until the person types a first code from it. `last_used_step` makes every code
    single-use: a code is accepted only for a time step after the last one accepted."""

    __tablename__ = "totp_factors"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    secret: Mapped[str] = mapped_column(String(64))  # base32; the server must compute codes from it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # One authenticator app per account at a time (confirmed or being enrolled).
        Index("uq_totp_factors_one_per_account", "account_id", unique=True,
              postgresql_where=text("removed_at IS NULL"), sqlite_where=text("removed_at IS NULL")),
    )


class WebAuthnCredential(Base):
    """A passkey or security key (WebAuthn). `sign_count` is the authenticator's counter: an assertion
    whose counter does not grow (when the authenticator keeps one) is a cloned key and refused."""

    __tablename__ = "webauthn_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)  # base64url
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    name: Mapped[str] = mapped_column(String(100))
    transports: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("sign_count >= 0", name="sign_count_not_negative"),
        Index("ix_webauthn_credentials_account", "account_id"),
    )


class RecoveryCode(Base):
    """One of the ten single-use recovery codes. ASVS 5.0 6.5.2: a lookup secret of less than 112 bits is
    stored with a salted password hash (argon2id); `lookup` is the code's first group, not secret, so
    that a typed code is verified against one hash, not ten. A new set replaces the old one."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    lookup: Mapped[str] = mapped_column(String(8))
    code_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # The first groups of an account's live codes differ (the set is drawn again otherwise).
        Index("uq_recovery_codes_live_lookup", "account_id", "lookup", unique=True,
              postgresql_where=text("removed_at IS NULL"), sqlite_where=text("removed_at IS NULL")),
    )


class LoginThrottle(Base):
    """Failed authentication attempts from one address (access/throttle.py): the password step, the
    second-factor step and passkey answers. The first failures of an hour are free; after them the
    address waits before it may try again, longer after each failure, up to a cap. Only failures count,
    so an office of two hundred people behind one address logs in all day without waiting."""

    __tablename__ = "login_throttles"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(45), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("failures >= 0", name="failures_not_negative"),)
