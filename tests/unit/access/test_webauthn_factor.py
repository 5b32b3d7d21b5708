"""Passkeys (WebAuthn) against a software authenticator built in the tests: registration, assertion,
and the refusals: another origin or relying party, a replayed challenge, a cloned key's counter."""
from __future__ import annotations

import pytest

from access import second_factor as factors
from access import sessions
from access import webauthn_factor as wa
from access.errors import Conflict, ValidationError
from access.models import Role
from tests.factories import audit_records, make_local_admin, make_member
from tests.support.webauthn_authenticator import SoftAuthenticator

RP = wa.RelyingParty(id="portal.test", name="Portaal", origin="https://portal.test")


@pytest.fixture
def employer(factories):
    return factories.Employer(name="Bakkerij De Gouden Korst")


@pytest.fixture
def admin(db_session, employer, ctx):
    from tests.factories import set_own_credentials

    member = make_local_admin(db_session, employer, ctx, first_name="An", last_name="Peeters")
    set_own_credentials(db_session, member.person, "an.peeters")
    return member


@pytest.fixture
def login(db_session, admin):
    row, _ = sessions.open_session(db_session, admin.person.account, by=admin.ctx)
    return row


@pytest.fixture
def key(db_session, admin, login):
    authenticator = SoftAuthenticator(RP.id, RP.origin)
    options = wa.registration_options(db_session, admin.person.account, login, RP)
    wa.register(db_session, admin.person.account, login, RP, authenticator.register(options), "YubiKey",
                by=admin.ctx)
    return authenticator


def _assert(db_session, admin, login, authenticator, **kwargs):
    options = wa.authentication_options(db_session, admin.person.account, login, RP)
    return wa.authenticate(db_session, admin.person.account, login, RP, authenticator.assert_(options, **kwargs),
                           by=admin.ctx)


def test_registration_stores_the_key_and_counts_as_a_factor(db_session, clock, admin, login, key):
    stored = factors.passkeys_of(db_session, admin.person.account)
    assert [(k.name, k.transports) for k in stored] == [("YubiKey", ["usb"])]
    assert factors.status(db_session, admin.person.account).enrolled
    assert login.challenge is None  # spent
    details = audit_records(db_session, "second_factor.enrol")[-1].details
    assert (details["method"], details["name"]) == ("webauthn", "YubiKey")


def test_an_assertion_is_accepted_and_the_counter_kept(db_session, clock, admin, login, key):
    used = _assert(db_session, admin, login, key)
    assert used.sign_count == 1 and used.last_used_at is not None
    assert _assert(db_session, admin, login, key).sign_count == 2


def test_an_assertion_for_another_origin_is_refused(db_session, clock, admin, login, key):
    with pytest.raises(ValidationError):
        _assert(db_session, admin, login, key, origin="https://portal.test.evil.example")
    assert audit_records(db_session, "second_factor.check")[-1].outcome == "failure"
    assert admin.person.account.failed_logins == 1


def test_a_replayed_challenge_is_refused(db_session, clock, admin, login, key):
    options = wa.authentication_options(db_session, admin.person.account, login, RP)
    answer = key.assert_(options)
    wa.authenticate(db_session, admin.person.account, login, RP, answer, by=admin.ctx)
    with pytest.raises(ValidationError):
        wa.authenticate(db_session, admin.person.account, login, RP, answer, by=admin.ctx)


def test_an_expired_challenge_is_refused(db_session, clock, admin, login, key):
    options = wa.authentication_options(db_session, admin.person.account, login, RP)
    clock.advance(minutes=3)
    with pytest.raises(ValidationError):
        wa.authenticate(db_session, admin.person.account, login, RP, key.assert_(options), by=admin.ctx)


def test_a_registration_challenge_cannot_answer_a_login(db_session, clock, admin, login, key):
    options = wa.registration_options(db_session, admin.person.account, login, RP)
    with pytest.raises(ValidationError):
        wa.authenticate(db_session, admin.person.account, login, RP, key.assert_(options), by=admin.ctx)


def test_a_counter_that_does_not_grow_is_a_cloned_key(db_session, clock, admin, login, key):
    _assert(db_session, admin, login, key, count=5)
    with pytest.raises(ValidationError):
        _assert(db_session, admin, login, key, count=5)


def test_another_accounts_key_is_refused(db_session, clock, employer, admin, login, key):
    user = make_member(db_session, employer, Role.USER, by=admin.ctx, first_name="Bo", last_name="Claes")
    other, _ = sessions.open_session(db_session, user.person.account, by=user.ctx)
    options = wa.authentication_options(db_session, user.person.account, other, RP)
    with pytest.raises(ValidationError):
        wa.authenticate(db_session, user.person.account, other, RP, key.assert_(options), by=user.ctx)


def test_registration_for_another_relying_party_is_refused(db_session, clock, admin, login):
    authenticator = SoftAuthenticator(RP.id, RP.origin)
    options = wa.registration_options(db_session, admin.person.account, login, RP)
    with pytest.raises(ValidationError):
        wa.register(db_session, admin.person.account, login, RP, authenticator.register(options, rp_id="evil.example"),
                    "x", by=admin.ctx)
    assert factors.passkeys_of(db_session, admin.person.account) == []


@pytest.mark.parametrize("garbage", ["", "not json", "[]", {"id": "x"}])
def test_garbage_is_refused(db_session, clock, admin, login, key, garbage):
    wa.authentication_options(db_session, admin.person.account, login, RP)
    with pytest.raises(ValidationError):
        wa.authenticate(db_session, admin.person.account, login, RP, garbage, by=admin.ctx)


def test_the_last_factor_cannot_be_removed_but_one_of_two_can(db_session, clock, admin, login, key):
    account = admin.person.account
    only = factors.passkeys_of(db_session, account)[0]
    with pytest.raises(Conflict):
        wa.remove(db_session, account, only.id, by=admin.ctx)
    second = SoftAuthenticator(RP.id, RP.origin)
    wa.register(db_session, account, login, RP, second.register(wa.registration_options(db_session, account, login, RP)),
                "Phone", by=admin.ctx)
    wa.remove(db_session, account, only.id, by=admin.ctx)
    assert [k.name for k in factors.passkeys_of(db_session, account)] == ["Phone"]
