"""HTML forms. They parse and carry CSRF; the rules live in the operations."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from access.models import LinkKind

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


def apply_domain_error(form: FlaskForm, error) -> None:
    """Show an operation's refusal at the field it names (or at the top of the form)."""
    from portal.messages import error_text

    message = error_text(error)
    field = getattr(form, error.field, None) if error.field else None
    if field is not None and hasattr(field, "errors"):
        field.errors = list(field.errors) + [message]
    else:
        form.form_errors.append(message)
