"""The dashboard in a real browser: `trafficlens dashboard` serves a simulated lake, headless
Chromium (Debian's, driven by Playwright) opens every page from the sidebar, and the test fails on
any exception or error element, or on any request to anything but the dashboard itself (the tool
works offline: no web font, icon or script from the internet). Full-page screenshots of each page,
at a desktop and a phone width, go to test-output/screenshots/.

Debian's chromium is installed when missing (as root, with apt-get); without it, or without
playwright, the test is skipped.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import apt_install, dashboard_server, simulated_lake

from trafficlens.dashboards.app import ROUTES

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Sidebar titles, in the router's order, and the heading each page shows (its title).
PAGES = [(r.title, r.title) for r in ROUTES]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
# What an exception looks like in page text: a traceback, or a Python error class name.
EXCEPTION_TEXT = re.compile(r"Traceback \(most recent call last\)|\b[A-Z]\w*(Error|Exception)\b|\bError\b")


def _chromium() -> str:
    """Debian's chromium, installed with apt-get when it is missing (skip when that cannot be done)."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    failed = apt_install("chromium")
    if failed:
        pytest.skip(f"{CHROMIUM} is missing and cannot be installed here ({failed})")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"apt-get installed chromium but {CHROMIUM} is not there")
    return CHROMIUM


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A simulated lake behind `trafficlens dashboard`; yields the dashboard's URL."""
    d = tmp_path_factory.mktemp("browser")
    with dashboard_server([sys.executable, "-m", "trafficlens"], simulated_lake(d), d / "dashboard.log") as url:
        yield url


def _settle(page: sync_api.Page, heading: str) -> None:
    """Wait until the page's script has run and its charts are drawn."""
    page.wait_for_selector(f"h1:has-text('{heading}')", timeout=60_000)
    # The status widget shows while the script runs; charts draw after it.
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidget"] button, [data-testid="stStatusWidget"] img')
                 && [...document.querySelectorAll('.vega-embed')].every(e => e.querySelector('svg, canvas'))""",
        timeout=60_000,
    )
    page.wait_for_timeout(800)


def _problems(page: sync_api.Page) -> list[str]:
    found = []
    for sel in ('[data-testid="stException"]', '[data-testid="stAlertContentError"]'):
        found += [f"{sel}: {t[:300]}" for t in page.locator(sel).all_inner_texts()]
    text = page.locator('[data-testid="stMain"]').inner_text()
    found += [f"text: …{text[max(0, m.start() - 80) : m.end() + 120]}…" for m in EXCEPTION_TEXT.finditer(text)]
    return found


def _screenshot(page: sync_api.Page, path: Path, size: dict[str, int] = DESKTOP) -> None:
    """The whole page: Streamlit scrolls inside its main block, so the window grows to fit it first."""
    height = page.evaluate(
        """() => Math.max(...[...document.querySelectorAll('[data-testid="stMain"], [data-testid="stSidebarContent"]')]
                         .map(e => e.scrollHeight), window.innerHeight)"""
    )
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 16_000)})
    page.wait_for_timeout(600)  # charts re-layout to the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _outside(url: str) -> bool:
    """A request that leaves this machine (data: and blob: URLs never do)."""
    parsed = urlparse(url)
    return parsed.scheme not in ("data", "blob", "about") and parsed.hostname not in LOCAL_HOSTS


def test_every_page_in_a_browser(served: str) -> None:
    executable = _chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            # A reader far from UTC: days on the charts must still be the lake's UTC days.
            page = browser.new_page(viewport=DESKTOP, timezone_id="America/Los_Angeles")
            console_errors: list[str] = []
            outside: list[str] = []
            page.on("pageerror", lambda e: console_errors.append(str(e)))
            page.on("request", lambda r: outside.append(r.url) if _outside(r.url) else None)
            page.goto(served, wait_until="domcontentloaded")
            failures: dict[str, list[str]] = {}
            for i, (link, heading) in enumerate(PAGES, start=1):
                if i > 1:  # the way a user goes: the sidebar's links, one session throughout
                    page.locator('[data-testid="stSidebarNav"] a', has_text=link).first.click()
                _settle(page, heading)
                if heading == "Overview":  # a click on a bar of "Requests by class" lists its clients
                    chart = page.locator(".vega-embed").first
                    chart.scroll_into_view_if_needed()
                    box = chart.bounding_box()
                    assert box is not None
                    # Inside the first day's bar, low down, where people (the largest class) are.
                    page.mouse.click(box["x"] + 60 + (box["width"] - 60) / 6, box["y"] + box["height"] * 0.8)
                    page.wait_for_timeout(300)
                    _settle(page, heading)
                    assert page.locator("text=clients seen").count() == 1, "a click on a bar lists its clients"
                if heading == "Security":  # pick the top malicious client: its reasons open below the table
                    grid = page.locator('[data-testid="stDataFrame"]').first
                    grid.scroll_into_view_if_needed()
                    box = grid.bounding_box()
                    assert box is not None
                    page.mouse.click(box["x"] + 14, box["y"] + 35 + 17)  # the first row's selection box
                    page.wait_for_timeout(300)
                    _settle(page, heading)
                    assert page.locator("text=Why (reasons").count() == 1, "selecting a client shows its reasons"
                problems = _problems(page)
                if problems:
                    failures[heading] = problems
                _screenshot(page, SHOTS / f"{i}-{_slug(heading)}-desktop.png")
            assert not failures, failures
            # A reload or a shared link opens the page inside the router, with its navigation.
            page.goto(served + "security", wait_until="domcontentloaded")
            _settle(page, "Security")
            links = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
            assert [t.strip().splitlines()[-1] for t in links] == [link for link, _ in PAGES], links  # after the icon
            assert not _problems(page)
            assert not console_errors, console_errors
            assert not outside, f"the dashboard fetched from the internet: {sorted(set(outside))}"
        finally:
            browser.close()


def test_every_page_at_a_phone_width(served: str) -> None:
    """Each page opened by its address on a phone-sized screen: no error, nothing fetched from
    outside, a screenshot to look at."""
    executable = _chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
            page = context.new_page()
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if _outside(r.url) else None)
            failures: dict[str, list[str]] = {}
            for i, route in enumerate(ROUTES, start=1):
                path = "" if i == 1 else route.file.removesuffix(".py")  # Streamlit's URL of a page file
                page.goto(served + path, wait_until="domcontentloaded")
                _settle(page, route.title)
                problems = _problems(page)
                if problems:
                    failures[route.title] = problems
                _screenshot(page, SHOTS / f"{i}-{_slug(route.title)}-phone.png", PHONE)
            assert not failures, failures
            assert not outside, f"the dashboard fetched from the internet: {sorted(set(outside))}"
        finally:
            browser.close()
