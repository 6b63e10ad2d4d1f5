"""The web app's skeleton: health, sign-in and sessions, access rules, CSRF, languages, errors."""
import re

import pyotp

from appliance import coconet, guardians
from appliance import staff as accounts
from appliance.models import StaffUser, Student
from tests.conftest import PASSWORD
from webui import create_app
from webui.access import RULES, safe_next


def test_healthz_reports_db_queue_and_mta(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["db"]["ok"] is True
    assert set(body) == {"ok", "db", "queue", "mta"}
    assert body["mta"] == {"ok": False, "running": False, "due": 0}   # no MTA runs in the unit tier


def test_status_page_is_japanese_by_default(client):
    page = client.get("/status").get_data(as_text=True)
    assert 'lang="ja"' in page and "データベース" in page


def test_status_page_in_english_from_the_catalog(client):
    page = client.get("/status", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert 'lang="en"' in page and "Database" in page and "データベース" not in page


def test_every_view_declares_its_access_rule(app):
    flask_app = create_app({"APPLIANCE": app, "DATA_DIR": app.data_dir})
    missing = [name for name, view in flask_app.view_functions.items()
               if name != "static" and getattr(view, "access_rule", None) not in RULES]
    assert missing == []


def test_the_root_leads_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]


def test_staff_sign_in_and_land_on_their_school(client, staff):
    response = client.sign_in("admin-a")
    assert response.status_code == 302
    page = client.get("/admin/", follow_redirects=True).get_data(as_text=True)
    assert "第一小学校" in page and "教頭" in page
    assert '<link rel="icon" href="data:,">' in page       # no /favicon.ico (a 404 page rendered) with every page


def test_operator_sees_every_school(signed_in):
    page = signed_in("op").get("/admin/").get_data(as_text=True)
    assert "第一小学校" in page and "第二小学校" in page


def test_a_wrong_password_is_refused_in_japanese(client, staff):
    response = client.sign_in("admin-a", "wrong password")
    assert response.status_code == 400
    assert "ログイン名かパスワード" in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_posts_without_a_csrf_token_are_refused(client, staff):
    response = client.post("/admin/login", data={"login": "admin-a", "password": PASSWORD})
    assert response.status_code == 400
    assert "有効期限" in response.get_data(as_text=True) or "ログイン" in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_a_school_admin_cannot_reach_another_school(signed_in):
    admin = signed_in("admin-a")
    assert admin.get("/admin/s/sch-a/").status_code == 200
    assert admin.get("/admin/s/sch-b/").status_code == 404
    assert admin.get("/admin/s/nowhere/").status_code == 404


def test_sign_out_everywhere_ends_other_sessions(signed_in):
    phone, laptop = signed_in("admin-a"), signed_in("admin-a")
    assert laptop.post_form("/admin/logout-everywhere").status_code == 302
    assert phone.get("/admin/s/sch-a/").status_code == 302      # back to sign-in


def test_changing_the_password_keeps_this_session_and_ends_the_others(signed_in):
    here, elsewhere = signed_in("admin-a"), signed_in("admin-a")
    response = here.post_form("/admin/account/password", {"current": PASSWORD, "new": "a brand new password"})
    assert response.status_code == 302
    assert here.get("/admin/s/sch-a/").status_code == 200
    assert elsewhere.get("/admin/s/sch-a/").status_code == 302


def test_totp_set_up_through_the_pages(signed_in, client, app, clock):
    operator = signed_in("op")
    page = operator.get("/admin/account/totp").get_data(as_text=True)
    secret = re.search(r'class="secret">([A-Z2-7]+)<', page).group(1)
    code = pyotp.TOTP(secret).at(clock.now())
    assert operator.post_form("/admin/account/totp", {"code": code}).status_code == 302
    assert client.sign_in("op").status_code == 400
    assert client.sign_in("op", totp=code).status_code == 302


def test_the_lockout_is_shown_to_the_user(client, staff):
    for _ in range(accounts.LOCK_AFTER):
        client.sign_in("admin-a", "wrong password")
    page = client.sign_in("admin-a").get_data(as_text=True)
    assert "ロック" in page
    assert StaffUser.get_by_id(staff.admin.id).locked_until is not None


def test_next_after_sign_in_never_leaves_the_site(client, staff):
    response = client.post_form("/admin/login?next=https://evil.example/",
                                {"login": "admin-a", "password": PASSWORD})
    assert response.headers["Location"] == "/admin/"
    for bad in ("//evil.example", "https://evil.example", "/\\evil.example", "evil", None, ""):
        assert safe_next(bad, "/x") == "/x"
    assert safe_next("/admin/s/sch-a/?a=1", "/x") == "/admin/s/sch-a/?a=1"


def test_the_language_switch_is_remembered(client, staff):
    client.post_form("/admin/lang", {"lang": "en", "next": "/status"})
    assert "Database" in client.get("/status").get_data(as_text=True)
    client.post_form("/admin/lang", {"lang": "ja"})
    assert "データベース" in client.get("/status").get_data(as_text=True)


def test_unknown_pages_get_a_japanese_page_without_a_trace(client):
    response = client.get("/admin/no-such-page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "ページが見つかりません" in page and "Traceback" not in page


def test_staff_pages_are_not_cached(signed_in):
    response = signed_in("admin-a").get("/admin/s/sch-a/")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_the_roster_fixture_seeds_marked_addresses(roster):
    assert len(roster.guardians) == 60
    assert all(re.search(r"rk\d{7}", address) for g in roster.guardians for address in g.emails)


def test_the_menu_shows_each_role_only_what_it_may_open(signed_in):
    teacher = signed_in("teacher-a").get("/admin/s/sch-a/").get_data(as_text=True)
    admin = signed_in("admin-a").get("/admin/s/sch-a/").get_data(as_text=True)
    for page in (teacher, admin):
        assert "/admin/s/sch-a/messages/new" in page and "/admin/s/sch-a/students" in page
    for admin_only in ("/admin/s/sch-a/registrations", "/admin/s/sch-a/settings", "/admin/s/sch-a/staff"):
        assert admin_only in admin and admin_only not in teacher
    assert "/admin/audit" not in admin


def test_the_school_page_says_what_waits(app, staff, signed_in, roster):
    child = Student.select().where(Student.school == staff.school).first()
    guardians.add_guardian(app, "申請中", student_ids=[child.id])
    coconet.open_event(app, staff.school, kind="earthquake", title="地震", body="避難中", actor="admin-a",
                       send_notice=False)
    admin = signed_in("admin-a").get("/admin/s/sch-a/").get_data(as_text=True)
    teacher = signed_in("teacher-a").get("/admin/s/sch-a/").get_data(as_text=True)
    assert "登録申請が 1 件" in admin and "登録申請が" not in teacher
    assert "CoCo-net: 地震" in admin and "CoCo-net: 地震" in teacher
