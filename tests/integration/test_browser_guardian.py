"""The guardian's side in a real browser at phone size: from a mail at the capture sink to the read
report, the attachment, the survey and a reply with a photo; the portal signed in by a mailed link,
its PWA service worker; and the CoCo-net page at 320 px without JavaScript.

Mail is taken as a guardian's server received it (the sink's files), decoded with the email
package (base64 or ISO-2022-JP, as the MTA chose). What the school sees is read in this process on
the demo site's data dir. Every page the guardian opens is scanned for the seeded address marker,
except the portal's address page: a guardian may see their own addresses there (and does: the scan
is shown to find them).
"""
from __future__ import annotations

import re
import struct
import zlib
from email.message import EmailMessage

import pytest
from playwright.sync_api import expect

from appliance import coconet, followup, receipts, replies, roster, tokens
from appliance.messages import Question, release_message, save_draft
from appliance.models import Message, School, StaffUser
from appliance.portal import SIGN_IN_SUBJECT
from appliance.sample_data import ADDRESS_MARKER
from mta.sink import read_captured
from tests.integration.browser import TINY_PDF, Seen, core, flush_mail, open_page, save_screenshot

CLASS = (3, "2")         # flows tests use 1-1 and 1-2: this test's mail and event stay out of their way
OWN_ADDRESSES = "/p/addresses"
LINK = re.compile(r"https?://\S+?/(r|p/in)/([A-Za-z0-9_-]{10,})")


def tiny_png() -> bytes:
    """A valid 1x1 white PNG, made here (signature, IHDR, IDAT, IEND)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff")) + chunk(b"IEND", b""))


def captured(app, subject: str) -> list[EmailMessage]:
    """The mails at the sink with this subject."""
    return [mail for mail in read_captured(app.config.path("sink", "dir")) if mail["Subject"] == subject]


def link_in(mail: EmailMessage, path: str) -> str:
    """The guardian link (/r/ or /p/in/) in a mail's text, decoded from its transfer encoding and charset."""
    text = mail.get_body(("plain",))
    assert text["Content-Transfer-Encoding"] in ("base64", "7bit")     # never readable without decoding
    found = [m.group(0) for m in LINK.finditer(text.get_content()) if m.group(1) == path]
    assert len(found) == 1, text.get_content()
    return found[0]


def school_sees_one_answer(demo_site, message_id: str, counts: list[tuple[str, int]], texts: list[str]) -> None:
    """The school's follow-up figures for the survey: one guardian answered, these choices and texts."""
    with core(demo_site):
        stored = Message.get_by_id(message_id)
        assert followup.message_stats(stored)["answered"] == 1
        choice, text = followup.survey_results(stored)
        assert [(o["option"], o["count"]) for o in choice["options"]] == counts
        assert text["texts"] == texts


def guardian_scan(seen: Seen) -> None:
    """No page the guardian saw holds an address, except their own address page, which shows theirs."""
    own = {url: body for url, body in seen.bodies.items() if url.split("?")[0].endswith(OWN_ADDRESSES)}
    assert own and all(ADDRESS_MARKER.search(body) for body in own.values())     # the scan finds addresses
    seen.bodies = {url: body for url, body in seen.bodies.items() if url not in own}
    seen.assert_no_address()


@pytest.mark.parametrize("screen", ["phone"])       # guardians read the school's mail on a phone
def test_guardian_reads_answers_replies_and_signs_in_to_the_portal(page, demo_site, screen, screenshot, seen, sink):
    """A mailed link records the read; the file downloads; the survey is answered and changed; a photo is sent;
    the portal signs in by mail, lists the message as read and answered, and registers its service worker."""
    subject = "遠足のお知らせ（保護者の画面）"
    with core(demo_site) as app:
        school = School.get(School.code == demo_site.school_code)
        admin = StaffUser.get(StaffUser.login == demo_site.login("school_admin").login)
        draft = save_draft(
            app, school, admin, audience=f"class:{CLASS[0]}-{CLASS[1]}", subject=subject,
            body="来週の遠足について、参加のご意向をお知らせください。\n持ち物は添付のとおりです。", reply_needed=True,
            questions=[Question("single", "遠足に参加しますか", ("参加する", "参加しない"), required=True),
                       Question("text", "連絡事項があればお書きください")],
            attachments=[("持ち物.pdf", "application/pdf", TINY_PDF)])
        message = release_message(app, draft, admin)
    flush_mail(demo_site)

    with core(demo_site) as app:
        mails = captured(app, subject)
        assert mails
        mail = mails[0]
        address = mail["X-Sink-Rcpt-To"]
        read_link = link_in(mail, "r")
        grant = tokens.resolve_token(app, read_link.rsplit("/", 1)[1], "read")
        assert grant.message_id == message.id
        assert receipts.read_at(message.id, grant.guardian_id) is None

    # The mail's link: one tap shows the message and tells the school it was read.
    page.goto(read_link)
    expect(page.get_by_role("heading", level=1)).to_have_text(subject)
    expect(page.locator("#read")).to_have_text("学校に「読みました」と伝わりました。")
    with core(demo_site):
        assert receipts.read_at(message.id, grant.guardian_id) is not None
    screenshot("message")
    with page.expect_download() as download:
        page.get_by_role("link", name="持ち物.pdf").click()
    assert download.value.suggested_filename == "持ち物.pdf"
    assert download.value.path().read_bytes() == TINY_PDF

    # The survey: answered, then changed; the school's figures follow the newest answer.
    page.get_by_label("参加する", exact=True).check()
    page.get_by_role("group", name=re.compile("連絡事項")).locator("textarea").fill("弁当はいりません")
    page.get_by_role("button", name="回答を送信する").click()
    expect(page.get_by_role("status")).to_have_text("回答を送信しました。期限までは何度でも変更できます。")
    school_sees_one_answer(demo_site, message.id, [("参加する", 1), ("参加しない", 0)], ["弁当はいりません"])
    expect(page.get_by_label("参加する", exact=True)).to_be_checked()      # the page shows what is stored
    page.get_by_label("参加しない", exact=True).check()
    page.get_by_role("group", name=re.compile("連絡事項")).locator("textarea").fill("都合がつかなくなりました")
    page.get_by_role("button", name="回答を変更する").click()
    expect(page.get_by_role("status")).to_have_text("回答を送信しました。期限までは何度でも変更できます。")
    expect(page.get_by_label("参加しない", exact=True)).to_be_checked()
    school_sees_one_answer(demo_site, message.id, [("参加する", 0), ("参加しない", 1)], ["都合がつかなくなりました"])
    screenshot("answered")

    # A reply with a photo taken on the phone: the school gets it, the guardian can open it again.
    photo = tiny_png()
    page.locator("#reply-body").fill("当日の写真です。")
    page.locator("#reply-file").set_input_files(files=[{"name": "写真.png", "mimeType": "image/png", "buffer": photo}])
    page.get_by_role("button", name="返信する").click()
    expect(page.get_by_role("status")).to_have_text("返信を送信しました。")
    with core(demo_site):
        (sent,) = [r for r in replies.message_replies(Message.get_by_id(message.id))
                   if r.reply.guardian_id == grant.guardian_id]
        assert sent.reply.body == "当日の写真です。"
        assert [(f.filename, f.content_type) for f in sent.files] == [("写真.png", "image/png")]
        assert bytes(replies.get_file(message.id, sent.files[0].id, grant.guardian_id).data) == photo
    with page.expect_download() as download:
        page.locator("div.reply").get_by_role("link", name="写真.png").click()
    assert download.value.path().read_bytes() == photo
    screenshot("replied")

    # The portal: a sign-in link by mail, no password.
    page.goto("/p/signin")
    page.get_by_label("メールアドレス").fill(address)
    page.get_by_role("button", name="ログイン用のリンクを送る").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("メールを確認してください")
    flush_mail(demo_site)
    with core(demo_site) as app:
        (signin_mail,) = [m for m in captured(app, SIGN_IN_SUBJECT) if m["X-Sink-Rcpt-To"] == address]
        signin_link = link_in(signin_mail, "p/in")
    page.goto(signin_link)
    page.get_by_role("button", name="ログインする").click()
    expect(page).to_have_url(re.compile(r"/p/$"))
    received = page.locator("ul.msgs > li").filter(has_text=subject)
    expect(received).to_contain_text("既読")
    expect(received).to_contain_text("回答済み")
    screenshot("portal")
    page.get_by_role("navigation").get_by_role("link", name="アドレス").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    # The PWA: manifest, notification permission, the service worker registered for /p/.
    page.context.grant_permissions(["notifications"], origin=demo_site.base_url)
    page.get_by_role("navigation").get_by_role("link", name="通知").click()
    expect(page.locator("#push-form")).to_be_visible()          # guardian.js found Push support and showed it
    manifest = page.evaluate("fetch(document.querySelector('link[rel=manifest]').href).then(r => r.json())")
    assert manifest["start_url"].startswith("/p/")
    registered = page.evaluate("""async () => {
        const registration = await navigator.serviceWorker.register("/p/sw.js", {scope: "/p/"});
        const ready = await navigator.serviceWorker.ready;
        return {scope: registration.scope, script: ready.active.scriptURL, permission: Notification.permission};
    }""")
    assert registered == {"scope": f"{demo_site.base_url}/p/", "script": f"{demo_site.base_url}/p/sw.js",
                          "permission": "granted"}
    screenshot("devices")
    guardian_scan(seen)


def test_coconet_guardian_page_at_320_px_without_javascript(browser, demo_site, request):
    """During an event, a guardian's link shows their child's state in under 10 KB and takes the confirmation,
    on a 320-px screen with JavaScript off."""
    with core(demo_site) as app:
        school = School.get(School.code == demo_site.school_code)
        event = coconet.open_event(app, school, kind="drill", title="引き渡し訓練", send_notice=False,
                                   actor="test")
    try:
        with core(demo_site) as app:
            coconet.set_class_state(app, event, *CLASS, "protected", place="体育館", actor="test")
            child = next(s for s in roster.class_students(school, *CLASS) if coconet.guardians_of(s))
            link = coconet.guardian_link(app, coconet.guardians_of(child)[0].id)
        seen = Seen()
        page = seen.watch(open_page(browser, demo_site, "phone", viewport={"width": 320, "height": 640},
                                    java_script_enabled=False))
        try:
            response = page.goto(link)
            assert response.status == 200
            assert len(response.body()) < 10 * 1024
            card = page.locator("div.c").filter(has_text=child.name)
            expect(card).to_contain_text("学校で保護")
            expect(card).to_contain_text("体育館")
            assert page.evaluate("document.documentElement.scrollWidth") <= 320     # nothing wider than the phone
            page.get_by_role("button", name="確認しました").click()
            expect(page.locator("#done")).to_contain_text("確認済み")
            save_screenshot(page, request, "phone")
            seen.assert_no_address()
        finally:
            page.context.close()
    finally:
        with core(demo_site) as app:
            coconet.close_event(app, coconet.find_event(school, event.id), actor="test")   # the site is shared

