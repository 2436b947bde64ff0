"""Local servers for the surface tests (and docs/screenshots.py): started in the background on
loopback, waited for with a bounded poll, and always stopped (with their worker processes)
afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import free_port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(process: subprocess.Popen) -> None:
    """Stop the server's whole process group (uvicorn's workers too): TERM, then KILL
    whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass


@contextmanager
def background_server(
    command: list[str],
    *,
    cwd: Path,
    ready_url: str,
    log_path: Path,
    timeout_s: float = 120,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen]:
    """Run ``command`` in ``cwd`` (with ``env``, else this process's environment) until the
    block ends; enter once ``ready_url`` answers 200.

    Fails with the server's output when it exits or does not answer within ``timeout_s``.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole
        )
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers(ready_url):
            output = log_path.read_text(errors="replace")[-4000:]
            if process.poll() is not None:
                pytest.fail(f"{command} exited with {process.returncode}:\n{output}")
            if time.monotonic() > deadline:
                pytest.fail(f"{ready_url} did not answer within {timeout_s} s:\n{output}")
            time.sleep(0.25)
        yield process
    finally:
        _stop(process)


@contextmanager
def static_site(folder: Path, *, log_path: Path) -> Iterator[str]:
    """The files of ``folder`` (a `kedro viz build`) served by Python's http.server on a free
    loopback port; yields the site's URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with background_server(
        [*command, "--directory", str(folder)],
        cwd=folder,
        ready_url=f"{url}index.html",
        log_path=log_path,
        timeout_s=30,
    ):
        yield url


@contextmanager
def mlflow_ui(project: Path, *, log_path: Path) -> Iterator[str]:
    """`make mlflow-ui`'s command on the project's store (sqlite:///mlflow.db in ``project``)
    on a free loopback port; yields its base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    command = [mlflow, "ui", "--backend-store-uri", "sqlite:///mlflow.db", "--workers", "1"]
    with background_server(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=project,
        ready_url=f"{base_url}/health",
        log_path=log_path,
        timeout_s=180,
    ):
        yield base_url
