"""Staff in a real browser, at phone and desktop size: sign in, find their way, switch language, sign out."""
import re

from playwright.sync_api import Page, expect

from tests.integration.browser import sign_in

MIN_TAP_PX = 44            # the smallest tap target a thumb hits reliably (WCAG 2.5.5, Apple HIG)
TAP_TARGETS = "header a, header button, nav a, nav button, main button, main a.button"


def _fits_the_screen(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow} px"


def _small_tap_targets(page: Page) -> list[str]:
    return page.evaluate("""([selector, least]) => [...document.querySelectorAll(selector)]
        .filter(e => e.getBoundingClientRect().height < least)
        .map(e => `${e.tagName} "${e.textContent.trim()}" ${e.getBoundingClientRect().height}px`)""",
                         [TAP_TARGETS, MIN_TAP_PX])


def test_staff_sign_in_find_their_way_switch_language_and_sign_out(page, demo_site, screenshot):
    """The Japanese sign-in refuses a wrong password in Japanese, then lands on the school; nav, language, sign out."""
    admin = demo_site.login("school_admin")
    page.goto("/admin/login")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", level=1)).to_have_text("職員ログイン")
    page.get_by_label("ログイン名").fill(admin.login)
    page.get_by_label("パスワード").fill(admin.password + "x")
    page.get_by_role("button", name="ログイン", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("ログイン名かパスワード（または確認コード）が違います")
    expect(page.get_by_label("ログイン名")).to_have_value(admin.login)      # what was typed is kept
    screenshot("refused")

    sign_in(page, admin)
    expect(page).to_have_url(re.compile(rf"/admin/s/{demo_site.school_code}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("さくら市立さくら小学校")
    expect(page.get_by_role("heading", name="最近の連絡")).to_be_visible()
    screenshot("school")

    page.get_by_role("navigation").get_by_role("link", name="教頭").click()
    expect(page).to_have_url(re.compile(r"/admin/account$"))
    page.get_by_role("banner").get_by_role("link", name="連絡網").click()      # the brand leads home
    expect(page).to_have_url(re.compile(rf"/admin/s/{demo_site.school_code}/$"))
    page.get_by_role("navigation").get_by_role("link", name="ホーム").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("さくら市立さくら小学校")

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Recent messages")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/admin/s/{demo_site.school_code}/$"))    # the same page, in English
    screenshot("english")
    page.get_by_role("button", name="日本語").click()
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", name="最近の連絡")).to_be_visible()

    page.get_by_role("button", name="ログアウト").click()
    expect(page).to_have_url(re.compile(r"/admin/login$"))
    expect(page.get_by_role("status")).to_have_text("ログアウトしました")
    page.goto(f"/admin/s/{demo_site.school_code}/")
    expect(page).to_have_url(re.compile(r"/admin/login"))                      # signed out for real


def test_account_page_offers_password_change_and_two_step_sign_in(page, demo_site, screenshot):
    """From the nav, the account page shows the password form and leads to the TOTP set-up with a key."""
    sign_in(page, demo_site.login("teacher"))
    page.get_by_role("navigation").get_by_role("link", name="1年1組担任").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("アカウント")
    expect(page.get_by_role("heading", name="パスワードの変更")).to_be_visible()
    expect(page.get_by_label("現在のパスワード")).to_be_visible()
    screenshot("account")
    page.get_by_role("link", name="認証アプリで2段階認証を設定する").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("2段階認証の設定")
    expect(page.locator("code.secret")).to_have_text(re.compile(r"^[A-Z2-7]{16,}$"))


def test_pages_fit_the_screen_with_large_tap_targets_on_a_phone(page, demo_site, screen):
    """No page scrolls sideways; on a phone every nav link and button is at least 44 px high."""
    def check(path: str) -> None:
        page.goto(path)
        _fits_the_screen(page)
        if screen == "phone":
            assert _small_tap_targets(page) == [], page.url

    check("/admin/login")
    check("/status")
    sign_in(page, demo_site.login("school_admin"))
    for path in (f"/admin/s/{demo_site.school_code}/", "/admin/account", "/admin/account/totp", "/status"):
        check(path)
    sign_in_as_operator = demo_site.login("operator")
    page.get_by_role("button", name="ログアウト").click()
    sign_in(page, sign_in_as_operator)
    check("/admin/")
