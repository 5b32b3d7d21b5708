"""HTML forms. They parse and carry CSRF; the rules live in the operations."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (BooleanField, DateField, HiddenField, IntegerField, PasswordField, SelectField,
                     SelectMultipleField, StringField, TextAreaField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from access.models import LinkKind
from mandates.models import ProviderKind

LINK_KIND_LABELS = {
    LinkKind.WERKNEMER: _l("employee (werknemer)"),
    LinkKind.ZAAKVOERDER: _l("manager (zaakvoerder)"),
    LinkKind.BESTUURDER: _l("director (bestuurder)"),
    LinkKind.VENNOOT: _l("partner (vennoot)"),
    LinkKind.ZELFSTANDIGE_MEDEWERKER: _l("self-employed collaborator"),
    LinkKind.DERDE: _l("third party"),
    LinkKind.DIENSTVERLENER: _l("service provider"),
    LinkKind.TUSSENPERSOON: _l("intermediary"),
}


PROVIDER_KIND_LABELS = {
    ProviderKind.ERKEND_SOCIAAL_SECRETARIAAT: _l("erkend sociaal secretariaat"),
    ProviderKind.ACCOUNTANT: _l("accountant"),
    ProviderKind.SOFTWARE_BUREAU: _l("software bureau"),
    ProviderKind.OTHER_INTERMEDIARY: _l("other intermediary"),
}


def choices(pairs) -> list[SelectChoice]:
    """(value, label) pairs as WTForms wants them (tuples are deprecated from 3.3 on)."""
    return [SelectChoice(value, label) for value, label in pairs]


class LoginForm(FlaskForm):
    login = StringField(_l("User name or user-id"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])


class SetupForm(FlaskForm):
    username = StringField(_l("Choose a user name"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Choose a password (at least 12 characters)"), validators=[DataRequired(), Length(max=256)])
    confirm = PasswordField(_l("Repeat the password"), validators=[DataRequired(), Length(max=256)])


class SecondFactorForm(FlaskForm):
    """The code from the authenticator app (6 digits) or one of the recovery codes."""

    code = StringField(_l("Code from your authenticator app, or a recovery code"),
                       validators=[DataRequired(), Length(max=40)])


class TotpConfirmForm(FlaskForm):
    code = StringField(_l("Code shown by the app"), validators=[DataRequired(), Length(max=10)])


class PasswordChangeForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=256)])
    password = PasswordField(_l("New password (at least 12 characters)"), validators=[DataRequired(), Length(max=256)])
    confirm = PasswordField(_l("Repeat the new password"), validators=[DataRequired(), Length(max=256)])
    end_other_sessions = BooleanField(_l("End my other sessions"), default=True)


class EnterpriseForm(FlaskForm):
    kbo = StringField(_l("KBO number"), validators=[DataRequired(), Length(max=20)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    street = StringField(_l("Street and number"), validators=[DataRequired(), Length(max=200)])
    postal_code = StringField(_l("Postal code"), validators=[DataRequired(), Length(max=10)])
    city = StringField(_l("City"), validators=[DataRequired(), Length(max=100)])
    legal_form = StringField(_l("Legal form"), validators=[DataRequired(), Length(max=60)])
    rsz_number = StringField(_l("RSZ number (employers only)"), validators=[Optional(), Length(max=20)])
    joint_committee = StringField(_l("Joint committee (employers only)"), validators=[Optional(), Length(max=20)])


class LinkForm(FlaskForm):
    insz = StringField(_l("INSZ number"), validators=[DataRequired(), Length(max=20)])
    first_name = StringField(_l("First name"), validators=[DataRequired(), Length(max=100)])
    last_name = StringField(_l("Last name"), validators=[DataRequired(), Length(max=100)])
    email = StringField(_l("E-mail"), validators=[Optional(), Length(max=254)])
    kind = SelectField(_l("Link"), choices=choices((k.value, label) for k, label in LINK_KIND_LABELS.items()))
    start_date = DateField(_l("From"), validators=[DataRequired()])
    end_date = DateField(_l("Until (optional)"), validators=[Optional()])


class EndLinkForm(FlaskForm):
    end_date = DateField(_l("End date"), validators=[DataRequired()])


class PersonChoiceForm(FlaskForm):
    person_id = SelectField(_l("Person"), coerce=int, validate_choice=False)


class DesignateForm(PersonChoiceForm):
    role = SelectField(_l("Role"), choices=choices([("user", _l("user")), ("co_admin", _l("co-administrator"))]))


class ButtonForm(FlaskForm):
    """A bare form for buttons that post (CSRF only)."""


class ProposalForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Optional(), Length(max=200)])
    street = StringField(_l("Street and number"), validators=[Optional(), Length(max=200)])
    postal_code = StringField(_l("Postal code"), validators=[Optional(), Length(max=10)])
    city = StringField(_l("City"), validators=[Optional(), Length(max=100)])
    legal_form = StringField(_l("Legal form"), validators=[Optional(), Length(max=60)])
    joint_committee = StringField(_l("Joint committee"), validators=[Optional(), Length(max=20)])
    motivation = TextAreaField(_l("Motivation"), validators=[Optional(), Length(max=2000)])


class DecisionForm(FlaskForm):
    accept = HiddenField()
    note = TextAreaField(_l("Note (required to reject)"), validators=[Optional(), Length(max=2000)])


class SearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField(_l("Name, KBO number or RSZ number"), validators=[Optional(), Length(max=100)])


class MultiCheckboxField(SelectMultipleField):
    """A list of checkboxes. The operation, not the form, says which values exist."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ProviderFormForm(FlaskForm):
    """The provider form: the employer entrusts groups of applications to a service provider."""

    provider_kbo = StringField(_l("KBO number of the provider"), validators=[DataRequired(), Length(max=20)])
    # A select of quarter starts; any other date is refused by the operation, not here.
    start_date = SelectField(_l("From the quarter starting on"), validate_choice=False)
    groups = MultiCheckboxField(_l("Groups of applications the provider may use for you"), validate_choice=False)
    contract_date = DateField(_l("Date of the contract"), validators=[Optional()])
    contract_reference = StringField(_l("Reference of the contract"), validators=[Optional(), Length(max=100)])
    contract_declared = BooleanField(_l(
        "We declare that a written contract with this provider exists, stating the conditions and the liability "
        "of both parties, with the mentions of article 16 of the law of 8 December 1992 on the protection of "
        "privacy (today article 28 of the General Data Protection Regulation)."))


class EndMandateForm(FlaskForm):
    end_date = DateField(_l("Last day"), validators=[Optional()])


class RegisterProviderForm(FlaskForm):
    kbo = StringField(_l("KBO number of the enterprise"), validators=[DataRequired(), Length(max=20)])
    kind = SelectField(_l("Kind of provider"),
                       choices=choices((k.value, label) for k, label in PROVIDER_KIND_LABELS.items()),
                       validate_choice=False)
    recognition_number = StringField(_l("Recognition number (erkend sociaal secretariaat only)"),
                                     validators=[Optional(), Length(max=20)])


class AffiliationForm(FlaskForm):
    secretariat_kbo = StringField(_l("KBO number of the erkend sociaal secretariaat"),
                                  validators=[DataRequired(), Length(max=20)])
    start_date = DateField(_l("Start (first day of a quarter)"), validators=[DataRequired()])
    affiliation_number = StringField(_l("Affiliation number"), validators=[Optional(), Length(max=40)])
    minimum_term_months = IntegerField(_l("Minimum term (months)"), default=36, validators=[Optional()])
    notice_months = IntegerField(_l("Notice (months)"), default=6, validators=[Optional()])
    notice_date = DateField(_l("Notice given on (when leaving the current secretariat)"), validators=[Optional()])
    acknowledge_warnings = BooleanField(_l("Record the switch anyway: the employer accepts the consequences of "
                                           "not respecting these terms"))


class MandateFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET filter changes nothing

    # Choices are set by the view (portal.messages.mandate_status_label, translated per request).
    status = SelectField(_l("Status"), validate_choice=False)


def apply_domain_error(form: FlaskForm, error) -> None:
    """Show an operation's refusal at the field it names (or at the top of the form)."""
    from portal.messages import error_text

    message = error_text(error)
    field = getattr(form, error.field, None) if error.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = list(field.errors) + [message]
    else:
        form.form_errors.append(message)


# --- certificates and API clients (issue 4) ---------------------------------------------------


class CertificateUploadForm(FlaskForm):
    """A certificate file; the operation decides whether it is one, and whether it may be bound."""

    certificate = FileField(_l("Certificate file (PEM or DER, may include its chain)"))
    # Choices (the enterprise's active certificates) are set by the view; the operation checks the id.
    successor_of = SelectField(_l("Successor of (optional)"), coerce=int, validate_choice=False, default=0)


class CsrUploadForm(FlaskForm):
    csr = FileField(_l("Certificate signing request (PKCS#10, PEM or DER)"))


KEY_FORMATS = (("pkcs12", _l("PKCS#12 file (.p12), protected by the password")),
               ("pem", _l("Encrypted PEM private key (.pem), protected by the password")))


class GenerateKeyForm(FlaskForm):
    password = PasswordField(_l("Password that protects the key file (at least 12 characters)"),
                             validators=[DataRequired(), Length(max=256)])
    confirm = PasswordField(_l("Repeat the password"), validators=[DataRequired(), Length(max=256)])
    key_format = SelectField(_l("Format of the key file"), choices=choices(KEY_FORMATS), validate_choice=False)


class RevokeCertificateForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=200)])
    confirm = BooleanField(_l("I understand that the certificate stops working at once, for every API client and "
                              "signed file that uses it"), validators=[DataRequired()])


class ApiClientForm(FlaskForm):
    name = StringField(_l("Name of the API client"), validators=[Optional(), Length(max=100)])
    # The active certificates and the applications are set by the view; the operation checks both.
    certificate_id = SelectField(_l("Certificate whose key signs the client's assertions"), coerce=int,
                                 validate_choice=False, default=0)
    scopes = MultiCheckboxField(_l("Applications the client may use"), validate_choice=False)


# --- the audit trail: security officers and the review screen (issue 5) -------------------------------


class AuditFilterForm(FlaskForm):
    """The review screen's filter (GET). audit.queries.parse_filter validates it; this form only renders
    it and shows the errors at their fields."""

    class Meta:
        csrf = False  # a GET filter changes nothing

    from_ = StringField(_l("From (date or moment)"), name="from", validators=[Optional(), Length(max=40)])
    until = StringField(_l("Until (date or moment)"), validators=[Optional(), Length(max=40)])
    actor = StringField(_l("Acting person (id)"), validators=[Optional(), Length(max=20)])
    enterprise = StringField(_l("Enterprise acted for (KBO number or id)"), validators=[Optional(), Length(max=20)])
    provider = StringField(_l("Service provider (KBO number or id)"), validators=[Optional(), Length(max=20)])
    application = StringField(_l("Application (code)"), validators=[Optional(), Length(max=40)])
    action = StringField(_l("Action (e.g. right.grant, or decision:* )"), validators=[Optional(), Length(max=61)])
    outcome = SelectField(_l("Outcome"), validate_choice=False, choices=choices([
        ("", _l("any")), ("allowed", _l("allowed")), ("denied", _l("denied")), ("error", _l("error")),
        ("success", _l("success")), ("failure", _l("failure"))]))
    ip = StringField(_l("IP address"), validators=[Optional(), Length(max=45)])
    q = StringField(_l("Words in the reason"), validators=[Optional(), Length(max=200)])


class SaveFilterForm(FlaskForm):
    name = StringField(_l("Save this filter as"), validators=[DataRequired(), Length(max=100)])


class InstitutionOfficerForm(FlaskForm):
    """A portal officer appoints the institution's security officer: the person by INSZ (recorded if
    the portal does not know him yet)."""

    insz = StringField(_l("INSZ number"), validators=[DataRequired(), Length(max=20)])
    first_name = StringField(_l("First name"), validators=[DataRequired(), Length(max=100)])
    last_name = StringField(_l("Last name"), validators=[DataRequired(), Length(max=100)])
    email = StringField(_l("E-mail"), validators=[Optional(), Length(max=254)])


# --- access review campaigns (reviews/) ------------------------------------------------------------


class StartReviewForm(FlaskForm):
    deadline = DateField(_l("Last day to answer"), validators=[DataRequired()])
    revoke_unanswered = BooleanField(_l("Revoke what is still unanswered after that day"))


class ReviewAnswerForm(FlaskForm):
    """One item's answer; the button pressed posts `decision` (confirm or revoke), read by the view."""

    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=1000)])
