"""From the printed sheet to the school's first message, both ways, on the demo as `appliance serve` runs it.

One site for the module: `make demo-setup`'s steps (`init`, `dkim init`, `push init`, `demo`, which
sends every mail to the capture sink), then `serve` (gunicorn, the MTA with the inbound server
beside it, the push worker, the worker, the sink). A class's
sheets come from the CLI; the first page is rasterised and its QR codes decoded, as a phone's
camera would. The guardian then registers on the web page the QR code opens, or by the empty
mail its mailto: names (smtplib to the inbound server); the link arrives at the sink through the
real MTA, is opened and confirmed; the school admin approves on the registrations page; a message
to the class reaches the guardian's address at the sink. Pages are fetched with urllib (cookies
kept, CSRF tokens read from the forms), as a browser without JavaScript would; the registration
page itself is also driven in Debian's chromium at a small phone's 360 px.
"""
from __future__ import annotations

import html
import json
import re
import smtplib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from http.cookiejar import CookieJar

import pypdfium2
import pytest
import zxingcpp
from playwright.sync_api import expect

from appliance.demo import DEMO_CODE, DemoLogin
from appliance.registration import SUBJECT as REGISTRATION_SUBJECT
from mta.sink import read_captured
from tests.conftest import hidden
from tests.integration.browser import open_page, save_screenshot
from tests.integration.site import Site, wait_until
from tests.unit.mail_fixtures import inbound_mail

CLASS = "5-3"       # no other integration test uses this class
MAIL_WAIT = 60      # seconds: the MTA polls the database, then the sink writes the file
LINK = re.compile(r"https?://\S+?/e/ok/[A-Za-z0-9_-]{10,}")


@dataclass(frozen=True)
class Journey:
    """The running demo site and its school admin's login."""

    site: Site
    admin: DemoLogin


@pytest.fixture(name="journey", scope="module")
def journey_fixture(tmp_path_factory) -> Iterator[Journey]:
    """The demo site with every service running (`appliance serve`), for the whole module."""
    site = Site(tmp_path_factory.mktemp("journey") / "data")
    logins = site.set_up_demo()
    try:
        site.serve()
        yield Journey(site, next(login for login in logins if login.role == "school_admin"))
    finally:
        site.stop()


@pytest.fixture(name="sheet_codes", scope="module")
def sheet_codes_fixture(journey, tmp_path_factory) -> list[list[str]]:
    """What the QR codes on the class's first two sheets hold, per page: the two slots' web URLs, then their
    mailto: addresses (each sorted by code, so [0] and [3] are different slots)."""
    pdf = tmp_path_factory.mktemp("sheets") / f"{CLASS}.pdf"
    written = json.loads(journey.site.run("registration", "sheets", "--school", DEMO_CODE, "--class", CLASS,
                                          "--out", str(pdf)).stdout)
    assert written["pages"] > 2
    document = pypdfium2.PdfDocument(str(pdf))
    try:
        # 150 dpi, a phone photo's worth; decoded from the pixels, as a camera would.
        images = [document[n].render(scale=150 / 72).to_pil() for n in (0, 1)]
    finally:
        document.close()
    pages = [sorted(barcode.text for barcode in zxingcpp.read_barcodes(image)) for image in images]
    assert [len(decoded) for decoded in pages] == [4, 4], pages
    return pages


class Visitor:
    """A browser without JavaScript: urllib keeping cookies, forms posted with what the page gave."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def get(self, url: str) -> tuple[int, str]:
        """GET a URL (or a path on the site), following redirects; return status and page."""
        return self._open(urllib.request.Request(self._absolute(url)))

    def post(self, url: str, fields: dict[str, str]) -> tuple[int, str]:
        """POST a form; return status and the page it leads to."""
        data = urllib.parse.urlencode(fields).encode()
        return self._open(urllib.request.Request(self._absolute(url), data=data))

    def _absolute(self, url: str) -> str:
        return url if url.startswith("http") else self.base_url + url

    def _open(self, request) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as refused:
            return refused.code, refused.read().decode()


def wait_for_mail(site: Site, address: str, subject: str) -> EmailMessage:
    """The one mail to this address with this subject, once it is at the capture sink."""
    sink = site.data_dir / "sink"

    def found():
        mails = [m for m in read_captured(sink) if m["X-Sink-Rcpt-To"] == address and m["Subject"] == subject]
        assert len(mails) <= 1
        return mails[0] if mails else None
    return wait_until(found, timeout=MAIL_WAIT, what=f"{subject!r} at the sink")


def registration_link(mail: EmailMessage) -> str:
    """The /e/ok/ link in a registration mail's text."""
    [link] = LINK.findall(mail.get_body(("plain",)).get_content())
    return link


def approve(journey: Journey, guardian_name: str) -> None:
    """The school admin signs in and approves the guardian's registration on the registrations page."""
    admin = Visitor(journey.site.base_url)
    status, page = admin.get("/admin/login")
    status, page = admin.post("/admin/login", {"csrf_token": hidden(page, "csrf_token"), "login": journey.admin.login,
                                               "password": journey.admin.password})
    assert status == 200 and "ログアウト" in page
    status, page = admin.get(f"/admin/s/{DEMO_CODE}/registrations")
    [row] = [row for row in page.split("<tr>") if guardian_name in row]
    action = html.unescape(re.search(r'action="([^"]+)"', row)[1])
    status, page = admin.post(action, {"csrf_token": hidden(row, "csrf_token"), "decision": "approve"})
    assert status == 200 and "承認しました" in page and guardian_name not in page


def send_to_class(site: Site, subject: str, tmp_path) -> None:
    """The school's message to the class, sent as the README shows (`appliance send`)."""
    body = tmp_path / "body.txt"
    body.write_text("明日は5時間目で下校します。\n", encoding="utf-8")
    site.run("send", "--school", DEMO_CODE, "--audience", f"class:{CLASS}", "--subject", subject,
             "--body-file", str(body))


def test_web_registration_from_the_sheet_to_the_first_message(journey, sheet_codes, tmp_path):
    """The QR code's URL opens the form with the code in it; the mailed link confirms; approved, the guardian
    receives the class's next message."""
    site, url = journey.site, sheet_codes[0][0]
    assert url.startswith(f"{site.base_url}/e/")
    code, address, name = url.rsplit("/", 1)[1], "hanako.journey@example.jp", "連絡 花子"
    guardian = Visitor(site.base_url)
    status, page = guardian.get(url)
    assert status == 200 and f'value="{code}"' in page and "5年3組" in page

    status, page = guardian.post("/e/", {"csrf_token": hidden(page, "csrf_token"), "code": code, "name": name,
                                         "relationship": "母", "address": address})
    assert status == 200 and "メールを確認してください" in page

    link = registration_link(wait_for_mail(site, address, REGISTRATION_SUBJECT))
    status, page = guardian.get(link)
    assert status == 200 and "このお子さまの保護者として登録する" in page
    status, page = guardian.post(link, {"form_token": hidden(page, "form_token")})
    assert status == 200 and "登録しました" in page

    approve(journey, name)
    send_to_class(site, "下校時刻の変更（Web登録）", tmp_path)
    mail = wait_for_mail(site, address, "下校時刻の変更（Web登録）")
    assert name in mail.get_body(("plain",)).get_content()
    log = site.log.read_text(encoding="utf-8", errors="replace")
    assert address not in log                                       # no contact data in logs
    token = link.rsplit("/", 1)[1]
    assert "GET /e/… " in log and "GET /e/ok/… " in log             # the requests are logged, their keys not
    assert code not in log and token not in log


def test_empty_mail_registration_from_the_sheet_to_the_first_message(journey, sheet_codes, tmp_path):
    """An empty mail to the QR code's mailto: address brings the link; the guardian gives their name there;
    approved, they receive the class's next message."""
    site, mailto = journey.site, sheet_codes[0][3]
    assert mailto.startswith("mailto:entry-")
    entry, address, name = mailto.removeprefix("mailto:"), "taro.journey@docomo.ne.jp", "連絡 太郎"
    host, port = site.env["APPLIANCE_MTA__INBOUND_BIND"].rsplit(":", 1)
    with smtplib.SMTP(host, int(port), timeout=30) as client:
        client.sendmail(address, [entry], inbound_mail(entry, None, sender=address, subject=""))

    link = registration_link(wait_for_mail(site, address, REGISTRATION_SUBJECT))
    guardian = Visitor(site.base_url)
    status, page = guardian.get(link)
    assert status == 200 and 'name="name"' in page and 'name="relationship"' in page
    status, page = guardian.post(link, {"form_token": hidden(page, "form_token"), "name": name,
                                        "relationship": "父"})
    assert status == 200 and "登録しました" in page

    approve(journey, name)
    send_to_class(site, "下校時刻の変更（空メール登録）", tmp_path)
    mail = wait_for_mail(site, address, "下校時刻の変更（空メール登録）")
    assert name in mail.get_body(("plain",)).get_content()
    assert address not in site.log.read_text(encoding="utf-8", errors="replace")


def test_registration_page_on_a_phone_keeps_a_bad_entry_and_says_what_is_wrong(journey, sheet_codes, browser, request):
    """At 360 px without JavaScript: the QR code's URL fills in the code; a wrong code is refused in Japanese
    next to its field with everything typed kept; the right one leads to "check your mail"."""
    url = sheet_codes[1][0]
    code = url.rsplit("/", 1)[1]
    page = open_page(browser, journey.site, "phone", viewport={"width": 360, "height": 740}, java_script_enabled=False)
    try:
        page.goto(url)
        expect(page.get_by_role("heading", level=1)).to_have_text("連絡網への登録")
        expect(page.locator("p.ok")).to_contain_text("5年3組")
        expect(page.get_by_label("登録コード")).to_have_value(code)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360      # nothing wider than the phone

        wrong = "ZZZZZZZZZZ"        # the right shape, no such code
        page.get_by_label("登録コード").fill(wrong)
        page.get_by_label("保護者氏名").fill("登録 三郎")
        page.get_by_label("続柄").select_option("祖父")
        page.get_by_label("メールアドレス").fill("saburo.journey@example.jp")
        page.get_by_role("button", name="確認メールを送る").click()
        error = page.locator("#code-error")
        expect(error).to_have_text("登録コードが正しくありません。用紙のコードをもう一度確かめてください")
        expect(page.get_by_label("登録コード")).to_have_attribute("aria-describedby", "code-error")
        assert page.evaluate("document.querySelector('#code-error').nextElementSibling.id") == "code"
        expect(page.get_by_label("登録コード")).to_have_value(wrong)
        expect(page.get_by_label("保護者氏名")).to_have_value("登録 三郎")
        expect(page.get_by_label("続柄")).to_have_value("祖父")
        expect(page.get_by_label("メールアドレス")).to_have_value("saburo.journey@example.jp")
        save_screenshot(page, request, "phone", "refused")

        page.get_by_label("登録コード").fill(code)
        page.get_by_role("button", name="確認メールを送る").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("メールを確認してください")
        expect(page.get_by_role("status")).to_contain_text("登録のメールを送りました")
        save_screenshot(page, request, "phone", "sent")
    finally:
        page.context.close()
