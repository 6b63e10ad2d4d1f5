"""Staff account management: the operator for every account, a school_admin for their own school."""
import html
import re

import pytest

from appliance import staff as accounts
from appliance.models import AuditEntry, StaffAssignment, StaffUser
from tests.conftest import PASSWORD


def body(response) -> str:
    return response.get_data(as_text=True)


def shown_password(page: str) -> str:
    return re.search(r'<p class="secret"><code>([^<]+)</code>', page).group(1)


# --- the operator ------------------------------------------------------------------------------

def test_operator_lists_every_account_and_filters_by_school(signed_in):
    client = signed_in("op")
    page = body(client.get("/admin/staff"))
    assert all(login in page for login in ("op", "admin-a", "teacher-a", "admin-b"))
    assert "運用担当" in page and "学校管理者" in page and "教員" in page
    page = body(client.get("/admin/staff", query_string={"school": "sch-b"}))
    assert "admin-b" in page and "teacher-a" not in page


def test_the_list_shows_disabled_locked_and_totp(app, signed_in, staff, clock):
    accounts.set_disabled(app, staff.teacher, True, actor="test")
    for _ in range(accounts.LOCK_AFTER):
        with pytest.raises(accounts.SignInRefused):
            accounts.authenticate(app, "admin-b", "wrong password")
    page = body(signed_in("op").get("/admin/staff"))
    rows = {login: row for row in page.split("<tr>") for login in ("teacher-a", "admin-b", "admin-a")
            if f">{login}</a>" in row}
    assert "無効" in rows["teacher-a"] and "ロック中" in rows["admin-b"] and "有効" in rows["admin-a"]


def test_operator_creates_an_account_and_sees_the_password_once(app, signed_in, client):
    op = signed_in("op")
    assert op.get("/admin/staff/new").status_code == 200
    response = op.post_form("/admin/staff", {"role": "teacher", "school": "sch-b", "login": "teacher-b",
                                             "display_name": "二宮<script>先生</script>"})
    assert response.status_code == 200
    page = body(response)
    password = shown_password(page)
    assert len(password) >= 16 and "二宮&lt;script&gt;先生&lt;/script&gt;" in page and "<script>先生" not in page
    user = StaffUser.get(StaffUser.login == "teacher-b")
    assert user.school.code == "sch-b" and user.role == "teacher"
    assert user.password_hash.startswith("$argon2") and password not in user.password_hash
    assert password not in body(op.get(f"/admin/staff/{user.id}"))   # shown once, never again
    assert all(password not in e.detail for e in AuditEntry.select())
    assert client.sign_in("teacher-b", password).status_code == 302


def test_operator_creates_an_operator_without_a_school(signed_in):
    response = signed_in("op").post_form("/admin/staff", {"role": "operator", "school": "", "login": "op2",
                                                          "display_name": "二人目"})
    assert response.status_code == 200
    assert StaffUser.get(StaffUser.login == "op2").school is None


@pytest.mark.parametrize(("data", "message"), [
    ({"role": "teacher", "school": "", "login": "t", "display_name": "x"}, "ほかの役割は学校が必要です"),
    ({"role": "operator", "school": "sch-a", "login": "o", "display_name": "x"}, "operator は学校を持たず"),
    ({"role": "teacher", "school": "sch-a", "login": "admin-a", "display_name": "x"}, "すでに使われています"),
    ({"role": "teacher", "school": "sch-a", "login": "with space", "display_name": "x"}, "空白を含まない"),
])
def test_bad_account_input_is_refused_in_japanese_keeping_what_was_typed(signed_in, data, message):
    response = signed_in("op").post_form("/admin/staff", data)
    assert response.status_code == 400
    page = html.unescape(body(response))
    assert message in page and f'value="{data["login"]}"' in page


def test_disabling_signs_the_user_out_and_enabling_lets_them_back(signed_in, staff):
    teacher = signed_in("teacher-a")
    assert teacher.get("/admin/s/sch-a/").status_code == 200
    op = signed_in("op")
    assert op.post_form(f"/admin/staff/{staff.teacher.id}/disable").status_code == 302
    assert teacher.get("/admin/s/sch-a/").status_code == 302          # back to the sign-in page
    assert "無効にされています" in body(teacher.sign_in("teacher-a"))
    assert op.post_form(f"/admin/staff/{staff.teacher.id}/enable").status_code == 302
    assert teacher.sign_in("teacher-a").status_code == 302
    actions = [e.action for e in AuditEntry.select().where(AuditEntry.subject_id == staff.teacher.id)]
    assert "staff.disable" in actions and "staff.enable" in actions


def test_password_reset_shows_a_new_password_once_and_ends_sessions(signed_in, staff, client):
    teacher = signed_in("teacher-a")
    response = signed_in("op").post_form(f"/admin/staff/{staff.teacher.id}/password")
    password = shown_password(body(response))
    assert teacher.get("/admin/s/sch-a/").status_code == 302
    assert client.sign_in("teacher-a", PASSWORD).status_code == 400
    assert client.sign_in("teacher-a", password).status_code == 302
    assert StaffUser.get_by_id(staff.teacher.id).password_hash.startswith("$argon2id$")


def test_nobody_disables_or_resets_their_own_account_here(signed_in, staff):
    op = signed_in("op")
    assert op.post_form(f"/admin/staff/{staff.operator.id}/disable").status_code == 400
    assert op.post_form(f"/admin/staff/{staff.operator.id}/password").status_code == 400
    assert op.get("/admin/").status_code == 200


def test_teacher_assignments_are_set_from_the_roster(signed_in, staff, roster):
    op = signed_in("op")
    page = body(op.get(f"/admin/staff/{staff.teacher.id}"))
    assert 'value="1-1"' in page and 'value="6-2"' in page
    club = re.search(r'name="clubs" value="([^"]+)"', page).group(1)
    assert op.post_form(f"/admin/staff/{staff.teacher.id}/assignments",
                        {"classes": ["1-1", "2-2"], "clubs": [club]}).status_code == 302
    assigned = {(a.kind, a.value) for a in StaffAssignment.select()}
    assert assigned == {("class", "1-1"), ("class", "2-2"), ("club", html.unescape(club))}
    page = body(op.get(f"/admin/staff/{staff.teacher.id}"))
    assert 'value="1-1" checked' in page and 'value="1-2" checked' not in page


def test_assignments_are_for_teachers_only(signed_in, staff):
    response = signed_in("op").post_form(f"/admin/staff/{staff.admin.id}/assignments", {"classes": ["1-1"]})
    assert response.status_code == 400 and "教員" in body(response)


# --- a school_admin, for their own school --------------------------------------------------------

def test_school_admin_manages_only_their_school(signed_in, staff):
    admin = signed_in("admin-a")
    page = body(admin.get("/admin/s/sch-a/staff"))
    assert "teacher-a" in page and "admin-a" in page and "admin-b" not in page and ">op</a>" not in page
    assert admin.get(f"/admin/s/sch-a/staff/{staff.teacher.id}").status_code == 200
    assert admin.get(f"/admin/s/sch-a/staff/{staff.other_admin.id}").status_code == 404
    assert admin.get(f"/admin/s/sch-a/staff/{staff.operator.id}").status_code == 404
    assert admin.post_form(f"/admin/s/sch-a/staff/{staff.other_admin.id}/disable").status_code == 404
    assert admin.post_form(f"/admin/s/sch-a/staff/{staff.other_admin.id}/password").status_code == 404
    assert admin.get("/admin/s/sch-b/staff").status_code == 404
    assert admin.post_form("/admin/s/sch-b/staff", {"role": "teacher", "login": "x", "display_name": "x"}
                           ).status_code == 404
    assert not StaffUser.get_by_id(staff.other_admin.id).disabled


def test_school_admin_creates_teachers_in_their_school_but_no_operator(signed_in, staff):
    admin = signed_in("admin-a")
    new_page = body(admin.get("/admin/s/sch-a/staff/new"))
    assert 'value="operator"' not in new_page and 'value="teacher"' in new_page
    response = admin.post_form("/admin/s/sch-a/staff", {"role": "teacher", "school": "sch-b", "login": "t2",
                                                        "display_name": "新任"})
    assert response.status_code == 200 and shown_password(body(response))
    assert StaffUser.get(StaffUser.login == "t2").school_id == staff.school.id   # never another school
    response = admin.post_form("/admin/s/sch-a/staff", {"role": "operator", "login": "op3", "display_name": "x"})
    assert response.status_code == 400
    assert not StaffUser.select().where(StaffUser.login == "op3").exists()


def test_school_admin_disables_a_teacher_of_their_school(signed_in, staff):
    teacher = signed_in("teacher-a")
    assert signed_in("admin-a").post_form(f"/admin/s/sch-a/staff/{staff.teacher.id}/disable").status_code == 302
    assert teacher.get("/admin/s/sch-a/").status_code == 302
    entry = AuditEntry.get(AuditEntry.action == "staff.disable")
    assert entry.actor == "admin-a" and entry.school_id == staff.school.id


def test_teachers_cannot_manage_staff(signed_in, staff):
    teacher = signed_in("teacher-a")
    assert teacher.get("/admin/s/sch-a/staff").status_code == 403
    assert teacher.get(f"/admin/s/sch-a/staff/{staff.admin.id}").status_code == 403
    assert teacher.post_form(f"/admin/s/sch-a/staff/{staff.admin.id}/disable").status_code == 403
    assert teacher.get("/admin/staff").status_code == 403
