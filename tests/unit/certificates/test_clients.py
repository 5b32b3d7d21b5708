"""API clients and the rules of their tokens (certificates.clients), without the web layer."""
from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from access.errors import Conflict, NotFound, ValidationError
from audit.models import AuditRecord
from certificates import clients
from certificates import operations as cops
from certificates.clients import ClientRefused
from certificates.models import AccessToken, UsedAssertion
from tests.conftest import DEFAULT_NOW
from tests.pki import rsa_key

AUDIENCE = "https://portal.test/oauth/token"


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def seal(factories, pki, trust, ctx):
    """An employer with an active EC P-256 seal certificate registered."""

    def make(enterprise=None, **kwargs):
        enterprise = enterprise or factories.Employer()
        issued = pki.seal(enterprise.kbo_number, enterprise.name, **kwargs)
        certificate = cops.register_certificate(factories.session, enterprise, issued.pem_with_chain, trust=trust,
                                                by=ctx).certificate
        return enterprise, certificate, issued

    return make


@pytest.fixture
def client(factories, seal, ctx):
    enterprise, certificate, issued = seal()
    api_client = clients.register_api_client(factories.session, enterprise, certificate, "Loonmotor",
                                             ["dmfa", "werkgeversrepertorium_beveiligd"], by=ctx)
    return api_client


def _refusal(excinfo) -> tuple[str, str]:
    return excinfo.value.error, excinfo.value.code


# --- registering and revoking -----------------------------------------------------------------


def test_register_binds_the_client_to_the_certificate_and_audits(factories, seal, ctx):
    enterprise, certificate, _ = seal()
    before = _count(factories.session, AuditRecord)
    api_client = clients.register_api_client(factories.session, enterprise, certificate, "  Loon   motor ",
                                             ["dmfa", "asr", "dmfa"], by=ctx)
    assert len(api_client.client_id) == 32 and api_client.name == "Loon motor"
    assert api_client.scopes == ["dmfa", "asr"] and api_client.certificate_id == certificate.id
    assert clients.client_status(api_client, DEFAULT_NOW) == "active"
    assert clients.api_clients_of(factories.session, enterprise.id) == [api_client]
    entry = factories.session.scalars(select(AuditRecord).order_by(AuditRecord.id.desc())).first()
    assert _count(factories.session, AuditRecord) == before + 1
    assert (entry.action, entry.enterprise_id) == ("api_client.register", enterprise.id)
    assert entry.details["after"]["client_id"] == api_client.client_id
    assert entry.details["certificate"] == certificate.fingerprint


@pytest.mark.parametrize("name, scopes, field", [
    ("", ["dmfa"], "name"),
    ("x" * 101, ["dmfa"], "name"),
    ("Loonmotor", [], "scopes"),
    ("Loonmotor", ["toegangsbeheer"], "scopes"),   # people's work, never a machine's
    ("Loonmotor", ["portaalbeheer"], "scopes"),
    ("Loonmotor", ["dimona"], "scopes"),           # free: no token needed
    ("Loonmotor", ["no-such-app"], "scopes"),
])
def test_register_refuses_bad_input(factories, seal, ctx, name, scopes, field):
    enterprise, certificate, _ = seal()
    with pytest.raises(ValidationError) as refused:
        clients.register_api_client(factories.session, enterprise, certificate, name, scopes, by=ctx)
    assert refused.value.field == field


def test_register_needs_an_active_certificate_of_the_enterprise_that_can_sign(factories, seal, ctx):
    enterprise, certificate, _ = seal()
    other, other_certificate, _ = seal()
    with pytest.raises(NotFound):
        clients.register_api_client(factories.session, enterprise, other_certificate, "x", ["dmfa"], by=ctx)
    cops.revoke_certificate(factories.session, certificate, "lost", by=ctx)
    with pytest.raises(ValidationError) as revoked:
        clients.register_api_client(factories.session, enterprise, certificate, "x", ["dmfa"], by=ctx)
    assert revoked.value.params == {"status": "revoked"}
    _, p384, _ = seal(enterprise, key=ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ValidationError) as weak:
        clients.register_api_client(factories.session, enterprise, p384, "x", ["dmfa"], by=ctx)
    assert weak.value.params == {"key": "EC P-384"}
    _, rsa_certificate, _ = seal(enterprise, key=rsa_key())
    assert clients.register_api_client(factories.session, enterprise, rsa_certificate, "x", ["dmfa"], by=ctx)


def test_revoke_stops_the_client_and_its_running_tokens(factories, client, ctx):
    running = clients.record_token(factories.session, client, "running", ["dmfa"], lifetime=300, by=ctx)
    clients.revoke_api_client(factories.session, client, by=ctx)
    factories.session.refresh(running)
    assert client.revoked_at is not None and running.revoked_at is not None
    assert clients.client_status(client, DEFAULT_NOW) == "revoked"
    with pytest.raises(Conflict):
        clients.revoke_api_client(factories.session, client, by=ctx)
    with pytest.raises(ClientRefused) as refused:
        clients.assertion_key(factories.session, client, {"alg": "ES256", "kid": client.certificate.fingerprint},
                              DEFAULT_NOW)
    assert _refusal(refused) == ("invalid_client", "client-revoked")


def test_another_enterprises_client_is_not_found(factories, client, seal):
    other, _, _ = seal()
    with pytest.raises(NotFound):
        clients.get_api_client(factories.session, other, client.client_id)
    assert clients.get_api_client(factories.session, client.enterprise, client.client_id) is client
    assert clients.find_client(factories.session, "x" * 41) is None
    assert clients.find_client(factories.session, 12) is None


# --- the assertion's header: which key ---------------------------------------------------------


def test_assertion_key_is_the_client_certificates(factories, client):
    key = clients.assertion_key(factories.session, client,
                                {"alg": "ES256", "kid": client.certificate.fingerprint.upper()}, DEFAULT_NOW)
    assert key.certificate is client.certificate and key.algorithms == ("ES256",)
    assert isinstance(key.public_key, ec.EllipticCurvePublicKey)


@pytest.mark.parametrize("header, code", [
    ({"alg": "HS256"}, "algorithm-not-allowed"),
    ({"alg": "none"}, "algorithm-not-allowed"),
    ({"alg": "ES384"}, "algorithm-not-allowed"),
    ({"alg": "RS256"}, "algorithm-not-allowed"),   # allowed, but not for an EC key
    ({"alg": "ES256"}, "kid-missing"),
    ({"alg": "ES256", "kid": 7}, "kid-missing"),
    ({"alg": "ES256", "kid": "ab" * 32}, "unknown-kid"),
])
def test_assertion_key_refusals(factories, client, header, code):
    if header.get("alg") == "RS256":
        header = {**header, "kid": client.certificate.fingerprint}
    with pytest.raises(ClientRefused) as refused:
        clients.assertion_key(factories.session, client, header, DEFAULT_NOW)
    assert _refusal(refused) == ("invalid_client", code)


def test_assertion_key_refuses_another_certificate_and_an_inactive_one(factories, client, seal, ctx):
    _, other_certificate, _ = seal()
    with pytest.raises(ClientRefused) as other:
        clients.assertion_key(factories.session, client, {"alg": "ES256", "kid": other_certificate.fingerprint},
                              DEFAULT_NOW)
    assert _refusal(other) == ("invalid_client", "kid-not-of-client")
    header = {"alg": "ES256", "kid": client.certificate.fingerprint}
    with pytest.raises(ClientRefused) as expired:
        clients.assertion_key(factories.session, client, header, DEFAULT_NOW + timedelta(days=400))
    assert _refusal(expired) == ("invalid_client", "certificate-not-active") and "expired" in expired.value.text
    cops.revoke_certificate(factories.session, client.certificate, "key lost", by=ctx)
    with pytest.raises(ClientRefused) as revoked:
        clients.assertion_key(factories.session, client, header, DEFAULT_NOW)
    assert _refusal(revoked) == ("invalid_client", "certificate-not-active") and "revoked" in revoked.value.text


def test_a_certificate_moved_to_another_enterprise_is_refused(factories, client, seal):
    """The binding is checked at every use, not only at registration."""
    _, other_certificate, _ = seal()
    client.certificate_id = other_certificate.id
    factories.session.flush()
    factories.session.expire(client, ["certificate"])
    with pytest.raises(ClientRefused) as refused:
        clients.assertion_key(factories.session, client, {"alg": "ES256", "kid": other_certificate.fingerprint},
                              DEFAULT_NOW)
    assert _refusal(refused) == ("invalid_client", "certificate-not-of-enterprise")


# --- the assertion's claims --------------------------------------------------------------------


def _claims(client_id="client-1", **overrides):
    now = DEFAULT_NOW.timestamp()
    claims = {"iss": client_id, "sub": client_id, "aud": AUDIENCE, "iat": now, "exp": now + 60, "jti": "j-1"}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _check(claims):
    return clients.check_assertion_claims(claims, client_id="client-1", audience=AUDIENCE, now=DEFAULT_NOW)


def test_valid_claims():
    checked = _check(_claims())
    assert checked.jti == "j-1" and checked.expires_at == DEFAULT_NOW + timedelta(seconds=60)
    now = DEFAULT_NOW.timestamp()
    assert _check(_claims(aud=["https://elsewhere.test", AUDIENCE], iat=now - 200, exp=now + 100))
    assert _check(_claims(exp=now + 300))  # exactly five minutes


@pytest.mark.parametrize("overrides, code", [
    ({"iss": "client-2"}, "invalid-claim"),
    ({"sub": "client-2"}, "invalid-claim"),
    ({"aud": "https://portal.test/other"}, "wrong-audience"),
    ({"aud": None}, "wrong-audience"),
    ({"exp": None}, "invalid-claim"),
    ({"iat": None}, "invalid-claim"),
    ({"exp": True}, "invalid-claim"),
    ({"exp": "soon"}, "invalid-claim"),
    ({"iat": DEFAULT_NOW.timestamp() - 600, "exp": DEFAULT_NOW.timestamp() - 31}, "assertion-expired"),
    ({"exp": DEFAULT_NOW.timestamp() + 301}, "assertion-lifetime-too-long"),
    ({"iat": DEFAULT_NOW.timestamp() - 3600, "exp": DEFAULT_NOW.timestamp() + 60}, "assertion-lifetime-too-long"),
    ({"iat": DEFAULT_NOW.timestamp() + 120, "exp": DEFAULT_NOW.timestamp() + 180}, "assertion-not-yet-valid"),
    ({"nbf": DEFAULT_NOW.timestamp() + 120}, "assertion-not-yet-valid"),
    ({"exp": DEFAULT_NOW.timestamp()}, "invalid-claim"),  # exp == iat
    ({"jti": None}, "jti-missing"),
    ({"jti": "  "}, "jti-missing"),
    ({"jti": 42}, "jti-missing"),
    ({"jti": "j" * 201}, "invalid-claim"),
])
def test_claim_refusals(overrides, code):
    with pytest.raises(ClientRefused) as refused:
        _check(_claims(**overrides))
    assert _refusal(refused) == ("invalid_client", code)


def test_clock_skew_is_tolerated_a_little():
    now = DEFAULT_NOW.timestamp()
    assert _check(_claims(iat=now - 80, exp=now - 20))      # expired 20 s ago: within the skew
    assert _check(_claims(iat=now + 20, exp=now + 80))      # issued 20 s "in the future"


def test_a_jti_is_used_once_per_client(factories, client, seal, ctx):
    expires = DEFAULT_NOW + timedelta(seconds=60)
    clients.use_jti(factories.session, client, "j-1", expires)
    with pytest.raises(ClientRefused) as replay:
        clients.use_jti(factories.session, client, "j-1", expires)
    assert _refusal(replay) == ("invalid_client", "jti-replayed")
    enterprise, certificate, _ = seal()
    other = clients.register_api_client(factories.session, enterprise, certificate, "other", ["dmfa"], by=ctx)
    clients.use_jti(factories.session, other, "j-1", expires)  # another client's jti space
    assert _count(factories.session, UsedAssertion) == 2
    assert clients.purge_used_assertions(factories.session, DEFAULT_NOW + timedelta(minutes=3)) == 2


def test_the_unique_index_refuses_a_racing_replay(factories, client):
    """Two requests racing with one assertion both pass the look-up; the index refuses the second."""
    factories.session.add(UsedAssertion(client_id=client.id, jti="race", expires_at=DEFAULT_NOW))
    factories.session.flush()
    original = factories.session.scalar

    def blind_scalar(statement, *args, **kwargs):  # the look-up sees nothing, as in the race
        if "used_client_assertions" in str(statement):
            return None
        return original(statement, *args, **kwargs)

    factories.session.scalar = blind_scalar
    try:
        with pytest.raises(ClientRefused) as replay:
            clients.use_jti(factories.session, client, "race", DEFAULT_NOW)
    finally:
        del factories.session.scalar
    assert replay.value.code == "jti-replayed"
    assert _count(factories.session, UsedAssertion) == 1  # the savepoint kept the transaction usable


def test_scopes_are_a_subset_of_the_clients(client):
    assert clients.granted_scopes(client, None) == ["dmfa", "werkgeversrepertorium_beveiligd"]
    assert clients.granted_scopes(client, " ") == ["dmfa", "werkgeversrepertorium_beveiligd"]
    assert clients.granted_scopes(client, "dmfa dmfa") == ["dmfa"]
    with pytest.raises(ClientRefused) as refused:
        clients.granted_scopes(client, "dmfa asr")
    assert _refusal(refused) == ("invalid_scope", "scope-not-allowed") and "asr" in refused.value.text


# --- tokens ------------------------------------------------------------------------------------


def test_only_the_tokens_hash_is_stored(factories, client, ctx):
    value = clients.new_token_value()
    token = clients.record_token(factories.session, client, value, ["dmfa"], lifetime=300, by=ctx, jti="j-9")
    assert len(value) >= 43 and token.token_sha256 == clients.sha256_hex(value)
    row = factories.session.execute(select(AccessToken.__table__).where(AccessToken.id == token.id)).one()
    assert value not in [str(v) for v in row]
    entry = factories.session.scalars(select(AuditRecord).order_by(AuditRecord.id.desc())).first()
    assert entry.action == "oauth.token" and value not in str(entry.details) and "j-9" not in str(entry.details)
    assert entry.details["jti_sha256"] == clients.sha256_hex("j-9")
    assert clients.authenticate_token(factories.session, value, DEFAULT_NOW) == token
    assert clients.authenticate_token(factories.session, value, DEFAULT_NOW + timedelta(seconds=299)) == token


def test_issuing_a_token_is_a_use_of_the_certificate(factories, client, ctx):
    """Searching certificate.use finds the token, by its id and client: never the token nor the assertion."""
    value = clients.new_token_value()
    token = clients.record_token(factories.session, client, value, ["dmfa"], lifetime=300, by=ctx, jti="j-use")
    [use] = factories.session.scalars(select(AuditRecord).where(AuditRecord.action == "certificate.use")).all()
    assert use.outcome == "success" and use.enterprise_id == client.enterprise_id
    assert use.details == {"certificate_id": client.certificate_id, "fingerprint": client.certificate.fingerprint,
                           "purpose": "token", "client_id": client.client_id, "token_id": token.id,
                           "jti_sha256": clients.sha256_hex("j-use")}
    assert value not in str(use.details) and "j-use" not in str(use.details)


def test_token_refusals(factories, client, ctx):
    value = clients.new_token_value()
    token = clients.record_token(factories.session, client, value, ["dmfa"], lifetime=300, by=ctx)

    def code(raw=value, now=DEFAULT_NOW):
        with pytest.raises(ClientRefused) as refused:
            clients.authenticate_token(factories.session, raw, now)
        assert refused.value.error == "invalid_token"
        return refused.value.code

    assert code(raw="unknown") == "token-unknown"
    assert code(raw="") == "token-unknown"
    assert code(raw="x" * 201) == "token-unknown"
    assert code(now=DEFAULT_NOW + timedelta(seconds=300)) == "token-expired"
    cops.revoke_certificate(factories.session, client.certificate, "lost", by=ctx)
    assert code() == "certificate-not-active"
    client.revoked_at = DEFAULT_NOW
    assert code() == "client-revoked"
    token.revoked_at = DEFAULT_NOW
    assert code() == "token-revoked"


RACERS = 8


def test_one_assertion_racing_on_parallel_connections_is_accepted_once(database_url, tmp_path, pki, trust, clock):
    """RACERS requests with the same assertion, each on its own connection, released together: one wins.
    Commits, so it runs in a database of its own (PostgreSQL: real parallel connections and the unique
    index; SQLite: BEGIN IMMEDIATE serialises them)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy.orm import Session

    from audit.operations import RequestContext
    from certificates.models import ApiClient
    from tests.factories import EmployerFactory, bind_session
    from tests.unit.mandates.isolated_db import isolated_engine

    setup = RequestContext(actor_label="setup")
    with isolated_engine(database_url, tmp_path, "jti_race", pool_size=RACERS + 2, max_overflow=0) as engine:
        with Session(engine) as session, bind_session(session):
            employer = EmployerFactory()
            certificate = cops.register_certificate(session, employer, pki.seal(employer.kbo_number).pem_with_chain,
                                                    trust=trust, by=setup).certificate
            client_pk = clients.register_api_client(session, employer, certificate, "racer", ["dmfa"], by=setup).id
            session.commit()
        barrier = threading.Barrier(RACERS)

        def race(_):
            with Session(engine) as session:
                client = session.get(ApiClient, client_pk)
                session.commit()
                barrier.wait()
                try:
                    clients.use_jti(session, client, "the-same-jti", DEFAULT_NOW + timedelta(seconds=60))
                    session.commit()
                    return "accepted"
                except ClientRefused as refusal:
                    session.rollback()
                    return refusal.code

        with ThreadPoolExecutor(RACERS) as pool:
            outcomes = sorted(pool.map(race, range(RACERS)))
        assert outcomes == ["accepted"] + ["jti-replayed"] * (RACERS - 1)
        with Session(engine) as session:
            assert _count(session, UsedAssertion) == 1


def test_purge_expired_forgets_only_what_can_no_longer_be_used(factories, client, ctx):
    """Expired assertions (past the clock skew) and expired tokens go; the rest stays; the purge is audited."""
    session = factories.session
    now = DEFAULT_NOW + timedelta(hours=1)
    for jti, expires in (("long-gone", now - timedelta(minutes=10)), ("within-skew", now - timedelta(seconds=20)),
                         ("running", now + timedelta(seconds=60))):
        clients.use_jti(session, client, jti, expires)
    expired = clients.record_token(session, client, clients.new_token_value(), ["dmfa"], lifetime=300, by=ctx,
                                   now=now - timedelta(minutes=6))
    running_value = clients.new_token_value()
    running = clients.record_token(session, client, running_value, ["dmfa"], lifetime=300, by=ctx,
                                   now=now - timedelta(minutes=1))
    expired_id = expired.id

    purged = clients.purge_expired(session, now, by=ctx)

    assert purged == clients.Purged(used_assertions=1, access_tokens=1)
    session.expire_all()
    assert sorted(session.scalars(select(UsedAssertion.jti))) == ["running", "within-skew"]
    assert list(session.scalars(select(AccessToken.id))) == [running.id] and running.id != expired_id
    assert clients.authenticate_token(session, running_value, now) == running
    entry = session.scalars(select(AuditRecord).order_by(AuditRecord.id.desc())).first()
    assert (entry.action, entry.outcome, entry.actor_label) == ("oauth.purge", "success", "test")
    assert entry.details["used_assertions"] == 1 and entry.details["access_tokens"] == 1
    # Nothing left to purge: a second run says so.
    assert clients.purge_expired(session, now, by=ctx) == clients.Purged(0, 0)
