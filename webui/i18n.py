"""Languages and times: Japanese first, English from the catalog; every time shown in Asia/Tokyo."""
from __future__ import annotations

from datetime import datetime

from flask import Flask, request, session
from flask_babel import Babel, format_datetime, get_locale

from appliance.clock import TOKYO

LOCALES = ("ja", "en")
LOCALE_NAMES = {"ja": "日本語", "en": "English"}


def select_locale() -> str:
    """The language chosen in this session, else the browser's preference, else Japanese."""
    chosen = session.get("lang")
    if chosen in LOCALES:
        return chosen
    return request.accept_languages.best_match(LOCALES, default="ja") if request else "ja"


def tokyo_time(moment: datetime | None, style: str = "medium") -> str:
    """Format a stored UTC time as Tokyo local time in the user's language."""
    if moment is None:
        return ""
    return format_datetime(moment, "yyyy/MM/dd HH:mm" if style == "medium" else style)


def init_app(app: Flask) -> None:
    """Attach Babel (catalog in webui/translations) and the template helpers."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "ja")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", str(TOKYO))
    Babel(app, locale_selector=select_locale)
    app.jinja_env.filters["tokyo"] = tokyo_time
    app.jinja_env.globals.update(LOCALE_NAMES=LOCALE_NAMES, get_locale=get_locale)
