"""Schools and staff accounts."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from appliance import audit, db
from appliance.clock import school_year
from appliance.errors import InvalidInput, NotFound
from appliance.models import School, StaffUser
from appliance.models.school import ROLES

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10


def add_school(app, code: str, name: str, *, grades: int = 6, actor: str = "cli") -> School:
    """Create a school; its code is what staff and the CLI name it by."""
    code = code.strip()
    if not code or not code.replace("-", "").replace("_", "").isalnum() or not code.isascii():
        raise InvalidInput(f"学校コードは半角英数字で指定してください: {code!r}")
    if not 1 <= grades <= 12:
        raise InvalidInput(f"学年数は1〜12で指定してください: {grades}")
    with db.write():
        if School.select().where(School.code == code).exists():
            raise InvalidInput(f"学校コード {code} はすでに使われています")
        now = app.clock.now()
        school = School.create(code=code, name=name.strip(), grades=grades, school_year=school_year(now),
                               created_at=now)
        audit.record(app, actor, "school.add", school_id=school.id, detail={"code": code})
    return school


def get_school(code: str) -> School:
    """Return the school with this code, or raise NotFound."""
    school = School.get_or_none(School.code == code)
    if school is None:
        raise NotFound(f"学校コード {code} の学校はありません")
    return school


def add_staff_user(app, *, login: str, password: str, role: str, school: School | None = None,
                   display_name: str = "", actor: str = "cli") -> StaffUser:
    """Create a staff account with an argon2 password hash; operators belong to no school."""
    if role not in ROLES:
        raise InvalidInput(f"役割は {', '.join(ROLES)} のいずれかです: {role!r}")
    if (role == "operator") != (school is None):
        raise InvalidInput("operator は学校を持たず、ほかの役割は学校が必要です")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"パスワードは{MIN_PASSWORD_LENGTH}文字以上にしてください")
    login = login.strip()
    if not login:
        raise InvalidInput("ログイン名が空です")
    with db.write():
        if StaffUser.select().where(StaffUser.login == login).exists():
            raise InvalidInput(f"ログイン名 {login} はすでに使われています")
        user = StaffUser.create(school=school, role=role, login=login, display_name=display_name or login,
                                password_hash=_hasher.hash(password), created_at=app.clock.now())
        audit.record(app, actor, "staff.add", school_id=school.id if school else None,
                     subject_id=user.id, detail={"login": login, "role": role})
    return user


def check_password(user: StaffUser, password: str) -> bool:
    """Return whether the password matches the user's argon2 hash."""
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
