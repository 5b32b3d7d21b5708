"""A passkey in a real browser: Chromium's virtual authenticator (DevTools protocol, WebAuthn domain)
stands in for a security key. The page's script (portal/static/webauthn.js) registers it, and the next
login uses it instead of the authenticator app's code.

WebAuthn needs a host name as relying party (an IP address cannot be one), so this browser visits the
live server as http://localhost:<port> (a secure context for the browser, like HTTPS)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from access.models import Account, WebAuthnCredential
from tests.e2e import steps

pytestmark = [pytest.mark.e2e]


def test_a_passkey_is_registered_and_then_used_to_log_in(browser, live_server, scenario, e2e_sessions):
    s = scenario
    base = live_server.url.replace("127.0.0.1", "localhost")
    context = browser.new_context(base_url=base, locale="en-US")
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        devtools = context.new_cdp_session(page)
        devtools.send("WebAuthn.enable")
        devtools.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "usb", "hasResidentKey": True, "hasUserVerification": True,
            "isUserVerified": True, "automaticPresenceSimulation": True}})

        steps.log_in(page, e2e_sessions, s.user_username, s.user_password)  # enrols the app the first time
        page.get_by_test_id("my-security").click()
        page.fill("[data-webauthn-name]", "Sleutel op de USB-poort")
        page.get_by_test_id("passkey-add").click()
        expect(page.get_by_test_id("passkey")).to_contain_text("Sleutel op de USB-poort")

        page.click('header form[action="/logout"] button[type="submit"]')
        page.goto("/login")
        page.fill('main input[name="login"]', s.user_username)
        page.fill('main input[name="password"]', s.user_password)
        page.click('main form button[type="submit"]')
        expect(page.get_by_test_id("passkey-login")).to_be_visible()
        page.get_by_role("button", name="Use a passkey").click()
        expect(page).to_have_url(live_server("/").replace("127.0.0.1", "localhost"))  # the script went on
        expect(page.get_by_test_id("who")).to_contain_text(s.user_username)
        assert errors == [], errors
    finally:
        context.close()

    with e2e_sessions() as session:
        key = session.scalar(select(WebAuthnCredential).join(Account, Account.id == WebAuthnCredential.account_id)
                             .where(Account.username == s.user_username))
        assert key is not None and key.name == "Sleutel op de USB-poort" and key.last_used_at is not None
