"""Roster commands: import the school's class list, year rollover, transfers, clubs and routes."""
from __future__ import annotations

import click

from appliance import roster
from appliance.cli.common import emit_json, pass_app
from appliance.roster_import import import_roster
from appliance.schools import get_school

school_option = click.option("--school", "school_code", required=True, help="School code.")
student_option = click.option("--student", "ref", required=True,
                              help="Seat G-C-N (e.g. 3-1-12), 学籍番号, or the student's ID.")
group_option = click.option("--group", "spec", required=True, help="KIND:NAME, kind club, route or custom.")


@click.group("roster")
def roster_group() -> None:
    """Students, their classes, clubs and commute routes."""


@roster_group.command("import")
@school_option
@click.argument("file", type=click.File("rb"))
@click.option("--with-guardians", is_flag=True,
              help="Also create approved guardians from 保護者氏名 and メール1..メール4.")
@pass_app
def roster_import(app, school_code: str, file, with_guardians: bool) -> None:
    """Import FILE (CSV from Excel, Shift_JIS or UTF-8); nothing is written if any line is wrong."""
    emit_json(import_roster(app, get_school(school_code), file.read(), with_guardians=with_guardians))


@roster_group.command("promote")
@school_option
@click.option("--classes", type=click.File("rb"),
              help="New classes and numbers for the promoted grades (same CSV format as import).")
@click.option("--force", is_flag=True, help="Roll over again although this school year is done.")
@pass_app
def roster_promote(app, school_code: str, classes, force: bool) -> None:
    """Year rollover: everyone moves up a grade and the top grade graduates."""
    emit_json(roster.promote_students(app, get_school(school_code),
                                      classes=classes.read() if classes else None, force=force))


@roster_group.command("transfer-out")
@school_option
@student_option
@pass_app
def roster_transfer_out(app, school_code: str, ref: str) -> None:
    """Mark a student transferred out; messages stop at once."""
    school = get_school(school_code)
    emit_json(roster.describe_student(roster.transfer_out(app, school, ref)))


@roster_group.command("transfer-in")
@school_option
@click.option("--grade", type=int, required=True)
@click.option("--class", "class_name", required=True)
@click.option("--number", type=int, required=True, help="出席番号.")
@click.option("--name", required=True)
@click.option("--furigana", default="")
@click.option("--student-number", default=None, help="学籍番号.")
@click.option("--guardians-from", "guardians_from", default=None,
              help="Link the guardians of this student: SCHOOLCODE:REF or an ID.")
@pass_app
def roster_transfer_in(app, school_code: str, grade: int, class_name: str, number: int, name: str,
                       furigana: str, student_number: str | None, guardians_from: str | None) -> None:
    """Enrol a student who moves in, optionally keeping a sibling's or their own old guardians."""
    source = roster.find_student_anywhere(guardians_from) if guardians_from else None
    student = roster.transfer_in(app, get_school(school_code), grade=grade, class_name=class_name,
                                 number=number, name=name, furigana=furigana,
                                 student_number=student_number, guardians_from=source)
    emit_json(roster.describe_student(student))


@roster_group.command("join")
@school_option
@student_option
@group_option
@pass_app
def roster_join(app, school_code: str, ref: str, spec: str) -> None:
    """Put a student in a club, route or custom group (made if missing)."""
    emit_json({"changed": roster.join_group(app, get_school(school_code), ref, spec)})


@roster_group.command("leave")
@school_option
@student_option
@group_option
@pass_app
def roster_leave(app, school_code: str, ref: str, spec: str) -> None:
    """Take a student out of a club, route or custom group."""
    emit_json({"changed": roster.leave_group(app, get_school(school_code), ref, spec)})


@roster_group.command("show")
@school_option
@student_option
@pass_app
def roster_show(app, school_code: str, ref: str) -> None:
    """Print a student: seat, name, status, groups and guardian counts (never contact data)."""
    emit_json(roster.describe_student(roster.find_student(get_school(school_code), ref)))


COMMANDS = [roster_group]
