"""Acceptance 11: /api/openapi.json is an OpenAPI 3.1 document that describes
exactly the /api/v1 routes of the app, and every schema it references exists."""
from __future__ import annotations

import re

import jsonschema_rs
import pytest

from portal.api import schemas
from portal.api.registry import OPERATIONS

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
_FLASK_PARAM = re.compile(r"<(?:[a-z_]+(?:\([^)]*\))?:)?([a-z_]+)>")


@pytest.fixture
def document(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def _operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def _refs(node, where="#"):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from _refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, f"{where}/{index}")


def _resolve(document, ref):
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_document_has_the_openapi_31_shape(document):
    assert re.fullmatch(r"3\.1\.\d+", document["openapi"])
    assert isinstance(document["info"]["title"], str) and document["info"]["title"]
    assert isinstance(document["info"]["version"], str) and document["info"]["version"]
    assert isinstance(document["paths"], dict) and document["paths"]
    schemes = document["components"]["securitySchemes"]
    operation_ids = []
    for path, method, operation in _operations(document):
        assert path.startswith("/"), path
        operation_ids.append(operation["operationId"])
        responses = operation["responses"]
        assert responses and all(re.fullmatch(r"[1-5]\d\d|[1-5]XX|default", code) for code in responses), path
        assert any(code.startswith("2") for code in responses), (method, path)
        for response in responses.values():
            assert isinstance(response["description"], str)
        templated = set(re.findall(r"{([^}]+)}", path))
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert templated == declared, (method, path, templated, declared)
        for parameter in operation.get("parameters", []):
            assert parameter["in"] in ("path", "query", "header", "cookie")
            assert "schema" in parameter or "content" in parameter
            if parameter["in"] == "path":
                assert parameter["required"] is True
        if "requestBody" in operation:
            assert method in ("post", "put", "patch", "delete"), (method, path)
            assert operation["requestBody"]["content"]["application/json"]["schema"]
        for requirement in operation.get("security", []):
            assert set(requirement) <= set(schemes), requirement
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"
    for name, schema in document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name


def test_document_lists_exactly_the_api_routes_of_the_app(app, document):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") or rule.rule == "/api/v1":
            path = _FLASK_PARAM.sub(lambda m: "{" + m.group(1) + "}", rule.rule)
            routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, method, _ in _operations(document)}
    assert routes, "no /api/v1 routes found"
    assert documented == routes, {"undocumented": sorted(routes - documented),
                                  "documented but not routed": sorted(documented - routes)}
    assert len(OPERATIONS) == len(routes)


def test_every_reference_resolves_and_every_body_schema_exists(document):
    for where, ref in _refs(document):
        _resolve(document, ref)  # asserts
    components = document["components"]["schemas"]
    bodies = 0
    for path, method, operation in _operations(document):
        if "requestBody" not in operation:
            continue
        bodies += 1
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert "$ref" in schema, (method, path)
        name = schema["$ref"].rsplit("/", 1)[-1]
        assert schema["$ref"] == f"#/components/schemas/{name}" and name in components, (method, path, name)
        # unknown members are refused (422): the document must say so
        assert components[name].get("additionalProperties") is False, name
    assert bodies == sum(1 for op in OPERATIONS if op.body is not None) > 0


@pytest.mark.parametrize("model,valid,invalid", [
    (schemas.EnterpriseIn, {"kbo": "0123456749", "name": "n", "street": "s", "postal_code": "1000", "city": "c",
                            "legal_form": "BV"}, {"kbo": "0123456749"}),
    (schemas.LinkIn, {"insz": "85010110034", "first_name": "a", "last_name": "b", "kind": "werknemer",
                      "start_date": "2024-01-01"}, {"insz": "x", "first_name": "a", "last_name": "b",
                                                   "kind": "baas", "start_date": "2024-01-01"}),
    (schemas.DesignateIn, {"person_id": 1, "role": "co_admin"}, {"person_id": 1, "role": "local_admin"}),
    (schemas.ProposalDecisionIn, {"accept": False, "note": "n"}, {"accept": False, "extra": 1}),
])
def test_body_schemas_accept_and_refuse_what_the_api_does(document, model, valid, invalid):
    """The documented schema and the pydantic model behind the endpoint agree on examples."""
    from pydantic import ValidationError

    validator = jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{model.__name__}",
                                             "components": document["components"]})
    assert validator.is_valid(valid)
    model.model_validate(valid)
    assert not validator.is_valid(invalid)
    with pytest.raises(ValidationError):
        model.model_validate(invalid)


def test_every_answer_of_the_body_parser_is_documented(document):
    """Operations with a JSON body answer 400 (malformed), 413 (too large), 415 (not JSON) and
    422 (invalid) before they run; their responses must list each."""
    missing = {}
    for path, method, operation in _operations(document):
        if "requestBody" in operation:
            absent = {"400", "413", "415", "422"} - set(operation["responses"])
            if absent:
                missing[f"{method.upper()} {path}"] = sorted(absent)
    assert missing == {}


# --- issue 4: the machine API's security, the token endpoint, the certificates API ---------------


def _operation(document, method: str, path: str) -> dict:
    return document["paths"][path][method]


def test_security_schemes_are_the_session_and_oauth2_client_credentials(document):
    from access.catalogue import load_catalogue
    from certificates.clients import allowed_scopes

    schemes = document["components"]["securitySchemes"]
    assert schemes["session"] == {"type": "apiKey", "in": "cookie", "name": "portal_session",
                                  "description": schemes["session"]["description"]}
    assert (schemes["csrf"]["in"], schemes["csrf"]["name"]) == ("header", "X-CSRFToken")
    oauth2 = schemes["oauth2"]
    assert oauth2["type"] == "oauth2" and set(oauth2["flows"]) == {"clientCredentials"}
    flow = oauth2["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "http://portal.test/oauth/token"  # the `aud` of every client assertion
    assert sorted(flow["scopes"]) == sorted(allowed_scopes(load_catalogue()))
    assert "toegangsbeheer" not in flow["scopes"] and "portaalbeheer" not in flow["scopes"]
    description = " ".join(document["info"]["description"].split())
    for words in ("private_key_jwt", "kid", "SHA-256 thumbprint", "jti", "at most 300 seconds", "X-CSRFToken"):
        assert words in description, words


def test_the_token_url_follows_the_configuration(app, client):
    app.config["OAUTH_TOKEN_URL"] = "https://portal.example/oauth/token"
    document = client.get("/api/openapi.json").get_json()
    assert document["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["tokenUrl"] == \
        "https://portal.example/oauth/token"


def test_each_operation_says_whether_a_bearer_token_may_call_it(document):
    for path, method, operation in _operations(document):
        bearer = operation["x-accepts-bearer-token"]
        security = operation.get("security") or []
        oauth2 = [requirement["oauth2"] for requirement in security if "oauth2" in requirement]
        assert bool(oauth2) == bearer, (method, path)
        if operation["x-decision-point"] in ("toegangsbeheer", "portaalbeheer", "public"):
            assert not bearer, (method, path)  # a machine never manages access nor administers the portal
        if method != "get":
            for requirement in security:
                if "session" in requirement:
                    assert "csrf" in requirement, (method, path)  # a session's unsafe request needs the token
    by_route = {(method, path): operation for path, method, operation in _operations(document)}
    assert [r["oauth2"] for r in by_route[("post", "/api/v1/enterprises/{enterprise_id}/repertory/direct-changes")]
            ["security"] if "oauth2" in r] == [["directe_wijziging"]]
    assert by_route[("get", "/api/v1/enterprises/{enterprise_id}/repertory")]["x-accepts-bearer-token"] is True
    assert by_route[("post", "/api/v1/files")]["x-accepts-bearer-token"] is True
    # a change proposal is a person's (an API client uses directe wijziging)
    assert by_route[("post", "/api/v1/enterprises/{enterprise_id}/proposals")]["x-accepts-bearer-token"] is False
    for route in [r for r in by_route if "certificate" in r[1] or "api-clients" in r[1]]:
        assert by_route[route]["x-accepts-bearer-token"] is False, route
        assert by_route[route]["security"][0]["session"] == [], route


def test_the_token_endpoint_is_described(document):
    operation = document["components"]["pathItems"]["oauth-token"]["post"]
    body = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    request = _resolve(document, body["$ref"])
    assert set(request["required"]) == {"grant_type", "client_assertion_type", "client_assertion"}
    assert request["properties"]["client_assertion_type"]["const"] == \
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert {"200", "400", "401"} <= set(operation["responses"])
    token = _resolve(document, operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])
    assert set(token["required"]) == {"access_token", "token_type", "expires_in"}
    for name in ("TokenRequest", "TokenResponse", "OAuthError"):
        assert jsonschema_rs.meta.is_valid(document["components"]["schemas"][name]), name


def test_the_certificates_api_is_documented(document):
    register = _operation(document, "post", "/api/v1/enterprises/{enterprise_id}/certificates")
    assert register["x-decision-point"] == "toegangsbeheer" and "201" in register["responses"]
    assert "nothing is stored" in " ".join(register["description"].split())
    problem = document["components"]["schemas"]["Problem"]
    assert "checks" in problem["properties"]  # the refusal's list of checks
    requests = _operation(document, "post", "/api/v1/enterprises/{enterprise_id}/certificate-requests")
    assert "never hands a private key over a machine channel" in " ".join(requests["description"].split())
    assert "never generates keys" in requests["summary"]
    paths = {path for path, _, _ in _operations(document)}
    # no key generation on the API (passkeys are WebAuthn credentials, whose private key never leaves the device)
    assert not any("generate" in path or "key" in path.replace("passkey", "") for path in paths)


@pytest.mark.parametrize("model,valid,invalid", [
    ("CertificateIn", {"certificate": "-----BEGIN CERTIFICATE-----", "successor_of": 3},
     {"certificate": "x", "successor_of": 0}),
    ("CertificateIn", {"certificate_der_base64": "MA=="}, {"certificate": "x", "chain": "y"}),
    ("RevokeIn", {}, {"reason": "line\nbreak"}),
    ("CertificateRequestIn", {"csr": "-----BEGIN CERTIFICATE REQUEST-----"}, {}),
])
def test_certificate_body_schemas_agree_with_the_api(document, model, valid, invalid):
    from pydantic import ValidationError

    from portal.api import certificate_schemas

    cls = getattr(certificate_schemas, model)
    validator = jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{model}",
                                             "components": document["components"]})
    assert validator.is_valid(valid)
    cls.model_validate(valid)
    assert not validator.is_valid(invalid)
    with pytest.raises(ValidationError):
        cls.model_validate(invalid)
