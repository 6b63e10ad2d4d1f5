"""The operator's pages: schools, guardian look-up (audited), the audit log, system status."""
import html
import re

import pytest

from appliance import audit, contacts
from appliance.guardians import add_guardian
from appliance.models import AuditEntry, School
from appliance.roster import transfer_in
from appliance.sample_data import ADDRESS_MARKER
from mta.dkim import make_keys

ADDRESS = "taro.rk1234567@example.jp"
PHONE = "090-1234-5678"

OPERATOR_PAGES = ["/admin/staff", "/admin/staff/new", "/admin/guardians", "/admin/guardians?q=yamada",
                  "/admin/audit", "/admin/system"]


@pytest.fixture
def guardian(app, staff):
    """A guardian of a child in sch-a with a known address and phone number, names holding markup."""
    child = transfer_in(app, staff.school, grade=3, class_name="1", number=7, name="山田<script>花子</script>",
                        furigana="やまだ はなこ")
    guardian = add_guardian(app, "山田<script>太郎</script>", student_ids=[child.id], emails=[ADDRESS],
                            relationship="父", approved=True)
    contacts.add_contact(app, guardian.id, "phone", PHONE, status="active")
    return guardian


def body(response) -> str:
    return response.get_data(as_text=True)


# --- access ------------------------------------------------------------------------------------

@pytest.mark.parametrize("login", ["admin-a", "teacher-a", "admin-b"])
def test_operator_pages_are_refused_to_school_roles(signed_in, guardian, login):
    client = signed_in(login)
    for url in OPERATOR_PAGES + [f"/admin/guardians/{guardian.id}"]:
        assert client.get(url).status_code == 403, url
    assert client.post_form("/admin/schools", {"code": "x", "name": "x", "grades": "6"}).status_code == 403


def test_no_operator_page_is_reachable_by_a_school_role(web):
    """Every view guarded as OPERATOR is one a school role cannot open: walk the map, not a list."""
    operator_only = {rule.endpoint for rule in web.url_map.iter_rules()
                     if getattr(web.view_functions[rule.endpoint], "access_rule", None) == "operator"}
    assert {"admin.staff_index", "admin.guardian_search", "admin.guardian_show", "admin.audit_index",
            "admin.system_show", "admin.school_create"} <= operator_only
    assert not any(rule.startswith("/admin/s/") for rule in
                   (r.rule for r in web.url_map.iter_rules() if r.endpoint in operator_only))


def test_every_operator_page_opens_for_the_operator(signed_in, guardian):
    client = signed_in("op")
    for url in OPERATOR_PAGES + ["/admin/", f"/admin/guardians/{guardian.id}"]:
        assert client.get(url).status_code == 200, url


# --- schools -----------------------------------------------------------------------------------

def test_the_operator_adds_a_school_from_the_list(signed_in):
    client = signed_in("op")
    assert "学校を追加" in body(client.get("/admin/"))
    response = client.post_form("/admin/schools", {"code": "sch-c", "name": "第三<script>中学校", "grades": "3"})
    assert response.status_code == 302
    page = body(client.get("/admin/"))
    assert "第三&lt;script&gt;中学校" in page and "<script>中学校" not in page
    school = School.get(School.code == "sch-c")
    assert school.grades == 3
    assert AuditEntry.get(AuditEntry.action == "school.add", AuditEntry.school_id == school.id).actor == "op"


@pytest.mark.parametrize(("data", "message"), [
    ({"code": "sch-a", "name": "重複", "grades": "6"}, "学校コード sch-a はすでに使われています"),
    ({"code": "学校", "name": "全角", "grades": "6"}, "学校コードは半角英数字で指定してください"),
    ({"code": "sch-z", "name": "十三学年", "grades": "13"}, "1〜12で入力してください"),
])
def test_bad_school_input_is_refused_in_japanese_keeping_what_was_typed(signed_in, data, message):
    response = signed_in("op").post_form("/admin/schools", data)
    assert response.status_code == 400
    page = html.unescape(body(response))
    assert message in page and f'value="{data["name"]}"' in page
    assert School.select().count() == 2


# --- guardian look-up --------------------------------------------------------------------------

@pytest.mark.parametrize("query", ["山田", "はなこ", ADDRESS, " taro.rk1234567@EXAMPLE.JP ", "09012345678",
                                   "０９０－１２３４－５６７８"])
def test_guardian_search_by_name_child_address_or_number(signed_in, guardian, query):
    page = body(signed_in("op").get("/admin/guardians", query_string={"q": query}))
    assert f"/admin/guardians/{guardian.id}" in page and "3-1" in page


def test_guardian_search_finds_nothing_for_a_near_miss(signed_in, guardian):
    page = body(signed_in("op").get("/admin/guardians", query_string={"q": "taro.rk1234568@example.jp"}))
    assert guardian.id not in page and "該当する保護者はいません" in page


def test_the_search_form_posts_so_addresses_stay_out_of_urls(signed_in, guardian):
    client = signed_in("op")
    assert 'method="post"' in body(client.get("/admin/guardians"))
    assert guardian.id in body(client.post_form("/admin/guardians", {"q": ADDRESS}))


def test_a_search_by_address_is_audited_without_the_address(signed_in, guardian):
    signed_in("op").get("/admin/guardians", query_string={"q": ADDRESS})
    entry = AuditEntry.get(AuditEntry.action == "guardians.search")
    assert entry.actor == "op" and '"by": "email"' in entry.detail and "rk1234567" not in entry.detail


def test_a_malformed_address_is_refused_without_echoing_it(signed_in, guardian):
    response = signed_in("op").get("/admin/guardians", query_string={"q": "bad@@rk7654321"})
    assert response.status_code == 400
    assert "メールアドレスの形式が正しくありません" in body(response)


def test_guardian_show_reveals_contacts_to_the_operator_and_audits_every_view(signed_in, guardian):
    client = signed_in("op")
    for views in (1, 2):
        page = body(client.get(f"/admin/guardians/{guardian.id}"))
        assert ADDRESS in page and "09012345678" in page and "3-1-7" in page and "承認済み" in page
        entries = list(AuditEntry.select().where((AuditEntry.action == "contacts.view")
                                                 & (AuditEntry.subject_id == guardian.id)))
        assert len(entries) == views and entries[0].actor == "op"
    assert not any(ADDRESS_MARKER.search(e.detail) or "5678" in e.detail for e in AuditEntry.select())


def test_guardian_pages_escape_names(signed_in, guardian):
    client = signed_in("op")
    for page in (body(client.get("/admin/guardians", query_string={"q": "山田"})),
                 body(client.get(f"/admin/guardians/{guardian.id}"))):
        assert "<script>" not in page and "山田&lt;script&gt;太郎" in page and "山田&lt;script&gt;花子" in page


def test_an_unknown_guardian_is_404(signed_in, staff):
    assert signed_in("op").get("/admin/guardians/nobody").status_code == 404


# --- audit log ---------------------------------------------------------------------------------

def test_audit_log_pages_newest_first_by_keyset(app, signed_in, clock):
    client = signed_in("op")
    for n in range(120):
        clock.advance(seconds=1)
        audit.record(app, "cli", f"test.step{n:03d}")
    first = body(client.get("/admin/audit", query_string={"action": "test."}))
    steps = re.findall(r"test\.step(\d{3})", first)
    assert steps == [f"{n:03d}" for n in range(119, 69, -1)]
    older = re.search(r'href="(/admin/audit\?[^"]*before=[^"]+)"', first).group(1)
    second = body(client.get(html.unescape(older)))
    assert re.findall(r"test\.step(\d{3})", second) == [f"{n:03d}" for n in range(69, 19, -1)]
    assert "action=test." in html.unescape(older)


def test_audit_page_function_pages_ties_in_time_by_id(app, staff):
    for _ in range(5):
        audit.record(app, "cli", "tie.same")    # the frozen clock: every entry at the same moment
    first = audit.page_entries(action_prefix="tie.", limit=2)
    second = audit.page_entries(action_prefix="tie.", limit=2, before=first.next_before)
    third = audit.page_entries(action_prefix="tie.", limit=2, before=second.next_before)
    ids = [e.id for page in (first, second, third) for e in page.entries]
    assert len(set(ids)) == 5 and ids == sorted(ids, reverse=True) and third.next_before is None


def test_audit_log_filters_by_school_and_actor(signed_in, staff):
    client = signed_in("op")
    page = body(client.get("/admin/audit", query_string={"school": "sch-b"}))
    assert "school.add" in page and "staff.add" in page and "sch-a" not in page.split("<tbody>")[1]
    page = body(client.get("/admin/audit", query_string={"actor": "op"}))
    assert "staff.sign_in" in page and "school.add" not in page


def test_audit_times_are_shown_in_tokyo(signed_in, staff):
    assert "2026/04/06 09:00:00" in body(signed_in("op").get("/admin/audit"))


# --- system ------------------------------------------------------------------------------------

def test_system_page_shows_health_queue_disk_and_says_how_to_make_the_dkim_key(signed_in):
    page = body(signed_in("op").get("/admin/system"))
    assert "データベース" in page and "ディスク使用量" in page and "停止" in page
    assert "appliance dkim init" in page


def test_system_page_lists_the_dns_records_to_publish(app, signed_in):
    make_keys(app.config, app.config["mail"]["domain"], app.config["mta"]["dkim_selector"])
    page = body(signed_in("op").get("/admin/system", query_string={"ip": "192.0.2.1"}))
    assert "v=spf1 a mx ip4:192.0.2.1 -all" in page and "v=DKIM1; k=rsa; p=" in page and "v=DMARC1" in page
    bad = body(signed_in("op").get("/admin/system", query_string={"ip": "192.0.2.300"}))
    assert "IPアドレス「192.0.2.300」を読めません" in bad
