"""Routine mail: a guardian may stop the school's routine notices (お知らせ) by email, and start them again.

Stopped by the List-Unsubscribe link (``/u/<token>``, RFC 8058 one-click included) or
address (``unsubscribe@``, the token in the Subject) every routine mail carries
(appliance/mail.py), or in the portal, where it is also turned back on. Off means that
releasing a routine message makes no email delivery for the guardian: a condition in
the snapshot's INSERT ... SELECT (:func:`appliance.messages.delivery_rows`, which already
joins the guardian for quiet hours), so a blast costs no more. Emergency messages (their
mail carries no List-Unsubscribe), system mail (sign-in links, confirmations) and push
are unaffected: nobody should miss an emergency by stopping the newsletter. Deliveries
already queued when it changes (a message scheduled for later) still go.

It is the guardian's own choice, so it is not audited; the guardian row keeps when it
last changed. Schools see only how many of their guardians have stopped it.
"""
from __future__ import annotations

import peewee

from appliance import db, tokens
from appliance.models import ContactPoint, Guardian


def set_routine_mail(app, guardian_id: str, enabled: bool) -> bool:
    """Turn a guardian's routine mail on or off; return whether it changed (the same choice again changes nothing)."""
    with db.write():
        return Guardian.update(routine_mail=enabled, routine_mail_changed_at=app.clock.now()).where(
            (Guardian.id == guardian_id) & (Guardian.routine_mail != enabled)).execute() > 0


def unsubscribe(app, token: str) -> str:
    """Stop routine mail for the guardian an unsubscribe token names; return their id (InvalidToken otherwise)."""
    grant = tokens.resolve_token(app, token, "unsubscribe")
    set_routine_mail(app, grant.guardian_id, False)
    return grant.guardian_id


def wanted() -> peewee.Node:
    """SQL over a row's ContactPoint and Guardian: whether a routine message is delivered to that contact point."""
    return (ContactPoint.kind != "email") | (Guardian.routine_mail == True)  # noqa: E712  (SQL, not Python)


def count_stopped(guardians: peewee.ModelSelect) -> int:
    """How many of the guardians (a SELECT of their ids) have stopped routine mail: a count, never who."""
    return Guardian.select().where(Guardian.id.in_(guardians) & (Guardian.routine_mail == False)).count()  # noqa: E712
