"""Managing other people's staff accounts: the operator for everyone, a school_admin for their school.

A *scope* is the school whose accounts may be managed, or None for the operator (every
account). Initial and reset passwords are generated here, returned once for the page to
show, and only their argon2 hash is kept (appliance.staff).
"""
from __future__ import annotations

import secrets

import peewee

from appliance import roster, staff
from appliance.errors import InvalidInput, NotFound
from appliance.models import School, StaffAssignment, StaffUser, StudentGroup
from appliance.models.school import ROLES

SCHOOL_ROLES = ("school_admin", "teacher")     # what a school_admin may create in their school
# No 0/O, 1/l/I: the password is read off a screen and typed on a phone.
_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def generate_password() -> str:
    """Return a random password of 16 characters in groups of four (about 93 bits)."""
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return "-".join(chars[i:i + 4] for i in range(0, 16, 4))


def roles_for(scope: School | None) -> tuple[str, ...]:
    """Return the roles an account made in this scope may have (school scopes make no operators)."""
    return ROLES if scope is None else SCHOOL_ROLES


def list_accounts(scope: School | None, *, school: School | None = None) -> list[StaffUser]:
    """Return the accounts in scope (narrowed to one school when given), school and role loaded."""
    query = (StaffUser.select(StaffUser, School).join(School, peewee.JOIN.LEFT_OUTER)
             .order_by(School.code.is_null(False), School.code, StaffUser.role, StaffUser.login))
    school = scope or school
    if school is not None:
        query = query.where(StaffUser.school == school)
    return list(query)


def get_account(scope: School | None, user_id: str) -> StaffUser:
    """Return the account with this id if it is in scope, else raise NotFound (another school's is not there)."""
    user = StaffUser.get_or_none(StaffUser.id == user_id)
    if user is None or (scope is not None and user.school_id != scope.id):
        raise NotFound("職員アカウントが見つかりません")
    return user


def create_account(app, scope: School | None, *, role: str, school: School | None, login: str,
                   display_name: str, actor: str) -> tuple[StaffUser, str]:
    """Create an account with a generated password; return it and the password (to show once)."""
    if role not in roles_for(scope):
        raise InvalidInput("この役割のアカウントは作成できません")
    if scope is not None:
        school = scope
    password = generate_password()
    user = staff.add_staff_user(app, login=login, password=password, role=role, school=school,
                                display_name=display_name.strip(), actor=actor)
    return user, password


def reset_password(app, user: StaffUser, *, actor: str) -> str:
    """Give the account a new generated password (ending its sessions); return it to show once."""
    password = generate_password()
    staff.set_password(app, user, password, actor=actor)
    return password


def school_classes(school: School) -> list[str]:
    """Return the school's classes ('1-2') that have enrolled students, in order."""
    return [f"{grade}-{name}" for grade, name in roster.school_classes(school)]


def school_clubs(school: School) -> list[StudentGroup]:
    """Return the school's clubs (their keys are what a teacher's assignment names)."""
    return list(StudentGroup.select().where((StudentGroup.school == school) & (StudentGroup.kind == "club"))
                .order_by(StudentGroup.name))


def assignments_of(user: StaffUser) -> dict[str, list[str]]:
    """Return a teacher's assigned classes and clubs: {"class": [...], "club": [...]}."""
    found: dict[str, list[str]] = {"class": [], "club": []}
    for kind, value in (StaffAssignment.select(StaffAssignment.kind, StaffAssignment.value)
                        .where(StaffAssignment.staff_user == user).order_by(StaffAssignment.value).tuples()):
        found[kind].append(value)
    return found
