"""Access rules: every view declares who may call it (a test walks app.view_functions)."""
from __future__ import annotations

from collections.abc import Callable

PUBLIC = "public"


def access(rule: str) -> Callable:
    """Mark a view with the rule that guards it; unmarked views fail the access test."""

    def mark(view: Callable) -> Callable:
        view.access_rule = rule
        return view

    return mark
