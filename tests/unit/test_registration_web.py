"""Registration pages: the form the QR code opens, the mailed link, siblings in the portal, sheets, enquiries."""
import io

import pytest
from pypdf import PdfReader

from appliance import registration
from appliance.models import AuditEntry, Enquiry, GuardianLink, Registration, RegistrationCode
from tests.conftest import add_students, csrf_token
from tests.unit.guardian_fixtures import form_token, mailed_link, signed_in_guardian

SCRIPT = "<script>alert(1)</script>"
REACH = "reach.rk1234567@example.jp"


@pytest.fixture
def kids(app, staff):
    return add_students(app, staff.school, [(1, "1", 1, "山田 一郎"), (1, "1", 2, "山田 次郎")])


@pytest.fixture
def codes(app, staff, kids):
    return registration.issue_codes(app, staff.school, kids, actor="admin-a")


def register(client, code, **fields):
    page = client.get(f"/e/{code}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "code": code, "name": "山田 花子", "relationship": "母",
            "address": "hanako@example.jp", **fields}
    return client.post("/e/", data=data)


def test_the_qr_code_opens_the_form_with_the_code_and_the_child(client, kids, codes):
    page = client.get(f"/e/{codes[kids[0].id, 1]}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "山田 一郎" in text and "第一小学校" in text
    assert f'value="{codes[kids[0].id, 1]}"' in text
    assert "no-store" in page.headers["Cache-Control"] and "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_web_registration_end_to_end_mail_link_button_then_the_school_approves(app, client, signed_in, kids, codes):
    sent = register(client, codes[kids[0].id, 1])
    assert sent.status_code == 200 and "メールを確認してください" in sent.get_data(as_text=True)
    link = mailed_link(app, "register")
    button = client.get(link)
    assert button.status_code == 200 and "山田 一郎" in button.get_data(as_text=True)
    assert GuardianLink.select().count() == 0                       # opening the page (a mail scanner) does nothing
    assert client.post(link, data={}).status_code == 400            # no form token
    done = client.post(link, data={"form_token": form_token(button.get_data(as_text=True))})
    assert done.status_code == 200 and "登録しました" in done.get_data(as_text=True)
    admin = signed_in("admin-a")
    listed = admin.get("/admin/s/sch-a/registrations").get_data(as_text=True)
    assert "山田 花子" in listed and "hanako@example.jp" not in listed
    again = client.get(link)
    assert again.status_code == 409 and "すでに完了" in again.get_data(as_text=True)


def test_the_form_needs_the_session_csrf_token(client, kids, codes):
    answer = client.post("/e/", data={"code": codes[kids[0].id, 1], "name": "花子", "relationship": "母",
                                      "address": "hanako@example.jp"})
    assert answer.status_code == 400 and Registration.select().count() == 0


def test_errors_are_japanese_next_to_the_field_keep_what_was_typed_and_escape_it(client, kids, codes):
    answer = register(client, "ZZZZZ-ZZZZZ", name=SCRIPT)
    text = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "登録コードが正しくありません" in text
    assert SCRIPT not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    answer = register(client, codes[kids[0].id, 1], address="not an address")
    assert "メールアドレスの形式が正しくありません" in answer.get_data(as_text=True)
    assert 'value="not an address"' in answer.get_data(as_text=True)


def test_guessing_codes_on_the_page_is_locked_for_the_client(client, kids, codes):
    for n in range(registration.CODE_GUESSES.count):
        assert register(client, f"ZZZZZ{n:05d}").status_code == 400
    answer = register(client, codes[kids[0].id, 1])
    assert answer.status_code == 400 and "しばらく受け付けられません" in answer.get_data(as_text=True)


def test_an_empty_mails_link_asks_name_and_relationship_and_escapes_them(app, client, kids, codes):
    assert registration.register_by_mail(app, codes[kids[1].id, 1], "jiro.mama@example.jp") == "created"
    link = mailed_link(app, "register")
    page = client.get(link).get_data(as_text=True)
    assert 'name="name"' in page and 'name="relationship"' in page
    refused = client.post(link, data={"form_token": form_token(page), "name": SCRIPT})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "続柄を選んでください" in text and SCRIPT not in text
    done = client.post(link, data={"form_token": form_token(page), "name": "山田 花子", "relationship": "祖母"})
    assert done.status_code == 200
    assert GuardianLink.get().relationship == "祖母"


def test_a_signed_in_guardian_adds_a_sibling_in_the_portal(app, web, kids, codes):
    client = web.test_client()
    register(client, codes[kids[0].id, 1], address="taro@example.jp")
    link = mailed_link(app, "register")
    client.post(link, data={"form_token": form_token(client.get(link).get_data(as_text=True))})
    guardian = signed_in_guardian(app, web, "taro@example.jp")
    page = guardian.get("/p/children/new").get_data(as_text=True)
    refused = guardian.post("/p/children", data={"form_token": form_token(page), "code": "ZZZZZZZZZZ",
                                                 "relationship": "父"})
    assert refused.status_code == 400 and "登録コードが正しくありません" in refused.get_data(as_text=True)
    added = guardian.post("/p/children", data={"form_token": form_token(page), "code": codes[kids[1].id, 2],
                                               "relationship": "父"})
    assert added.status_code == 303
    portal = guardian.get("/p/").get_data(as_text=True)
    assert "山田 次郎" in portal and "承認待ち" in portal
    assert guardian.post("/p/children", data={"code": codes[kids[1].id, 1], "relationship": "父"}).status_code == 400


# --- sheets ------------------------------------------------------------------------------------------

def test_a_school_admin_prints_a_class_and_reissuing_needs_the_box_ticked(app, signed_in, kids):
    admin = signed_in("admin-a")
    page = admin.get("/admin/s/sch-a/registration-sheets")
    assert page.status_code == 200 and "1年1組" in page.get_data(as_text=True)
    pdf = admin.post_form("/admin/s/sch-a/registration-sheets", {"class": "1-1"})
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert "attachment" in pdf.headers["Content-Disposition"]
    assert len(PdfReader(io.BytesIO(pdf.data)).pages) == 2
    again = admin.post_form("/admin/s/sch-a/registration-sheets", {"class": "1-1"})
    assert again.status_code == 400 and "再発行" in again.get_data(as_text=True)
    assert RegistrationCode.select().where(RegistrationCode.status == "active").count() == 4
    one = admin.post_form("/admin/s/sch-a/registration-sheets", {"student": "1-1-2", "reissue": "1"})
    assert one.mimetype == "application/pdf" and len(PdfReader(io.BytesIO(one.data)).pages) == 1
    assert RegistrationCode.select().where(RegistrationCode.status == "void").count() == 2


def test_sheets_are_for_the_schools_admins_only(signed_in, kids):
    assert signed_in("teacher-a").get("/admin/s/sch-a/registration-sheets").status_code in (403, 404)
    assert signed_in("admin-b").get("/admin/s/sch-a/registration-sheets").status_code == 404
    refused = signed_in("admin-a").post_form("/admin/s/sch-a/registration-sheets", {"class": "9-9"})
    assert refused.status_code == 400 and "9-9" in refused.get_data(as_text=True)


# --- enquiries ---------------------------------------------------------------------------------------

def send_enquiry(client, staff, **fields):
    page = client.get("/help").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "name": "山田 花子", "reach": REACH, "school": staff.school.id,
            "body": "メールが届きません\n1年1組 山田 一郎", **fields}
    return client.post("/help", data=data)


def test_an_enquiry_reaches_the_operator_who_alone_sees_how_to_reach_them(app, client, staff, signed_in):
    assert 'href="mailto:help@renraku.example"' in client.get("/help").get_data(as_text=True)     # or by mail
    assert "受け付けました" in send_enquiry(client, staff).get_data(as_text=True)
    assert client.post("/help", data={"name": "x", "reach": "y", "body": "z"}).status_code == 400    # no CSRF
    operator = signed_in("op")
    listed = operator.get("/admin/enquiries").get_data(as_text=True)
    assert "山田 花子" in listed and "第一小学校" in listed and REACH not in listed
    assert "/admin/enquiries" in operator.get("/admin/").get_data(as_text=True)      # in the operator's menu
    enquiry = Enquiry.get()
    assert REACH.encode() not in bytes(enquiry.reach_sealed)
    shown = operator.get(f"/admin/enquiries/{enquiry.id}").get_data(as_text=True)
    assert REACH in shown
    assert AuditEntry.select().where(AuditEntry.action == "enquiry.view").count() == 1
    closed = operator.post_form(f"/admin/enquiries/{enquiry.id}/status", {"status": "closed"})
    assert closed.status_code == 303 and Enquiry.get().status == "closed"
    assert "山田 花子" in operator.get("/admin/enquiries?status=closed").get_data(as_text=True)


def test_school_roles_never_open_enquiries(client, staff, signed_in):
    send_enquiry(client, staff)
    enquiry = Enquiry.get()
    for login in ("admin-a", "teacher-a"):
        user = signed_in(login)
        for url in ("/admin/enquiries", f"/admin/enquiries/{enquiry.id}"):
            answer = user.get(url)
            assert answer.status_code in (403, 404) and REACH not in answer.get_data(as_text=True)
        assert REACH not in user.get("/admin/s/sch-a/").get_data(as_text=True)


def test_enquiry_errors_are_japanese_escaped_and_flooding_is_limited(client, staff):
    refused = send_enquiry(client, staff, body="", name=SCRIPT)
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "お問い合わせ内容を入力してください" in text and SCRIPT not in text
    for _ in range(4):
        send_enquiry(client, staff)
    assert send_enquiry(client, staff).status_code == 429
