"""Headless Chromium (Debian's `chromium` package, installed by scripts/install-browser.sh) driven by
Playwright, for the tests marked `browser` (`make browser-test`)."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from tests.support import ANSWER_TIMEOUT

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
OUTPUT_DIR = Path(os.environ.get("TEST_OUTPUT_DIR", REPO / "test-output")) / "browser"
LAUNCH_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No calls home (updates, sync, field trials): on a closed network they are refused and slow startup.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_saved: list[Path] = []


def _missing_chromium() -> str | None:
    if CHROMIUM.exists():
        return None
    return f"{CHROMIUM} is not installed; `make browser-test` installs it (scripts/install-browser.sh)"


def pytest_collection_modifyitems(config, items):
    # Skipped at collection, so that a plain `make test` without Chromium starts no server for them;
    # under `make browser-test` (BROWSER_TEST_REQUIRED) the fixture fails them instead.
    if (reason := _missing_chromium()) and not os.environ.get("BROWSER_TEST_REQUIRED"):
        for item in items:
            if item.get_closest_marker("browser"):
                item.add_marker(pytest.mark.skip(reason=reason))


class Screenshots:
    """Saves full-page screenshots under OUTPUT_DIR, for people (and CI artifacts) to look at."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(self, page, name: str) -> Path:
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        _saved.append(path)
        print(f"screenshot: {path}")
        return path


@pytest.fixture(scope="session")
def screenshots() -> Screenshots:
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)  # no stale pictures from an earlier run
    OUTPUT_DIR.mkdir(parents=True)
    return Screenshots(OUTPUT_DIR)


@pytest.fixture
def browser_page(screenshots):
    """browser_page(): a context manager giving a fresh page; a failure inside it leaves failure-<test>.png.

    A context manager rather than a fixture that stays open: while Playwright's sync API is running,
    Django refuses ORM calls on this thread (SynchronousOnlyOperation), so tests query the database
    before and after the browser part, never during it.
    """
    if reason := _missing_chromium():
        if os.environ.get("BROWSER_TEST_REQUIRED"):
            pytest.fail(reason)  # make browser-test must not pass by skipping
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=ANSWER_TIMEOUT * 1000)  # assertions wait as long as the page does

    @contextlib.contextmanager
    def open_page(name: str):
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            # Waits for a page or an element: a limit only against "never", however busy the machine.
            page.set_default_timeout(ANSWER_TIMEOUT * 1000)
            try:
                yield page
            except BaseException:
                screenshots.save(page, f"failure-{name}")
                raise
            finally:
                browser.close()

    return open_page


def pytest_terminal_summary(terminalreporter):
    if _saved:
        terminalreporter.write_sep("-", "browser screenshots")
        for path in _saved:
            terminalreporter.write_line(str(path))
