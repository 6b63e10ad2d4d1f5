"""Roster pages: class lists, a child's page, registrations, import, rollover, transfers, groups."""
import io
import json
import re


from appliance import staff as accounts
from appliance.guardians import add_guardian
from appliance.models import AuditEntry, GuardianLink, Membership, School, Student
from appliance.targeting import count_audience, parse_rule
from tests.conftest import seat

ADDRESS = re.compile(r"rk\d{7}")
HEADER = "学年,組,出席番号,氏名,ふりがな,学籍番号,部活動"


def page(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, url
    text = response.get_data(as_text=True)
    assert not ADDRESS.search(text), url
    return text


def csv_upload(lines, encoding="cp932", header=HEADER):
    return (io.BytesIO("\r\n".join([header, *lines]).encode(encoding)), "roster.csv")


def test_no_roster_page_shows_an_address(signed_in, roster, pending):
    """Every page this area adds, for every school role, scanned for the seeded address marker."""
    for login in ("teacher-a", "admin-a", "op"):
        client = signed_in(login)
        for grade in range(1, 7):
            for class_name in ("1", "2"):
                page(client, f"/admin/s/sch-a/students?grade={grade}&class={class_name}")
        for student in list(Student.select().limit(30)):
            page(client, f"/admin/s/sch-a/students/{student.id}")
        if login != "teacher-a":
            for url in ("registrations", "roster/import", "roster/promote", "students/transfer-in"):
                page(client, f"/admin/s/sch-a/{url}")


def test_the_class_list_shows_states_counts_and_a_summary(signed_in, roster, pending):
    text = page(signed_in("teacher-a"), "/admin/s/sch-a/students?grade=1&class=1")
    child = seat(1, "1", 1)
    assert child.name in text and child.furigana in text
    assert "登録済み" in text and "1年1組" in text
    assert re.search(r"\d+ 人：登録済み \d+、承認待ち \d+、未登録 \d+", text)
    assert "6年2組" in text          # the per-class summary table covers the school


def test_the_list_starts_at_the_first_class_or_the_teachers_own(signed_in, app, staff, roster):
    assert "<h2>1年1組</h2>" in page(signed_in("admin-a"), "/admin/s/sch-a/students")
    accounts.set_assignments(app, staff.teacher, classes=["3-2"], actor="test")
    assert "<h2>3年2組</h2>" in page(signed_in("teacher-a"), "/admin/s/sch-a/students")
    assert "<h2>4年1組</h2>" in page(signed_in("teacher-a"), "/admin/s/sch-a/students?seat=4-1")


def test_a_childs_page_shows_guardians_with_counts_and_state(signed_in, roster, pending):
    text = page(signed_in("teacher-a"), f"/admin/s/sch-a/students/{pending.student_id}")
    assert "申請 花子" in text and "母" in text and "承認待ち" in text
    assert "2026/04/06 09:05" in text      # requested at, in Tokyo time


def test_approving_makes_the_guardian_targetable_and_is_audited(signed_in, staff, pending):
    admin = signed_in("admin-a")
    text = page(admin, "/admin/s/sch-a/registrations")
    assert "申請 花子" in text and "1年1組" in text and "2026/04/06 09:05" in text
    before = count_audience(staff.school, parse_rule("class:1-1"))["guardians"]
    response = admin.post_form(f"/admin/s/sch-a/registrations/{pending.id}", {"decision": "approve"})
    assert response.status_code == 302
    assert GuardianLink.get_by_id(pending.id).status == "approved"
    assert count_audience(staff.school, parse_rule("class:1-1"))["guardians"] == before + 1
    entry = AuditEntry.get(AuditEntry.action == "registration.approve")
    assert (entry.actor, entry.subject_id) == ("admin-a", pending.id)
    assert "申請 花子" not in page(admin, "/admin/s/sch-a/registrations")


def test_rejecting_a_registration(signed_in, staff, pending):
    admin = signed_in("admin-a")
    admin.post_form(f"/admin/s/sch-a/registrations/{pending.id}", {"decision": "reject"})
    assert GuardianLink.get_by_id(pending.id).status == "rejected"
    text = admin.get(f"/admin/s/sch-a/registrations/{pending.id}", follow_redirects=False)
    assert text.status_code == 405
    again = admin.post_form(f"/admin/s/sch-a/registrations/{pending.id}", {"decision": "approve"},
                            follow_redirects=True).get_data(as_text=True)
    assert "すでに処理" in again and GuardianLink.get_by_id(pending.id).status == "rejected"


def test_a_teacher_cannot_see_or_decide_registrations(signed_in, pending):
    teacher = signed_in("teacher-a")
    assert teacher.get("/admin/s/sch-a/registrations").status_code == 403
    assert teacher.post_form(f"/admin/s/sch-a/registrations/{pending.id}",
                             {"decision": "approve"}).status_code == 403
    for url in ("roster/import", "roster/promote", "students/transfer-in"):
        assert teacher.get(f"/admin/s/sch-a/{url}").status_code == 403
    assert GuardianLink.get_by_id(pending.id).status == "pending"


def test_another_schools_link_and_student_are_not_found(signed_in, pending):
    other = signed_in("admin-b")
    assert other.post_form(f"/admin/s/sch-b/registrations/{pending.id}",
                           {"decision": "approve"}).status_code == 404
    assert other.get(f"/admin/s/sch-b/students/{pending.student_id}").status_code == 404
    assert other.post_form(f"/admin/s/sch-b/students/{pending.student_id}/transfer-out",
                           {"confirm": "y"}).status_code == 404
    assert other.get(f"/admin/s/sch-a/students/{pending.student_id}").status_code == 404
    assert GuardianLink.get_by_id(pending.id).status == "pending"
    assert Student.get_by_id(pending.student_id).status == "enrolled"


def test_import_errors_are_listed_by_line_and_nothing_is_imported(signed_in, staff):
    admin = signed_in("admin-a")
    response = admin.post_form("/admin/s/sch-a/roster/import", {"file": csv_upload([
        "1,1,1,佐藤 蓮,さとう れん,101,", "9,1,2,鈴木 葵,すずき あおい,102,", "1,1,,高橋 湊,たかはし みなと,103,"])})
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "3行目: 学年「9」は1〜6の数字で入力してください" in text
    assert "4行目: 出席番号が入力されていません" in text
    assert "何も変更していません" in text
    assert Student.select().count() == 0


def test_a_cp932_upload_is_imported_and_counted(signed_in, staff):
    admin = signed_in("admin-a")
    response = admin.post_form("/admin/s/sch-a/roster/import", {"file": csv_upload([
        "1,1,1,髙橋 蓮,たかはし れん,101,サッカー部", "1,1,2,鈴木 葵,すずき あおい,102,"])})
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "新しく登録: 2 人" in text and "新しいグループ: 1" in text
    assert {s.name for s in Student.select()} == {"髙橋 蓮", "鈴木 葵"}
    assert AuditEntry.get(AuditEntry.action == "roster.import").actor == "admin-a"


def test_a_school_admin_cannot_import_guardians_with_addresses(signed_in, staff):
    admin = signed_in("admin-a")
    admin.post_form("/admin/s/sch-a/roster/import", {"with_guardians": "y", "file": csv_upload(
        ["1,1,1,佐藤 蓮,さとう れん,101,x.rk1234567@example.jp,佐藤 母"],
        encoding="utf-8", header="学年,組,出席番号,氏名,ふりがな,学籍番号,メール1,保護者氏名")})
    assert Student.select().count() == 1 and GuardianLink.select().count() == 0


def test_the_operator_imports_guardians_and_the_result_shows_no_address(signed_in, staff):
    response = signed_in("op").post_form("/admin/s/sch-a/roster/import", {"with_guardians": "y", "file": csv_upload(
        ["1,1,1,佐藤 蓮,さとう れん,101,x.rk1234567@example.jp,佐藤 母"],
        encoding="utf-8", header="学年,組,出席番号,氏名,ふりがな,学籍番号,メール1,保護者氏名")})
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "保護者: 新規 1 人" in text and not ADDRESS.search(text)
    assert GuardianLink.get().status == "approved"


def test_an_oversized_or_missing_upload_is_refused(signed_in, staff):
    admin = signed_in("admin-a")
    # The body is built here: the test client spools a body over 500 KB to a file it never closes.
    boundary = "rk-boundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{admin.csrf()}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
            f'Content-Type: text/csv\r\n\r\n').encode() + b"x" * (1024 * 1024 + 1) + f"\r\n--{boundary}--\r\n".encode()
    response = admin.post("/admin/s/sch-a/roster/import", data=body,
                          content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 400 and "大きすぎます" in response.get_data(as_text=True)
    response = admin.post_form("/admin/s/sch-a/roster/import", {})
    assert response.status_code == 400 and "ファイルを選んでください" in response.get_data(as_text=True)
    assert Student.select().count() == 0


def test_promote_needs_the_school_code_and_refuses_twice_without_force(signed_in, staff, roster, clock):
    admin = signed_in("admin-a")
    clock.advance(days=340)       # March 2027: rollover time
    first = seat(1, "1", 1)
    response = admin.post_form("/admin/s/sch-a/roster/promote", {"confirm": "sch-b"})
    assert response.status_code == 400 and "学校コードが違います" in response.get_data(as_text=True)
    assert admin.post_form("/admin/s/sch-a/roster/promote", {"confirm": "sch-a"}).status_code == 302
    assert Student.get_by_id(first.id).grade == 2
    text = page(admin, "/admin/s/sch-a/roster/promote")
    assert "すでに済んでいます" in text and 'name="force"' in text
    response = admin.post_form("/admin/s/sch-a/roster/promote", {"confirm": "sch-a"})
    assert response.status_code == 400 and "チェックを入れてください" in response.get_data(as_text=True)
    assert Student.get_by_id(first.id).grade == 2
    assert admin.post_form("/admin/s/sch-a/roster/promote", {"confirm": "sch-a", "force": "y"}).status_code == 302
    assert Student.get_by_id(first.id).grade == 3
    assert AuditEntry.select().where(AuditEntry.action == "roster.promote").count() == 2


def test_promote_with_a_class_plan_lists_its_errors(signed_in, staff, roster, clock):
    clock.advance(days=340)
    admin = signed_in("admin-a")
    response = admin.post_form("/admin/s/sch-a/roster/promote", {"confirm": "sch-a", "classes": csv_upload(
        ["2,1,1,いない 子,いない こ,,"])})
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and "2行目:" in text and "何も変更していません" in text
    assert School.get(School.code == "sch-a").school_year == staff.school.school_year


def test_transfer_out_needs_confirmation_then_stops_messages(signed_in, staff, roster):
    admin = signed_in("admin-a")
    child = seat(2, "1", 3)
    url = f"/admin/s/sch-a/students/{child.id}/transfer-out"
    admin.post_form(url, {})
    assert Student.get_by_id(child.id).status == "enrolled"
    assert admin.post_form(url, {"confirm": "y"}).status_code == 302
    assert Student.get_by_id(child.id).status == "transferred_out"
    assert AuditEntry.get(AuditEntry.action == "roster.transfer_out").actor == "admin-a"
    text = page(admin, f"/admin/s/sch-a/students/{child.id}")
    assert "転出" in text and "転出にする" not in text
    assert signed_in("teacher-a").post_form(
        f"/admin/s/sch-a/students/{seat(2, '1', 4).id}/transfer-out", {"confirm": "y"}).status_code == 403


def test_transfer_in_with_a_siblings_guardians(signed_in, staff, roster):
    admin = signed_in("admin-a")
    sibling = next(s for s in Student.select().order_by(Student.grade, Student.class_name, Student.number)
                   if GuardianLink.select().where((GuardianLink.student == s)
                                                  & (GuardianLink.status == "approved")).exists())
    response = admin.post_form("/admin/s/sch-a/students/transfer-in", {
        "grade": "1", "class_name": "1", "number": "99", "name": "転入 太郎", "furigana": "てんにゅう たろう",
        "guardians_from": sibling.seat})
    assert response.status_code == 302
    newcomer = Student.get(Student.name == "転入 太郎")
    assert response.headers["Location"].endswith(f"/students/{newcomer.id}")
    assert GuardianLink.select().where((GuardianLink.student == newcomer)
                                       & (GuardianLink.status == "approved")).count() >= 1
    detail = json.loads(AuditEntry.get(AuditEntry.action == "roster.transfer_in").detail)
    assert detail["guardians_from"] == sibling.id


def test_transfer_in_errors_keep_what_was_typed(signed_in, staff, roster):
    admin = signed_in("admin-a")
    taken = seat(1, "1", 1)
    response = admin.post_form("/admin/s/sch-a/students/transfer-in", {
        "grade": "1", "class_name": "1", "number": "1", "name": "転入 花子"})
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and "すでに" in text and taken.name in text and 'value="転入 花子"' in text
    response = admin.post_form("/admin/s/sch-a/students/transfer-in", {
        "grade": "1", "class_name": "1", "number": "98", "name": "転入 花子", "guardians_from": "sch-b:1-1-1"})
    assert response.status_code == 400 and not Student.select().where(Student.name == "転入 花子").exists()


def test_joining_and_leaving_a_group(signed_in, staff, roster):
    admin = signed_in("admin-a")
    child = seat(3, "1", 2)
    url = f"/admin/s/sch-a/students/{child.id}/groups"
    assert admin.post_form(url, {"kind": "club", "name": "将棋部"}).status_code == 302
    assert "部活動: 将棋部" in page(admin, f"/admin/s/sch-a/students/{child.id}")
    [group_id] = [m.group_id for m in Membership.select().where(Membership.student == child)
                  if m.group.key == "将棋部"]
    assert admin.post_form(f"{url}/{group_id}/delete").status_code == 302
    assert "部活動: 将棋部" not in page(admin, f"/admin/s/sch-a/students/{child.id}")
    assert AuditEntry.select().where(AuditEntry.action.in_(["roster.join", "roster.leave"])).count() == 2
    assert signed_in("teacher-a").post_form(url, {"kind": "club", "name": "囲碁部"}).status_code == 403


def test_a_script_in_a_student_name_is_escaped(signed_in, staff):
    admin = signed_in("admin-a")
    admin.post_form("/admin/s/sch-a/roster/import", {"file": csv_upload(
        ['1,1,1,<script>alert(1)</script>,"<b>ふりがな</b>",101,<i>部</i>'], encoding="utf-8")})
    student = Student.get()
    for url in ("/admin/s/sch-a/students", f"/admin/s/sch-a/students/{student.id}"):
        text = page(admin, url)
        assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert "<i>部</i>" not in text and "<b>ふりがな</b>" not in text


def test_a_script_in_a_guardian_name_is_escaped(app, signed_in, roster):
    add_guardian(app, "<script>alert(2)</script>", student_ids=[seat(1, "1", 2).id], relationship="<b>父</b>")
    text = page(signed_in("admin-a"), "/admin/s/sch-a/registrations")
    assert "<script>alert(2)</script>" not in text and "&lt;script&gt;alert(2)&lt;/script&gt;" in text
    assert "<b>父</b>" not in text
