"""The machine API's OAuth 2: the token endpoint and bearer tokens on /api/v1.

POST /oauth/token takes the client-credentials grant (RFC 6749 §4.4) with private_key_jwt client
authentication (RFC 7523 §2.2): Authlib's Flask AuthorizationServer, its ClientCredentialsGrant and its
JWTBearerClientAssertion do the protocol (form parameters, JWS verification, grant dispatch, RFC 6749
JSON errors); the portal's rules come from certificates.clients:

- the JOSE header: `alg` RS256, PS256 or ES256 and fitting the key, `kid` the SHA-256 thumbprint of the
  client's certificate, which must be active and of the client's enterprise (resolve_client_public_key);
- the claims, against the portal's clock (Authlib's check reads the system clock and has no upper
  bound on the lifetime): iss = sub = client_id, aud the token endpoint, exp - iat at most 5 minutes,
  and a jti never accepted twice (verify_claims, which therefore replaces Authlib's);
- the scopes: application codes, each one of the client's.

A request on /api/v1/* with `Authorization: Bearer <token>` is the machine client's: no cookie and
no CSRF token are involved, the rate limits still apply. The token is checked before the view; the
subject of the request is then the machine Subject (portal.context.current_subject) and the token's
certificate is the proof the decision point's certificate tier asks for (portal.context.proof_context).
Every token issued or refused, and every bearer token refused, is audited; never the token or the
assertion, and the jti only as its SHA-256.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import (
    InsecureTransportError,
    InvalidClientError,
    InvalidGrantError,
    InvalidScopeError,
    OAuth2Error,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, Flask, current_app, g, request, url_for
from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey, RSAKey

from access.clock import utcnow
from access.decision import Subject
from audit.operations import record
from certificates import clients
from certificates.clients import ClientRefused
from certificates.models import ApiClient
from portal.context import request_context
from portal.database import get_session
from portal.extensions import csrf, limiter
from portal.gate import public

API_PREFIX = "/api/v1/"
MAX_ASSERTION_BYTES = 16 * 1024

bp = Blueprint("oauth", __name__)


# --- per request: what the token request revealed, for the audit record -------------------------


@dataclass
class Attempt:
    claimed_client_id: str | None = None
    header: dict | None = None
    client: ApiClient | None = None
    algorithms: tuple[str, ...] = ()
    jti: str | None = None
    jti_expires_at: datetime | None = None
    refusal: str | None = None  # the portal's reason code, when one of its rules refused


def _attempt() -> Attempt:
    if "oauth_attempt" not in g:
        g.oauth_attempt = Attempt()
    return g.oauth_attempt


_ERRORS = {"invalid_client": InvalidClientError, "invalid_scope": InvalidScopeError,
           "invalid_grant": InvalidGrantError}


def _raise(refusal: ClientRefused) -> NoReturn:
    _attempt().refusal = refusal.code
    raise _ERRORS.get(refusal.error, InvalidClientError)(description=refusal.text)


def token_endpoint_url() -> str:
    """The `aud` every assertion must name. Set PORTAL_OAUTH_TOKEN_URL behind a proxy or load balancer:
    derived from the request, it would be whatever host the client addressed."""
    return current_app.config.get("OAUTH_TOKEN_URL") or url_for("oauth.token", _external=True)


# --- Authlib: the client, its authentication, the grant, the server ------------------------------


class PortalClient(ClientMixin):
    """Authlib's view of an ApiClient: confidential, no secret, private_key_jwt and client_credentials only."""

    def __init__(self, api_client: ApiClient) -> None:
        self.api_client = api_client

    def get_client_id(self):
        return self.api_client.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        try:
            return " ".join(clients.granted_scopes(self.api_client, scope))
        except ClientRefused as refusal:
            _raise(refusal)

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        return False  # API clients have no secret

    def check_endpoint_auth_method(self, method, endpoint):
        return method == PrivateKeyJWT.CLIENT_AUTH_METHOD and endpoint == "token"

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type == ClientCredentialsGrant.GRANT_TYPE


class PrivateKeyJWT(JWTBearerClientAssertion):
    """private_key_jwt (RFC 7523 §2.2, OpenID Connect Core §9) with the portal's rules."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self) -> None:
        super().__init__(validate_jti=True, leeway=clients.CLOCK_SKEW_SECONDS)

    def __call__(self, query_client, request):
        assertion = request.form.get("client_assertion")
        if request.form.get("client_assertion_type") == self.CLIENT_ASSERTION_TYPE and assertion:
            if len(assertion) > MAX_ASSERTION_BYTES:
                _raise(ClientRefused("invalid_client", "invalid-assertion", "the client assertion is too large"))
            # Unverified: only to know which key must have signed it (Authlib hands the key resolver
            # the client, not the header) and which client the audit record is about.
            header, claims = self.extract_assertion(assertion)
            attempt = _attempt()
            attempt.header = header
            sub = claims.get("sub")
            attempt.claimed_client_id = sub[:64] if isinstance(sub, str) else None
        return super().__call__(query_client, request)

    def get_audiences(self):
        return [token_endpoint_url()]

    def resolve_client_public_key(self, client: PortalClient):
        attempt = _attempt()
        attempt.client = client.api_client
        try:
            key = clients.assertion_key(get_session(), client.api_client, attempt.header or {}, utcnow())
        except ClientRefused as refusal:
            _raise(refusal)
        attempt.algorithms = key.algorithms
        key_class = RSAKey if isinstance(key.public_key, rsa.RSAPublicKey) else ECKey
        return key_class.import_key(key.public_key)

    def process_assertion_claims(self, assertion, resolve_key):
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=list(_attempt().algorithms))
        except BadSignatureError:
            _raise(ClientRefused("invalid_client", "bad-signature",
                                 "the assertion's signature does not verify with the key of the client's certificate"))
        except JoseError as error:
            _raise(ClientRefused("invalid_client", "invalid-assertion",
                                 f"the assertion cannot be verified: {error.description or error.error}"))
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims):
        attempt = _attempt()
        try:
            checked = clients.check_assertion_claims(claims, client_id=attempt.client.client_id,
                                                     audience=self.get_audiences()[0], now=utcnow())
        except ClientRefused as refusal:
            _raise(refusal)
        attempt.jti, attempt.jti_expires_at = checked.jti, checked.expires_at
        if not self.validate_jti(claims, checked.jti):
            _raise(ClientRefused("invalid_client", "jti-replayed", "this assertion (its jti) was used before"))

    def validate_jti(self, claims, jti):
        attempt = _attempt()
        try:
            clients.use_jti(get_session(), attempt.client, jti, attempt.jti_expires_at)
        except ClientRefused:
            return False
        return True


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [PrivateKeyJWT.CLIENT_AUTH_METHOD]

    def validate_requested_scope(self):
        """Each requested scope must be one of the client's (Authlib's default only knows a global list)."""
        try:
            clients.granted_scopes(self.request.client.api_client, self.request.payload.scope)
        except ClientRefused as refusal:
            _raise(refusal)


class PortalAuthorizationServer(AuthorizationServer):
    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.init_app(app)
        self.register_grant(ClientCredentialsGrant)
        self.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT())

    def load_config(self, config):
        lifetime = int(config["ACCESS_TOKEN_SECONDS"])
        self.register_token_generator("default", BearerTokenGenerator(
            lambda **_: clients.new_token_value(), None, lifetime))
        self.scopes_supported = None  # per client: ClientCredentialsGrant.validate_requested_scope

    def query_client(self, client_id):
        api_client = clients.find_client(get_session(), client_id)
        return PortalClient(api_client) if api_client is not None else None

    def save_token(self, token, request):
        api_client = request.client.api_client
        clients.record_token(get_session(), api_client, token["access_token"], token.get("scope", "").split(),
                             lifetime=int(token["expires_in"]),
                             by=request_context().as_actor(None, api_client.client_id), jti=_attempt().jti)

    def handle_error_response(self, request, error):
        _audit_refusal(error)
        return super().handle_error_response(request, error)


def _audit_refusal(error: OAuth2Error) -> None:
    attempt = _attempt()
    client = attempt.client
    label = client.client_id if client is not None else None
    record(get_session(), request_context().as_actor(None, label), action="oauth.token", outcome="failure",
           enterprise_id=client.enterprise_id if client is not None else None,
           reason=f"{error.error}: {error.description}" if error.description else error.error,
           details={"error": error.error, "code": attempt.refusal or error.error,
                    "client_id": label, "claimed_client_id": attempt.claimed_client_id,
                    "jti_sha256": clients.sha256_hex(attempt.jti) if attempt.jti else None},
           survive_rollback=True)


@bp.route("/oauth/token", methods=["POST"])
@public  # the client authenticates itself with its assertion; no session
@limiter.limit(lambda: current_app.config["OAUTH_TOKEN_RATE_LIMIT"])
def token():
    server: PortalAuthorizationServer = current_app.extensions["portal.oauth"]
    try:
        return server.create_token_response()
    except InsecureTransportError as error:  # raised by Authlib before its own error handling
        return server.handle_error_response(None, error)


csrf.exempt(token)  # no cookie is involved: the assertion is the credential


# --- bearer tokens on /api/v1 --------------------------------------------------------------------


def bearer_value() -> str | None:
    """The bearer token of an /api/v1 request (RFC 6750 §2.1), or None when it has none."""
    if not request.path.startswith(API_PREFIX):
        return None
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _before_request():
    value = bearer_value()
    if value is None:
        # Flask-WTF's own check is turned off (init_app) so that bearer requests can skip it;
        # every other request is checked exactly as Flask-WTF would.
        if current_app.config.get("WTF_CSRF_ENABLED", True):
            csrf.protect(apply_exemptions=True)
        return None
    # The token is this request's only identity: whatever session cookie came along is ignored.
    g._login_user = current_app.login_manager.anonymous_user()  # Flask-Login's per-request user
    session = get_session()
    try:
        access_token = clients.authenticate_token(session, value)
    except ClientRefused as refusal:
        record(session, request_context(), action="oauth.bearer", outcome="failure",
               reason=f"{refusal.error}: {refusal.text}", details={"code": refusal.code},
               survive_rollback=True)
        from portal.errors import problem

        response = problem(401, "invalid-token", f"The access token is refused: {refusal.text}.")
        response.headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{refusal.text}"'
        return response
    client = access_token.client
    g.machine_subject = Subject(person_id=None, label=client.client_id, client_enterprise_id=client.enterprise_id,
                                scopes=frozenset(access_token.scopes))
    g.proof_context = {"certificate_id": access_token.certificate_id}
    return None


def init_app(app: Flask) -> None:
    app.config.setdefault("ACCESS_TOKEN_SECONDS", clients.DEFAULT_TOKEN_SECONDS)
    app.config.setdefault("OAUTH_TOKEN_URL", None)
    app.config.setdefault("OAUTH_TOKEN_RATE_LIMIT", "60 per minute")
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # _before_request applies it, except to bearer requests
    app.extensions["portal.oauth"] = PortalAuthorizationServer(app)
    app.register_blueprint(bp)
    app.before_request(_before_request)
