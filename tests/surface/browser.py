"""The system Chromium as Playwright drives it in the surface tests and in
``docs/screenshots.py``.

Playwright's own browser download is not reachable here, so Playwright launches the Debian
``chromium`` package through ``executable_path``; a clean CI machine (root, no browser) gets
it with apt on first use. Only loopback resolves in that browser: kedro-viz's page asks
Google Fonts for its font, which offline held each render for seconds on DNS; now the request
fails at once and the page uses a fallback font.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from typing import Any

import pytest
from playwright.sync_api import Locator

LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
#: Wide enough for kedro-viz's sidebar and flowchart and for two plots side by side in
#: MLflow's compare view.
VIEWPORT = {"width": 1600, "height": 1000}
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


def _apt_get(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["apt-get", *args],
        check=False,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **APT_ENV},
        timeout=900,
    )


def _install_with_apt() -> str:
    """Install the Debian ``chromium`` package (with its recommended fonts, or screenshots
    show no text); return why it failed ('' when it did not)."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "installing it needs root"
    installed = _apt_get("install", "-y", "chromium")
    if installed.returncode != 0:  # a clean image has no package lists yet
        _apt_get("update")
        installed = _apt_get("install", "-y", "chromium")
    if installed.returncode != 0:
        return f"`apt-get install chromium` failed: {installed.stderr.strip()[-800:]}"
    return ""


def find_or_install_chromium() -> str:
    """The ``chromium`` binary, installed with apt when missing and we may.

    Without it the browser tests cannot say anything: under CI (``CI`` set) that is a
    failure, elsewhere a skip that says how to get it.
    """
    found = shutil.which("chromium")
    if found:
        return found
    problem = _install_with_apt()
    found = shutil.which("chromium")
    if found:
        return found
    message = (
        f"headless Chromium is needed by the browser tests and is missing ({problem}); "
        "install it with `apt-get install chromium` (Debian package `chromium`)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def launch_options(executable: str) -> dict[str, Any]:
    """Keyword arguments of Playwright's ``chromium.launch`` for the system browser
    (Playwright adds ``--no-sandbox`` itself, which CI's root user needs)."""
    return {"executable_path": executable, "args": [LOOPBACK_ONLY]}


def shown_image(image: Locator) -> bytes:
    """The bytes of the picture an ``<img>`` shows, read back through its ``src`` (MLflow
    shows artifacts from ``blob:`` URLs), once the browser has decoded it."""
    image.wait_for()
    image.evaluate("img => img.decode()")  # rejects a picture that does not load
    encoded = image.evaluate(
        """async img => {
            const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
            let text = "";
            for (const byte of bytes) text += String.fromCharCode(byte);
            return btoa(text);
        }"""
    )
    return base64.b64decode(encoded)
