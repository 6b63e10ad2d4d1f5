"""Set-up commands: init, migrate, schools and staff accounts."""
from __future__ import annotations

from pathlib import Path

import click

from appliance import migrations
from appliance.cli.common import emit_json, pass_app, user_errors
from appliance.errors import NotFound
from appliance.models.school import ROLES
from appliance.runtime import init_data_dir
from appliance.schools import add_school, get_school
from appliance.models import StaffUser
from appliance.staff import add_staff_user, set_assignments, set_disabled, set_password


@click.command("init")
@click.pass_obj
def init_command(state) -> None:
    """Create the data dir: settings file, keys (0600) and database schema."""
    with user_errors():
        app = init_data_dir(state.data_dir)
    click.echo(f"initialised {app.data_dir}")


@click.command("migrate")
@pass_app
def migrate_command(app) -> None:
    """Apply pending database migrations (a fresh install applies them all)."""
    applied = migrations.migrate()
    emit_json({"applied": [f"{m.version:04d}_{m.name}" for m in applied]})


@click.group("school")
def school_group() -> None:
    """Schools served by this appliance."""


@school_group.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--grades", default=6, show_default=True, help="Number of grades (the top one graduates).")
@pass_app
def school_add(app, code: str, name: str, grades: int) -> None:
    """Add a school with CODE and NAME."""
    school = add_school(app, code, name, grades=grades)
    emit_json({"id": school.id, "code": school.code, "name": school.name})


@click.group("user")
def user_group() -> None:
    """Staff accounts."""


@user_group.command("add")
@click.option("--school", "school_code", help="School code (not for operators).")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--login", required=True)
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="File holding the password (keeps it out of the process list and shell history).")
@click.option("--name", "display_name", default="", help="Name shown in the UI.")
@pass_app
def user_add(app, school_code, role, login, password_file: Path, display_name) -> None:
    """Add a staff account (operator, school_admin or teacher)."""
    school = get_school(school_code) if school_code else None
    password = password_file.read_text(encoding="utf-8").rstrip("\n")
    user = add_staff_user(app, login=login, password=password, role=role, school=school,
                          display_name=display_name)
    emit_json({"id": user.id, "login": user.login, "role": user.role,
               "school": school.code if school else None})


def _get_user(login: str) -> StaffUser:
    user = StaffUser.get_or_none(StaffUser.login == login)
    if user is None:
        raise NotFound(f"ログイン名 {login} の職員はいません")
    return user


@user_group.command("assign")
@click.argument("login")
@click.option("--class", "classes", multiple=True, help="A class the teacher sends to, as GRADE-CLASS (repeatable).")
@click.option("--club", "clubs", multiple=True, help="A club the teacher sends to (repeatable).")
@pass_app
def user_assign(app, login: str, classes: tuple[str, ...], clubs: tuple[str, ...]) -> None:
    """Set the classes and clubs a teacher may send to (replaces the earlier ones)."""
    user = _get_user(login)
    set_assignments(app, user, classes=classes, clubs=clubs, actor="cli")
    emit_json({"login": user.login, "classes": list(classes), "clubs": list(clubs)})


@user_group.command("password")
@click.argument("login")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@pass_app
def user_password(app, login: str, password_file: Path) -> None:
    """Set a new password (the user is signed out everywhere and the lockout is lifted)."""
    user = _get_user(login)
    set_password(app, user, password_file.read_text(encoding="utf-8").rstrip("\n"), actor="cli")
    emit_json({"login": user.login, "password_changed": True})


@user_group.command("disable")
@click.argument("login")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@pass_app
def user_disable(app, login: str, enable: bool) -> None:
    """Disable an account (its sessions end at once), or enable it again."""
    user = _get_user(login)
    set_disabled(app, user, not enable, actor="cli")
    emit_json({"login": user.login, "disabled": not enable})


COMMANDS = [init_command, migrate_command, school_group, user_group]
