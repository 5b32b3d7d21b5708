"""The local administrator's certificates and API clients: register a qualified seal certificate (every
check shown with its outcome), upload a CSR or have the portal generate a key and CSR (the key is handed
over once, never kept), revoke a certificate, and bind API clients to an active certificate.

Thin views: the rules live in certificates.operations and certificates.clients; every page asks the
decision point (access management, action `view`, `manage_certificates` or `manage_api_clients`)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from werkzeug.datastructures import FileStorage

from access import operations as ops
from access.catalogue import ACCESS_MANAGEMENT
from access.clock import as_utc, utcnow
from access.decision import decide
from access.errors import DomainError, NotFound
from access.models import Enterprise
from certificates import clients
from certificates import operations as cops
from certificates.models import Certificate, CertificateRequest, CertificateState
from portal.context import catalogue, current_subject, request_context
from portal.database import get_session
from portal.forms import (ApiClientForm, ButtonForm, CertificateUploadForm, CsrUploadForm, GenerateKeyForm,
                          RevokeCertificateForm, apply_domain_error, choices)
from portal.gate import gated
from portal.messages import certificate_status_label, error_text
from portal.oauth import token_endpoint_url
from portal.trust import current_trust_list

bp = Blueprint("certificates", __name__, url_prefix="/enterprises/<int:enterprise_id>")

MANAGE_CERTIFICATES, MANAGE_API_CLIENTS = cops.MANAGE_CERTIFICATES, cops.MANAGE_API_CLIENTS
# The dashboard warns from the first expiry notice (60 days before) until a month after expiry.
WARN_DAYS_BEFORE = max(cops.EXPIRY_WARNING_DAYS)
WARN_DAYS_AFTER = 30


# The checks of certificates.validation (and `unique` of the operation), named for people.
CHECK_LABELS = {
    "chain": _l("Chain to a trust anchor of the trust list"),
    "validity": _l("Validity period"),
    "key_usage": _l("Key usage"),
    "key_strength": _l("Key strength (RSA ≥ 2048, EC P-256/P-384)"),
    "signature_hash": _l("Signature hash (no SHA-1)"),
    "revocation": _l("Revocation (CRL or OCSP)"),
    "qc_compliance": _l("Qualified certificate (QcCompliance)"),
    "qc_type": _l("Electronic seal (QcType eseal)"),
    "policy": _l("Policy (QCP-l or QCP-l-qscd)"),
    "identity": _l("Identity (organizationIdentifier with the KBO number)"),
    "unique": _l("Not bound to another enterprise"),
}

CLIENT_STATUS_LABELS = {"active": lazy_pgettext("certificate status", "active"),
                        "revoked": lazy_pgettext("certificate status", "revoked")}


def status_label(status: str) -> str:
    return certificate_status_label(status)


def check_label(code: str) -> str:
    return str(CHECK_LABELS.get(code, code))


def client_status_label(status: str) -> str:
    if status.startswith("certificate-"):
        return _("its certificate is %(status)s", status=status_label(status.removeprefix("certificate-")))
    return str(CLIENT_STATUS_LABELS.get(status, status))


for _helper in (status_label, check_label, client_status_label):
    bp.add_app_template_global(_helper)


def form_status(error: DomainError) -> int:
    """A refusal of what was typed in a form is a 422, also when the operation says "not found"
    (a certificate id that is not the enterprise's): the page itself exists."""
    if isinstance(error, NotFound) and error.field is not None:
        return 422
    return error.status


def _allowed(enterprise_id: int, action: str) -> bool:
    """What the decision point would answer, to show or hide a form (not logged: the POST asks again)."""
    return decide(get_session(), current_subject(), enterprise_id, ACCESS_MANAGEMENT, action,
                  catalogue=catalogue()).allowed


def _uploaded(data) -> bytes:
    """The uploaded file's bytes, read up to just past the operation's limit (which refuses it)."""
    if not isinstance(data, FileStorage):
        return b""
    return data.read(cops.MAX_UPLOAD_BYTES + 1)


# --- the certificates page ------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateRow:
    certificate: Certificate
    status: str
    successors: list[Certificate]
    retirable: bool  # an active successor took over: the overlap can end


@dataclass(frozen=True)
class ShownChecks:
    """The checks of a registration (or a refusal) shown at the top of the page."""

    outcome: str  # "registered" or "refused"
    checks: list[dict]
    subject: str | None = None

    @property
    def failed(self) -> list[dict]:
        return [check for check in self.checks if not check["ok"]]


def _check_dicts(checks) -> list[dict]:
    return [{"code": c.code, "ok": c.ok, "detail": c.detail} if not isinstance(c, dict) else c for c in checks]


def _rows(certificates: list[Certificate], now: datetime) -> list[CertificateRow]:
    successors: dict[int, list[Certificate]] = {}
    for certificate in certificates:
        if certificate.predecessor_id is not None:
            successors.setdefault(certificate.predecessor_id, []).append(certificate)
    return [CertificateRow(c, c.status_on(now), successors.get(c.id, []),
                           any(s.usable_on(now) and s.state is CertificateState.ACTIVE for s in successors.get(c.id, [])))
            for c in certificates]


def _pending_requests(enterprise_id: int) -> list[CertificateRequest]:
    return cops.certificate_requests_of(get_session(), enterprise_id, pending_only=True)


def _active(certificates: list[Certificate], now: datetime) -> list[Certificate]:
    return [c for c in certificates if c.status_on(now) in ("active", "expiring")]


def _upload_form(certificates: list[Certificate], now: datetime, *, bound: bool = False) -> CertificateUploadForm:
    # Bound: Flask-WTF reads the request's form and files together (the upload is a file).
    form = CertificateUploadForm() if bound else CertificateUploadForm(formdata=None)
    form.successor_of.choices = choices([(0, _("— a new certificate, not a successor —"))] + [
        (c.id, " · ".join((c.subject, c.serial_number, _("until %(day)s", day=as_utc(c.not_after).date().isoformat()))))
        for c in _active(certificates, now)])
    return form


def _page(enterprise: Enterprise, status: int = 200, *, upload_form: CertificateUploadForm | None = None,
          csr_form: CsrUploadForm | None = None, shown: ShownChecks | None = None,
          revoke_forms: dict[int, RevokeCertificateForm] | None = None):
    now = utcnow()
    certificates = cops.certificates_of(get_session(), enterprise.id)
    return render_template(
        "certificates/certificates.html", enterprise=enterprise, rows=_rows(certificates, now),
        pending=_pending_requests(enterprise.id), shown=shown,
        upload_form=upload_form or _upload_form(certificates, now),
        csr_form=csr_form or CsrUploadForm(formdata=None), revoke_forms=revoke_forms or {},
        empty_revoke_form=RevokeCertificateForm(formdata=None),
        can_manage=_allowed(enterprise.id, MANAGE_CERTIFICATES)), status


def _shown_registration() -> ShownChecks | None:
    """After a registration (redirected here), the stored checks of the new certificate."""
    certificate_id = request.args.get("registered", type=int)
    if not certificate_id:
        return None
    certificate = get_session().get(Certificate, certificate_id)
    if certificate is None or certificate.enterprise_id != request.view_args["enterprise_id"]:
        return None
    return ShownChecks("registered", _check_dicts(certificate.checks), certificate.subject)


@bp.route("/certificates")
@gated(ACCESS_MANAGEMENT, "view")
def index(enterprise_id: int):
    enterprise = ops.get_enterprise(get_session(), enterprise_id)
    return _page(enterprise, shown=_shown_registration())


@bp.route("/certificates", methods=["POST"])
@gated(ACCESS_MANAGEMENT, MANAGE_CERTIFICATES)
def register(enterprise_id: int):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    form = _upload_form(cops.certificates_of(session, enterprise.id), utcnow(), bound=True)
    if not form.validate_on_submit():
        return _page(enterprise, 422, upload_form=form)
    try:
        predecessor = (cops.get_certificate(session, enterprise, form.successor_of.data)
                       if form.successor_of.data else None)
        registration = cops.register_certificate(session, enterprise, _uploaded(form.certificate.data),
                                                 trust=current_trust_list(), by=request_context(),
                                                 successor_of=predecessor)
    except cops.CertificateRefused as refusal:
        # Nothing is stored; the operation's audit record of the refusal survives the rollback.
        form.certificate.errors = [_("The certificate was refused: see the checks that failed.")]
        return _page(enterprise, 422, upload_form=form, shown=ShownChecks("refused", _check_dicts(refusal.checks)))
    except DomainError as error:
        if error.field == "certificate_id":  # get_certificate names the id it looked up
            error.field = "successor_of"
        apply_domain_error(form, error)
        return _page(enterprise, form_status(error), upload_form=form)
    flash(_("The certificate passed every check and is registered."), "success")
    return redirect(url_for("certificates.index", enterprise_id=enterprise.id,
                            registered=registration.certificate.id))


@bp.route("/certificates/<int:certificate_id>/revoke", methods=["POST"])
@gated(ACCESS_MANAGEMENT, MANAGE_CERTIFICATES)
def revoke(enterprise_id: int, certificate_id: int):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    certificate = cops.get_certificate(session, enterprise, certificate_id)
    form = RevokeCertificateForm()
    if not form.validate_on_submit():
        return _page(enterprise, 422, revoke_forms={certificate.id: form})
    try:
        cops.revoke_certificate(session, certificate, form.reason.data, by=request_context())
    except DomainError as error:
        apply_domain_error(form, error)
        return _page(enterprise, error.status, revoke_forms={certificate.id: form})
    flash(_("The certificate is revoked: it no longer works, for any API client or signed file."), "success")
    return redirect(url_for("certificates.index", enterprise_id=enterprise.id))


@bp.route("/certificates/<int:certificate_id>/retire", methods=["POST"])
@gated(ACCESS_MANAGEMENT, MANAGE_CERTIFICATES)
def retire(enterprise_id: int, certificate_id: int):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    certificate = cops.get_certificate(session, enterprise, certificate_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        cops.retire_certificate(session, certificate, by=request_context())
    except DomainError as error:
        flash(error_text(error), "error")
        return _page(enterprise, error.status)
    flash(_("The certificate is replaced by its successor and no longer works."), "success")
    return redirect(url_for("certificates.index", enterprise_id=enterprise.id))


# --- CSRs and generated keys ------------------------------------------------------------------


@bp.route("/certificates/requests", methods=["POST"])
@gated(ACCESS_MANAGEMENT, MANAGE_CERTIFICATES)
def upload_csr(enterprise_id: int):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    form = CsrUploadForm()
    if not form.validate_on_submit():
        return _page(enterprise, 422, csr_form=form)
    try:
        cops.upload_csr(session, enterprise, _uploaded(form.csr.data), by=request_context())
    except DomainError as error:
        apply_domain_error(form, error)
        return _page(enterprise, error.status, csr_form=form)
    flash(_("The request is kept until its certificate is registered."), "success")
    return redirect(url_for("certificates.index", enterprise_id=enterprise.id))


@bp.route("/certificates/csr")
@gated(ACCESS_MANAGEMENT, "view")
def download_csr(enterprise_id: int):
    """A pending request's CSR (PEM), to send to the trust service provider. The id is a query
    argument: the page lists the requests of this enterprise only, and another's is not found."""
    request_id = request.args.get("request_id", type=int)
    csr = get_session().get(CertificateRequest, request_id) if request_id else None
    if csr is None or csr.enterprise_id != enterprise_id:
        abort(404)
    return Response(csr.csr_pem, mimetype="application/pkcs10", headers={
        "Content-Disposition": f'attachment; filename="certificate-request-{csr.id}.csr.pem"'})


def _generate_page(enterprise: Enterprise, form: GenerateKeyForm, status: int = 200):
    return render_template("certificates/generate_key.html", enterprise=enterprise, form=form), status


@bp.route("/certificates/generate-key")
@gated(ACCESS_MANAGEMENT, MANAGE_CERTIFICATES)
def generate_key_form(enterprise_id: int):
    return _generate_page(ops.get_enterprise(get_session(), enterprise_id), GenerateKeyForm(formdata=None))


@bp.route("/certificates/generate-key", methods=["POST"])
@gated(ACCESS_MANAGEMENT, MANAGE_CERTIFICATES)
def generate_key(enterprise_id: int):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    form = GenerateKeyForm()
    if not form.validate_on_submit():
        return _generate_page(enterprise, form, 422)
    if form.password.data != form.confirm.data:
        form.confirm.errors = [_("The two passwords differ.")]
        return _generate_page(enterprise, form, 422)
    try:
        generated = cops.generate_key_and_csr(session, enterprise, form.password.data, by=request_context(),
                                              form=form.key_format.data or "pkcs12")
    except DomainError as error:
        if error.field == "form":
            error.field = "key_format"
        apply_domain_error(form, error)
        return _generate_page(enterprise, form, error.status)
    # The only copy of the key leaves with this response; nothing may keep it on the way.
    return Response(generated.content, mimetype=generated.media_type, headers={
        "Content-Disposition": f'attachment; filename="{generated.filename}"', "Cache-Control": "no-store"})


# --- API clients ------------------------------------------------------------------------------


def _client_form(enterprise: Enterprise, *, bound: bool = False) -> ApiClientForm:
    from flask_babel import get_locale

    now, locale = utcnow(), str(get_locale() or "nl")
    form = ApiClientForm() if bound else ApiClientForm(formdata=None)
    active = _active(cops.certificates_of(get_session(), enterprise.id), now)
    form.certificate_id.choices = choices([(0, _("— choose a certificate —"))] + [
        (c.id, f"{c.subject} · {c.key_description} · {c.fingerprint[:16]}…") for c in active])
    allowed = set(clients.allowed_scopes(catalogue()))
    form.scopes.choices = choices((app.code, app.name(locale)) for app in catalogue().grantable()
                                  if app.code in allowed and (not app.employer_only or enterprise.is_employer))
    return form


def _clients_page(enterprise: Enterprise, status: int = 200, form: ApiClientForm | None = None):
    now = utcnow()
    api_clients = clients.api_clients_of(get_session(), enterprise.id)
    return render_template(
        "certificates/api_clients.html", enterprise=enterprise,
        rows=[(client, clients.client_status(client, now)) for client in api_clients],
        form=form or _client_form(enterprise), token_endpoint=token_endpoint_url(),
        portal_url=request.host_url.rstrip("/"), button=ButtonForm(formdata=None),
        can_manage=_allowed(enterprise.id, MANAGE_API_CLIENTS)), status


@bp.route("/api-clients")
@gated(ACCESS_MANAGEMENT, "view")
def api_clients(enterprise_id: int):
    return _clients_page(ops.get_enterprise(get_session(), enterprise_id))


@bp.route("/api-clients", methods=["POST"])
@gated(ACCESS_MANAGEMENT, MANAGE_API_CLIENTS)
def register_api_client(enterprise_id: int):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    form = _client_form(enterprise, bound=True)
    if not form.validate_on_submit():
        return _clients_page(enterprise, 422, form)
    if not form.certificate_id.data:
        form.certificate_id.errors = [_("Choose the certificate whose key signs the client's assertions.")]
        return _clients_page(enterprise, 422, form)
    try:
        certificate = cops.get_certificate(session, enterprise, form.certificate_id.data)
        client = clients.register_api_client(session, enterprise, certificate, form.name.data, form.scopes.data or [],
                                             by=request_context(), catalogue=catalogue())
    except DomainError as error:
        apply_domain_error(form, error)
        return _clients_page(enterprise, form_status(error), form)
    flash(_("API client %(name)s registered: its client_id is %(client_id)s.", name=client.name,
            client_id=client.client_id), "success")
    return redirect(url_for("certificates.api_clients", enterprise_id=enterprise.id))


@bp.route("/api-clients/<client_id>/revoke", methods=["POST"])
@gated(ACCESS_MANAGEMENT, MANAGE_API_CLIENTS)
def revoke_api_client(enterprise_id: int, client_id: str):
    session = get_session()
    enterprise = ops.get_enterprise(session, enterprise_id)
    client = clients.get_api_client(session, enterprise, client_id)
    if not ButtonForm().validate_on_submit():
        return _clients_page(enterprise, 400)
    clients.revoke_api_client(session, client, by=request_context())
    flash(_("API client %(name)s revoked: it gets no new token, and its tokens stopped working.",
            name=client.name), "success")
    return redirect(url_for("certificates.api_clients", enterprise_id=enterprise.id))


# --- the dashboard's expiry warnings ----------------------------------------------------------


@dataclass(frozen=True)
class ExpiryWarning:
    certificate: Certificate
    status: str
    days: int  # days left (negative: days since it expired)


def expiry_warnings(enterprise_id: int, now: datetime | None = None) -> list[ExpiryWarning]:
    """Active certificates of the enterprise that expire within 60 days or expired in the last 30."""
    now = now or utcnow()
    found = cops.expiring_certificates(get_session(), enterprise_id, now, days_before=WARN_DAYS_BEFORE,
                                       days_after=WARN_DAYS_AFTER)
    # Days left rounded up: a certificate expiring in 5 hours expires "in 1 day", never "in 0 days".
    return [ExpiryWarning(c, c.status_on(now, warn_days=WARN_DAYS_BEFORE),
                          math.ceil((as_utc(c.not_after) - now).total_seconds() / 86400)) for c in found]
