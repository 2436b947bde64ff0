"""Shared test set-up: environment, hypothesis profiles, and the ../shared data folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")

PROJECT_ROOT = Path(__file__).resolve().parents[1]

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory) -> str:
    """Every MLflow run of the tests goes to a temporary SQLite store, never the project's."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    import mlflow

    mlflow.set_tracking_uri(uri)
    return uri


@pytest.fixture(autouse=True)
def isolated_mlflow(mlflow_store: str):
    """No test leaves an MLflow run open or the tracking URI pointing elsewhere (an
    in-process Kedro session points it at its project's store)."""
    yield
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(mlflow_store)
    mlflow.set_experiment("Default")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ``shared`` folder beside the checkout (``OFA_SHARED_DIR`` overrides)."""
    path = Path(os.environ.get("OFA_SHARED_DIR", PROJECT_ROOT.parent / "shared")).resolve()
    if not (path / "reference").is_dir() or not (path / "seed_data").is_dir():
        pytest.fail(
            f"the shared data folder was not found at {path}: the tests read the seed data and "
            "reference subnets from ../shared beside the checkout (or set OFA_SHARED_DIR)"
        )
    return path


@pytest.fixture(scope="session")
def reference_subnets(shared_dir: Path) -> list[dict]:
    import json

    return json.loads((shared_dir / "reference" / "ofa_mbv3_subnets.json").read_text())["subnets"]


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The project's configuration and layout in a temporary folder, so runs write there."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    (root / "src").mkdir()  # the package itself comes from the editable install
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    for layer in (PROJECT_ROOT / "data").iterdir():
        if layer.is_dir():
            (root / "data" / layer.name).mkdir(parents=True)
    (root / "data" / "01_raw" / "latency").mkdir()
    return root


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


#: A protocol fast enough for tests (a few passes per subnet).
FAST_PROTOCOL = {
    "warmup_runs": 1,
    "rounds": 1,
    "runs_per_round": 3,
    "interleave": 2,
    "repeat_probe": 2,
}


def params_arg(prefix: str, values: dict) -> str:
    """``--params`` text setting ``prefix.key=value`` for each entry."""
    return ",".join(f"{prefix}.{key}={value}" for key, value in values.items())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed_ofa_devices(shared_dir: Path, rows: int) -> pd.DataFrame:
    """The first ``rows`` of the seed's RTX 2080 Ti, Tesla P40 and Note10 OFA files (the
    phone's at width 1.2), split by key: three devices measuring the same subnets."""
    from ofa_latency_kedro.encoding import load_latency_csv, split_table  # noqa: PLC0415

    folder = shared_dir / "seed_data" / "latency"
    widths = {"note10_lookuptable": 1.2}
    frames = [
        load_latency_csv(folder / f"{name}_ofa.csv", width_mult=widths).iloc[:rows]
        for name in ("RTX_2080_Ti_GPU", "Tesla_P40_GPU", "note10_lookuptable")
    ]
    return split_table(pd.concat(frames, ignore_index=True), "key")
