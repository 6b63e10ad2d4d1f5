"""The core never imports the adapters: dependencies point inward (webui -> appliance <- mta)."""
import ast
from pathlib import Path

FORBIDDEN = {"flask", "werkzeug", "jinja2", "aiosmtpd", "webui", "mta", "flask_wtf", "flask_babel"}
CORE = Path(__file__).resolve().parents[2] / "appliance"


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_imports_no_adapter():
    offenders = {str(p.relative_to(CORE)): sorted(_imported_roots(p) & FORBIDDEN)
                 for p in CORE.rglob("*.py") if _imported_roots(p) & FORBIDDEN}
    assert offenders == {}
