"""The dashboard in a real browser: Debian's headless Chromium driven by playwright.

An admin's path through it: the overview, the issue list filtered by kind
(the select submits itself), a meeting opened by its 15-character Salesforce
Id from the search box, its explanation, and a what-if. A screenshot of each
page is written under the test's temporary folder. Chromium missing: skipped
with the reason, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.sandbox.org import ALICE, _sf_id, build
from adapters.web.app import WebConfig, create_app
from ledger.store import Store
from tests.live_server import serving
from tests.scenarios import ingest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _need_chromium() -> None:
    reason = None
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        reason = f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (pip install -e '.[test]')"
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI=true: the browser test must run)")
    pytest.skip(reason)


@pytest.fixture
def browser_page() -> Iterator[Any]:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def test_an_admin_finds_why_a_meeting_did_not_sync(browser_page: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    store = Store.open(url)
    ingest(store, build(), tmp_path)
    store.close()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = browser_page
    with serving(create_app(WebConfig(db=url))) as base:
        page.goto(base + "/")
        assert page.inner_text("h1") == "Org overview"
        open_issues = int(page.inner_text("#open-issues"))
        assert open_issues > 0
        assert ALICE in page.inner_text("#mailboxes")
        page.screenshot(path=str(shots / "overview.png"), full_page=True)

        page.click("text=Sync issues")
        page.wait_for_url("**/issues?state=open")
        assert page.locator("#issues tbody tr").count() == open_issues
        with page.expect_navigation():
            page.select_option("select[name=kind]", "unsupported-time-zone")  # no button
        assert "kind=unsupported-time-zone" in page.url
        rows = page.locator("#issues tbody tr")
        assert rows.count() == 1 and "unsupported-time-zone" in rows.inner_text()
        page.screenshot(path=str(shots / "issues.png"), full_page=True)

        sf15 = _sf_id("00U", 20)[:15]  # the Lightning series that does not sync down
        page.fill("#find-id", sf15)
        page.click(".find button")
        page.wait_for_url("**/meeting?id=*")
        assert "Not synced" in page.inner_text("#explain h2")
        assert "Lightning" in page.inner_text("#why")
        assert page.locator("#evidence tbody tr").count() > 0
        assert page.locator("#timeline tbody tr").count() > 0
        page.screenshot(path=str(shots / "meeting.png"), full_page=True)

        page.click("text=What if")
        page.fill("#settings", "sync_private_items=true")
        page.click("#whatif-form button")
        page.wait_for_selector("#whatif-result")
        now_sync = page.locator("[data-key=would_now_sync]").inner_text()
        gone = page.locator("[data-key=issues_disappear]").inner_text()
        assert int(now_sync) == 1 and int(gone) == 1
        page.screenshot(path=str(shots / "whatif.png"), full_page=True)
    written = sorted(p.name for p in shots.iterdir() if p.stat().st_size > 5_000)
    assert written == ["issues.png", "meeting.png", "overview.png", "whatif.png"]
    print(f"screenshots: {shots}")
