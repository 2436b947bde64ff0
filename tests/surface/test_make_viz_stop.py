"""`make viz` stops with everything it started: `kedro viz run` serves from a child process
of its own, which used to outlive a killed launcher and keep the port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT, viz_port

#: Bounds on waiting, never asserted as speeds: the app starting, and everything stopping.
START_S, STOP_S = 180, 60


def descendants(pid: int) -> set[int]:
    """The live processes below ``pid``."""
    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=,ppid=,stat="], capture_output=True, text=True, check=True
    ).stdout
    children: dict[int, list[int]] = {}
    for line in listing.splitlines():
        child, parent, state = line.split(maxsplit=2)
        if not state.startswith("Z"):
            children.setdefault(int(parent), []).append(int(child))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def launcher(pids: set[int]) -> int:
    """The ``kedro viz run`` process among ``pids`` (the one whose parent is not kedro)."""
    commands = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in pids}
    return next(pid for pid, argv in commands.items() if b"viz" in argv and b"run" in argv)


def start_make_viz(project: Path, port: int) -> subprocess.Popen:
    """``make viz`` on ``port`` in a session of its own, as in a terminal (install steps taken
    as done), once it serves the app; its output in ``make_viz.log`` of the project."""
    venv = Path(sys.executable).parent.parent
    log = project / "make_viz.log"
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    for variable in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS"):
        env.pop(variable, None)
    process = subprocess.Popen(
        ["make", "-o", f"{venv}/.installed", f"VENV={venv}", "viz", f"VIZ_PORT={port}"],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + START_S
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/main", timeout=5) as page:
                assert page.status == 200
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                output = log.read_text(errors="replace")[-4000:]
                pytest.fail(
                    f"make viz did not serve port {port} (exit {process.poll()}):\n{output}"
                )
            time.sleep(1)


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["ctrl-c", "kill make", "kill kedro viz"])
def test_make_viz_leaves_no_process_and_frees_its_port(project_copy: Path, stop: str):
    shutil.copy(PROJECT_ROOT / "Makefile", project_copy)
    port = viz_port()
    make = start_make_viz(project_copy, port)
    started = descendants(make.pid)
    try:
        if stop == "ctrl-c":  # a terminal signals the whole foreground process group
            os.killpg(make.pid, signal.SIGINT)
        elif stop == "kill make":
            os.kill(make.pid, signal.SIGTERM)
        else:
            os.kill(launcher(started), signal.SIGTERM)
        make.wait(timeout=STOP_S)
        left = {pid for pid in started if alive(pid)}
        assert not left, f"processes {left} of `make viz` outlived it"
        assert port_is_free(port), f"port {port} still answers"
    finally:
        for pid in started | {make.pid}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
