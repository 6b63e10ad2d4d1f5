"""The guardian's portal: sign-in by a mailed link, their children and messages, addresses, language, quiet hours,
routine mail (:mod:`appliance.routine_mail`).

No password: a guardian asks for a sign-in link for one of their active addresses and
gets it by mail (a system mail, :mod:`appliance.system_mail`); the link is good for an
hour and once. Whether an address is known is never told (the page says the same
either way), and how many links one address gets is limited
(:data:`appliance.ratelimit.SIGN_IN_MAILS`). What the web layer keeps after sign-in is
its own business (a signed cookie); the core only says which guardian the link was for.

Addresses: up to 4; a new one is pending until the link in the confirmation mail sent
to it is opened, and receives nothing else before. A suspended (bouncing) address can
be confirmed again the same way once the guardian has fixed their carrier's filter.
The last working address cannot be removed (the school could no longer reach them).
"""
from __future__ import annotations

from dataclasses import dataclass
from appliance import audit, contacts, db, system_mail, tokens
from appliance.errors import InvalidInput, NotFound
from appliance.models import (ContactPoint, Guardian, GuardianLink, Message, Receipt, Recipient, Reply, School,
                              Student, SurveyAnswer)
from appliance.ratelimit import SIGN_IN_MAILS
from appliance.routine_mail import set_routine_mail

LOCALES = ("ja", "en")
MESSAGES_SHOWN = 30

SIGN_IN_SUBJECT = "マイページへのログイン / Sign in"
SIGN_IN_BODY = ("マイページへのログインが依頼されました。下のリンクを押すとログインできます（1時間有効・1回限り）。\n"
                "心当たりがない場合は、このメールを無視してください。\n\n"
                "To sign in to your page, open the link below (valid for one hour, once).")
CONFIRM_SUBJECT = "メールアドレスの確認 / Confirm your address"
CONFIRM_BODY = ("学校からの連絡を受け取るアドレスとして登録するには、下のリンクを押してください（7日間有効）。\n"
                "このメールが届いたことで、迷惑メールの設定で学校のメールが受け取れることも確認できます。\n\n"
                "To receive the school's messages at this address, open the link below (valid for 7 days).")


def request_sign_in(app, address: str) -> int:
    """Mail a sign-in link to each guardian holding this active address; return how many were queued."""
    points = contacts.find_contact_points(app, "email", address)
    if not points or not app.limiter.hit(SIGN_IN_MAILS, points[0].lookup):
        return 0
    for point in points:
        system_mail.send_system_mail(app, contact=point, school=system_mail.guardian_school(point.guardian_id),
                                     subject=SIGN_IN_SUBJECT, body=SIGN_IN_BODY, link_scope="signin",
                                     action="portal.signin")
    return len(points)


def sign_in(app, token: str) -> str:
    """Use a sign-in link: return its guardian's id; the link works once (InvalidToken otherwise)."""
    grant = tokens.resolve_token(app, token, "signin")
    if not tokens.revoke_token(token):      # two tabs racing: only one signs in
        raise tokens.InvalidToken("used")
    return grant.guardian_id


def set_preferences(app, guardian_id: str, *, locale: str, quiet_from: int | None, quiet_until: int | None,
                    routine_mail: bool | None = None) -> None:
    """Set the guardian's language, quiet hours (Tokyo hours; both None for none) and routine mail (None: unchanged)."""
    if locale not in LOCALES:
        raise InvalidInput("言語の指定が正しくありません")
    if (quiet_from is None) != (quiet_until is None):
        raise InvalidInput("通知を控える時間は、開始と終了の両方を選んでください")
    for hour in (quiet_from, quiet_until):
        if hour is not None and not 0 <= hour <= 23:
            raise InvalidInput("時刻は0〜23時で選んでください")
    if quiet_from is not None and quiet_from == quiet_until:
        raise InvalidInput("開始と終了に同じ時刻は選べません")
    with db.write():
        Guardian.update(locale=locale, quiet_from=quiet_from, quiet_until=quiet_until).where(
            Guardian.id == guardian_id).execute()
        if routine_mail is not None:
            set_routine_mail(app, guardian_id, routine_mail)


# --- addresses ------------------------------------------------------------------------------------

def add_address(app, guardian_id: str, address: str) -> ContactPoint:
    """Add a pending address (the 5th is refused) and mail it a confirmation link."""
    with db.write():
        point = contacts.add_contact(app, guardian_id, "email", address, status="pending")
        _send_confirmation(app, point)
    return point


def resend_confirmation(app, guardian_id: str, contact_id: str) -> None:
    """Mail a pending or suspended (bouncing) address its confirmation link again."""
    point = contacts.get_own_contact(guardian_id, contact_id, "email")
    if point.status == "active":
        raise InvalidInput("このアドレスは確認済みです")
    _send_confirmation(app, point)


def _send_confirmation(app, point: ContactPoint) -> None:
    system_mail.send_system_mail(app, contact=point, school=system_mail.guardian_school(point.guardian_id),
                                 subject=CONFIRM_SUBJECT, body=CONFIRM_BODY, link_scope="confirm",
                                 action="portal.confirm")


def confirm_address(app, token: str) -> str:
    """Confirm the address a confirmation link was mailed to; return its guardian's id."""
    grant = tokens.resolve_token(app, token, "confirm")
    if not contacts.confirm_contact(app, system_mail.delivery_contact(grant.message_id)):
        raise NotFound("このアドレスは削除されています")
    audit.record(app, f"guardian:{grant.guardian_id}", "portal.address_confirm", subject_id=grant.message_id)
    return grant.guardian_id


def remove_address(app, guardian_id: str, contact_id: str) -> None:
    """Remove one of the guardian's addresses, but never the last active one."""
    point = contacts.get_own_contact(guardian_id, contact_id, "email")
    if point.status == "active" and contacts.count_live(guardian_id, "email", ("active",)) <= 1:
        raise InvalidInput("最後の確認済みアドレスは削除できません。先に別のアドレスを追加して確認してください")
    contacts.remove_contact(app, guardian_id, contact_id)


# --- what the portal shows ------------------------------------------------------------------------

@dataclass(frozen=True)
class Child:
    name: str
    school_name: str
    grade: int
    class_name: str
    status: str          # the link's: approved or pending


@dataclass(frozen=True)
class Received:
    message: Message
    school_name: str
    read: bool
    answered: bool
    link: str            # the message page (its read-report link)


def get_guardian(guardian_id: str) -> Guardian:
    """Return the signed-in guardian, or raise NotFound."""
    guardian = Guardian.get_or_none(Guardian.id == guardian_id)
    if guardian is None:
        raise NotFound("ログインし直してください")
    return guardian


def children(guardian_id: str) -> list[Child]:
    """Return the guardian's children (approved or waiting for the school), enrolled only."""
    rows = (GuardianLink.select(Student.name, School.name, Student.grade, Student.class_name, GuardianLink.status)
            .join(Student).join(School)
            .where((GuardianLink.guardian == guardian_id) & (GuardianLink.status != "rejected")
                   & (Student.status == "enrolled"))
            .order_by(School.name, Student.grade.desc(), Student.class_name).tuples())
    return [Child(*row) for row in rows]


def received_messages(app, guardian_id: str, *, limit: int = MESSAGES_SHOWN) -> list[Received]:
    """Return the messages the guardian received, newest first, with their read and answered state."""
    now = app.clock.now()
    rows = list(Message.select(Message, School.name.alias("school_name")).join(Recipient)
                .switch(Message).join(School)
                .where((Recipient.guardian == guardian_id) & (Message.kind == "notice") & (Message.send_at <= now))
                .order_by(Message.send_at.desc(), Message.id.desc()).limit(limit).objects())
    ids = [m.id for m in rows]
    read = {mid for (mid,) in Receipt.select(Receipt.message).where(
        (Receipt.guardian == guardian_id) & Receipt.message.in_(ids)).tuples()}
    answered = {mid for (mid,) in SurveyAnswer.select(SurveyAnswer.message).where(
        (SurveyAnswer.guardian == guardian_id) & SurveyAnswer.message.in_(ids)).tuples()}
    answered |= {mid for (mid,) in Reply.select(Reply.message).where(
        (Reply.guardian == guardian_id) & Reply.message.in_(ids)).tuples()}
    links = tokens.issue_tokens(app, "read", [(guardian_id, mid) for mid in ids])
    return [Received(m, m.school_name, m.id in read, m.id in answered, tokens.token_url(app, "read", links[(guardian_id, m.id)]))
            for m in rows]
