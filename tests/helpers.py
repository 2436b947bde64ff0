"""Plain helpers the tests share: the project's paths, the `kedro` CLI as a user runs it, a
fast measurement protocol, free ports, seed tables, a process paused at a named point, and a
local Ray cluster that a test starts and stops without touching any other (fixtures stay in
``conftest.py``)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ofa_latency_kedro.pause import MARKER_ENV, PAUSE_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: A protocol fast enough for tests (a few passes per subnet).
FAST_PROTOCOL = {
    "warmup_runs": 1,
    "rounds": 1,
    "runs_per_round": 3,
    "interleave": 2,
    "repeat_probe": 2,
}


def kedro_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("kedro")), *args]


def kedro(
    project: Path, *args: str, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the ``kedro`` CLI of this environment in ``project``, as a user would."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        kedro_command(*args),
        check=False,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def copy_project(root: Path) -> Path:
    """The project's configuration and an empty data layout in the new folder ``root``, so
    runs write there (the package itself comes from the editable install)."""
    root.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    (root / "src").mkdir()
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    for layer in (PROJECT_ROOT / "data").iterdir():
        if layer.is_dir():
            (root / "data" / layer.name).mkdir(parents=True)
    (root / "data" / "01_raw" / "latency").mkdir()
    return root


def copy_seed_rows(project: Path, shared_dir: Path, datasets: list[str], rows: int) -> None:
    """The first ``rows`` of each of the seed's latency ``datasets`` into the project's
    latency folder."""
    for dataset in datasets:
        seed = shared_dir / "seed_data" / "latency" / f"{dataset}.csv"
        lines = seed.read_text().splitlines()[: rows + 1]  # header + rows
        (project / "data" / "01_raw" / "latency" / seed.name).write_text("\n".join(lines) + "\n")


def params_arg(prefix: str, values: dict) -> str:
    """``--params`` text setting ``prefix.key=value`` for each entry."""
    return ",".join(f"{prefix}.{key}={value}" for key, value in values.items())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def viz_port() -> int:
    """A free port kedro-viz accepts: it refuses any above 49151 (the system's ephemeral
    range, where a port the OS picks, as `free_port`'s, often lies)."""
    for port in random.sample(range(20000, 49152), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # taken
                continue
            return port
    raise AssertionError("no free port between 20000 and 49151")


def seed_ofa_devices(shared_dir: Path, rows: int) -> pd.DataFrame:
    """The first ``rows`` of the seed's RTX 2080 Ti, Tesla P40 and Note10 OFA files (the
    phone's at width 1.2), split by key: three devices measuring the same subnets."""
    from ofa_latency_kedro.encoding import load_latency_csv, split_table

    folder = shared_dir / "seed_data" / "latency"
    widths = {"note10_lookuptable": 1.2}
    frames = [
        load_latency_csv(folder / f"{name}_ofa.csv", width_mult=widths).iloc[:rows]
        for name in ("RTX_2080_Ti_GPU", "Tesla_P40_GPU", "note10_lookuptable")
    ]
    return split_table(pd.concat(frames, ignore_index=True), "key")


#: What Python, pytest and tools write into a checkout as they run (never a project output).
TOOL_FOLDERS = (".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache")


def tree(root: Path, skip: tuple[str, ...] = TOOL_FOLDERS) -> set[str]:
    """Every file and folder under ``root`` (relative paths), leaving out those named in
    ``skip`` wherever they are."""
    found = set()
    for folder, dirs, files in os.walk(root):
        here = Path(folder).relative_to(root)
        dirs[:] = [name for name in dirs if name not in skip]
        found.update(str(here / name) for name in [*dirs, *files] if name not in skip)
    return found


def make(project: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """``make`` in ``project`` (a copy holding the Makefile) on this test environment, as
    installed: the install steps are taken as done."""
    venv = Path(sys.executable).parent.parent
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "200"}
    # the project's own store, as in a user's shell; and a top-level make (`make test` runs
    # these tests: its MAKELEVEL would make this one print "Entering directory" lines)
    for variable in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_EXPERIMENT_NAME",
        "MAKELEVEL",
        "MAKEFLAGS",
        "MFLAGS",
    ):
        env.pop(variable, None)
    command = ["make", "-o", f"{venv}/.installed", "-o", f"{venv}/.installed-test"]
    return subprocess.run(
        [*command, f"VENV={venv}", *args],
        check=False,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- a process stopped at a named point (see ofa_latency_kedro.pause) ----------------------------


class PausedProcess:
    """A subprocess started with ``<point>[@<n>]`` armed: `wait_for_pause` returns once it
    has reached that point (it waits there), `kill` SIGKILLs it and its children."""

    def __init__(
        self, command: list[str], point: str, marker: Path, *, cwd: Path | None = None
    ) -> None:
        self.point = point
        self.marker = marker
        marker.unlink(missing_ok=True)
        env = {
            **os.environ,
            "KEDRO_DISABLE_TELEMETRY": "true",
            PAUSE_ENV: point,
            MARKER_ENV: str(marker),
        }
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def wait_for_pause(self, timeout: float = 300) -> str:
        """The name of the point the process stopped at (the marker it wrote)."""
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the process ended (exit {self.process.returncode}) before reaching "
                    f"{self.point}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"the process did not reach {self.point} in {timeout} s")
            time.sleep(0.02)
        return self.marker.read_text()

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


# -- a local Ray cluster of the test's own --------------------------------------------------------


def session_processes(session: int) -> list[int]:
    """The live (not zombie) processes of a session, by id."""
    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=,stat="], capture_output=True, text=True, check=True
    ).stdout
    members = []
    for line in listing.splitlines():
        pid, state = line.split(maxsplit=1)
        if state.startswith("Z"):
            continue
        try:
            if os.getsid(int(pid)) == session:
                members.append(int(pid))
        except (ProcessLookupError, PermissionError):
            continue
    return members


def stop_session(session: int, timeout: float = 60) -> None:
    """SIGKILL every process of the session ``session`` (and nothing else), then wait until
    none is left. A session id stays taken while any of its processes lives, so this never
    reaches a process of another session."""
    deadline = time.monotonic() + timeout
    while members := session_processes(session):
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise AssertionError(f"processes {members} of session {session} outlived SIGKILL")
        time.sleep(0.1)


@dataclass
class RayCluster:
    """A Ray head on 127.0.0.1 started by a test, in a session of its own and with its own
    temporary folder. Ray's processes (GCS, raylet, agents and the workers the raylet forks,
    which move to process groups of their own but stay in the session) all belong to that
    session, so `stop` ends this cluster and leaves every other Ray process on the machine
    alone, where ``ray stop`` would stop them all."""

    address: str
    session: int
    temp_dir: Path

    @classmethod
    def start(
        cls, env: dict[str, str], *, num_cpus: int = 2, resources: str | None = None
    ) -> RayCluster:
        # A short folder: Ray's socket paths below it must stay under 108 bytes.
        temp_dir = Path(tempfile.mkdtemp(prefix="ofa-ray-"))
        port = free_port()
        ray = str(Path(sys.executable).with_name("ray"))
        command = [
            ray,
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            f"--num-cpus={num_cpus}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp_dir}",
        ]
        if resources:
            command.append(f"--resources={resources}")
        starter = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        cluster = cls(f"127.0.0.1:{port}", starter.pid, temp_dir)
        try:
            output, _ = starter.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            cluster.stop()
            raise
        if starter.returncode != 0:
            cluster.stop()
            raise AssertionError(f"`ray start --head` failed:\n{output}")
        return cluster

    def processes(self) -> list[int]:
        return session_processes(self.session)

    def stop(self) -> None:
        stop_session(self.session)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def logged_models(run_id: str) -> dict:
    """The MLflow Models logged in the run ``run_id``, by name."""
    import mlflow

    client = mlflow.MlflowClient()
    models = client.search_logged_models(
        experiment_ids=[client.get_run(run_id).info.experiment_id],
        filter_string=f"source_run_id = '{run_id}'",
    )
    return {model.name: model for model in models}
