"""Translated wording of the decision point's reasons and path steps.

The decision point speaks English in the audit log; users read these."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext

from access.decision import Step
from portal.context import catalogue

_TEXTS = {
    # reasons for a refusal
    "unknown-application": _l("This application does not exist."),
    "not-portal-officer": _l("Only portal officers of the institution may do this."),
    "login-required": _l("Log in to use this application."),
    "account-disabled": _l("This account is disabled."),
    "no-enterprise": _l("Choose the enterprise you act for."),
    "unknown-enterprise": _l("This enterprise is unknown."),
    "employers-only": _l("%(application)s is for employers only, and %(kbo)s is not an employer."),
    "no-direct-authority": _l("You are not under the direct authority of %(kbo)s on %(day)s, so no role or right "
                              "in it can be used."),
    "not-designated": _l("You are not designated as administrator or user of %(kbo)s."),
    "local-admin-only": _l("Only the local administrator of %(kbo)s may do this."),
    "not-an-administrator": _l("You are not an administrator of %(kbo)s."),
    "no-right": _l("You have no right on %(application)s for %(kbo)s. Ask your local administrator."),
    "certificate-required": _l("This application requires proof of possession of the private key of an active "
                               "qualified certificate of the enterprise: use the API with a certificate-bound token, "
                               "or send a signed file."),
    "certificate-not-of-enterprise": _l("The certificate that proved possession of the key is not one of the "
                                        "enterprise acting: use a certificate of the enterprise itself, or of its "
                                        "service provider when acting under its mandate."),
    "certificate-not-active": _l("Certificate %(certificate)s is %(status)s: only an active qualified certificate "
                                 "proves possession of the key."),
    # machine clients (API clients with a certificate-bound token)
    "machine-no-access-management": _l("API clients do not manage access: access management is done by the "
                                       "administrators, logged in as persons."),
    "outside-token-scope": _l("The access token's scope does not include %(application)s: request a token with "
                              "this scope (the local administrator decides which applications the API client may "
                              "use)."),
    # the audit trail (access/security_officers.py)
    "not-security-officer": _l("You are not a security officer of %(kbo)s."),
    "not-institution-security-officer": _l("Only the institution's security officer reviews the records of every "
                                           "enterprise: choose the enterprise whose security officer you are."),
    "security-officer-no-authority": _l("You are a security officer of %(kbo)s, but not under its direct authority "
                                        "on %(day)s, so you cannot review its records."),
    "machine-no-security-audit": _l("API clients do not review the audit trail: security officers do, logged in "
                                    "as persons."),
    # the data subject view (audit/subjects.py)
    "machine-no-data-subject": _l("API clients have no personal data to inspect: persons do, logged in."),
    "data-subject": _l("a person inspects the records about himself"),
    "unknown-action": _l("This action does not exist."),
    "allowed": _l("Allowed."),
    # steps of an allowing path
    "free-access": _l("free access: no login needed"),
    "portal-officer": _l("portal officer of the institution"),
    "local-admin": _l("local administrator of %(kbo)s since %(since)s"),
    "co-admin": _l("co-administrator of %(kbo)s since %(since)s"),
    "right": _l("right on %(application)s granted by %(by)s on %(on)s"),
    "link": _l("%(kind)s of %(kbo)s since %(since)s"),
    "certificate": _l("proved possession of the key of certificate %(certificate)s of %(kbo)s"),
    "client-of-enterprise": _l("API client of %(kbo)s"),
    "token-scope": _l("API client %(client)s, scope %(application)s"),
    "security-officer": _l("security officer of %(kbo)s since %(since)s"),
    "institution-security-officer": _l("security officer of the institution since %(since)s"),
    # the mandate path: a provider's staff member acting for a client employer (mandates.paths)
    "no-mandate": _l("%(provider)s has no mandate of %(kbo)s in force on %(day)s."),
    "outside-mandate": _l("%(application)s is not within the mandate %(kbo)s gave %(provider)s."),
    "not-assigned": _l("%(provider)s has not assigned you to work for %(kbo)s on %(application)s."),
    "no-provider-authority": _l("You are not under the direct authority of %(provider)s on %(day)s, so you cannot "
                                "act for its clients."),
    "mandate-affiliation": _l("%(provider)s is the erkend sociaal secretariaat of %(kbo)s since %(since)s"),
    "mandate-form": _l("%(provider)s is the service provider of %(kbo)s by provider form since %(since)s"),
    "mandate-scope": _l("%(application)s within the mandate (group %(group)s)"),
    "staff-assignment": _l("assigned to %(kbo)s for %(application)s by %(by)s on %(on)s"),
}


def _params(step: Step) -> dict[str, str]:
    params = {key: str(value) for key, value in step.params.items()}
    if "kind" in params:
        from access.models import LinkKind

        params["kind"] = link_kind_label(LinkKind(params["kind"]))
    if "application" in params:
        app = catalogue().get(params["application"])
        if app is not None:
            from flask_babel import get_locale

            params["application"] = app.name(str(get_locale() or "nl"))
    if "group" in params:
        params["group"] = group_name(params["group"])
    if step.code == "certificate-not-active" and "status" in params:
        params["status"] = certificate_status_label(params["status"])
    return params


def step_text(step: Step) -> str:
    template = _TEXTS.get(step.code)
    if template is None:
        return step.text
    try:
        # str() of a lazy string is the translated template; the parameters fill it.
        return str(template) % _params(step) if step.params else str(template)
    except (KeyError, ValueError, TypeError):
        return step.text


def reason_text(step: Step) -> str:
    return step_text(step)


def error_text(error) -> str:
    """A DomainError in the user's language: translate its template, then fill it.

    Parameters that are themselves words of the portal (a role, a status, a
    field label, an application) are translated too; names and numbers are not."""
    from flask_babel import get_locale, gettext

    template = gettext(error.template)
    params = dict(error.params)
    locale = str(get_locale() or "nl")
    for key in ("role", "status", "state", "label"):
        if isinstance(params.get(key), str):
            # A certificate's status has its own labels ("not-yet-valid" is no msgid); others are msgids.
            # (`state` is the status where a class already uses `status` for the HTTP status.)
            label = _CERTIFICATE_STATUSES.get(params[key]) if key in ("status", "state") else None
            params[key] = str(label) if label is not None else gettext(params[key])
    if isinstance(params.get("group"), str):
        params["group"] = group_name(params["group"])
    if isinstance(params.get("application"), str):
        app = next((a for a in catalogue().applications() + catalogue().grantable()
                    if params["application"] in (a.code, a.names.get("en"))), None)
        if app is not None:
            params["application"] = app.name(locale)
    try:
        return template % params if params else template
    except (KeyError, ValueError, TypeError):
        return error.message


_ROLES = {"local_admin": _l("local administrator"), "co_admin": _l("co-administrator"), "user": _l("user")}
# Certificate.status_on: what the decision point and the certificate pages say of a certificate.
# A context of their own: a certificate is "ingetrokken" where a mandate is "herroepen".
_CERTIFICATE_STATUSES = {
    "active": lazy_pgettext("certificate status", "active"),
    "expiring": lazy_pgettext("certificate status", "expiring"),
    "expired": lazy_pgettext("certificate status", "expired"),
    "revoked": lazy_pgettext("certificate status", "revoked"),
    "replaced": lazy_pgettext("certificate status", "replaced"),
    "not-yet-valid": lazy_pgettext("certificate status", "not yet valid"),
}
_STATUSES = {"pending": _l("pending"), "accepted": _l("accepted"), "rejected": _l("rejected")}


def role_label(role) -> str:
    return str(_ROLES[getattr(role, "value", role)])


def certificate_status_label(status: str) -> str:
    """A certificate's status (Certificate.status_on) in the user's language; an unknown one as it is."""
    label = _CERTIFICATE_STATUSES.get(status)
    return str(label) if label is not None else status


def link_kind_label(kind) -> str:
    from portal.forms import LINK_KIND_LABELS

    return str(LINK_KIND_LABELS[kind])


def proposal_status_label(status) -> str:
    return str(_STATUSES[getattr(status, "value", status)])


def group_name(code: str) -> str:
    """The name of a group of applications (config/mandate_groups.toml) in the user's language;
    the code itself for a group no longer in the configuration."""
    from flask_babel import get_locale

    from mandates.groups import load_groups

    group = load_groups().get(code)
    return group.name(str(get_locale() or "nl")) if group is not None else code


def provider_kind_label(kind) -> str:
    from mandates.models import ProviderKind
    from portal.forms import PROVIDER_KIND_LABELS

    return str(PROVIDER_KIND_LABELS[ProviderKind(getattr(kind, "value", kind))])


def mandate_status_label(status) -> str:
    """A mandate's status, with its own context: French agrees it with "le mandat", not with "la proposition"."""
    from flask_babel import pgettext

    labels = {
        "pending": pgettext("mandate status", "pending"),
        "accepted": pgettext("mandate status", "accepted"),
        "declined": pgettext("mandate status", "declined"),
        "withdrawn": pgettext("mandate status", "withdrawn"),
        "revoked": pgettext("mandate status", "revoked"),
    }
    return labels[getattr(status, "value", status)]


_MANDATE_KINDS = {"affiliation": _l("affiliation (erkend sociaal secretariaat)"), "form": _l("provider form")}


def mandate_kind_label(kind) -> str:
    return str(_MANDATE_KINDS[getattr(kind, "value", kind)])


def switch_warning_text(warning) -> str:
    """A mandates.operations.SwitchWarning in the user's language (its templates are in msgids.py)."""
    from flask_babel import gettext

    try:
        return gettext(warning.template) % warning.params if warning.params else gettext(warning.template)
    except (KeyError, ValueError, TypeError):
        return warning.text
