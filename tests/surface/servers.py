"""Local servers for the surface tests: started in the background on loopback, waited for
with a bounded poll, and always stopped (with their worker processes) afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


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
