"""Staff accounts in the core: sign-in, lockout, sessions, TOTP, teachers' classes and clubs."""
import pyotp
import pytest

from appliance import staff as accounts
from appliance.errors import InvalidInput
from appliance.models import AuditEntry, StaffUser
from appliance.targeting import InGroup, Not, Or, SchoolClass
from tests.conftest import PASSWORD


def test_sign_in_with_the_right_password(app, staff):
    assert accounts.authenticate(app, "admin-a", PASSWORD).id == staff.admin.id
    assert AuditEntry.get(AuditEntry.action == "staff.sign_in").actor == "admin-a"


def test_wrong_password_and_unknown_login_get_the_same_answer(app, staff):
    with pytest.raises(accounts.SignInRefused) as wrong:
        accounts.authenticate(app, "admin-a", "nope")
    with pytest.raises(accounts.SignInRefused) as unknown:
        accounts.authenticate(app, "nobody", "nope")
    assert "違います" in str(wrong.value) and "違います" in str(unknown.value)


def test_five_failures_lock_the_account_for_fifteen_minutes(app, staff, clock):
    for _ in range(accounts.LOCK_AFTER):
        with pytest.raises(accounts.SignInRefused):
            accounts.authenticate(app, "admin-a", "wrong password")
    with pytest.raises(accounts.SignInRefused, match="ロック"):
        accounts.authenticate(app, "admin-a", PASSWORD)     # even the right password waits
    clock.advance(minutes=16)
    assert accounts.authenticate(app, "admin-a", PASSWORD).failed_logins == 0


def test_a_success_resets_the_failure_count(app, staff):
    with pytest.raises(accounts.SignInRefused):
        accounts.authenticate(app, "admin-a", "wrong password")
    accounts.authenticate(app, "admin-a", PASSWORD)
    assert StaffUser.get_by_id(staff.admin.id).failed_logins == 0


def test_disabled_accounts_cannot_sign_in_and_their_sessions_end(app, staff):
    epoch = StaffUser.get_by_id(staff.teacher.id).session_epoch
    accounts.set_disabled(app, staff.teacher, True, actor="op")
    assert accounts.session_user(staff.teacher.id, epoch) is None
    with pytest.raises(accounts.SignInRefused, match="無効"):
        accounts.authenticate(app, "teacher-a", PASSWORD)


def test_ending_sessions_invalidates_every_old_epoch(app, staff):
    old = staff.admin.session_epoch
    assert accounts.session_user(staff.admin.id, old) is not None
    new = accounts.end_sessions(app, staff.admin, actor="admin-a")
    assert accounts.session_user(staff.admin.id, old) is None
    assert accounts.session_user(staff.admin.id, new).id == staff.admin.id


def test_changing_the_password_needs_the_current_one_and_ends_other_sessions(app, staff):
    with pytest.raises(InvalidInput, match="現在のパスワード"):
        accounts.change_password(app, staff.admin, "wrong", "a new long password")
    with pytest.raises(InvalidInput, match="10文字"):
        accounts.change_password(app, staff.admin, PASSWORD, "short")
    epoch = accounts.change_password(app, staff.admin, PASSWORD, "a new long password")
    assert epoch == staff.admin.session_epoch + 1
    assert accounts.authenticate(app, "admin-a", "a new long password")


def test_totp_is_asked_once_enabled(app, staff, clock):
    secret = accounts.new_totp_secret()
    assert accounts.totp_uri(staff.operator, secret).startswith("otpauth://totp/Renraku:op?")
    with pytest.raises(InvalidInput, match="確認コード"):
        accounts.enable_totp(app, staff.operator, secret, "000000")
    accounts.enable_totp(app, staff.operator, secret, pyotp.TOTP(secret).at(clock.now()))
    stored = StaffUser.get_by_id(staff.operator.id).totp_secret
    assert secret.encode() not in bytes(stored)                 # sealed at rest
    with pytest.raises(accounts.SignInRefused):
        accounts.authenticate(app, "op", PASSWORD)
    assert accounts.authenticate(app, "op", PASSWORD, pyotp.TOTP(secret).at(clock.now()))
    accounts.disable_totp(app, StaffUser.get_by_id(staff.operator.id), PASSWORD)
    assert accounts.authenticate(app, "op", PASSWORD)


def test_a_teachers_scope_is_their_classes_and_clubs(app, staff):
    assert accounts.teacher_scope(staff.admin) is None
    assert accounts.teacher_scope(staff.teacher) == Not(accounts.All())     # no classes yet: nobody
    accounts.set_assignments(app, staff.teacher, classes=["1-1", " 2-3 "], clubs=["サッカー部"], actor="admin-a")
    assert accounts.teacher_scope(staff.teacher) == Or((
        SchoolClass(1, "1"), SchoolClass(2, "3"), InGroup("club", "サッカー部")))
    with pytest.raises(InvalidInput, match="学年-組"):
        accounts.set_assignments(app, staff.teacher, classes=["one"], actor="admin-a")


def test_logins_must_be_one_word(app, staff):
    with pytest.raises(InvalidInput, match="空白"):
        accounts.add_staff_user(app, login="two words", password=PASSWORD, role="teacher", school=staff.school)
