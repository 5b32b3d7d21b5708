"""The OpenAPI 3.1 document, generated from the registered operations and their pydantic models."""
from __future__ import annotations

import inspect
import re

from flask import current_app, jsonify
from pydantic import BaseModel, TypeAdapter

from access.catalogue import ACCESS_MANAGEMENT, PORTAL_ADMINISTRATION, Catalogue, Tier
from certificates.clients import MAX_ASSERTION_SECONDS, allowed_scopes
from portal.api.registry import OPERATIONS, Operation, bp
from portal.api.schemas import Problem
from portal import MAX_ID
from portal.context import catalogue
from portal.gate import public
from portal.oauth import token_endpoint_url

_PARAM = re.compile(r"<(?:(int|string):)?([a-z_]+)>")


def _schema(tp, components: dict) -> dict:
    if tp is None:
        return {}
    schema = TypeAdapter(tp).json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        components[tp.__name__] = schema
        return {"$ref": f"#/components/schemas/{tp.__name__}"}
    return schema


# Operations whose application a machine may be given, but whose act is a person's: a change
# proposal (repertory.operations refuses it for an API client, which uses directe wijziging).
_PERSON_ONLY = frozenset({("POST", "/enterprises/<int:enterprise_id>/proposals")})
# Gates decided inside the view from the path or the body: any application of the token's scope.
_ANY_APPLICATION = frozenset({"self", "application in the path"})


def _bearer_scopes(op: Operation, apps: Catalogue) -> list[str] | None:
    """The scopes a bearer token needs for the operation, or None when it takes no bearer token.

    portal/oauth.py authenticates a bearer token on every /api/v1 request, and the decision point
    then refuses a machine access management and portal administration; public operations are a
    person's session (log in, log out, first login, his own lists)."""
    if op.gate in ("public", "login", ACCESS_MANAGEMENT, PORTAL_ADMINISTRATION) or (op.method, op.rule) in _PERSON_ONLY:
        return None
    if op.gate in _ANY_APPLICATION:
        return []
    app = apps.get(op.gate)
    if app is None or app.tier is Tier.FREE:
        return None
    return [op.gate]


def _security(op: Operation, apps: Catalogue) -> list[dict] | None:
    """Who may call it: the session cookie (with the CSRF header on unsafe methods), and where the
    decision point can allow a machine, an OAuth 2 bearer token (client credentials)."""
    unsafe = op.method in ("POST", "PUT", "DELETE", "PATCH")
    app = apps.get(op.gate)
    if op.gate == "public" or (app is not None and app.tier is Tier.FREE):
        return [{"csrf": []}] if unsafe else None  # no login needed (the CSRF check still applies)
    session = {"session": [], "csrf": []} if unsafe else {"session": []}
    requirements = [session]
    scopes = _bearer_scopes(op, apps)
    if scopes is not None:
        requirements.append({"oauth2": scopes})
    if op.gate == "application in the path":
        requirements.append({})  # a free-tier application needs no login
    return requirements


def _description(op: Operation) -> str | None:
    """The view's docstring, when it has one."""
    for rule in current_app.url_map.iter_rules():
        if rule.rule == "/api/v1" + op.rule and op.method in (rule.methods or ()):
            doc = current_app.view_functions[rule.endpoint].__doc__
            return inspect.cleandoc(doc) if doc else None
    return None


def _operation(op: Operation, components: dict, apps: Catalogue) -> dict:
    params = [{"name": name, "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID} if kind == "int" else {"type": "string"}}
              for kind, name in _PARAM.findall(op.rule)]
    params += [{"name": name, "in": "query", "required": False, "description": text, "schema": {"type": "string"}}
               for name, text in op.query.items()]
    problem_ref = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    responses: dict = {}
    if op.status == 204:
        responses["204"] = {"description": "Done"}
    elif op.media_types:
        responses[str(op.status)] = {"description": "OK",
                                     "content": {media: {"schema": {"type": "string"}} for media in op.media_types}}
    else:
        responses[str(op.status)] = {"description": "OK",
                                     "content": {"application/json": {"schema": _schema(op.response, components)}}}
    for status, text in (("400", "Malformed request"), ("401", "Not logged in"),
                         ("403", "Refused by the decision point; the detail gives the reason"),
                         ("404", "Not found"), ("409", "Conflict with the current state"),
                         ("413", "Body too large"), ("415", "Send the body as application/json"),
                         ("422", "Invalid input; `field` names it")):
        responses[status] = {"description": text, "content": problem_ref}
    doc = {"summary": op.summary, "tags": [op.tag], "operationId": f"{op.method.lower()}_{op.rule}",
           "parameters": params, "responses": responses, "x-decision-point": op.gate,
           "x-accepts-bearer-token": _bearer_scopes(op, apps) is not None}
    description = _description(op)
    if description:
        doc["description"] = description
    security = _security(op, apps)
    if security is not None:
        doc["security"] = security
    if op.body is not None:
        doc["requestBody"] = {"required": True,
                              "content": {"application/json": {"schema": _schema(op.body, components)}}}
    return doc


_DESCRIPTION = """Access management for Belgian enterprises and employers. Errors are RFC 9457 problem+json.

**People** use the session: GET /api/v1/session for a CSRF token, then POST /api/v1/session to log in; send
the token as X-CSRFToken on every unsafe request (security schemes `session` and `csrf`).

**Machines** use OAuth 2 client credentials (scheme `oauth2`): the enterprise's local administrator
registers an API client bound to one of its qualified seal certificates (POST
/api/v1/enterprises/{enterprise_id}/api-clients). The client has no secret: it authenticates at the token
endpoint with `private_key_jwt` (RFC 7523 §2.2), a JWT client assertion signed with its certificate's
private key (RS256, PS256, or ES256 with a P-256 key), whose JOSE header `kid` is the certificate's SHA-256
thumbprint (hex), with `iss` = `sub` = the client_id, `aud` = the token endpoint, `exp` - `iat` at most
%(max_assertion)s seconds and a `jti` never used before. It asks for scopes that are application codes
(each one of the client's) and receives a short-lived bearer token, sent as `Authorization: Bearer ...`
(no cookie, no CSRF token). Every call with it still goes through the decision point: its own enterprise,
or an employer that gave its enterprise a mandate; the token's certificate is the proof of possession the
certificate tier (directe wijziging, bestandsoverdracht) asks for. Access management and portal
administration are never a machine's: operations with `x-accepts-bearer-token: false` take a session only.
The token endpoint is described in `components.pathItems.oauth-token`: %(token_url)s"""


def _token_endpoint(components: dict) -> dict:
    """POST /oauth/token (portal/oauth.py): not under /api/v1, so described as a path item component."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}
    components["TokenRequest"] = {
        "type": "object", "required": ["grant_type", "client_assertion_type", "client_assertion"],
        "properties": {
            "grant_type": {"const": "client_credentials"},
            "client_assertion_type": {"const": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
            "client_assertion": {"type": "string", "description": "The signed JWT (private_key_jwt)"},
            "scope": {"type": "string", "description": "Application codes separated by spaces; all of the "
                                                       "client's when absent"}}}
    components["TokenResponse"] = {
        "type": "object", "required": ["access_token", "token_type", "expires_in"],
        "properties": {"access_token": {"type": "string"}, "token_type": {"const": "Bearer"},
                       "expires_in": {"type": "integer"}, "scope": {"type": "string"}}}
    components["OAuthError"] = {
        "type": "object", "required": ["error"],
        "properties": {"error": {"enum": ["invalid_request", "invalid_client", "invalid_grant", "invalid_scope",
                                          "unauthorized_client", "unsupported_grant_type"]},
                       "error_description": {"type": "string"}}}
    return {"post": {
        "summary": "Get an access token: client credentials with a private_key_jwt client assertion",
        "operationId": "post_oauth_token", "tags": ["oauth"],
        "description": "RFC 6749 §4.4 with RFC 7523 §2.2 client authentication; errors are RFC 6749 §5.2 JSON "
                       "(not problem+json), with Cache-Control: no-store. Every token issued or refused is "
                       "audited.",
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": {"$ref": "#/components/schemas/TokenRequest"}}}},
        "responses": {"200": {"description": "The access token", "content": {
                                  "application/json": {"schema": {"$ref": "#/components/schemas/TokenResponse"}}}},
                      "400": {"description": "Bad request, grant or scope", "content": error},
                      "401": {"description": "The client assertion is refused", "content": error},
                      "429": {"description": "Too many requests"}}}}


def _security_schemes(apps: Catalogue) -> dict:
    scopes = {code: apps.get(code).name("en") for code in allowed_scopes(apps)}
    return {
        "session": {"type": "apiKey", "in": "cookie", "name": "portal_session",
                    "description": "The session cookie of POST /api/v1/session"},
        "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                 "description": "The CSRF token of GET /api/v1/session, on every unsafe request of a session"},
        "oauth2": {"type": "oauth2",
                   "description": "Client credentials; the client authenticates with private_key_jwt (no secret)",
                   "flows": {"clientCredentials": {"tokenUrl": token_endpoint_url(), "scopes": scopes}}},
    }


def build_document() -> dict:
    components: dict = {}
    _schema(Problem, components)
    apps = catalogue()
    paths: dict = {}
    for op in OPERATIONS:
        path = "/api/v1" + _PARAM.sub(lambda m: "{" + m.group(2) + "}", op.rule)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, components, apps)
    token_endpoint = _token_endpoint(components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Portal API", "version": "1",
                 "description": _DESCRIPTION % {"max_assertion": MAX_ASSERTION_SECONDS,
                                                "token_url": token_endpoint_url()}},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": _security_schemes(apps),
                       "pathItems": {"oauth-token": token_endpoint}},
    }


@bp.route("/api/openapi.json")
@public
def openapi():
    return jsonify(build_document())
