"""The OpenAPI 3.1 document, generated from the registered operations and their pydantic models."""
from __future__ import annotations

import re
import typing

from flask import jsonify
from pydantic import BaseModel, TypeAdapter

from portal.api.registry import OPERATIONS, Operation, bp
from portal.api.schemas import Problem
from portal import MAX_ID
from portal.gate import public

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


def _operation(op: Operation, components: dict) -> dict:
    params = [{"name": name, "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID} if kind == "int" else {"type": "string"}}
              for kind, name in _PARAM.findall(op.rule)]
    params += [{"name": name, "in": "query", "required": False, "description": text, "schema": {"type": "string"}}
               for name, text in op.query.items()]
    problem_ref = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    responses: dict = {}
    if op.status == 204:
        responses["204"] = {"description": "Done"}
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
           "parameters": params, "responses": responses, "x-decision-point": op.gate}
    if op.method in ("POST", "PUT", "DELETE", "PATCH"):
        doc["security"] = [{"session": [], "csrf": []}] if op.gate != "public" else [{"csrf": []}]
    if op.body is not None:
        doc["requestBody"] = {"required": True,
                              "content": {"application/json": {"schema": _schema(op.body, components)}}}
    return doc


def build_document() -> dict:
    components: dict = {"Problem": Problem.model_json_schema()}
    paths: dict = {}
    for op in OPERATIONS:
        path = "/api/v1" + _PARAM.sub(lambda m: "{" + m.group(2) + "}", op.rule)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Portal API", "version": "1",
                 "description": "Access management for Belgian enterprises and employers. Session-authenticated: "
                                "GET /api/v1/session for a CSRF token, then POST /api/v1/session to log in; send the "
                                "token as X-CSRFToken on every unsafe request. Errors are RFC 9457 problem+json."},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "portal_session"},
            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken"}}},
    }


@bp.route("/api/openapi.json")
@public
def openapi():
    return jsonify(build_document())
