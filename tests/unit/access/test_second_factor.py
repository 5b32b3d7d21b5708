"""The second factor (issue 6): TOTP single use and windows, recovery codes, failure lock, who needs one,
and the reset; the server-side sessions and their timeouts. Frozen clock throughout."""
from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from access import operations as ops
from access import second_factor as factors
from access import sessions
from access.errors import Conflict, Forbidden, NotFound, ValidationError
from access.models import OutboxMessage, RecoveryCode, Role, UserSession
from access.passwords import verify_password
from audit.operations import SURVIVORS_KEY
from access.validators import make_insz
from tests.factories import audit_records, enrol_totp, make_local_admin, make_member, set_own_credentials

STEP = factors.TOTP_STEP_SECONDS


@pytest.fixture
def employer(factories):
    return factories.Employer(kbo_number="0123456749", name="Bakkerij De Gouden Korst")


@pytest.fixture
def admin(db_session, employer, ctx):
    member = make_local_admin(db_session, employer, ctx, first_name="An", last_name="Peeters")
    set_own_credentials(db_session, member.person, "an.peeters")
    return member


@pytest.fixture
def user(db_session, employer, admin):
    member = make_member(db_session, employer, Role.USER, by=admin.ctx, first_name="Bo", last_name="Claes")
    set_own_credentials(db_session, member.person, "bo.claes")
    return member


def _code(secret: str, offset_steps: int = 0) -> str:
    from access.clock import utcnow

    return pyotp.TOTP(secret).generate_otp(int(utcnow().timestamp()) // STEP + offset_steps)


def _enrolled(db_session, account, ctx):
    factor = factors.start_totp_enrolment(db_session, account, by=ctx)
    factors.confirm_totp(db_session, account, _code(factor.secret), by=ctx)
    return factor


# --- TOTP ---------------------------------------------------------------------------------------------


def test_enrolment_needs_a_first_code_and_is_audited(db_session, clock, admin):
    account = admin.person.account
    factor = factors.start_totp_enrolment(db_session, account, by=admin.ctx)
    assert factor.confirmed_at is None and len(factor.secret) == 32
    assert not factors.status(db_session, account).enrolled
    with pytest.raises(ValidationError) as info:
        factors.confirm_totp(db_session, account, "000000" if _code(factor.secret) != "000000" else "111111",
                             by=admin.ctx)
    assert info.value.field == "code"
    factors.confirm_totp(db_session, account, _code(factor.secret), by=admin.ctx)
    assert factors.status(db_session, account).totp
    outcomes = [(r.action, r.outcome) for r in audit_records(db_session, "second_factor.enrol")]
    assert outcomes == [("second_factor.enrol", "failure"), ("second_factor.enrol", "success")]


def test_a_second_authenticator_app_is_refused_until_the_first_is_removed(db_session, clock, admin):
    account = admin.person.account
    _enrolled(db_session, account, admin.ctx)
    with pytest.raises(Conflict):
        factors.start_totp_enrolment(db_session, account, by=admin.ctx)


def test_a_code_is_accepted_once_and_never_again(db_session, clock, admin):
    account = admin.person.account
    factor = _enrolled(db_session, account, admin.ctx)  # used the code of this step
    assert not factors.check_totp(db_session, account, _code(factor.secret), by=admin.ctx)  # replay
    assert factors.check_totp(db_session, account, _code(factor.secret, +1), by=admin.ctx)  # next step: drift
    assert not factors.check_totp(db_session, account, _code(factor.secret, +1), by=admin.ctx)
    assert not factors.check_totp(db_session, account, _code(factor.secret, -1), by=admin.ctx)  # older than used
    reasons = [r.reason for r in audit_records(db_session, "second_factor.check") if r.outcome == "failure"]
    assert reasons and all(reason.startswith("wrong, reused or expired code") for reason in reasons)


def test_an_expired_code_is_refused(db_session, clock, admin):
    account = admin.person.account
    factor = _enrolled(db_session, account, admin.ctx)
    old = _code(factor.secret, +1)
    clock.advance(seconds=3 * STEP)  # the code's step is now two steps in the past
    assert not factors.check_totp(db_session, account, old, by=admin.ctx)
    assert factors.check_totp(db_session, account, _code(factor.secret), by=admin.ctx)


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes_are_refused(db_session, clock, admin, code):
    account = admin.person.account
    _enrolled(db_session, account, admin.ctx)
    assert not factors.check_totp(db_session, account, code, by=admin.ctx)


def test_wrong_codes_lock_the_account_with_growing_delays_that_outlive_the_rollback(db_session, clock, admin):
    account = admin.person.account
    factor = _enrolled(db_session, account, admin.ctx)
    policy = ops.LoginPolicy(max_failures=3, base_lock_seconds=60, max_lock_seconds=300)
    wrong = "000000" if _code(factor.secret, 1) != "000000" else "111111"
    for _ in range(3):
        assert not factors.check_totp(db_session, account, wrong, by=admin.ctx, policy=policy)
    assert ops.account_locked(account) and account.failed_logins == 3
    assert db_session.info[SURVIVORS_KEY], "the failure count must be replayed after a rollback"
    # Locked: even the right code is refused, and the refusal does not grow the lock.
    assert not factors.check_totp(db_session, account, _code(factor.secret, 1), by=admin.ctx, policy=policy)
    clock.advance(seconds=61)
    assert factors.check_totp(db_session, account, _code(factor.secret), by=admin.ctx, policy=policy)
    assert account.failed_logins == 0 and account.locked_until is None


def test_the_last_factor_cannot_be_removed(db_session, clock, admin):
    account = admin.person.account
    _enrolled(db_session, account, admin.ctx)
    with pytest.raises(Conflict):
        factors.remove_totp(db_session, account, by=admin.ctx)


# --- recovery codes ------------------------------------------------------------------------------------


def test_recovery_codes_are_single_use_and_stored_hashed(db_session, clock, admin):
    account = admin.person.account
    _enrolled(db_session, account, admin.ctx)
    codes = factors.issue_recovery_codes(db_session, account, by=admin.ctx)
    assert len(codes) == 10 and len(set(codes)) == 10
    rows = list(db_session.scalars(select(RecoveryCode).where(RecoveryCode.account_id == account.id)))
    assert all(row.code_hash.startswith("$argon2id$") for row in rows)
    assert not any(code.replace("-", "") in row.code_hash for row in rows for code in codes)
    assert factors.use_recovery_code(db_session, account, codes[3].upper().replace("-", " "), by=admin.ctx)
    assert not factors.use_recovery_code(db_session, account, codes[3], by=admin.ctx)  # used
    assert factors.status(db_session, account).recovery_codes_left == 9
    assert audit_records(db_session, "second_factor.check")[-2].details["codes_left"] == 9


def test_a_new_set_of_recovery_codes_replaces_the_old_one(db_session, clock, admin):
    account = admin.person.account
    _enrolled(db_session, account, admin.ctx)
    old = factors.issue_recovery_codes(db_session, account, by=admin.ctx)
    new = factors.issue_recovery_codes(db_session, account, by=admin.ctx)
    assert not factors.use_recovery_code(db_session, account, old[0], by=admin.ctx)
    assert factors.use_recovery_code(db_session, account, new[0], by=admin.ctx)
    assert factors.status(db_session, account).recovery_codes_left == 9


# --- who needs a second factor -------------------------------------------------------------------------


def test_administrators_officers_and_staff_always_need_one_plain_users_by_setting(db_session, clock, ctx, admin,
                                                                                  user):
    assert factors.needs_second_factor(db_session, admin.person.account, for_everyone=False)
    assert not factors.needs_second_factor(db_session, user.person.account, for_everyone=False)
    assert factors.needs_second_factor(db_session, user.person.account, for_everyone=True)
    officer, _ = ops.create_portal_officer(db_session, insz=make_insz("700101", 501), first_name="Olga", last_name="Officier",
                                           email=None, password="Lavendel-Brug-Oever-12", by=ctx)
    assert factors.needs_second_factor(db_session, officer, for_everyone=False)


# --- the reset ----------------------------------------------------------------------------------------------


def test_local_admin_resets_a_users_factors_with_a_new_initial_credential(db_session, clock, employer, admin, user):
    account = user.person.account
    enrol_totp(db_session, account)
    factors.issue_recovery_codes(db_session, account, by=user.ctx)
    row, _ = sessions.open_session(db_session, account, by=user.ctx)
    credential = ops.reset_second_factor(db_session, user.person, by=admin.ctx, enterprise=employer)

    state = factors.status(db_session, account)
    assert not state.enrolled and state.recovery_codes_left == 0
    assert account.must_choose_credentials and verify_password(account.initial_password_hash, credential.password)
    assert row.ended_at is not None and row.ended_reason == "second factor reset"
    mail = db_session.scalars(select(OutboxMessage).where(OutboxMessage.recipient_person_id == user.person.id)
                              .order_by(OutboxMessage.id.desc())).first()
    assert credential.password in mail.body and "reset" in mail.subject
    record = audit_records(db_session, "second_factor.reset")[-1]
    assert record.actor_person_id == admin.person.id and record.details["person_id"] == user.person.id


def test_the_local_admins_own_reset_is_the_portal_officers(db_session, clock, ctx, employer, admin, user):
    co_admin = make_member(db_session, employer, Role.CO_ADMIN, by=admin.ctx, first_name="Cas", last_name="Dewit")
    with pytest.raises(Forbidden):
        ops.reset_second_factor(db_session, admin.person, by=co_admin.ctx, enterprise=employer)
    with pytest.raises(Forbidden):
        ops.reset_second_factor(db_session, user.person, by=user.ctx, enterprise=employer)
    ops.reset_second_factor(db_session, admin.person, by=ctx)  # a portal officer: no enterprise
    assert admin.person.account.must_choose_credentials


def test_reset_of_a_stranger_is_not_found(db_session, clock, factories, employer, admin):
    other = factories.Employer(name="Ander Bedrijf")
    stranger = make_local_admin(db_session, other, admin.ctx, first_name="Zoe", last_name="Vreemd")
    with pytest.raises(NotFound):
        ops.reset_second_factor(db_session, stranger.person, by=admin.ctx, enterprise=employer)


# --- sessions -------------------------------------------------------------------------------------------------


POLICY = sessions.SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


def test_a_session_is_found_by_its_token_only_and_stores_only_a_hash(db_session, clock, admin):
    row, token = sessions.open_session(db_session, admin.person.account, by=admin.ctx)
    assert token not in row.token_hash and len(row.token_hash) == 64
    assert sessions.find_live(db_session, token, POLICY, by=admin.ctx) is row
    assert sessions.find_live(db_session, token + "x", POLICY, by=admin.ctx) is None


def test_idle_timeout_ends_the_session(db_session, clock, admin):
    row, token = sessions.open_session(db_session, admin.person.account, by=admin.ctx)
    clock.advance(minutes=29)
    assert sessions.find_live(db_session, token, POLICY, by=admin.ctx) is row
    sessions.touch(row)
    clock.advance(minutes=29)  # 58 minutes old, but seen 29 minutes ago
    assert sessions.find_live(db_session, token, POLICY, by=admin.ctx) is row
    clock.advance(minutes=31)
    assert sessions.find_live(db_session, token, POLICY, by=admin.ctx) is None
    assert row.ended_reason == "idle timeout"


def test_absolute_timeout_ends_even_a_busy_session(db_session, clock, admin):
    row, token = sessions.open_session(db_session, admin.person.account, by=admin.ctx)
    for _ in range(12 * 3 + 3):
        clock.advance(minutes=20)
        if sessions.find_live(db_session, token, POLICY, by=admin.ctx) is None:
            break
        sessions.touch(row)
    assert row.ended_reason == "absolute timeout"
    assert clock.at - row.created_at.replace(tzinfo=clock.at.tzinfo) > timedelta(hours=12)


def test_a_disabled_account_has_no_live_session(db_session, clock, ctx, admin):
    row, token = sessions.open_session(db_session, admin.person.account, by=admin.ctx)
    ops.set_account_disabled(db_session, admin.person, True, by=ctx)
    assert row.ended_reason == "account disabled"
    assert sessions.find_live(db_session, token, POLICY, by=admin.ctx) is None


def test_rotation_gives_a_new_token_for_the_same_session(db_session, clock, admin):
    row, token = sessions.open_session(db_session, admin.person.account, by=admin.ctx)
    new = sessions.rotate(db_session, row)
    assert sessions.find_live(db_session, token, POLICY, by=admin.ctx) is None
    assert sessions.find_live(db_session, new, POLICY, by=admin.ctx) is row


def test_ending_others_keeps_the_current_one_and_a_strangers_session_is_not_found(db_session, clock, admin, user):
    account = admin.person.account
    mine = [sessions.open_session(db_session, account, by=admin.ctx)[0] for _ in range(3)]
    theirs, _ = sessions.open_session(db_session, user.person.account, by=user.ctx)
    with pytest.raises(NotFound):
        sessions.end_own_session(db_session, account, theirs.id, by=admin.ctx)
    assert sessions.end_all_sessions(db_session, account, "password changed", by=admin.ctx, keep=mine[0]) == 2
    assert [row.ended_at is None for row in mine] == [True, False, False]
    assert theirs.ended_at is None


def test_ending_a_link_that_is_already_over_ends_the_sessions(db_session, clock, employer, admin, user):
    row, _ = sessions.open_session(db_session, user.person.account, by=user.ctx)
    ops.end_link(db_session, user.link, clock.at.date() + timedelta(days=10), by=admin.ctx)
    assert row.ended_at is None  # ends later: the decision point stops the roles on that day
    ops.end_link(db_session, user.link, clock.at.date() - timedelta(days=1), by=admin.ctx)
    assert row.ended_reason == "link ended"


def test_user_session_rows_belong_to_the_account(db_session, clock, admin):
    sessions.open_session(db_session, admin.person.account, by=admin.ctx)
    assert db_session.scalar(select(UserSession.account_id)) == admin.person.account.id


@pytest.mark.parametrize(("agent", "expected"), [
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
     "Chrome / Linux"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox / Windows"),
    (None, "?"),
])
def test_describe_device(agent, expected):
    assert sessions.describe_device(agent) == expected
