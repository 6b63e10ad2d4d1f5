"""CoCo-net pages: access rules, the roll call, pickups, the guardian's page (size, caching, CSRF, privacy)."""
import base64
import hashlib
import re

import pytest

from appliance import coconet
from appliance.models import CoconetCheck, GuardianLink, Student
from appliance.sample_data import ADDRESS_MARKER
from tests.conftest import seat
from tests.unit.guardian_fixtures import coconet_path, form_token, issued_token

BASE = "/admin/s/sch-a/coconet"


@pytest.fixture
def event(app, staff, roster):
    return coconet.open_event(app, staff.school, kind="earthquake", title="地震発生", body="校庭に避難しています",
                              actor="admin-a")


def families(student):
    return [link.guardian_id for link in GuardianLink.select().where(GuardianLink.student == student)]


def test_a_school_admin_opens_an_event_with_a_first_notice(signed_in, staff, roster):
    admin = signed_in("admin-a")
    response = admin.post_form(f"{BASE}/", {"kind": "drill", "title": "避難訓練", "body": "訓練です", "send_notice": "1"})
    assert response.status_code == 303
    event = coconet.current_event(staff.school)
    assert event.message_id is not None and event.opened_by == "admin-a"
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "避難訓練" in page and "訓練です" in page


def test_bad_input_opening_an_event_is_shown_and_kept(signed_in, staff, roster):
    page = signed_in("admin-a").post_form(f"{BASE}/", {"kind": "drill", "title": "", "body": "本文はそのまま"})
    assert page.status_code == 400
    assert "件名を入力してください" in page.get_data(as_text=True) and "本文はそのまま" in page.get_data(as_text=True)


def test_teachers_set_states_but_only_admins_open_close_and_post(signed_in, event):
    teacher = signed_in("teacher-a")
    assert teacher.get(f"{BASE}/").status_code == 200
    assert teacher.post_form(f"{BASE}/", {"kind": "drill", "title": "x"}).status_code == 403
    assert teacher.post_form(f"{BASE}/{event.id}/close").status_code == 403
    assert teacher.post_form(f"{BASE}/{event.id}/notices", {"body": "x"}).status_code == 403
    assert teacher.post_form(f"{BASE}/{event.id}/class/1/1", {"state": "protected"}).status_code == 303
    page = teacher.get(f"{BASE}/{event.id}/").get_data(as_text=True)
    assert "CoCo-netを終了する" not in page


def test_another_school_and_signed_out_visitors_reach_nothing(signed_in, client, event):
    other = signed_in("admin-b")
    student = seat(1, "1", 1)
    for url in (f"{BASE}/", f"{BASE}/{event.id}/", f"{BASE}/{event.id}/student/{student.id}",
                f"{BASE}/card/{student.id}", f"{BASE}/{event.id}/export.csv"):
        assert other.get(url).status_code == 404
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    assert signed_in("admin-b").get(f"/admin/s/sch-b/coconet/{event.id}/").status_code == 404


def test_the_bulk_form_marks_a_whole_class_protected_in_the_gym(signed_in, event):
    teacher = signed_in("teacher-a")
    response = teacher.post_form(f"{BASE}/{event.id}/class/3/1", {"state": "protected", "place": "体育館"})
    assert response.status_code == 303
    states = coconet.current_states(event.id)
    in_class = Student.select().where((Student.grade == 3) & (Student.class_name == "1"))
    assert {s.id for s in in_class} == set(states)
    page = teacher.get(response.headers["Location"]).get_data(as_text=True)
    assert page.count("体育館") >= len(states)


def test_the_roll_call_in_english_labels_every_state_in_english(signed_in, event):
    teacher = signed_in("teacher-a")
    teacher.post_form(f"{BASE}/{event.id}/class/3/1", {"state": "protected", "place": "体育館"})
    teacher.post_form("/admin/lang", {"lang": "en"})
    page = teacher.get(f"{BASE}/{event.id}/class/3/1").get_data(as_text=True)     # labels from imported macros
    assert "Protected at school" in page and "学校で保護" not in page


def test_one_button_sets_one_child_and_a_child_of_another_class_is_refused(signed_in, event):
    teacher = signed_in("teacher-a")
    child = seat(2, "1", 2)
    response = teacher.post_form(f"{BASE}/{event.id}/class/2/1", {"student_id": child.id, "state": "absent"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"#s-{child.id}")
    assert coconet.current_states(event.id)[child.id].state == "absent"
    refused = teacher.post_form(f"{BASE}/{event.id}/class/2/2", {"student_id": child.id, "state": "unknown"})
    assert refused.status_code == 400 and coconet.current_states(event.id)[child.id].state == "absent"


def test_a_name_card_opens_the_childs_form_in_the_open_event(signed_in, event):
    teacher = signed_in("teacher-a")
    child = seat(4, "2", 1)
    response = teacher.get(f"{BASE}/card/{coconet.card_code(child)}")
    assert response.headers["Location"].endswith(f"{BASE}/{event.id}/student/{child.id}")
    assert child.name in teacher.get(response.headers["Location"]).get_data(as_text=True)
    cards = teacher.get(f"{BASE}/cards?class=4-2").get_data(as_text=True)
    assert f"/coconet/card/{child.id}" in cards


def test_pickups_by_a_guardian_or_a_named_adult_through_the_page(signed_in, event):
    teacher = signed_in("teacher-a")
    child, other = seat(1, "1", 1), seat(1, "1", 2)
    guardian_id = families(child)[0]
    assert teacher.post_form(f"{BASE}/{event.id}/student/{child.id}/pickup",
                             {"guardian_id": guardian_id, "collected_at": "2026-04-06T08:50"}).status_code == 303
    assert teacher.post_form(f"{BASE}/{event.id}/student/{other.id}/pickup",
                             {"guardian_id": "", "adult_name": "<script>祖母</script>"}).status_code == 303
    missing = teacher.post_form(f"{BASE}/{event.id}/student/{other.id}/pickup", {"guardian_id": ""})
    assert missing.status_code == 400 and "氏名" in missing.get_data(as_text=True)
    register = teacher.get(f"{BASE}/{event.id}/pickups").get_data(as_text=True)
    assert "2026/04/06 08:50" in register and "&lt;script&gt;祖母&lt;/script&gt;" in register
    assert "<script>" not in register
    assert coconet.current_states(event.id)[child.id].state == "handed_over"


def test_notes_and_notices_are_escaped_everywhere(app, signed_in, event):
    admin = signed_in("admin-a")
    child = seat(1, "1", 1)
    admin.post_form(f"{BASE}/{event.id}/student/{child.id}", {"state": "protected", "note": "<script>alert(1)</script>"})
    admin.post_form(f"{BASE}/{event.id}/notices", {"body": "<script>alert(2)</script>"})
    pages = [admin.get(f"{BASE}/{event.id}/student/{child.id}"), admin.get(f"{BASE}/{event.id}/"),
             admin.get(f"{BASE}/{event.id}/print"),
             admin.get(coconet_path(app, families(child)[0]))]
    for page in pages:
        text = page.get_data(as_text=True)
        assert "<script>alert" not in text
    assert "&lt;script&gt;alert(1)" in pages[0].get_data(as_text=True)
    assert "&lt;script&gt;alert(2)" in pages[3].get_data(as_text=True)


def test_no_staff_page_or_export_shows_a_contact_point(app, signed_in, event):
    admin = signed_in("admin-a")
    child = seat(1, "1", 1)
    coconet.record_pickup(app, event, child, guardian_id=families(child)[0], actor="admin-a")
    for url in (f"{BASE}/", f"{BASE}/{event.id}/", f"{BASE}/{event.id}/class/1/1", f"{BASE}/{event.id}/pickups",
                f"{BASE}/{event.id}/student/{child.id}", f"{BASE}/{event.id}/print", f"{BASE}/{event.id}/export.csv",
                f"{BASE}/cards?class=1-1"):
        response = admin.get(url)
        assert response.status_code == 200, url
        assert not ADDRESS_MARKER.search(response.get_data(as_text=True)), url
    export = admin.get(f"{BASE}/{event.id}/export.csv")
    assert export.mimetype == "text/csv" and "attachment" in export.headers["Content-Disposition"]


def test_a_guardian_sees_only_their_family_and_each_opening_is_recorded(app, client, event):
    child_a, child_b = seat(1, "1", 1), seat(1, "2", 1)
    family_a = set(families(child_a))
    guardian_b = next(g for g in families(child_b) if g not in family_a)
    coconet.set_states(app, event, [child_a], "protected", place="体育館", actor="teacher-a")
    page_a = client.get(coconet_path(app, next(iter(family_a)))).get_data(as_text=True)
    page_b = client.get(coconet_path(app, guardian_b)).get_data(as_text=True)
    assert child_a.name in page_a and "学校で保護" in page_a and "校庭に避難しています" in page_a
    assert child_a.name not in page_b and child_b.name in page_b and "校庭に避難しています" in page_b
    assert not ADDRESS_MARKER.search(page_a + page_b)
    assert CoconetCheck.select().where(CoconetCheck.kind == "open").count() == 2


def test_the_guardian_page_is_small_private_and_revalidated(app, client, event):
    child = seat(1, "1", 1)
    for _ in range(10):
        coconet.post_notice(app, event, "お" * coconet.MAX_NOTICE, actor="admin-a")
    coconet.set_states(app, event, [child], "evacuated", place="あ" * coconet.MAX_PLACE,
                       note="メ" * coconet.MAX_NOTE, actor="teacher-a")
    path = coconet_path(app, families(child)[0])
    response = client.get(path)
    assert response.status_code == 200 and len(response.data) < 10 * 1024
    assert "<script" not in response.get_data(as_text=True)           # no JavaScript
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert "Set-Cookie" not in response.headers
    assert response.headers["Referrer-Policy"] == "no-referrer"
    again = client.get(path, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert CoconetCheck.select().where(CoconetCheck.kind == "open").count() == 2   # a 304 is an opening too


def test_the_guardian_page_loads_nothing_from_elsewhere_and_allows_only_its_own_style(app, client, event):
    response = client.get(coconet_path(app, families(seat(1, "1", 1))[0]))
    style = re.search(r"<style>(.*?)</style>", response.get_data(as_text=True), re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and f"style-src 'self' 'sha256-{digest}'" in policy
    assert "unsafe-inline" not in policy and response.headers["X-Frame-Options"] == "DENY"
    # Its icon is empty: a phone asks for no /favicon.ico (a 404 page rendered) with every opening of a burst.
    assert '<link rel="icon" href="data:,">' in response.get_data(as_text=True) and "img-src 'self' data:" in policy


def test_confirm_and_reply_need_the_forms_token_and_are_recorded(app, web, event):
    child = seat(1, "1", 1)
    path = coconet_path(app, families(child)[0])
    phone = web.test_client()       # no cookie jar needed: a feature phone's browser
    page = phone.get(path).get_data(as_text=True)
    token = form_token(page)
    assert phone.post(path, data={"event_id": event.id, "confirm": "1"}).status_code == 400
    assert phone.post(path, data={"event_id": event.id, "confirm": "1", "form_token": "x" * 22}).status_code == 400
    done = phone.post(path, data={"event_id": event.id, "confirm": "1", "form_token": token})
    assert done.status_code == 303
    replied = phone.post(path, data={"event_id": event.id, "reply": "17:00に迎えに行きます", "form_token": token})
    assert replied.status_code == 303
    page = phone.get(path).get_data(as_text=True)
    assert "確認済み" in page and "17:00に迎えに行きます" in page
    too_long = phone.post(path, data={"event_id": event.id, "reply": "あ" * 101, "form_token": token})
    assert too_long.status_code == 400 and "100文字" in too_long.get_data(as_text=True)
    kinds = sorted(c.kind for c in CoconetCheck.select().where(CoconetCheck.kind != "open"))
    assert kinds == ["confirm", "reply"]


def test_a_form_token_of_one_link_does_not_work_on_another(app, client, event):
    child_a, child_b = seat(1, "1", 1), seat(1, "2", 1)
    path_a, path_b = coconet_path(app, families(child_a)[0]), coconet_path(app, families(child_b)[0])
    token_a = form_token(client.get(path_a).get_data(as_text=True))
    assert client.post(path_b, data={"event_id": event.id, "confirm": "1", "form_token": token_a}).status_code == 400


@pytest.mark.parametrize("token", ["A" * 22, "nope", "A" * 80])
def test_unknown_links_show_nothing(client, event, token):
    response = client.get(f"/c/{token}")
    assert response.status_code == 404 and "地震発生" not in response.get_data(as_text=True)


def test_a_read_link_does_not_open_coconet_and_an_expired_link_shows_nothing(app, client, clock, event):
    guardian_id = families(seat(1, "1", 1))[0]
    read = issued_token(app, "read", guardian_id, event.message_id)
    assert client.get(f"/c/{read}").status_code == 404
    path = coconet_path(app, guardian_id)
    clock.advance(days=401)
    assert client.get(path).status_code == 404


def test_a_closed_event_is_read_only_and_the_guardian_page_goes_quiet(app, signed_in, client, event):
    admin = signed_in("admin-a")
    child = seat(1, "1", 1)
    assert admin.post_form(f"{BASE}/{event.id}/close").status_code == 303
    assert admin.post_form(f"{BASE}/{event.id}/class/1/1", {"state": "protected"}).status_code == 400
    page = client.get(coconet_path(app, families(child)[0])).get_data(as_text=True)
    assert child.name not in page and "地震発生" not in page
    assert "地震発生" in admin.get(f"{BASE}/").get_data(as_text=True)      # the archive keeps it


def test_the_nav_links_the_coconet_page(signed_in, staff):
    page = signed_in("teacher-a").get("/admin/s/sch-a/").get_data(as_text=True)
    assert f'href="{BASE}/"' in page
