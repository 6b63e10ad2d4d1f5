"""Schools (their staff accounts are in appliance.staff)."""
from __future__ import annotations

from appliance import audit, db, notice_templates
from appliance.clock import school_year
from appliance.errors import InvalidInput, NotFound
from appliance.models import School


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
        notice_templates.seed_defaults(app, school)
        audit.record(app, actor, "school.add", school_id=school.id, detail={"code": code})
    return school


def set_teacher_needs_approval(app, school: School, needed: bool, *, actor: str) -> School:
    """Choose whether teachers' messages wait for a school_admin's approval before they are sent."""
    with db.write():
        School.update(teacher_needs_approval=needed).where(School.id == school.id).execute()
        audit.record(app, actor, "school.approval", school_id=school.id, detail={"teacher_needs_approval": needed})
    return School.get_by_id(school.id)


def get_school(code: str) -> School:
    """Return the school with this code, or raise NotFound."""
    school = School.get_or_none(School.code == code)
    if school is None:
        raise NotFound(f"学校コード {code} の学校はありません")
    return school

