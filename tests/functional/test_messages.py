"""Every reason and path step the decision point can produce has a text for users (portal.messages),
and that text fills in with the parameters its source gives it. The codes are read from the source, so
a new reason without a text fails here."""
from __future__ import annotations

import ast
import base64
from pathlib import Path

import pytest
from flask_babel import force_locale

from access.steps import Step
from portal import ROOT
from portal.messages import _TEXTS, certificate_status_label, step_text
from tests.functional.helpers import problem_of
from tests.functional.test_oauth import Machines, bearer, get_token, pki  # noqa: F401  (pki: fixture)
from tests.unit.filechannel.helpers import batch, sign_b64

# Where reasons and steps are made: the decision point, the mandate paths, the certificate tier.
SOURCES = ("access/decision.py", "mandates/paths.py", "certificates/proof.py")
# Made-up values of the parameters, by name, of a kind the texts' parameter formatting understands.
SAMPLE_PARAMS = {"kind": "werknemer", "application": "dmfa", "group": "dmfa_dimona", "status": "revoked",
                 "certificate_id": 7}


def _code_and_params(call: ast.Call) -> tuple[str, set[str]] | None:
    """(code, names of its parameters) of Step("code", text, {...}), _deny(*args, "code", text, **params)
    and mandates' _refuse("code", text, provider_id, **params); None for a code held in a variable."""
    name = getattr(call.func, "id", None)
    if name not in ("Step", "_deny", "_refuse"):
        return None
    positional = [arg for arg in call.args if not isinstance(arg, ast.Starred)]
    if not positional or not isinstance(positional[0], ast.Constant) or not isinstance(positional[0].value, str):
        return None
    if name == "Step":
        params = positional[2] if len(positional) > 2 else None
        keys = {k.value for k in params.keys if isinstance(k, ast.Constant)} if isinstance(params, ast.Dict) else set()
    else:
        keys = {keyword.arg for keyword in call.keywords if keyword.arg not in (None, "path")}
    return positional[0].value, keys


def made_steps() -> dict[str, set[str]]:
    """Every code a reason or a path step is made with, and the parameters each call gives it."""
    found: dict[str, set[str]] = {}
    for source in SOURCES:
        tree = ast.parse(Path(ROOT, source).read_text(), filename=source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (made := _code_and_params(node)) is not None:
                code, params = made
                found.setdefault(code, set()).update(params)
    return found


MADE = made_steps()


def test_the_source_is_read():
    """The collector finds the reasons of each source (else the test below would prove nothing)."""
    assert {"no-right", "unknown-application", "machine-no-access-management", "outside-token-scope",
            "token-scope", "client-of-enterprise"} <= set(MADE)
    assert {"no-mandate", "outside-mandate", "not-assigned", "mandate-scope"} <= set(MADE)
    assert {"certificate-required", "certificate-not-of-enterprise", "certificate-not-active", "certificate"} \
        <= set(MADE)
    assert MADE["certificate-not-active"] == {"certificate", "status"}


@pytest.mark.parametrize("code", sorted(MADE))
def test_every_reason_and_step_has_a_text_that_fills_in(app, code):
    assert code in _TEXTS, f"portal/messages.py has no text for {code!r}"
    params = {name: SAMPLE_PARAMS.get(name, f"<{name}>") for name in MADE[code]}
    fallback = f"english text of {code}"
    with app.test_request_context(), force_locale("en"):
        shown = step_text(Step(code, fallback, params))
    assert shown != fallback, f"the text of {code!r} does not fill in with {sorted(params)}"
    assert "%(" not in shown


def test_the_certificate_tiers_texts(app):
    with app.test_request_context(), force_locale("en"):
        assert step_text(Step("certificate-required", "x")) == (
            "This application requires proof of possession of the private key of an active qualified certificate "
            "of the enterprise: use the API with a certificate-bound token, or send a signed file.")
        assert step_text(Step("certificate-not-active", "x", {"certificate": "0f1e2d3c4b5a6978",
                                                             "status": "not-yet-valid"})) == (
            "Certificate 0f1e2d3c4b5a6978 is not yet valid: only an active qualified certificate proves possession "
            "of the key.")
        assert step_text(Step("certificate", "x", {"certificate": "0f1e2d3c4b5a6978", "kbo": "0412.345.614",
                                                   "certificate_id": 3})) == \
            "proved possession of the key of certificate 0f1e2d3c4b5a6978 of 0412.345.614"
        assert step_text(Step("outside-token-scope", "x", {"application": "bestandsoverdracht"})) == (
            "The access token's scope does not include Data transmission by file transfer: request a token with "
            "this scope (the local administrator decides which applications the API client may use).")
        assert certificate_status_label("expired") == "expired"
        assert certificate_status_label("something-new") == "something-new"


def test_a_machine_clients_refusal_reads_as_its_text(app, world, clock, tmp_path, pki):  # noqa: F811
    """Through a real request: an API client whose token does not cover the file channel sends a signed
    file; the problem's detail is the decision point's reason in the portal's words."""
    from certificates.validation import load_trust_list

    machines = Machines(world, pki, load_trust_list(pki.write_trust_list(tmp_path / "trust")), clock)
    employer = world.employer()
    machine = machines.client(employer, scopes=("dmfa",))
    http = app.test_client(use_cookies=False)
    token = get_token(http, machine)
    content = batch(employer.kbo_number, {"employer": employer.kbo_number, "legal_form": "NV"})
    response = bearer(http, "POST", "/api/v1/files", token,
                      json={"content": base64.b64encode(content).decode(),
                            "signature": sign_b64(machine.issued, content).decode()})
    body = problem_of(response, 403, "outside-token-scope")
    # No Accept-Language: the portal's default language, Dutch.
    assert body["detail"].startswith(f"Item 1, {employer.kbo_display}: De scope van het toegangstoken omvat ")
