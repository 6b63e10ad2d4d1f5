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

What the pages must show is counted in the test's process on the demo site's own data dir (`core`);
`seen` records every page and JSON answer the test's page receives, to scan for the seeded address
marker; `sink` runs the demo's capture sink (`appliance mta sink`), `flush_mail` delivers to it.
"""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Response, expect, sync_playwright

from appliance import db
from appliance.demo import DEMO_CODE, DemoLogin
from appliance.runtime import Appliance, open_appliance
from appliance.sample_data import ADDRESS_MARKER
from tests.integration.sinks import wait_for_port
from tests.integration.site import APPLIANCE, Site

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
# The smallest valid PDF a viewer opens: one empty page, its cross-reference table and trailer.
TINY_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
            b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
            b"xref\n0 4\n0000000000 65535 f \n0000000009 00000 n \n0000000052 00000 n \n0000000101 00000 n \n"
            b"trailer<</Size 4/Root 1 0 R>>\nstartxref\n170\n%%EOF\n")


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
    site = Site(tmp_path_factory.mktemp("browser") / "data")
    logins = site.set_up_demo()
    site.serve_web()
    try:
        yield DemoSite(site.base_url, site.data_dir, DEMO_CODE, tuple(logins), site.env)
    finally:
        site.stop()


@contextmanager
def core(site: DemoSite | Site) -> Iterator[Appliance]:
    """A site's appliance opened in this process (its database closed afterwards)."""
    app = open_appliance(site.data_dir, environ=site.env)
    try:
        yield app
    finally:
        db.close_database()


@pytest.fixture(name="sink", scope="module")
def sink_fixture(demo_site) -> Iterator[None]:
    """The demo's capture sink (`appliance mta sink`), where `appliance demo` routes every mail."""
    sink = subprocess.Popen([*APPLIANCE, "mta", "sink"], env=demo_site.env, cwd=demo_site.data_dir.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    host, port = demo_site.env["APPLIANCE_SINK__BIND"].rsplit(":", 1)
    wait_for_port(host, int(port), sink, timeout=30)
    yield
    sink.terminate()
    sink.wait(timeout=20)


def flush_mail(demo_site: DemoSite) -> None:
    """Deliver everything due to the capture sink (`appliance mta flush --wait`)."""
    flushed = subprocess.run([*APPLIANCE, "mta", "flush", "--wait"], env=demo_site.env, capture_output=True,
                             text=True, cwd=demo_site.data_dir.parent, timeout=120)
    assert flushed.returncode == 0, flushed.stderr


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
        save_screenshot(page, request, screen)
        page.context.close()


class Seen:
    """Every page and JSON answer the watched pages receive, read as it arrives (a page navigated
    away from has no body any more), to scan for addresses. Downloads are left out: a file's body
    never reaches the page (and is no page)."""

    def __init__(self):
        self.bodies: dict[str, str] = {}

    def watch(self, page: Page) -> Page:
        """Record what this page receives from now on."""
        page.on("response", self._record)
        return page

    def _record(self, response: Response) -> None:
        if response.headers.get("content-disposition", "").startswith("attachment"):
            return
        if response.request.resource_type in ("document", "fetch", "xhr") and response.status == 200:
            self.bodies[response.url] = response.text()

    def assert_no_address(self) -> None:
        """No page or JSON answer recorded so far holds a seeded address."""
        assert self.bodies, "no page was recorded"
        leaks = {url: ADDRESS_MARKER.findall(body) for url, body in self.bodies.items() if ADDRESS_MARKER.search(body)}
        assert leaks == {}


@pytest.fixture(name="seen")
def seen_fixture(page) -> Seen:
    """The recorder, already watching the test's page."""
    seen = Seen()
    seen.watch(page)
    return seen


def open_page(browser: Browser, site: DemoSite | Site, screen: str, **options) -> Page:
    """A page in a new context of its own (no cookies) at this size, options (viewport=, java_script_enabled=)
    overriding it; closing its context is the caller's."""
    context = browser.new_context(base_url=site.base_url, **{**SIZES[screen], **options}, **PLACE)
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


@pytest.fixture(name="screenshot")
def screenshot_fixture(request, page, screen) -> Callable[..., Path]:
    """A function saving the page (or another one) now as test-artifacts/screenshots/<test>-<label>-<size>.png."""
    return lambda label, other=None: save_screenshot(other or page, request, screen, label)


def save_screenshot(page: Page, request, screen: str, label: str = "") -> Path:
    """Save the page now as test-artifacts/screenshots/<test>-<label>-<size>.png (for pages no fixture opened)."""
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
