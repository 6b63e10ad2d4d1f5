"""`appliance registration ...`: registration sheets (issuing their codes) from the command line."""
from __future__ import annotations

from pathlib import Path

import click

from appliance import registration_sheets, roster
from appliance.cli.common import emit_json, pass_app
from appliance.schools import get_school


@click.group("registration")
def registration_group() -> None:
    """Guardian registration: sheets with one-time codes and QR codes."""


@registration_group.command("sheets")
@click.option("--school", "school_code", required=True, help="The school's code.")
@click.option("--class", "class_ref", help="A class as GRADE-CLASS (1-1): one page per child.")
@click.option("--student", help="One child: seat 3-1-12, 学籍番号 or ID.")
@click.option("--reissue", is_flag=True, help="Void live codes of these children and issue new ones.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The PDF to write.")
@pass_app
def registration_sheets_command(app, school_code: str, class_ref: str | None, student: str | None, reissue: bool,
                                out: str) -> None:
    """Issue codes for a class or a child and write their A4 registration sheets as a PDF."""
    if bool(class_ref) == bool(student):
        raise click.UsageError("give --class or --student")
    school = get_school(school_code)
    students = ([roster.find_student(school, student)] if student
                else roster.find_class(school, class_ref))
    pdf = registration_sheets.issue_sheets(app, school, students, actor="cli", reissue=reissue)
    Path(out).write_bytes(pdf)
    emit_json({"school": school.code, "pages": len(students), "out": out})


COMMANDS = [registration_group]
