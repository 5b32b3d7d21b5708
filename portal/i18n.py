"""Dutch first, then French and English (Flask-Babel)."""
from __future__ import annotations

from pathlib import Path

from flask import Flask, request, session
from flask_babel import Babel, get_locale

TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def select_locale() -> str:
    from flask import current_app

    languages = current_app.config["LANGUAGES"]
    chosen = session.get("lang")
    if chosen in languages:
        return chosen
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, locale_selector=select_locale)

    @app.context_processor
    def _locale():
        return {"current_locale": str(get_locale() or "nl"), "languages": app.config["LANGUAGES"]}

    from access.clock import today
    from access.validators import format_insz
    from portal.messages import link_kind_label, proposal_status_label, role_label, step_text

    app.jinja_env.globals.update(step_text=step_text, role_label=role_label, link_kind_label=link_kind_label,
                                 proposal_status_label=proposal_status_label, format_insz=format_insz,
                                 today=today)
