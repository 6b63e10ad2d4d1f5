"""Languages and times: Japanese first, English from the catalog; every time shown in Asia/Tokyo."""
from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app, render_template, request, session
from flask_babel import Babel, force_locale, get_locale, get_translations
from markupsafe import Markup

from appliance.clock import TOKYO, to_tokyo

LOCALES = ("ja", "en")
LOCALE_NAMES = {"ja": "日本語", "en": "English"}


def select_locale() -> str:
    """The language chosen in this session, else the browser's preference, else Japanese."""
    chosen = session.get("lang")
    if chosen in LOCALES:
        return chosen
    return browser_locale() if request else "ja"


def browser_locale() -> str:
    """The browser's preferred language among ours, else Japanese."""
    return request.accept_languages.best_match(LOCALES, default="ja")


# Numbers only, so the same in every language (strftime: a tenth of Babel's cost, several times a page).
TIME_FORMATS = {"medium": "%Y/%m/%d %H:%M", "seconds": "%Y/%m/%d %H:%M:%S"}


def tokyo_time(moment: datetime | str | None, style: str = "medium") -> str:
    """Format a stored UTC time as Tokyo local time (``style``: a key of TIME_FORMATS); text is a page kept
    ready's marker for a time (webui/skeleton.py), shown as it is."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        return moment
    return to_tokyo(moment).strftime(TIME_FORMATS[style])


def render_in(locale: str, template: str, **context) -> str:
    """Render an HTML template in one language with that language's catalog bound once for the whole page.

    Flask-Babel finds the request's locale and catalog anew for every string (~30 us each,
    some twenty a page); the guardians' pages are rendered by the thousand in a burst.
    Strings in imported macros still go through Flask-Babel, inside ``force_locale``.
    """
    catalogs = current_app.extensions.setdefault("catalogs", {})
    with force_locale(locale):
        if locale not in catalogs:
            catalogs[locale] = _bound(get_translations())       # Flask-Babel's own catalog, bound once
        gettext, ngettext = catalogs[locale]
        return render_template(template, _=gettext, gettext=gettext, ngettext=ngettext, **context)


def _bound(translations) -> tuple:
    # As Jinja's newstyle gettext (what Flask-Babel installs) in an autoescaped (HTML) template:
    # the translation is markup, always %-formatted (so "%%" is "%"), its variables escaped.
    def gettext(string: str, **variables) -> Markup:
        text = Markup(translations.gettext(string))
        return text % variables if variables or "%" in text else text

    def ngettext(singular: str, plural: str, num: int, **variables) -> Markup:
        variables.setdefault("num", num)
        return Markup(translations.ngettext(singular, plural, num)) % variables

    return gettext, ngettext


def init_app(app: Flask) -> None:
    """Attach Babel (catalog in webui/translations) and the template helpers."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "ja")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", str(TOKYO))
    Babel(app, locale_selector=select_locale)
    app.jinja_env.filters["tokyo"] = tokyo_time
    app.jinja_env.globals.update(LOCALE_NAMES=LOCALE_NAMES, get_locale=get_locale)
