"""Steps the browser tests share: logging in as a person does, second factor included (issue 6).

The code is computed from the account's authenticator secret, as the person's phone would: the first
time, the portal asks to set an app up and the step reads the secret from the page; later it reads it
from the database. A code is accepted once: when the window of accepted steps is spent (several logins
of one account within a minute), the step waits for the next one, as a person would."""
from __future__ import annotations

import re
import time

import pyotp
from playwright.sync_api import Page, expect
from sqlalchemy import select

from access.models import Account, TotpFactor
from access.second_factor import TOTP_STEP_SECONDS


def current_code(e2e_sessions, login: str) -> str:
    while True:
        with e2e_sessions() as session:
            factor = session.scalar(select(TotpFactor).join(Account, Account.id == TotpFactor.account_id).where(
                (Account.username_lower == login.lower()) | (Account.user_id == login.upper()),
                TotpFactor.removed_at.is_(None)))
            assert factor is not None, f"{login} has no authenticator app"
            now = int(time.time()) // TOTP_STEP_SECONDS
            for step in (now - 1, now, now + 1):
                if factor.last_used_step is None or step > factor.last_used_step:
                    return pyotp.TOTP(factor.secret).generate_otp(step)
        time.sleep(TOTP_STEP_SECONDS - time.time() % TOTP_STEP_SECONDS + 0.1)


def enrol_totp(page: Page, e2e_sessions, login: str) -> list[str]:
    """On the security page: set up the authenticator app; returns the recovery codes shown."""
    page.get_by_test_id("totp-start").click()
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    page.fill('main input[name="code"]', pyotp.TOTP(secret).now())
    page.click('main form button[type="submit"]')
    shown = page.get_by_test_id("recovery-codes").locator("code")
    expect(shown).to_have_count(10)  # waits for the page (ten argon2id hashes take a moment)
    codes = shown.all_inner_texts()
    page.get_by_role("link", name="I have kept them: continue").click()
    return codes


def second_step(page: Page, e2e_sessions, login: str) -> None:
    """Whatever the portal asks after the password: the code, or setting an app up."""
    page.wait_for_load_state()
    if "/login/verify" in page.url:
        page.fill('main input[name="code"]', current_code(e2e_sessions, login))
        page.click('main form[data-testid="second-factor-form"] button[type="submit"]')
    elif page.url.rstrip("/").endswith("/account/security"):
        enrol_totp(page, e2e_sessions, login)


def log_in(page: Page, e2e_sessions, login: str, password: str, *, expect_who: bool = True) -> None:
    page.goto("/login")
    page.fill('main input[name="login"]', login)
    page.fill('main input[name="password"]', password)
    page.click('main form button[type="submit"]')
    second_step(page, e2e_sessions, login)
    # The header names the person from the password on; the login is done when the second step is gone.
    expect(page).not_to_have_url(re.compile(r"/login/verify|/account/security$|/login$"))
    if expect_who:
        expect(page.get_by_test_id("who")).to_contain_text(login)
