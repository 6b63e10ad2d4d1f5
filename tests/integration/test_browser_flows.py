"""Staff workflows in a real browser: compose, send and watch the follow-up; approval; registrations; CoCo-net.

Every test records the pages and JSON it receives and scans them for the seeded address
marker: no school-role page may show a guardian's address. What the pages must show is
counted in this process, on the demo site's own data dir (`core`).
"""
from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import Page, expect

from appliance import coconet, guardians, messages, roster
from appliance.models import GuardianLink, School, Student
from tests.integration.browser import TINY_PDF, core, flush_mail, open_page, sign_in

POLL_MS = 20_000        # followup.js asks every 5 s: a few rounds, on a busy machine


def _tick(page: Page, label: str) -> None:
    page.locator("fieldset.audience").get_by_label(label, exact=True).check()


def _figure(page: Page, stat: str):
    return page.locator(f'[data-stat="{stat}"]')


def test_school_admin_sends_a_survey_with_a_pdf_and_watches_it_delivered(page, demo_site, screen, screenshot,
                                                                         seen, sink):
    """Compose with a question and a PDF, see the exact reach, send; the follow-up figures move without a reload."""
    code = demo_site.school_code
    with core(demo_site):
        reach = messages.count_reach(School.get(School.code == code), "class:1-1", None, ["email"])
    subject = f"遠足のお知らせ（{screen}）"
    page.goto("/admin/login")
    screenshot("sign-in")
    sign_in(page, demo_site.login("school_admin"))
    page.get_by_role("navigation").get_by_role("link", name="連絡を作成").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("連絡を作成")
    page.get_by_label("件名").fill(subject)
    page.get_by_label("本文").fill("来週の遠足について、参加のご意向をお知らせください。\n持ち物は添付のとおりです。")
    _tick(page, "1-1")
    expect(page.get_by_label("条件")).to_have_value("class:1-1")
    expect(page.locator("#audience-count")).to_have_text(
        f"児童生徒 {reach['students']} 人・保護者 {reach['guardians']} 人")          # the live count
    page.get_by_label("質問文").first.fill("遠足に参加しますか")
    page.get_by_label("選択肢（1行に1つ）").first.fill("参加する\n参加しない")
    page.get_by_label("回答必須").first.check()
    page.locator("input[name=attachments]").set_input_files(
        files=[{"name": "持ち物.pdf", "mimeType": "application/pdf", "buffer": TINY_PDF}])
    screenshot("compose")
    page.get_by_role("button", name="保存して確認へ").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("送信内容の確認")
    expect(page.locator(".reach-total")).to_have_text(
        f"児童生徒 {reach['students']} 人の保護者 {reach['guardians']} 人に送ります")
    expect(page.locator(".reach .figures")).to_contain_text(f"メールアドレス{reach['addresses']['email']}")
    expect(page.locator("table.summary")).to_contain_text("持ち物.pdf")
    expect(page.locator("ol.questions")).to_contain_text("遠足に参加しますか")
    screenshot("review")
    page.get_by_role("button", name=f"{reach['guardians']} 人に送信する").click()

    expect(page.get_by_role("status")).to_have_text("送信を受け付けました")
    expect(page.get_by_role("heading", level=1)).to_have_text(subject)
    addresses = str(reach["addresses"]["email"])
    expect(_figure(page, "recipients")).to_have_text(str(reach["guardians"]))
    expect(_figure(page, "channels.email.queued")).to_have_text(addresses)
    expect(_figure(page, "channels.email.delivered")).to_have_text("0")
    page.evaluate("window.notReloaded = true")
    flush_mail(demo_site)
    expect(_figure(page, "channels.email.delivered")).to_have_text(addresses, timeout=POLL_MS)   # by itself
    expect(_figure(page, "channels.email.queued")).to_have_text("0")
    assert page.evaluate("window.notReloaded") is True
    assert any(url.endswith("/stats.json") for url in seen.bodies)          # the figures came from polling
    screenshot("followup")
    seen.assert_no_address()


def test_teacher_message_waits_for_approval_and_the_school_admin_approves_it(page, browser, demo_site, screen,
                                                                            screenshot, seen):
    """A teacher's message to their class asks for approval; the school admin finds it at home and approves it."""
    subject = f"学級通信（{screen}）"
    sign_in(page, demo_site.login("teacher"))
    page.get_by_role("navigation").get_by_role("link", name="連絡を作成").click()
    expect(page.locator("fieldset.audience")).to_contain_text("担当のクラス")
    page.get_by_label("件名").fill(subject)
    page.get_by_label("本文").fill("今週の学級の様子をお知らせします。")
    _tick(page, "1-1")
    page.get_by_role("button", name="保存して確認へ").click()
    page.get_by_role("button", name="承認を依頼する").click()
    expect(page.get_by_role("status")).to_have_text("承認を依頼しました。学校の管理者が承認すると送信されます")
    expect(page.locator("main")).to_contain_text("承認待ち")
    expect(page.get_by_role("button", name="承認して送信する")).to_have_count(0)     # not the teacher's to decide

    admin = seen.watch(open_page(browser, demo_site, screen))
    try:
        sign_in(admin, demo_site.login("school_admin"))
        expect(admin.get_by_text(re.compile(r"承認待ちの連絡が \d+ 件あります"))).to_be_visible()
        admin.get_by_role("link", name=subject).click()
        expect(admin.get_by_role("heading", level=1)).to_have_text("送信内容の確認")
        screenshot("approval", admin)
        admin.get_by_role("button", name="承認して送信する").click()
        expect(admin.get_by_role("status")).to_have_text("承認して送信を受け付けました")
        expect(admin.get_by_role("heading", level=1)).to_have_text(subject)
        seen.assert_no_address()
    finally:
        admin.context.close()
    page.reload()
    expect(page.get_by_role("link", name="送信状況を見る")).to_be_visible()     # the teacher sees it sent
    seen.assert_no_address()


def test_school_admin_approves_a_pending_registration(page, demo_site, screen, screenshot, seen):
    """A guardian's pending link shows on the roster and the registrations page; approving it makes it active."""
    serial = secrets.randbelow(10**6)
    name = f"申請 花子{screen}{serial}"
    with core(demo_site) as app:
        # In 1-2: 1-1's guardians stay the seeded ones, for the CoCo-net test's guardian page.
        student = (Student.select().join(School).where(School.code == demo_site.school_code, Student.grade == 1,
                                                       Student.class_name == "2").order_by(Student.number).first())
        pending = guardians.add_guardian(app, name, student_ids=[student.id], relationship="母",
                                         emails=[f"hanako.rk9{serial:06d}@example.jp"])
    sign_in(page, demo_site.login("school_admin"))
    page.get_by_role("navigation").get_by_role("link", name="名簿").click()
    expect(page.locator("main")).to_contain_text("承認待ち")
    screenshot("roster")
    page.get_by_role("navigation").get_by_role("link", name="登録申請").click()
    row = page.get_by_role("row").filter(has_text=name)
    expect(row).to_contain_text(student.name)
    screenshot("registrations")
    row.get_by_role("button", name="承認").click()
    expect(page.get_by_role("status")).to_have_text("承認しました")
    expect(page.get_by_role("row").filter(has_text=name)).to_have_count(0)
    with core(demo_site):
        assert GuardianLink.get(GuardianLink.guardian == pending.id).status == "approved"
    seen.assert_no_address()


@pytest.mark.parametrize("screen", ["phone"])       # a roll is called on a phone, standing by the class
def test_coconet_roll_call_on_a_phone_reaches_the_guardians_page(page, browser, demo_site, screen, screenshot,
                                                                 seen):
    """The admin opens an event, a teacher marks 1-1 protected in the gym, a guardian's link shows it; then closed."""
    sign_in(page, demo_site.login("school_admin"))
    page.get_by_role("navigation").get_by_role("link", name="CoCo-net").click()
    page.get_by_label("種類").select_option("drill")
    page.get_by_label("件名").fill("避難訓練")
    page.get_by_label("すべての保護者に、すべての連絡手段で緊急連絡を送る").uncheck()
    page.get_by_role("button", name="開始する").click()
    expect(page.get_by_role("status")).to_have_text("CoCo-netを開始しました")
    event_url = page.url

    teacher = seen.watch(open_page(browser, demo_site, screen))
    guardian = seen.watch(open_page(browser, demo_site, screen))
    try:
        sign_in(teacher, demo_site.login("teacher"))
        teacher.get_by_role("navigation").get_by_role("link", name="CoCo-net").click()
        teacher.get_by_role("link", name="状況を見る・記録する").click()
        teacher.get_by_role("link", name="1年1組", exact=True).click()
        expect(teacher.get_by_role("heading", level=1)).to_have_text("1年1組の点呼")
        teacher.get_by_label("組全員を").select_option("protected")
        teacher.get_by_label("場所（例: 体育館）").fill("体育館")
        teacher.get_by_role("button", name="組全員に記録する").click()
        expect(teacher.get_by_role("status")).to_have_text(re.compile(r"^\d+人の状態を記録しました$"))
        roll = teacher.locator("ul.coconet-roll > li")
        expect(roll.first).to_contain_text("学校で保護")
        assert roll.count() == teacher.locator("ul.coconet-roll > li.protected").count() > 0
        screenshot("roll-call", teacher)

        with core(demo_site) as app:
            school = School.get(School.code == demo_site.school_code)
            child = next(s for s in roster.class_students(school, 1, "1") if coconet.guardians_of(s))
            link = coconet.guardian_link(app, coconet.guardians_of(child)[0].id)
        guardian.goto(link)
        card = guardian.locator("div.c").filter(has_text=child.name)
        expect(card).to_contain_text("学校で保護")
        expect(card).to_contain_text("体育館")
        screenshot("guardian", guardian)
        seen.assert_no_address()
    finally:
        teacher.context.close()
        guardian.context.close()

    page.goto(event_url)
    page.get_by_role("button", name="CoCo-netを終了する").click()     # the site is shared: leave no event open
    expect(page.get_by_role("status")).to_have_text("CoCo-netを終了しました。記録は残ります")
    seen.assert_no_address()
