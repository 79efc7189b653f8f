"""Real Chromium (Debian's, at /usr/bin/chromium) driven by Playwright against the app on a
live server on loopback, with mail caught by a real SMTP server. Screenshots of every page, at
phone and desktop width, go to test-artifacts/screenshots/."""

import os
import re
import time
import uuid
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run in a
# thread with a running loop unless told that this is deliberate.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium: browser tests skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def site(live_server, settings, smtp):
    """The live server's address, with links in emails pointing at it."""
    settings.SITE_URL = live_server.url
    # Rate limits on, counted in an in-memory cache: the live server is a thread of this
    # process, so it shares the cache.
    settings.RATELIMIT_ENABLE = True
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": str(uuid.uuid4()),
        }
    }
    return live_server.url


@pytest.fixture
def page(chromium, site):
    context = chromium.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id="Europe/Paris", locale="en-GB"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    # Status codes like 400 or 429 are expected on some pages; anything else is a bug.
    page.on(
        "console",
        lambda msg: (
            msg.type == "error"
            and "Failed to load resource" not in msg.text
            and errors.append(msg.text)
        ),
    )
    yield page
    context.close()
    assert errors == [], f"JavaScript errors or CSP violations: {errors}"


_UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, img')]
  .filter(e => !e.closest('.hp'))
  .filter(e => e.tagName === 'IMG' ? !e.hasAttribute('alt')
    : !((e.labels && e.labels.length) || e.getAttribute('aria-label') || e.textContent.trim()))
  .map(e => e.outerHTML.slice(0, 80))"""


def shoot(page, name: str) -> None:
    """Full-page screenshots of the current page at phone and desktop width; on the way, every
    control must have a label and nothing may scroll sideways on a phone."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert page.evaluate(_UNLABELLED) == [], f"unlabelled controls on {name}"
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        overflow = page.evaluate("document.documentElement.scrollWidth") - width
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def wait_for_mail(smtp, count: int, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while len(smtp.messages) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} message(s), got {len(smtp.messages)}")
        time.sleep(0.05)
    return smtp.messages[count - 1]


def link_in(message, site: str, path: str) -> str:
    from tests.servers import text_part

    match = re.search(rf"{re.escape(site)}/{path}/[^\s\"<>]+/", text_part(message))
    assert match, text_part(message)
    return match.group(0)
