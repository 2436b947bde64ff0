"""Fixtures of the browser tests."""

from __future__ import annotations

import pytest

from tests.surface.browser import Chromium, find_or_install_chromium


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Chromium:
    """Headless Chromium (installed on first use when missing, see `find_or_install_chromium`)."""
    return Chromium(find_or_install_chromium(), tmp_path_factory.mktemp("chromium-profiles"))
