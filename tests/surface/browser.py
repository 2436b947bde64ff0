"""Headless Chromium driven from its own command line: rendered DOM and screenshots.

The surface tests look at pages the way a person does, after their JavaScript has run,
without a browser-automation library: ``--dump-dom`` prints the DOM once the page's virtual
time budget is spent, ``--screenshot`` writes what the window shows.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

#: Every Chromium run: no display, no sandbox (CI runs as root), no calls home.
HEADLESS_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
#: Only loopback resolves: kedro-viz's page asks Google Fonts for its font, which offline
#: held each render up to ~5 s on DNS; now it fails at once and the page uses a fallback.
LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
WINDOW_SIZE = (1600, 1000)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
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


@dataclass(frozen=True)
class Chromium:
    """One headless Chromium per call, each with a fresh profile, so no setting (kedro-viz
    keeps its display options in localStorage) carries over from an earlier page."""

    binary: str
    profiles: Path

    def _run(self, url: str, *flags: str, budget_ms: int) -> str:
        """Chromium's standard output for ``url``."""
        profile = tempfile.mkdtemp(prefix="profile-", dir=self.profiles)
        command = [
            self.binary,
            *HEADLESS_FLAGS,
            LOOPBACK_ONLY,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            *flags,
            url,
        ]
        browser = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its renderer and helper processes go with it
        )
        try:
            stdout, stderr = browser.communicate(timeout=budget_ms / 1000 + 120)
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.communicate()
            pytest.fail(f"chromium did not finish rendering {url} in time")
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        assert browser.returncode == 0, (
            f"chromium failed on {url} (exit {browser.returncode}): {stderr[-2000:]}"
        )
        return stdout

    def dump_dom(self, url: str, *, budget_ms: int = 5000) -> str:
        """The page's DOM as HTML after ``budget_ms`` of virtual time."""
        dom = self._run(url, "--dump-dom", budget_ms=budget_ms)
        assert "<html" in dom, f"chromium printed no DOM for {url}: {dom[:500]!r}"
        return dom

    def screenshot(self, url: str, path: Path, *, budget_ms: int = 5000) -> Path:
        """A PNG of the page's window after ``budget_ms`` of virtual time."""
        path.parent.mkdir(parents=True, exist_ok=True)
        width, height = WINDOW_SIZE
        self._run(
            url,
            f"--screenshot={path}",
            f"--window-size={width},{height}",
            "--hide-scrollbars",
            budget_ms=budget_ms,
        )
        return path


def assert_screenshot(path: Path) -> None:
    """``path`` is a PNG of the whole window showing an app: a blank page or one line of text
    gives a few kB and ~100 colours (anti-aliasing), kedro-viz or MLflow thousands."""
    from matplotlib import image

    assert path.is_file(), f"no screenshot at {path}"
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert path.stat().st_size > 30_000, f"{path} is only {path.stat().st_size} bytes"
    pixels = image.imread(path)
    width, height = WINDOW_SIZE
    assert pixels.shape[:2] == (height, width), f"{path} is {pixels.shape}, not {WINDOW_SIZE}"
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) >= 500, f"{path} has only {len(colours)} colours: a blank page?"
