"""Languages and times: Japanese first, English from the catalog; every time shown in Asia/Tokyo."""
from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app, render_template, request, session
from flask_babel import Babel, force_locale, get_locale, get_translations
from jinja2 import pass_eval_context
from markupsafe import Markup

from appliance.clock import TOKYO, to_tokyo
from webui.skeleton import Slot

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


def tokyo_time(moment: datetime | Slot | None, style: str = "medium") -> str:
    """Format a stored UTC time as Tokyo local time (``style``: a key of TIME_FORMATS); a page kept ready's
    marker for a time (webui/skeleton.py) is shown as it is."""
    if moment is None:
        return ""
    if isinstance(moment, Slot):
        return moment
    return to_tokyo(moment).strftime(TIME_FORMATS[style])


def render_in(locale: str, template: str, **context) -> str:
    """Render a template in one language, not the request's (a guardian's page is in the guardian's)."""
    with force_locale(locale):
        return render_template(template, **context)


def _catalog() -> dict:
    """The templates' strings in the page's language: Flask-Babel's catalog, bound once per language.

    Flask-Babel finds the request's language and catalog anew for every string (~30 us
    each): some twenty on a guardian's page, hundreds on a class's roll call. Macros that
    translate are imported ``with context`` to use these too.
    """
    catalogs = current_app.extensions.setdefault("catalogs", {})
    locale = str(get_locale())
    if locale not in catalogs:
        gettext, ngettext = _bound(get_translations())
        catalogs[locale] = {"_": gettext, "gettext": gettext, "ngettext": ngettext}
    return catalogs[locale]


def _bound(translations) -> tuple:
    # As Jinja's newstyle gettext, which Flask-Babel installs: always %-formatted (so "%%" is "%"), and in an
    # autoescaped (HTML) template the translation is markup and its variables are escaped.
    @pass_eval_context
    def gettext(eval_ctx, string: str, **variables) -> str:
        text = translations.gettext(string)
        return (Markup(text) if eval_ctx.autoescape else text) % variables

    @pass_eval_context
    def ngettext(eval_ctx, singular: str, plural: str, num: int, **variables) -> str:
        variables.setdefault("num", num)
        text = translations.ngettext(singular, plural, num)
        return (Markup(text) if eval_ctx.autoescape else text) % variables

    return gettext, ngettext


def init_app(app: Flask) -> None:
    """Attach Babel (catalog in webui/translations) and the template helpers."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "ja")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", str(TOKYO))
    Babel(app, locale_selector=select_locale)
    app.context_processor(_catalog)
    app.jinja_env.filters["tokyo"] = tokyo_time
    app.jinja_env.globals.update(LOCALE_NAMES=LOCALE_NAMES, get_locale=get_locale)
