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
