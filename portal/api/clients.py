"""API clients of an enterprise (or provider): the local administrator registers, lists and revokes
them. Each is bound to one of the enterprise's certificates and authenticates at POST /oauth/token
with assertions signed by that certificate's key (portal/oauth.py)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from flask import jsonify
from pydantic import BaseModel, Field

from access import operations as ops
from access.catalogue import ACCESS_MANAGEMENT
from access.clock import utcnow
from certificates import clients
from certificates import operations as cops
from certificates.models import ApiClient
from certificates.operations import MANAGE_API_CLIENTS
from portal.api.registry import api_route
from portal.api.schemas import Input
from portal.context import request_context
from portal.database import get_session
from portal.gate import check
from portal.oauth import token_endpoint_url


class ApiClientIn(Input):
    name: str = Field(max_length=clients.MAX_NAME_LENGTH)
    certificate_id: int = Field(gt=0, le=2**31 - 1)
    scopes: list[Annotated[str, Field(max_length=40)]] = Field(min_length=1, max_length=40,
                                                               description="application codes")


class ApiClientOut(BaseModel):
    client_id: str
    name: str
    enterprise_id: int
    certificate_id: int
    certificate_fingerprint: str = Field(description="the `kid` of the client's assertions")
    scopes: list[str]
    status: str = Field(description="active, revoked, or certificate-<status> when its certificate no longer works")
    created_at: datetime
    revoked_at: datetime | None
    token_endpoint: str = Field(description="the `aud` of the client's assertions")


def _out(client: ApiClient) -> ApiClientOut:
    return ApiClientOut(client_id=client.client_id, name=client.name, enterprise_id=client.enterprise_id,
                        certificate_id=client.certificate_id, certificate_fingerprint=client.certificate.fingerprint,
                        scopes=list(client.scopes), status=clients.client_status(client, utcnow()),
                        created_at=client.created_at, revoked_at=client.revoked_at,
                        token_endpoint=token_endpoint_url())


@api_route("/enterprises/<int:enterprise_id>/api-clients", "GET", summary="The enterprise's API clients",
           tag="api clients", gate=ACCESS_MANAGEMENT, response=list[ApiClientOut])
def api_clients_list(enterprise_id: int):
    check(ACCESS_MANAGEMENT, "view", enterprise_id)
    session_ = get_session()
    ops.get_enterprise(session_, enterprise_id)
    return jsonify([_out(c).model_dump(mode="json") for c in clients.api_clients_of(session_, enterprise_id)])


@api_route("/enterprises/<int:enterprise_id>/api-clients", "POST",
           summary="Register an API client bound to one of the enterprise's active certificates",
           tag="api clients", gate=ACCESS_MANAGEMENT, body=ApiClientIn, response=ApiClientOut, status=201)
def api_client_register(enterprise_id: int, payload: ApiClientIn):
    check(ACCESS_MANAGEMENT, MANAGE_API_CLIENTS, enterprise_id)
    session_ = get_session()
    enterprise = ops.get_enterprise(session_, enterprise_id)
    certificate = cops.get_certificate(session_, enterprise, payload.certificate_id)
    client = clients.register_api_client(session_, enterprise, certificate, payload.name, payload.scopes,
                                         by=request_context())
    return _out(client)


@api_route("/enterprises/<int:enterprise_id>/api-clients/<client_id>", "DELETE",
           summary="Revoke an API client: it gets no new token and its running tokens stop at once",
           tag="api clients", gate=ACCESS_MANAGEMENT, response=ApiClientOut)
def api_client_revoke(enterprise_id: int, client_id: str):
    check(ACCESS_MANAGEMENT, MANAGE_API_CLIENTS, enterprise_id)
    session_ = get_session()
    enterprise = ops.get_enterprise(session_, enterprise_id)
    client = clients.revoke_api_client(session_, clients.get_api_client(session_, enterprise, client_id),
                                       by=request_context())
    return _out(client)
