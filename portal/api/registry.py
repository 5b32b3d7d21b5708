"""Registering API operations: one decorator parses and validates the JSON body
with a pydantic model, and records the operation for the OpenAPI document."""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ValidationError as PydanticError

from access.errors import DomainError
from portal.errors import problem
from portal.extensions import limiter

bp = Blueprint("api", __name__)
# Once, at import: the blueprint is shared by every app the factory builds.
limiter.limit(lambda: current_app.config["API_RATE_LIMIT"])(bp)


@dataclass
class Operation:
    method: str
    rule: str
    summary: str
    tag: str
    body: type[BaseModel] | None
    response: Any
    gate: str
    status: int = 200
    query: dict[str, str] = field(default_factory=dict)
    # A response that is not JSON (a streamed export): its media types, each a string in the document.
    media_types: tuple[str, ...] = ()


OPERATIONS: list[Operation] = []


def api_route(rule: str, method: str, *, summary: str, tag: str, gate: str, body: type[BaseModel] | None = None,
              response: Any = None, status: int = 200, query: dict[str, str] | None = None,
              max_body_bytes: int | None = None, media_types: tuple[str, ...] = ()):
    """`gate` documents how the endpoint reaches the decision point: 'public',
    an application code, or 'self' (decided inside, from the body). `max_body_bytes` raises the
    JSON body limit (API_MAX_JSON_BYTES) for an endpoint that takes files (base64). `media_types`: the
    content types of a response that is not JSON (the view returns a Response of its own)."""

    def decorator(view: Callable):
        @functools.wraps(view)
        def wrapper(**kwargs):
            if body is not None:
                parsed = _parse_body(body, max_body_bytes)
                if not isinstance(parsed, BaseModel):
                    return parsed
                kwargs["payload"] = parsed
            try:
                result = view(**kwargs)
            except DomainError as error:
                from portal.messages import error_text

                return problem(error.status, error.code, error_text(error), field=error.field)
            if isinstance(result, tuple) or not isinstance(result, (dict, list, BaseModel)):
                return result
            data = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
            return jsonify(data), status

        # Every API route asks the decision point inside (the application or
        # enterprise is often only known from the body); 'public' ones need no login.
        if gate in ("public", "login"):
            # "login": a person's own account settings (portal/api/account_security.py); they refuse
            # anyone not logged in and concern no enterprise or application.
            wrapper.public = True
        else:
            wrapper.self_gated = True
        OPERATIONS.append(Operation(method, rule, summary, tag, body, response, gate, status, query or {},
                                    tuple(media_types)))
        bp.add_url_rule("/api/v1" + rule, endpoint=view.__name__, view_func=wrapper, methods=[method])
        return wrapper

    return decorator


def _nul_in(value, where: str = "") -> str | None:
    """The path of the first string holding U+0000 (no field of the portal means one, and PostgreSQL
    text cannot store it), or None."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return f"{where}.{key}".strip(".").replace("\x00", "")
        found = _nul_in(item, f"{where}.{key}".strip("."))
        if found is not None:
            return found
    return None


def _parse_body(model: type[BaseModel], max_bytes: int | None = None):
    limit = max_bytes or current_app.config["API_MAX_JSON_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        return problem(413, "payload-too-large", f"The JSON body may have at most {limit} bytes.")
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        return problem(413, "payload-too-large", f"The JSON body may have at most {limit} bytes.")
    if not request.mimetype == "application/json":
        return problem(415, "unsupported-media-type", "Send the body as application/json.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        return problem(400, "malformed-json", f"The body is not valid JSON: {error}.")
    where = _nul_in(data)
    if where is not None:
        return problem(422, "invalid-input", f"{where or 'body'}: text may not contain the NUL character.",
                       field=where or None)
    try:
        return model.model_validate(data)
    except PydanticError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        return problem(422, "invalid-input", f"{where}: {first['msg']}" if where else first["msg"], field=where,
                       errors=[{"field": ".".join(str(p) for p in e["loc"]), "detail": e["msg"]}
                               for e in error.errors()])
