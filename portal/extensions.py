from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect

login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "account.login"
    # Binding to the client is done by portal.auth.guard_session: Flask-Login's
    # "strong" mode does not end a permanent session.
    login_manager.session_protection = None

    from portal import auth

    login_manager.user_loader(auth.load_user)
    login_manager.unauthorized_handler(auth.unauthorized)
    app.before_request(auth.guard_session)
