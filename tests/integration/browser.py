"""Browser fixtures: Debian's chromium driven by Playwright against the demo site under gunicorn.

    def test_x(page, demo_site, screenshot):     # runs once at phone size, once at desktop size
        sign_in(page, demo_site.login("school_admin"))
        screenshot("signed-in")                   # test-artifacts/screenshots/test_x-signed-in-phone.png
        other = open_page(browser, demo_site, screen)   # a second person, in a context of their own

The browser is Debian's /usr/bin/chromium (Makefile: DEBIAN_PACKAGES), never one that
`playwright install` downloads; one per test module. Each test gets a fresh context (no cookies) at each of
SIZES; its last state is kept as test-artifacts/screenshots/<test>-<size>.png, passed or not.
One demo site (`make demo-setup`'s steps, Site.set_up_demo, then gunicorn) serves the whole session:
tests must not change what others rely on (passwords, TOTP, signing out everywhere, an open CoCo-net
event). SCREENSHOT_SCALE=css saves phone screenshots at one pixel per CSS pixel (`make screenshots`:
small PNGs for the README) instead of the device's two.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from appliance.demo import DEMO_CODE, DemoLogin

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# Staff are Japanese, at school on a phone or at a desk.
SIZES = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
              "device_scale_factor": 2},
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}
PLACE = {"locale": "ja-JP", "timezone_id": "Asia/Tokyo"}
TIMEOUT_MS = 10_000          # a page that takes longer is a failure, not something to wait for


@dataclass(frozen=True)
class DemoSite:
    """The running demo: its URL, school and the staff logins `appliance demo` made."""

    base_url: str
    data_dir: Path
    school_code: str
    logins: tuple[DemoLogin, ...]
    env: dict[str, str] = field(repr=False)     # the environment `appliance` commands of this site run with

    def login(self, role: str) -> DemoLogin:
        """The first demo login with this role (operator, school_admin, teacher)."""
        return next(login for login in self.logins if login.role == role)


@pytest.fixture(name="demo_site", scope="session")
def demo_site_fixture(tmp_path_factory) -> Iterator[DemoSite]:
    """`make demo-setup`'s steps in a temporary data dir, served by gunicorn for the session."""
    from tests.integration.conftest import Site    # here: conftest imports this module

    site = Site(tmp_path_factory.mktemp("browser") / "data")
    logins = site.set_up_demo()
    site.serve_web()
    try:
        yield DemoSite(site.base_url, site.data_dir, DEMO_CODE, tuple(logins), site.env)
    finally:
        site.stop()


# Module scope, not session: while Playwright's sync API is up it holds a running event loop,
# and every later test calling asyncio.run() (the MTA's) would fail.
@pytest.fixture(name="browser", scope="module")
def browser_fixture() -> Iterator[Browser]:
    """Debian's chromium, headless, for the tests of one module."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(name="screen", params=list(SIZES))
def screen_fixture(request) -> str:
    """The screen size a test runs at: each test using a page runs at every one of SIZES."""
    return request.param


@pytest.fixture(name="page")
def page_fixture(request, browser, demo_site, screen) -> Iterator[Page]:
    """A page in a fresh browser context at this size, on the demo site (page.goto("/admin/login"))."""
    page = open_page(browser, demo_site, screen)
    try:
        yield page
    finally:
        _save_screenshot(page, request, screen)
        page.context.close()


def open_page(browser: Browser, demo_site: DemoSite, screen: str) -> Page:
    """A page in a new context of its own (no cookies) at this size; closing its context is the caller's."""
    context = browser.new_context(base_url=demo_site.base_url, **SIZES[screen], **PLACE)
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


@pytest.fixture(name="screenshot")
def screenshot_fixture(request, page, screen) -> Callable[..., Path]:
    """A function saving the page (or another one) now as test-artifacts/screenshots/<test>-<label>-<size>.png."""
    return lambda label, other=None: _save_screenshot(other or page, request, screen, label)


def _save_screenshot(page: Page, request, screen: str, label: str = "") -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = "-".join(part for part in (request.node.originalname, label, screen) if part)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True, scale=os.environ.get("SCREENSHOT_SCALE", "device"))
    return path


def sign_in(page: Page, login: DemoLogin) -> None:
    """Sign in through the form and wait for the page staff land on."""
    page.goto("/admin/login")
    page.get_by_label("ログイン名").fill(login.login)
    page.get_by_label("パスワード").fill(login.password)
    page.get_by_role("button", name="ログイン", exact=True).click()
    expect(page).not_to_have_url(re.compile(r"/admin/login"))
