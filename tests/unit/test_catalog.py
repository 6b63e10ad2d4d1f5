"""Every string the UI shows is in the translation catalog, translated (see `make catalog-update`)."""
import re
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


def test_macros_that_translate_are_imported_with_the_pages_catalog():
    # Without context a macro's strings go through Flask-Babel's own lookup, ~30 us a string (webui/i18n.py).
    templates = WEBUI / "templates"
    imports = [(page.name, found) for page in templates.rglob("*.html")
               for found in re.finditer(r'{%-?\s*from\s+["\']([^"\']+)["\']\s+import[^%]*%}',
                                        page.read_text(encoding="utf-8"))]
    translating = [(name, found[0]) for name, found in imports
                   if re.search(r"\b(_|gettext|ngettext)\(", (templates / found[1]).read_text("utf-8"))]
    assert translating and [pair for pair in translating if "with context" not in pair[1]] == []
