"""Every string the UI shows is in the translation catalog, translated (see `make catalog-update`)."""
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

WEBUI = Path(__file__).resolve().parents[2] / "webui"
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def _ui_strings() -> dict[str, str]:
    found = {}
    for filename, _line, message, _comments, _context in extract_from_dir(
            str(WEBUI), METHODS, keywords=KEYWORDS, comment_tags=()):
        for text in (message if isinstance(message, tuple) else (message,)):
            found.setdefault(text, filename)
    return found


def test_every_ui_string_has_an_english_translation():
    with open(WEBUI / "translations/en/LC_MESSAGES/messages.po", "rb") as handle:
        catalog = read_po(handle, locale="en")
    translated = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalog if m.id}
    untranslated = {text: where for text, where in _ui_strings().items()
                    if text not in translated or not translated[text].string or translated[text].fuzzy}
    assert untranslated == {}, "run `make catalog-update` and translate the new entries"


def test_the_catalog_has_no_placeholder_mismatch():
    with open(WEBUI / "translations/en/LC_MESSAGES/messages.po", "rb") as handle:
        catalog = read_po(handle, locale="en")
    problems = [m.id for m in catalog if m.id and m.string and m.check()]
    assert problems == []
