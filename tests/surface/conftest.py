"""Playwright for the browser tests (pytest-playwright's ``page`` fixture), with the system
Chromium of `tests.surface.browser`.

pytest-playwright keeps one Playwright for the whole session, and its sync API leaves its
event loop marked as running in the main thread until it stops: every later test that calls
``asyncio.run`` would fail. The fixtures below hold Playwright and the browser for this
package only, so both stop when its tests are done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserType, Playwright, expect, sync_playwright

from tests.surface.browser import VIEWPORT, find_or_install_chromium, launch_options

#: How long an expectation waits for a page: kedro-viz lays out its graph and MLflow fetches
#: its runs in well under a second alone, much longer on two cores shared with servers and
#: other test runs.
EXPECT_TIMEOUT_MS = 30_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's options (``--headed``, ``--slowmo``) for the Debian ``chromium``
    (installed on first use when missing)."""
    return {**browser_type_launch_args, **launch_options(find_or_install_chromium())}


@pytest.fixture(scope="package")
def launch_browser(
    browser_type_launch_args: dict[str, Any], browser_type: BrowserType
) -> Callable[..., Browser]:
    def launch(**options: Any) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **options})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser: Callable[..., Browser]) -> Iterator[Browser]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_context_args() -> dict[str, Any]:
    """Each test's page opens in a fresh context (no cookies, no localStorage: kedro-viz
    keeps its display options there) of this size."""
    return {"viewport": VIEWPORT}
