"""The guardian's CoCo-net page: their own children and the notices, tiny, without JavaScript.

Caching: the page is personal (a child's state), so it is ``private``: a shared proxy
must not store it, even though the token in the URL would keep families apart, since
a stored copy of a child's safety is out of the school's hands. It is ``no-cache``
because every opening must reach us to be recorded as a read report; a strong ETag
lets the phone revalidate and get a 304 of a few hundred bytes when nothing changed,
which is what helps on a congested network. The page is the same for anyone holding
the link: no cookie is set and it is rendered in the guardian's own language, so it
varies on nothing else.

CSRF without a session and the rate limit on link guessing: :mod:`webui.capability`,
shared with the guardian's message pages.

Every guardian of a school may open the page within a minute of an event's notice, so
it is kept ready (webui/skeleton.py) per shape: the page with the guardian's name, their
children's names, classes, places, notes and times, their reply and the link taken out.
The guardians whose children share the states show the same shape (in a burst, most of
a school), and the front (webui/front.py) answers their openings from it without Flask.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from flask import current_app, g, make_response, redirect, request, url_for
from markupsafe import Markup
from werkzeug.http import generate_etag

from appliance import coconet
from appliance.errors import ApplianceError
from webui import capability
from webui.access import PUBLIC, access
from webui.group_commit import before_answer
from webui.i18n import render_in, tokyo_time
from webui.coconet import bp
from webui.skeleton import Ready, Skeleton

FORM_PURPOSE = "coconet-form"
# Inline, so the page is one request on a congested network; the CSP allows exactly this text.
INLINE_CSS = (Path(__file__).parent.parent / "static" / "coconet-guardian.css").read_text(encoding="utf-8")


@bp.get("/c/<token>")
@access(PUBLIC)
def guardian_show(token: str):
    """The page a guardian's link opens; each opening is recorded (a HEAD, a link checker, records nothing)."""
    view = _view(token)
    if request.method == "GET" and (rows := coconet.check_rows(g.appliance, view, "open")):
        before_answer(coconet.insert_checks, rows)
    body = _keep_ready(view, token)
    response = capability.private_headers(make_response(body), view.locale, inline_style=INLINE_CSS)
    response.set_etag(generate_etag(body))
    return response.make_conditional(request)


@bp.post("/c/<token>")
@capability.checks_form_token
@access(PUBLIC)
def guardian_check(token: str):
    """Record "確認しました" or a short reply, then show the page again."""
    view = _view(token)
    capability.check_form_token(FORM_PURPOSE, token)
    kind = "reply" if "reply" in request.form else "confirm"
    try:
        coconet.record_check(g.appliance, view, kind, event_id=request.form.get("event_id"),
                             body=request.form.get("reply", ""))
    except ApplianceError as refused:
        return _page(view, token, error=str(refused), status=400)
    return redirect(url_for("coconet.guardian_show", token=token, _anchor="done"), 303)


def _view(token: str) -> coconet.GuardianView:
    view = coconet.link_view(g.appliance, token)
    if view is None or capability.over_limit():
        capability.refuse(token, "coconet")
    return view


def _page(view: coconet.GuardianView, token: str, *, error: str, status: int):
    html = _html(view, token, capability.form_token(FORM_PURPOSE, token), error=error)
    return capability.private_headers(make_response(html, status), view.locale, inline_style=INLINE_CSS)


def _html(view: coconet.GuardianView, token: str, form_token: str, *, error: str = "") -> str:
    return render_in(view.locale, "coconet/guardian.html", view=view, token=token, form_token=form_token,
                     inline_css=Markup(INLINE_CSS), error=error, reply_limit=coconet.MAX_REPLY)


# --- the page kept ready (webui/skeleton.py) -----------------------------------------------------

def front_answer(flask_app, token: str) -> Ready | None:
    """What the front answers an opening with, without Flask: the page kept ready for its shape, the opening to
    commit first. None for anything else (an unknown or expired link, a shape not kept yet): Flask."""
    appliance = flask_app.extensions["appliance"]
    view = coconet.link_view(appliance, token)
    if view is None:
        return None
    body = ready_page(flask_app, view, token)
    if body is None:
        return None
    rows = coconet.check_rows(appliance, view, "open")
    return Ready(body, view.locale, [(coconet.insert_checks, rows)] if rows else [], INLINE_CSS, generate_etag(body))


def ready_page(flask_app, view: coconet.GuardianView, token: str) -> bytes | None:
    """The guardian's page from the skeleton kept for its shape (None: none yet)."""
    shape, values = _personal_values(view)
    skeleton = flask_app.extensions["ready_pages"].get(shape)
    return None if skeleton is None else _fill(flask_app, skeleton, values, token)


def _keep_ready(view: coconet.GuardianView, token: str) -> bytes:
    """The guardian's page from the skeleton kept for its shape, rendered and kept first if there is none."""
    shape, values = _personal_values(view)

    def render(marker: dict[str, str]) -> str:
        return _html(_personal(view, lambda slot, value: marker[slot]), marker["token"], marker["form_token"])
    skeleton = current_app.extensions["ready_pages"].kept(shape, render, [*values, "token", "form_token"])
    return _fill(current_app, skeleton, values, token)


def _fill(flask_app, skeleton: Skeleton, values: dict[str, str], token: str) -> bytes:
    return skeleton.fill({**values, "token": token, "form_token": capability.form_token(FORM_PURPOSE, token,
                                                                                         flask_app)})


def _personal_values(view: coconet.GuardianView) -> tuple[tuple, dict[str, str]]:
    """The page's shape (its key among the pages kept ready) and its personal values as shown, by slot.

    The shape is the view with its personal values replaced by their slots' names: the view is tuples all the
    way down, so every field it has counts in the key; what the page shows is in it or a slot.
    """
    values = {}

    def take(slot: str, value) -> str:
        values[slot] = tokyo_time(value) if isinstance(value, datetime) else str(value)
        return slot
    return ("coconet", _personal(view, take)), values


def _personal(view: coconet.GuardianView, put: Callable[[str, object], object]) -> coconet.GuardianView:
    """The view with each value personal to the guardian replaced by ``put(slot, value)``; an empty value stays
    (the page shows it by leaving something out), and what the page does not show is dropped."""
    def own(slot: str, value):
        return put(slot, value) if value else value

    events = tuple(ev._replace(children=tuple(_personal_child(f"{e}.{c}", child, own)
                                              for c, child in enumerate(ev.children)),
                               confirmed_at=own(f"{e}.confirmed", ev.confirmed_at), reply=own(f"{e}.reply", ev.reply))
                   for e, ev in enumerate(view.events))
    return view._replace(guardian_id="", guardian_name=own("name", view.guardian_name), events=events)


def _personal_child(slot: str, child: coconet.ChildView, own: Callable[[str, object], object]) -> coconet.ChildView:
    state, pickup = child.state, child.pickup
    return coconet.ChildView(
        own(f"{slot}.name", child.name), own(f"{slot}.grade", child.grade), own(f"{slot}.class", child.class_name),
        state and coconet.ChildState(state.state, own(f"{slot}.place", state.place), own(f"{slot}.note", state.note),
                                     "", own(f"{slot}.at", state.at)),
        pickup and coconet.Pickup(own(f"{slot}.collector", pickup.collector), "",
                                  own(f"{slot}.collected", pickup.collected_at)))
