"""Machine clients: API clients bound to a certificate of their enterprise, and the rules of the OAuth 2
client-credentials grant (RFC 6749 §4.4) with private_key_jwt client authentication (RFC 7523 §2.2, §3).

An API client has no secret. It proves possession of the private key of one registered certificate by
signing a short client assertion: `kid` is the certificate's SHA-256 thumbprint, `iss` = `sub` = its
client_id, `aud` the token endpoint, at most five minutes between `iat` and `exp`, and a `jti` that is
never accepted twice. It then receives an opaque, short-lived bearer token whose scopes are application
codes; only the token's SHA-256 is stored. Each use of the token still goes through the decision point,
with the token's certificate as the certificate tier's proof (certificates.proof).

The protocol (form parsing, JWS signature verification, grant dispatch, RFC 6749 error bodies) is
Authlib's, wired in portal/oauth.py; the rules are here, plain functions without Flask. Like every
operation they flush but never commit, and write their audit record in the same transaction."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from access.catalogue import Catalogue, load_catalogue
from access.clock import as_utc, utcnow
from access.errors import Conflict, NotFound, ValidationError
from access.models import Enterprise
from audit.operations import RequestContext, record
from certificates.models import AccessToken, ApiClient, Certificate, UsedAssertion
from certificates.proof import record_use

# Client assertions: the signature algorithms accepted, per key type (RFC 7518 §3.3, §3.4, §3.5).
ALGORITHMS = ("RS256", "PS256", "ES256")
RSA_ALGORITHMS = ("RS256", "PS256")
EC_ALGORITHMS = {"secp256r1": ("ES256",)}  # ES384 is not accepted, so a P-384 key cannot sign assertions
MAX_ASSERTION_SECONDS = 300      # exp - iat; Authlib checks no upper bound, so this module does
CLOCK_SKEW_SECONDS = 30          # allowance for the client's clock on exp, iat and nbf
MAX_JTI_LENGTH = 200             # used_client_assertions.jti
DEFAULT_TOKEN_SECONDS = 300      # PORTAL_ACCESS_TOKEN_SECONDS
MAX_TOKEN_LENGTH = 200           # longer bearer values are not ours: refused without a lookup
MAX_NAME_LENGTH = 100


class ClientRefused(Exception):
    """A token request or a bearer token refused.

    `error` is the RFC 6749 §5.2 / RFC 6750 §3.1 code the client receives (invalid_client,
    invalid_grant, invalid_scope, invalid_token); `code` is the portal's reason (audited);
    `text` says in English exactly what is wrong (OAuth error descriptions are for developers)."""

    def __init__(self, error: str, code: str, text: str) -> None:
        super().__init__(text)
        self.error, self.code, self.text = error, code, text


def _refuse(error: str, code: str, text: str) -> ClientRefused:
    return ClientRefused(error, code, text)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- registering and revoking clients (the local administrator) --------------------------------


def allowed_scopes(catalogue: Catalogue) -> list[str]:
    """Application codes an API client may be given: every application a right can be granted on.
    Access management and portal administration are people's work, never a machine's."""
    return [app.code for app in catalogue.grantable()]


def _key_algorithms(certificate: Certificate) -> tuple[str, ...]:
    key = x509.load_der_x509_certificate(certificate.der).public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey):
        return EC_ALGORITHMS.get(key.curve.name, ())
    return ()


def client_snapshot(client: ApiClient) -> dict[str, Any]:
    return {"client_id": client.client_id, "name": client.name, "scopes": list(client.scopes),
            "certificate_id": client.certificate_id,
            "revoked_at": client.revoked_at.isoformat() if client.revoked_at else None}


def register_api_client(session: Session, enterprise: Enterprise, certificate: Certificate, name: str,
                        scopes: Iterable[str], *, by: RequestContext, catalogue: Catalogue | None = None,
                        now: datetime | None = None) -> ApiClient:
    """Register a machine client of `enterprise` bound to one of its active certificates."""
    now = now or utcnow()
    catalogue = catalogue or load_catalogue()
    if certificate.enterprise_id != enterprise.id:
        raise NotFound("Unknown certificate.", "certificate_id")
    status = certificate.status_on(now, warn_days=0)
    if status != "active":
        raise ValidationError("The certificate is %(status)s: bind the client to an active certificate.",
                              "certificate_id", status=status)
    if not _key_algorithms(certificate):
        raise ValidationError("The certificate's key (%(key)s) cannot sign client assertions: use an RSA key "
                              "(RS256, PS256) or an EC P-256 key (ES256).", "certificate_id",
                              key=certificate.key_description)
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError("Give the API client a name.", "name")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError("The name may have at most %(max)s characters.", "name", max=MAX_NAME_LENGTH)
    codes = list(dict.fromkeys(scopes or ()))
    if not codes:
        raise ValidationError("Choose at least one application the client may use.", "scopes")
    allowed = set(allowed_scopes(catalogue))
    unknown = [code for code in codes if code not in allowed]
    if unknown:
        raise ValidationError("An API client cannot be given these applications: %(codes)s.", "scopes",
                              codes=", ".join(unknown))
    client = ApiClient(client_id=secrets.token_hex(16), enterprise_id=enterprise.id, certificate_id=certificate.id,
                       name=name, scopes=codes, created_by_id=by.actor_person_id, created_at=now)
    session.add(client)
    session.flush()
    record(session, by, action="api_client.register", outcome="success", enterprise_id=enterprise.id,
           details={"after": client_snapshot(client), "certificate": certificate.fingerprint})
    return client


def get_api_client(session: Session, enterprise: Enterprise, client_id: str) -> ApiClient:
    """Another enterprise's client answers exactly like one that does not exist."""
    client = find_client(session, client_id)
    if client is None or client.enterprise_id != enterprise.id:
        raise NotFound("Unknown API client.", "client_id")
    return client


def api_clients_of(session: Session, enterprise_id: int) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).where(ApiClient.enterprise_id == enterprise_id)
                                .order_by(ApiClient.created_at.desc(), ApiClient.id.desc())))


def client_status(client: ApiClient, now: datetime) -> str:
    """active, revoked, or certificate-<status> when its certificate no longer works."""
    if client.revoked_at is not None:
        return "revoked"
    status = client.certificate.status_on(now, warn_days=0)
    return "active" if status == "active" else f"certificate-{status}"


def revoke_api_client(session: Session, client: ApiClient, *, by: RequestContext,
                      now: datetime | None = None) -> ApiClient:
    """The client stops working at once: no new token, and its tokens still running are revoked."""
    now = now or utcnow()
    if client.revoked_at is not None:
        raise Conflict("This API client is revoked already.", "client_id")
    before = client_snapshot(client)
    client.revoked_at = now
    tokens = session.execute(
        update(AccessToken)
        .where(AccessToken.client_id == client.id, AccessToken.revoked_at.is_(None), AccessToken.expires_at > now)
        .values(revoked_at=now)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    session.flush()
    record(session, by, action="api_client.revoke", outcome="success", enterprise_id=client.enterprise_id,
           details={"before": before, "after": client_snapshot(client), "tokens_revoked": tokens})
    return client


# --- the token request: client assertion -------------------------------------------------------


def find_client(session: Session, client_id: object) -> ApiClient | None:
    if not isinstance(client_id, str) or not client_id or len(client_id) > 40:
        return None
    return session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))


@dataclass(frozen=True)
class AssertionKey:
    """The key that must have signed the assertion, and the algorithms it may have used."""

    certificate: Certificate
    public_key: Any  # cryptography RSAPublicKey or EllipticCurvePublicKey
    algorithms: tuple[str, ...]


def assertion_key(session: Session, client: ApiClient, header: dict[str, Any], now: datetime) -> AssertionKey:
    """Check the assertion's JOSE header against the client's certificate; return the verification key.

    Refused: a revoked client, an algorithm other than RS256/PS256/ES256 (or one that does not fit the
    key), a `kid` missing, unknown, or naming a certificate other than the client's, and a certificate
    that is not active today (revoked in the portal, replaced, expired) or not of the client's enterprise."""
    if client.revoked_at is not None:
        raise _refuse("invalid_client", "client-revoked", "this API client was revoked")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise _refuse("invalid_client", "algorithm-not-allowed",
                      f"the assertion's alg must be one of {', '.join(ALGORITHMS)}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _refuse("invalid_client", "kid-missing",
                      "the assertion's header has no kid: put the certificate's SHA-256 thumbprint (hex) there")
    kid = kid.lower()
    certificate = client.certificate
    if kid != certificate.fingerprint:
        known = session.scalar(select(Certificate.id).where(Certificate.fingerprint == kid[:64]))
        if known is None:
            raise _refuse("invalid_client", "unknown-kid", "no registered certificate has the thumbprint in kid")
        raise _refuse("invalid_client", "kid-not-of-client",
                      "the certificate named by kid is not the one this API client is bound to")
    if certificate.enterprise_id != client.enterprise_id:
        raise _refuse("invalid_client", "certificate-not-of-enterprise",
                      "the client's certificate is not one of its enterprise")
    status = certificate.status_on(now, warn_days=0)
    if status != "active":
        raise _refuse("invalid_client", "certificate-not-active", f"the client's certificate is {status}")
    algorithms = _key_algorithms(certificate)
    if alg not in algorithms:
        raise _refuse("invalid_client", "algorithm-not-allowed",
                      f"alg {alg} does not fit the certificate's key ({certificate.key_description}): "
                      f"use {' or '.join(algorithms) or 'another certificate'}")
    public_key = x509.load_der_x509_certificate(certificate.der).public_key()
    return AssertionKey(certificate, public_key, (alg,))


@dataclass(frozen=True)
class CheckedAssertion:
    jti: str
    issued_at: datetime
    expires_at: datetime


def _numeric(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) > 1e11:
        raise _refuse("invalid_client", "invalid-claim", f"the claim {name} must be a NumericDate (seconds)")
    return float(value)


def check_assertion_claims(claims: dict[str, Any], *, client_id: str, audience: str,
                           now: datetime) -> CheckedAssertion:
    """RFC 7523 §3 on a verified assertion, with the portal's clock and its five-minute cap."""
    for name in ("iss", "sub"):
        if claims.get(name) != client_id:
            raise _refuse("invalid_client", "invalid-claim", f"the claim {name} must be the client_id")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences:
        raise _refuse("invalid_client", "wrong-audience", f"the claim aud must be the token endpoint {audience}")
    exp, iat, nbf = _numeric(claims, "exp"), _numeric(claims, "iat"), _numeric(claims, "nbf")
    if exp is None or iat is None:
        raise _refuse("invalid_client", "invalid-claim", "the assertion must carry iat and exp")
    moment = now.timestamp()
    if exp <= moment - CLOCK_SKEW_SECONDS:
        raise _refuse("invalid_client", "assertion-expired", "the assertion has expired")
    if iat > moment + CLOCK_SKEW_SECONDS or (nbf is not None and nbf > moment + CLOCK_SKEW_SECONDS):
        raise _refuse("invalid_client", "assertion-not-yet-valid", "the assertion is not valid yet (iat or nbf "
                                                                   "is in the future)")
    if exp <= iat:
        raise _refuse("invalid_client", "invalid-claim", "the claim exp must come after iat")
    if exp - iat > MAX_ASSERTION_SECONDS:
        raise _refuse("invalid_client", "assertion-lifetime-too-long",
                      f"the assertion may live at most {MAX_ASSERTION_SECONDS} seconds (exp - iat)")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti.strip():
        raise _refuse("invalid_client", "jti-missing", "the assertion must carry a unique jti")
    if len(jti) > MAX_JTI_LENGTH:
        raise _refuse("invalid_client", "invalid-claim", f"the jti may have at most {MAX_JTI_LENGTH} characters")
    tz = now.tzinfo
    return CheckedAssertion(jti, datetime.fromtimestamp(iat, tz), datetime.fromtimestamp(exp, tz))


def use_jti(session: Session, client: ApiClient, jti: str, expires_at: datetime) -> UsedAssertion:
    """Remember the assertion's jti; refused if this client used it before (RFC 7523 §3 item 7).
    The unique index decides between two requests racing with the same assertion."""
    replayed = _refuse("invalid_client", "jti-replayed", "this assertion (its jti) was used before")
    if session.scalar(select(UsedAssertion.id).where(UsedAssertion.client_id == client.id,
                                                     UsedAssertion.jti == jti)) is not None:
        raise replayed
    used = UsedAssertion(client_id=client.id, jti=jti, expires_at=expires_at)
    try:
        with session.begin_nested():
            session.add(used)
    except IntegrityError:
        raise replayed from None
    return used


def purge_used_assertions(session: Session, now: datetime | None = None) -> int:
    """Forget jtis of assertions that expired (with the clock skew): those are refused on `exp` anyway."""
    cutoff = (now or utcnow()) - timedelta(seconds=CLOCK_SKEW_SECONDS + 60)
    return session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < cutoff)).rowcount


@dataclass(frozen=True)
class Purged:
    used_assertions: int
    access_tokens: int


def purge_expired(session: Session, now: datetime | None = None, *, by: RequestContext) -> Purged:
    """Forget what can no longer be used: the jtis of expired client assertions (only once past the
    clock skew, so a replay is still refused on its `exp`) and the access tokens that expired (a value
    no longer stored is refused as unknown, just as an expired one is refused)."""
    now = now or utcnow()
    used_assertions = purge_used_assertions(session, now)
    access_tokens = session.execute(delete(AccessToken).where(AccessToken.expires_at <= now)
                                    .execution_options(synchronize_session="fetch")).rowcount
    session.flush()
    record(session, by, action="oauth.purge", outcome="success",
           details={"used_assertions": used_assertions, "access_tokens": access_tokens, "now": now.isoformat()})
    return Purged(used_assertions, access_tokens)


def granted_scopes(client: ApiClient, requested: str | None) -> list[str]:
    """The token's scopes: the requested application codes, each one of the client's (RFC 6749 §3.3);
    all of the client's when none is requested."""
    if requested is None or not requested.strip():
        return list(client.scopes)
    asked = list(dict.fromkeys(requested.split()))
    outside = [code for code in asked if code not in client.scopes]
    if outside:
        raise _refuse("invalid_scope", "scope-not-allowed",
                      f"this client may not ask for: {' '.join(outside)[:200]}")
    return asked


# --- tokens ------------------------------------------------------------------------------------


def new_token_value() -> str:
    """An opaque bearer token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def record_token(session: Session, client: ApiClient, value: str, scopes: list[str], *, lifetime: int,
                 by: RequestContext, jti: str | None = None, now: datetime | None = None) -> AccessToken:
    """Keep the token's SHA-256 (never the token), its scopes and the certificate that proved possession;
    audit the issue (oauth.token) and the certificate's use (certificate.use, purpose "token")."""
    now = now or utcnow()
    token = AccessToken(token_sha256=sha256_hex(value), client_id=client.id, certificate_id=client.certificate_id,
                        scopes=list(scopes), issued_at=now, expires_at=now + timedelta(seconds=lifetime))
    session.add(token)
    session.flush()
    jti_sha256 = sha256_hex(jti) if jti else None
    # The assertion proved possession of the certificate's key: a use of the certificate.
    record_use(session, by, client.certificate, "token", client_id=client.client_id, token_id=token.id,
               jti_sha256=jti_sha256)
    record(session, by, action="oauth.token", outcome="success", enterprise_id=client.enterprise_id,
           details={"client_id": client.client_id, "token_id": token.id, "scopes": list(scopes),
                    "certificate_id": client.certificate_id, "certificate": client.certificate.fingerprint,
                    "jti_sha256": jti_sha256, "expires_at": token.expires_at.isoformat()})
    return token


def authenticate_token(session: Session, value: str, now: datetime | None = None) -> AccessToken:
    """The stored token for a bearer value, if it still works: not expired, not revoked, its client not
    revoked, and the certificate that proved possession still active (revoking it stops the token)."""
    now = now or utcnow()
    if not value or len(value) > MAX_TOKEN_LENGTH:
        raise _refuse("invalid_token", "token-unknown", "unknown access token")
    token = session.scalar(select(AccessToken).where(AccessToken.token_sha256 == sha256_hex(value)))
    if token is None:
        raise _refuse("invalid_token", "token-unknown", "unknown access token")
    if token.revoked_at is not None:
        raise _refuse("invalid_token", "token-revoked", "the access token was revoked")
    if now >= as_utc(token.expires_at):
        raise _refuse("invalid_token", "token-expired", "the access token has expired")
    if token.client.revoked_at is not None:
        raise _refuse("invalid_token", "client-revoked", "the API client was revoked")
    status = token.certificate.status_on(now, warn_days=0)
    if status != "active":
        raise _refuse("invalid_token", "certificate-not-active", f"the client's certificate is {status}")
    return token
