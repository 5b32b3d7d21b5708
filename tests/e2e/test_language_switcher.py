"""The NL/FR/EN buttons in the header switch the page's language, and the choice sticks."""
from __future__ import annotations

from pathlib import Path

import pytest
from babel.support import Translations
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def _compiled(app, code: str) -> Translations | None:
    """The compiled catalogue the portal loads for `code`, or None while there is none (make translations)."""
    directories = app.config["BABEL_TRANSLATION_DIRECTORIES"].split(";")
    for directory in directories:
        if (Path(directory) / code / "LC_MESSAGES" / "messages.mo").exists():
            return Translations.load(directory, [code])
    return None


def test_language_buttons_switch_the_page_language(page: Page, live_server, tmp_path):
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")  # Accept-Language en-US
    expect(page.locator("main h1")).to_have_text("Log in")

    for code in ("fr", "nl", "en"):
        page.click(f'header .languages button[lang="{code}"]')
        expect(page).to_have_url(live_server("/login"))  # back where he was (the form's `next`)
        expect(page.locator("html")).to_have_attribute("lang", code)
        expect(page.locator(f'header .languages button.current[lang="{code}"]')).to_have_count(1)
        catalogue = _compiled(live_server.app, code)
        if catalogue is not None and code != "en":
            expected = catalogue.gettext("Log in")
            assert expected != "Log in", f"the compiled {code} catalogue leaves 'Log in' untranslated"
            expect(page.locator("main h1")).to_have_text(expected)
        elif code == "en":
            expect(page.locator("main h1")).to_have_text("Log in")
        page.screenshot(path=str(tmp_path / f"login-{code}.png"))

        # The choice is kept in the session: another page comes in the same language.
        page.goto("/")
        expect(page.locator("html")).to_have_attribute("lang", code)
        page.goto("/login")

    assert page.console_errors == [], f"browser console errors: {page.console_errors}"
