"""Guardian registration: one-time codes on the sheets, the web page and the empty mail, the mailed link.

The path (the README's "Registration"): the school prints a sheet per child with a
one-time code per guardian slot; the guardian enters it on the web page (with their
name, relationship and address) or sends an empty mail to ``entry-CODE@<mail domain>``.
Either way the appliance only mails a link to the address (a system mail,
:mod:`appliance.system_mail`): nothing is linked before the link is opened, since
anybody can type an address or forge a From line. Opening it proves the address
receives the school's mail (the carrier filter lets it through), confirms it (active),
uses the code and makes a pending GuardianLink; the school approves it
(:mod:`appliance.registrations`) and only then does targeting reach the guardian.

Codes: 10 characters of Crockford's base 32 (50 bits; 0/O, 1/I/L read alike), shown
as ``ABCDE-FGHJK``. Only a keyed hash is stored, so a copy of the database holds no
usable code. A code is single-use, expires (:data:`CODE_LIFETIME`) and reissuing a
slot voids its code. Against guessing: wrong codes are counted per client (the web
client's address, or the sender of an empty mail) and a client past
:data:`CODE_GUESSES` is refused until its window passes, valid code or not. With
~40,000 live codes (2^15) one guess succeeds with odds of 2^-35.

Siblings: a guardian who already receives the school's mail enters another child's
code on the page with their confirmed address (the mailed link links the child to
them, no second registration), or in the portal while signed in (linked at once).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from appliance import audit, contacts, db, ratelimit, system_mail, tokens
from appliance.errors import InvalidInput, NotFound
from appliance.models import Guardian, GuardianLink, Registration, RegistrationCode, School, Student

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"     # Crockford's base 32
CODE_LENGTH = 10
CODE_LIFETIME = timedelta(days=90)                # a term: sheets go home in April, late families register by June
SLOTS = (1, 2)                                    # guardian slots printed per child
MAIL_PREFIX = "entry-"                            # empty mails go to entry-CODE@<mail domain>
NAME_MAX, RELATIONSHIP_MAX = 60, 20
RELATIONSHIPS = ("母", "父", "祖母", "祖父", "その他")
MAIL_NAME = "保護者"        # a guardian registering by empty mail, until they give their name on the link's page

CODE_GUESSES = ratelimit.Limit("registration-code", 10, 3600)     # wrong codes per client
REGISTRATION_MAILS = ratelimit.Limit("registration-mail", 5, 3600)  # links mailed per address

SUBJECT = "連絡網への登録 / Registration"
BODY = ("連絡網への登録を受け付けました。下のリンクを開いて登録を完了してください（7日間有効）。\n"
        "このメールが届いたことで、迷惑メールの設定で学校のメールを受け取れることも確認できます。\n"
        "登録の後、学校が確認すると連絡が届くようになります。心当たりがない場合は、このメールを無視してください。\n\n"
        "To complete your registration, open the link below (valid for 7 days).")

_CROCKFORD = str.maketrans({"O": "0", "I": "1", "L": "1"})


class CodeRefused(InvalidInput):
    """A code that cannot be used; `reason` (unknown, expired, used, void, locked) is for logs and tests."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


_REFUSALS = {
    "unknown": "登録コードが正しくありません。用紙のコードをもう一度確かめてください",
    "expired": "この登録コードは有効期限が切れています。学校に用紙の再発行を依頼してください",
    "used": "この登録コードはすでに使われています。登録済みでない場合は学校にお問い合わせください",
    "void": "この登録コードは再発行により無効になりました。新しい用紙のコードをお使いください",
    "locked": "登録コードの誤りが続いたため、しばらく受け付けられません。1時間ほどしてからお試しください",
    "shape": "登録コードは英数字10文字です（ハイフンは不要です）",
}


def _refuse(reason: str) -> CodeRefused:
    return CodeRefused(reason, _REFUSALS[reason])


# --- codes -------------------------------------------------------------------------------------------

def new_code() -> str:
    """Return a fresh random code (CODE_LENGTH characters of ALPHABET)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """Return a typed code in canonical form (wide characters, case, hyphens and O/I/L forgiven), or raise."""
    text = unicodedata.normalize("NFKC", text or "").upper()
    code = "".join(c for c in text if c not in " -_").translate(_CROCKFORD)
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        raise _refuse("shape")
    return code


def format_code(code: str) -> str:
    """Return a code as printed: two groups of five."""
    return f"{code[:5]}-{code[5:]}"


def registration_url(app, code: str) -> str:
    """Return the URL a sheet's QR code holds: the web form with the code filled in."""
    return f"{app.config['web']['base_url'].rstrip('/')}/e/{code}"


def entry_address(app, code: str) -> str:
    """Return the address an empty mail registers with."""
    return f"{MAIL_PREFIX}{code}@{app.config['mail']['domain']}"


def code_hash(app, code: str) -> str:
    """Return the keyed hash a code is stored and found by."""
    key = hmac.new(app.token_key, b"renraku registration codes", hashlib.sha256).digest()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def count_live_codes(app, students: Iterable[Student]) -> int:
    """Return how many unexpired, unused codes these students have (what issuing again would void)."""
    ids = [s.id for s in students]
    return (RegistrationCode.select().where(RegistrationCode.student.in_(ids) & (RegistrationCode.status == "active")
                                            & (RegistrationCode.expires_at > app.clock.now())).count())


def issue_codes(app, school: School, students: Iterable[Student], *, actor: str,
                slots: Iterable[int] = SLOTS) -> dict[tuple[str, int], str]:
    """Issue a code per (student, slot), voiding the slot's old code; return them (the only time they exist)."""
    students, slots, now = list(students), list(slots), app.clock.now()
    if any(s.school_id != school.id for s in students):
        raise NotFound("児童生徒が見つかりません")
    codes = {(s.id, slot): new_code() for s in students for slot in slots}
    with db.write():
        voided = (RegistrationCode.update(status="void")
                  .where(RegistrationCode.student.in_([s.id for s in students]) & RegistrationCode.slot.in_(slots)
                         & (RegistrationCode.status == "active")).execute())
        db.insert_rows(RegistrationCode, [RegistrationCode.id, RegistrationCode.school, RegistrationCode.student,
                                          RegistrationCode.slot, RegistrationCode.code_hash, RegistrationCode.status,
                                          RegistrationCode.expires_at, RegistrationCode.created_at],
                       [(RegistrationCode.id.default(), school.id, student_id, slot, code_hash(app, code), "active",
                         now + CODE_LIFETIME, now) for (student_id, slot), code in codes.items()])
        audit.record(app, actor, "registration.codes_issue", school_id=school.id,
                     detail={"students": len(students), "codes": len(codes), "voided": voided})
    return codes


def find_code(app, code: str, *, client: str) -> RegistrationCode:
    """Return the live code a guardian typed (with its student and school), or raise CodeRefused.

    Wrong codes count against the client; past CODE_GUESSES every code is refused.
    """
    if app.limiter.exceeded(CODE_GUESSES, client):
        raise _refuse("locked")
    try:
        canonical = normalise_code(code)
    except CodeRefused:
        app.limiter.hit(CODE_GUESSES, client)
        raise
    row = (RegistrationCode.select(RegistrationCode, Student, School).join(Student)
           .switch(RegistrationCode).join(School)
           .where(RegistrationCode.code_hash == code_hash(app, canonical)).first())
    if row is None or row.student.status != "enrolled":
        app.limiter.hit(CODE_GUESSES, client)
        raise _refuse("unknown")
    _check_live(app, row)
    return row


def _check_live(app, row: RegistrationCode) -> None:
    if row.status in ("used", "void"):
        raise _refuse(row.status)
    if row.expires_at <= app.clock.now():
        raise _refuse("expired")


# --- asking: the web page and the empty mail -------------------------------------------------------

def register_by_web(app, code: str, guardian_name: str, relationship: str, address: str, *,
                    client: str = "") -> Registration:
    """Take the web page's registration: mail the address a link that completes it; return the registration."""
    name, relationship = _check_name(guardian_name), _check_relationship(relationship)
    found = find_code(app, code, client=client)
    registration, _outcome = _ask(app, found, address, name=name, relationship=relationship, via="web")
    return registration


def register_by_mail(app, code: str, address: str) -> str:
    """Answer an empty mail to entry-CODE@: mail the sender a registration link; return an outcome word for logs.

    Outcomes: ``created`` (a new registration), ``resent`` (the same address and code
    asked before: a fresh link), ``known`` (the address already receives the school's
    mail: the link adds this child to its guardian). Raises InvalidInput (a
    CodeRefused) for a bad, expired, used or voided code or a sender past the guessing
    limit, and InvalidInput for a malformed address or one sent too many links.
    """
    address = contacts.normalise("email", address)
    found = find_code(app, code, client="mail:" + address.lower())
    _registration, outcome = _ask(app, found, address, name="", relationship="", via="mail")
    return outcome


def _ask(app, found: RegistrationCode, address: str, *, name: str, relationship: str,
         via: str) -> tuple[Registration, str]:
    address = contacts.normalise("email", address)
    if not app.limiter.hit(REGISTRATION_MAILS, address.lower()):
        raise InvalidInput("このアドレスへの登録メールが続いています。しばらくしてからお試しください")
    now = app.clock.now()
    with db.write():
        known = contacts.find_contact_points(app, "email", address, ("active", "suspended"))
        if known:       # a guardian already reached here: the link adds the child to them (siblings)
            point, outcome = min(known, key=lambda p: (p.created_at, p.id)), "known"
        else:
            earlier = _waiting(found, contacts.find_contact_points(app, "email", address, ("pending",)))
            if earlier is not None:
                point, outcome = earlier.contact, "resent"
                earlier.status = "void"         # one working link per address and code: the newest
                earlier.save(only=[Registration.status])
            else:
                guardian = Guardian.create(name=name or MAIL_NAME, created_at=now)
                point, outcome = contacts.add_contact(app, guardian.id, "email", address, status="pending"), "created"
        message = system_mail.send_system_mail(app, contact=point, school=found.school, subject=SUBJECT, body=BODY,
                                               link_scope="register", action=f"registration.{via}")
        registration = Registration.create(code=found, guardian=point.guardian_id, contact=point, message=message,
                                           guardian_name=name, relationship=relationship, via=via, created_at=now)
    return registration, outcome


def _waiting(found: RegistrationCode, points) -> Registration | None:
    if not points:
        return None
    return (Registration.select().where((Registration.code == found) & (Registration.status == "waiting")
                                        & Registration.contact.in_([p.id for p in points]))
            .order_by(Registration.created_at.desc()).first())


def _check_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise InvalidInput("保護者氏名を入力してください")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"保護者氏名は{NAME_MAX}文字までです")
    return name


def _check_relationship(relationship: str) -> str:
    relationship = (relationship or "").strip()
    if not relationship:
        raise InvalidInput("続柄を選んでください")
    if len(relationship) > RELATIONSHIP_MAX:
        raise InvalidInput(f"続柄は{RELATIONSHIP_MAX}文字までです")
    return relationship


# --- the mailed link ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pending:
    """What the link's page shows: the child (the sheet's holder knows it) and what is still to be given."""

    registration: Registration
    school_name: str
    student_name: str
    grade: int
    class_name: str
    needs_name: bool          # an empty-mail registration of a new guardian: name and relationship asked here
    needs_relationship: bool


def pending(app, token: str) -> Pending:
    """Return the registration a mailed link completes, or raise (InvalidToken, InvalidInput when done or void)."""
    grant = tokens.resolve_token(app, token, "register")
    registration = Registration.get_or_none(Registration.message == grant.message_id)
    if registration is None:
        raise NotFound("この登録は見つかりません")
    if registration.status == "done":
        raise InvalidInput("この登録はすでに完了しています。学校の承認をお待ちください")
    if registration.status == "void":
        raise InvalidInput("このリンクは新しいメールのリンクに置き換わりました。最新のメールのリンクを開いてください")
    code = registration.code
    _check_live(app, code)
    student = code.student
    new_guardian = not GuardianLink.select().where(GuardianLink.guardian == registration.guardian_id).exists()
    return Pending(registration, code.school.name, student.name, student.grade, student.class_name,
                   needs_name=registration.via == "mail" and new_guardian,
                   needs_relationship=not registration.relationship)


def complete(app, token: str, *, guardian_name: str = "", relationship: str = "") -> GuardianLink:
    """Open the mailed link: confirm the address, use the code, make the pending link for the school to approve."""
    found = pending(app, token)
    registration = found.registration
    name = _check_name(guardian_name) if found.needs_name else registration.guardian_name
    relationship = _check_relationship(relationship if found.needs_relationship else registration.relationship)
    now = app.clock.now()
    with db.write():
        if not contacts.confirm_contact(app, registration.contact_id):
            raise NotFound("このアドレスは削除されています")
        guardian_id = registration.guardian_id
        twin = contacts.active_twin(registration.contact_id)
        if twin is not None:    # two registrations of one address crossed: the first confirmed keeps it
            contacts.remove_contact(app, guardian_id, registration.contact_id)
            guardian_id = twin.guardian_id
        elif name and not GuardianLink.select().where(GuardianLink.guardian == guardian_id).exists():
            Guardian.update(name=name).where(Guardian.id == guardian_id).execute()
        code = RegistrationCode.get_by_id(registration.code_id)
        _check_live(app, code)      # again inside the transaction: two links of one code race
        link = _link(app, guardian_id, code, relationship, actor=f"guardian:{guardian_id}", via=registration.via)
        registration.status, registration.completed_at = "done", now
        registration.save(only=[Registration.status, Registration.completed_at])
        (Registration.update(status="void").where((Registration.code == code) & (Registration.status == "waiting"))
         .execute())
    return link


def link_by_code(app, guardian_id: str, code: str, relationship: str, *, client: str = "") -> GuardianLink:
    """Link a signed-in guardian to another child by its code (siblings); pending until the school approves."""
    relationship = _check_relationship(relationship)
    found = find_code(app, code, client=client)
    with db.write():
        return _link(app, guardian_id, found, relationship, actor=f"guardian:{guardian_id}", via="portal")


def _link(app, guardian_id: str, code: RegistrationCode, relationship: str, *, actor: str, via: str) -> GuardianLink:
    """Use a code for a guardian: a pending link to its student (a rejected one asks again)."""
    now = app.clock.now()
    link = GuardianLink.get_or_none((GuardianLink.guardian == guardian_id) & (GuardianLink.student == code.student_id))
    if link is None:
        link = GuardianLink.create(guardian=guardian_id, student=code.student_id, relationship=relationship,
                                   status="pending", created_at=now)
    elif link.status == "rejected":
        link.status, link.relationship, link.created_at, link.decided_at = "pending", relationship, now, None
        link.save()
    code.status, code.used_at, code.guardian = "used", now, guardian_id
    code.save(only=[RegistrationCode.status, RegistrationCode.used_at, RegistrationCode.guardian])
    audit.record(app, actor, "registration.complete", school_id=code.school_id, subject_id=link.id,
                 detail={"student_id": code.student_id, "via": via, "slot": code.slot})
    return link
