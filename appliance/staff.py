"""Staff accounts: creation, sign-in with lockout and optional TOTP, sessions, teachers' classes.

Passwords are argon2 hashes. A session is valid while its user's ``session_epoch``
is the one it was opened with, so raising the epoch signs the user out everywhere
without any state in the web workers' memory.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import pyotp
from argon2.exceptions import InvalidHashError, VerificationError

from appliance import audit, db
from appliance.errors import ApplianceError, InvalidInput
from appliance.models import School, StaffAssignment, StaffUser
from appliance.models.school import ROLES
from appliance.targeting import GROUP_WORDS, All, InGroup, Not, Or, Rule, SchoolClass, parse_class

MIN_PASSWORD_LENGTH = 10
LOCK_AFTER = 5                       # failed sign-ins in a row
LOCK_FOR = timedelta(minutes=15)
TOTP_ISSUER = "Renraku"


class SignInRefused(ApplianceError):
    """Sign-in failed; the message never says whether the login exists."""


def add_staff_user(app, *, login: str, password: str, role: str, school: School | None = None,
                   display_name: str = "", actor: str = "cli") -> StaffUser:
    """Create a staff account with an argon2 password hash; operators belong to no school."""
    if role not in ROLES:
        raise InvalidInput(f"役割は {', '.join(ROLES)} のいずれかです: {role!r}")
    if (role == "operator") != (school is None):
        raise InvalidInput("operator は学校を持たず、ほかの役割は学校が必要です")
    _check_new_password(password)
    login = login.strip()
    if not login or len(login) > 64 or any(c.isspace() for c in login):
        raise InvalidInput("ログイン名は空白を含まない64文字以内にしてください")
    with db.write():
        if StaffUser.select().where(StaffUser.login == login).exists():
            raise InvalidInput(f"ログイン名 {login} はすでに使われています")
        user = StaffUser.create(school=school, role=role, login=login, display_name=display_name or login,
                                password_hash=app.passwords.hash(password), created_at=app.clock.now())
        audit.record(app, actor, "staff.add", school_id=school.id if school else None,
                     subject_id=user.id, detail={"login": login, "role": role})
    return user


def check_password(app, user: StaffUser, password: str) -> bool:
    """Return whether the password matches the user's argon2 hash."""
    try:
        return app.passwords.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(app, login: str, password: str, totp_code: str = "") -> StaffUser:
    """Return the user these credentials sign in, or raise SignInRefused (counting the failure)."""
    user = StaffUser.get_or_none(StaffUser.login == login.strip())
    if user is None:
        app.passwords.hash(password)    # one argon2 run, as a wrong password costs: no timing hint
        raise SignInRefused("ログイン名かパスワードが違います")
    now = app.clock.now()
    if user.locked_until is not None and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise SignInRefused(f"続けて失敗したため、このアカウントはあと{minutes}分ほどロックされています")
    if user.disabled:
        raise SignInRefused("このアカウントは無効にされています。管理者に連絡してください")
    if not check_password(app, user, password) or not _totp_ok(app, user, totp_code):
        _count_failure(app, user)
        raise SignInRefused("ログイン名かパスワード（または確認コード）が違います")
    with db.write():
        StaffUser.update(failed_logins=0, locked_until=None).where(StaffUser.id == user.id).execute()
        audit.record(app, user.login, "staff.sign_in", school_id=user.school_id, subject_id=user.id)
    return user


def _count_failure(app, user: StaffUser) -> None:
    with db.write():
        # Read again inside the write lock: wrong passwords sent at once must each count.
        failures = StaffUser.select(StaffUser.failed_logins).where(StaffUser.id == user.id).scalar() + 1
        locked_until = app.clock.now() + LOCK_FOR if failures >= LOCK_AFTER else None
        StaffUser.update(failed_logins=0 if locked_until else failures, locked_until=locked_until).where(
            StaffUser.id == user.id).execute()
        if locked_until:
            audit.record(app, "system", "staff.locked", school_id=user.school_id, subject_id=user.id)


def session_user(user_id: str, epoch: int) -> StaffUser | None:
    """Return the enabled user a session belongs to, or None when it has been ended."""
    user = StaffUser.get_or_none(StaffUser.id == user_id)
    if user is None or user.disabled or user.session_epoch != epoch:
        return None
    return user


def end_sessions(app, user: StaffUser, actor: str) -> int:
    """Sign the user out on every device; return the new epoch."""
    with db.write():
        StaffUser.update(session_epoch=StaffUser.session_epoch + 1).where(StaffUser.id == user.id).execute()
        audit.record(app, actor, "staff.end_sessions", school_id=user.school_id, subject_id=user.id)
    return StaffUser.get_by_id(user.id).session_epoch


def change_password(app, user: StaffUser, current: str, new: str) -> int:
    """Change one's own password; every other session ends. Return the new epoch."""
    if not check_password(app, user, current):
        raise InvalidInput("現在のパスワードが違います")
    return set_password(app, user, new, actor=user.login)


def set_password(app, user: StaffUser, new: str, *, actor: str) -> int:
    """Set a user's password (their own change, or an operator's reset); end their sessions."""
    _check_new_password(new)
    with db.write():
        StaffUser.update(password_hash=app.passwords.hash(new), failed_logins=0, locked_until=None,
                         session_epoch=StaffUser.session_epoch + 1).where(StaffUser.id == user.id).execute()
        audit.record(app, actor, "staff.password", school_id=user.school_id, subject_id=user.id)
    return StaffUser.get_by_id(user.id).session_epoch


def set_disabled(app, user: StaffUser, disabled: bool, *, actor: str) -> None:
    """Disable (which ends every session) or re-enable an account."""
    with db.write():
        StaffUser.update(disabled=disabled, session_epoch=StaffUser.session_epoch + 1).where(
            StaffUser.id == user.id).execute()
        audit.record(app, actor, "staff.disable" if disabled else "staff.enable",
                     school_id=user.school_id, subject_id=user.id)


def _check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"パスワードは{MIN_PASSWORD_LENGTH}文字以上にしてください")
    if len(password) > 256:
        raise InvalidInput("パスワードは256文字までです")


def new_totp_secret() -> str:
    """Return a fresh base32 TOTP secret to show (as a URI and text) before it is confirmed."""
    return pyotp.random_base32()


def totp_uri(user: StaffUser, secret: str) -> str:
    """Return the otpauth:// URI an authenticator app reads."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.login, issuer_name=TOTP_ISSUER)


def enable_totp(app, user: StaffUser, secret: str, code: str) -> None:
    """Turn TOTP on once the user proves their app shows the right code."""
    if not pyotp.TOTP(secret).verify(code.strip(), for_time=app.clock.now(), valid_window=1):
        raise InvalidInput("確認コードが違います。アプリに表示されている6桁の数字を入力してください")
    with db.write():
        StaffUser.update(totp_secret=app.sealer.seal(user.id, "totp", secret)).where(
            StaffUser.id == user.id).execute()
        audit.record(app, user.login, "staff.totp_on", school_id=user.school_id, subject_id=user.id)


def disable_totp(app, user: StaffUser, password: str) -> None:
    """Turn TOTP off; the password is asked again."""
    if not check_password(app, user, password):
        raise InvalidInput("パスワードが違います")
    with db.write():
        StaffUser.update(totp_secret=None).where(StaffUser.id == user.id).execute()
        audit.record(app, user.login, "staff.totp_off", school_id=user.school_id, subject_id=user.id)


def _totp_ok(app, user: StaffUser, code: str) -> bool:
    if user.totp_secret is None:
        return True
    secret = app.sealer.open(user.id, "totp", user.totp_secret)
    return pyotp.TOTP(secret).verify(code.strip(), for_time=app.clock.now(), valid_window=1)


def set_assignments(app, user: StaffUser, *, classes: Iterable[str] = (), clubs: Iterable[str] = (),
                    actor: str) -> None:
    """Replace the classes ('1-2') and clubs a teacher may compose to."""
    rows = [("class", c.strip()) for c in classes if c.strip()] + [("club", c.strip()) for c in clubs if c.strip()]
    for kind, value in rows:
        if kind == "class" and parse_class(value) is None:
            raise InvalidInput(f"クラスは「学年-組」で指定してください: {value}")
    with db.write():
        StaffAssignment.delete().where(StaffAssignment.staff_user == user.id).execute()
        for kind, value in dict.fromkeys(rows):
            StaffAssignment.create(staff_user=user, kind=kind, value=value)
        audit.record(app, actor, "staff.assign", school_id=user.school_id, subject_id=user.id,
                     detail={"classes": [v for k, v in rows if k == "class"],
                             "clubs": [v for k, v in rows if k == "club"]})


def teacher_scope(user: StaffUser) -> Rule | None:
    """Return the rule a teacher's audience is limited to; None for roles that are not limited."""
    if user.role != "teacher":
        return None
    terms = []
    for assignment in user.assignments.order_by(StaffAssignment.kind, StaffAssignment.value):
        if assignment.kind == "class":
            terms.append(SchoolClass(*parse_class(assignment.value)))
        else:
            terms.append(InGroup(GROUP_WORDS["club"], assignment.value))
    return Or(tuple(terms)) if terms else Not(All())


def assigned_classes(user: StaffUser) -> list[tuple[int, str]]:
    """Return a teacher's classes as (grade, class name), in order."""
    return [parse_class(a.value) for a in user.assignments.order_by(StaffAssignment.value) if a.kind == "class"]


