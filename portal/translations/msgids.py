"""Message ids the extractor cannot see because the code passes them in a variable.

Never imported: this module exists only so that `pybabel extract` (babel.cfg
scans portal/**.py) puts these English texts in the catalogues. Keep each text
byte-identical to its source, named in the comment.
"""


def N_(text: str) -> str:  # noqa: N802 - the conventional no-op marker
    return text


# access.operations.GENERIC_LOGIN_FAILURE, translated in portal.views.account
N_("The user name or password is wrong, or the account is temporarily locked.")
# access.operations.clean_enterprise_fields: field labels passed as %(label)s
N_("Street")
# mandates.operations.switch_warnings: SwitchWarning templates, translated by portal.messages.switch_warning_text
N_("The minimum term of %(months)s months of the current affiliation (since %(since)s) runs until %(until)s.")
N_("No date of notice was given for the current affiliation.")
N_("Notice given on %(notice)s: a notice of %(months)s months ends on %(until)s, after the new start %(start)s.")
# mandates.models.MandateStatus values passed as %(status)s in mandates.operations' errors (portal.messages.error_text)
N_("declined")
N_("withdrawn")
N_("revoked")
# access.second_factor.WRONG_CODE, translated in portal.views.account
N_("The code is wrong, already used or expired.")
# access.webauthn_factor.REFUSED, raised in a ValidationError
N_("The passkey could not be verified (wrong site, expired or replayed request, or unknown key).")
# access.operations.set_account_disabled: %(state)s
N_("disabled")
N_("enabled")
# portal.views.account.TOO_MANY_ATTEMPTS (access/throttle.py's wait)
N_("Too many failed attempts from your address. Try again in %(seconds)s seconds.")
