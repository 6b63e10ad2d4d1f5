"""System mail: what the appliance itself sends to one address (a sign-in link, an address confirmation).

Such mail goes out like every other message, through the database queue and the
appliance's own MTA, so it is DKIM-signed, retried, expires, and its bounces are
recorded against the address like any other. The design, chosen so that registration
(issue 7: confirmation mails, replies to empty mails) reuses it as it is:

- A system mail is a :class:`~appliance.models.Message` of kind ``system``: released at
  once, audience empty, one :class:`~appliance.models.Recipient` (the guardian) and one
  :class:`~appliance.models.Delivery` to exactly the contact point concerned, pending
  or not (a confirmation goes to the address that is not confirmed yet, which is the
  point). Staff lists and figures read notices only (``kind = 'notice'``), and the
  guardian's own message list too.
- The delivery is claimed at the emergency rank (0): somebody is waiting for it now,
  and it must not queue behind a blast. The message itself stays ``normal``, so the
  mail carries no 緊急 mark. Quiet hours do not apply.
- The mail is rendered by :mod:`appliance.mail` without the read-report link, the
  reply note and List-Unsubscribe. Its one link, if any, carries a capability token of
  the message's ``link_scope`` (``signin``, ``confirm``; issue 7 adds its own), derived
  like every token from (scope, guardian, message): the database keeps only its hash,
  the message body holds no secret, and rendering again after a crash gives the same
  link. The token is stored when the mail is queued, so its lifetime runs from the
  request, not from the moment the MTA got to it.
- The message belongs to a school (the schema wants one, and the mail's From name and
  List-Id name it): the school the guardian's request is about, by default the school
  of their first child.
"""
from __future__ import annotations

from appliance import audit, db, tokens
from appliance.errors import InvalidInput
from appliance.models import ContactPoint, Delivery, GuardianLink, Message, Recipient, School, Student

SYSTEM_RANK = 0     # claimed like emergency mail


def guardian_school(guardian_id: str) -> School:
    """Return the school a guardian's system mail speaks for: that of their first (approved first) child."""
    link = (GuardianLink.select(GuardianLink, Student).join(Student)
            .where(GuardianLink.guardian == guardian_id)
            .order_by(GuardianLink.status != "approved", GuardianLink.created_at).first())
    if link is None:
        raise InvalidInput("お子さまの登録がありません")
    return School.get_by_id(link.student.school_id)


def send_system_mail(app, *, contact: ContactPoint, school: School, subject: str, body: str,
                     link_scope: str | None = None, action: str = "system_mail") -> Message:
    """Queue one system mail to one email contact point, with a link of link_scope; return the message."""
    if contact.kind != "email":
        raise InvalidInput("メールアドレス以外には送れません")
    if link_scope is not None and link_scope not in tokens.LIFETIMES:
        raise ValueError(f"unknown token scope: {link_scope!r}")
    now = app.clock.now()
    with db.write():
        message = Message.create(school=school, subject=subject, body=body, audience="", priority="normal",
                                 channels="email", send_at=now, created_at=now, status="released", kind="system",
                                 link_scope=link_scope)
        recipient = Recipient.create(message=message, guardian=contact.guardian_id)
        Delivery.create(message=message, recipient=recipient, contact=contact.id, channel="email",
                        priority=SYSTEM_RANK, due_at=now, updated_at=now)
        if link_scope is not None:
            tokens.issue_tokens(app, link_scope, [(contact.guardian_id, message.id)])
        audit.record(app, f"guardian:{contact.guardian_id}", f"{action}.queue", school_id=school.id,
                     subject_id=message.id)
    return message


def delivery_contact(message_id: str) -> str:
    """Return the contact point id a system mail was sent to."""
    return Delivery.get(Delivery.message == message_id).contact_id
