"""`appliance user ...`: accounts from the command line (operator: no --school)."""
from appliance.models import StaffAssignment, StaffUser
from tests.conftest import ok


def test_user_add_for_each_role(cli):
    assert ok(cli("user", "add", "--role", "operator", "--login", "op", "--password-file", cli.password_file))[
        "school"] is None
    made = ok(cli("user", "add", "--school", "S1", "--role", "teacher", "--login", "t1",
                  "--password-file", cli.password_file, "--name", "1年1組担任"))
    assert made["role"] == "teacher" and made["school"] == "S1"
    refused = cli("user", "add", "--role", "teacher", "--login", "t2", "--password-file", cli.password_file)
    assert refused.exit_code == 1 and "学校が必要" in refused.stderr


def test_assign_a_teachers_classes_and_clubs(cli):
    ok(cli("user", "add", "--school", "S1", "--role", "teacher", "--login", "t1", "--password-file", cli.password_file))
    assert ok(cli("user", "assign", "t1", "--class", "1-1", "--class", "1-2", "--club", "サッカー部"))["classes"] == [
        "1-1", "1-2"]
    assert {(a.kind, a.value) for a in StaffAssignment.select()} == {
        ("class", "1-1"), ("class", "1-2"), ("club", "サッカー部")}
    assert "学年-組" in cli("user", "assign", "t1", "--class", "first").stderr


def test_password_reset_and_disable(cli):
    ok(cli("user", "add", "--school", "S1", "--role", "school_admin", "--login", "a1",
           "--password-file", cli.password_file))
    epoch = StaffUser.get(StaffUser.login == "a1").session_epoch
    assert ok(cli("user", "password", "a1", "--password-file", cli.password_file))["password_changed"]
    assert StaffUser.get(StaffUser.login == "a1").session_epoch == epoch + 1
    assert ok(cli("user", "disable", "a1"))["disabled"] is True
    assert ok(cli("user", "disable", "a1", "--enable"))["disabled"] is False
    missing = cli("user", "disable", "nobody")
    assert missing.exit_code == 1 and "nobody" in missing.stderr
