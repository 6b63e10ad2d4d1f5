"""Access rules: every view declares who may call it, and the declaration is what guards it.

A test walks ``app.view_functions`` and fails on any view without a rule. School
pages carry the school's code in their URL (``/admin/s/<code>/...``); the rule
checks that the signed-in user belongs to that school (operators reach every
school) and puts the school in ``g.school``. Another school's pages answer 404,
so changing a code or an id in the URL reveals nothing.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import abort, current_app, g, redirect, request, url_for

from appliance.models import School

PUBLIC = "public"              # anyone, signed in or not
STAFF = "staff"                # any signed-in account (its own settings)
TEACHER = "teacher"            # staff of the school in the URL: teachers, school admins, operators
SCHOOL_ADMIN = "school_admin"  # school admins of the school in the URL, and operators
OPERATOR = "operator"          # the provider's support desk only

RULES = (PUBLIC, STAFF, TEACHER, SCHOOL_ADMIN, OPERATOR)
_RANK = {"teacher": 1, "school_admin": 2, "operator": 3}
_NEEDED = {STAFF: 0, TEACHER: 1, SCHOOL_ADMIN: 2, OPERATOR: 3}


def access(rule: str) -> Callable:
    """Guard a view with one of RULES; unmarked views fail the access test."""
    if rule not in RULES:
        raise ValueError(f"unknown access rule {rule!r}")

    def mark(view: Callable) -> Callable:
        if rule == PUBLIC:
            view.access_rule = rule
            return view

        @functools.wraps(view)
        def guarded(*args, **kwargs):
            user = g.get("user")
            if user is None:
                return redirect(url_for("admin.session_new", next=request.full_path.rstrip("?")))
            if "code" in kwargs:
                g.school = _school_for(user, kwargs["code"])
            if _RANK[user.role] < _NEEDED[rule]:
                abort(403)
            return view(*args, **kwargs)

        guarded.access_rule = rule
        return guarded

    return mark


def may(endpoint: str) -> bool:
    """Whether the signed-in user's role passes an endpoint's rule, the school check aside (for menus, buttons
    and forms shown only to those who can use them)."""
    rule, user = current_app.view_functions[endpoint].access_rule, g.get("user")
    return rule == PUBLIC or (user is not None and _RANK[user.role] >= _NEEDED[rule])


def _school_for(user, code: str) -> School:
    school = School.get_or_none(School.code == code)
    if school is None or (user.role != "operator" and user.school_id != school.id):
        abort(404)
    return school


def safe_next(target: str | None, fallback: str) -> str:
    """Return target if it is a path on this site, else fallback: no open redirects."""
    if not target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return fallback
    return target
