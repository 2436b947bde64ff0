"""`kedro run`s at the same time, as real processes: one writer per dataset (a second run on
it stops at once, naming the first; a SIGKILLed run never blocks the next), and runs on
different datasets of a fresh project both succeed (the MLflow store is created once)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from tests.helpers import PausedProcess, kedro, kedro_command, params_arg


def lut_params(shared_dir: Path, hardware: str, num_subnets: int) -> str:
    return params_arg(
        "sampling",
        {
            "hardware": hardware,
            "space": "compofa",
            "width_mult": 1.2,
            "backend": "lut",
            "lut_dir": shared_dir / "seed_data" / "latency_table@note10",
            "num_subnets": num_subnets,
            "progress": "false",
            "protocol.interleave": 2,
        },
    )


def one_line(result: subprocess.CompletedProcess) -> str:
    """The run's output with the console's line wrapping undone."""
    return " ".join((result.stdout + result.stderr).split())


@pytest.mark.slow
def test_a_second_run_on_a_dataset_stops_at_once_and_a_killed_run_never_blocks_the_next(
    project_copy: Path, shared_dir: Path
):
    csv = project_copy / "data" / "01_raw" / "latency" / "box_compofa.csv"
    params = lut_params(shared_dir, "box", 30)
    first = PausedProcess(
        kedro_command("run", "--pipelines", "sampling", "--params", params),
        f"latency_log.appended:{csv.name}@1",
        project_copy.parent / "paused_at",
        cwd=project_copy,
    )
    try:
        first.wait_for_pause()
        before = csv.read_bytes()
        second = kedro(project_copy, "run", "--pipelines", "sampling", "--params", params)
        assert second.returncode != 0
        assert (
            f"dataset {csv} is being written by pid {first.process.pid} on "
            f"{socket.gethostname()} since " in one_line(second)
        ), one_line(second)[-3000:]
        assert csv.read_bytes() == before
    finally:
        first.kill()
    assert csv.with_name(csv.name + ".lock").exists()  # stale: its pid died
    third = kedro(project_copy, "run", "--pipelines", "sampling", "--params", params)
    assert third.returncode == 0, one_line(third)[-3000:]
    frame = pd.read_csv(csv)
    assert len(frame) == 30 and frame["child_arch"].is_unique
    sessions = json.loads(csv.with_suffix(".json").read_text())["sessions"]
    assert [s["status"] for s in sessions] == ["interrupted", "complete"]
    assert not csv.with_name(csv.name + ".lock").exists()


@pytest.mark.slow
def test_runs_on_different_datasets_of_a_fresh_project_at_once_both_succeed(
    project_copy: Path, shared_dir: Path
):
    assert not (project_copy / "mlflow.db").exists()
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    counts = {"left": 20, "right": 35}  # different plans: each run measures its own
    runs = {
        hardware: subprocess.Popen(
            kedro_command(
                "run",
                "--pipelines",
                "sampling",
                "--params",
                lut_params(shared_dir, hardware, counts[hardware]),
            ),
            cwd=project_copy,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for hardware in ("left", "right")
    }
    outputs = {hardware: run.communicate(timeout=600)[0] for hardware, run in runs.items()}
    for hardware, run in runs.items():
        assert run.returncode == 0, f"{hardware}: {' '.join(outputs[hardware].split())[-3000:]}"
        frame = pd.read_csv(
            project_copy / "data" / "01_raw" / "latency" / f"{hardware}_compofa.csv"
        )
        assert len(frame) == counts[hardware] and set(frame["hardware"]) == {hardware}
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project_copy / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ofa_latency_kedro")
    tracked = client.search_runs([experiment.experiment_id])
    kedro_runs = [run for run in tracked if "mlflow.parentRunId" not in run.data.tags]
    assert len(kedro_runs) == 2  # and under each, the sampling record of its own dataset
    assert sorted(run.data.tags.get("dataset") for run in tracked if run not in kedro_runs) == [
        f"{hardware}_compofa" for hardware in sorted(counts)
    ]
    assert not list(project_copy.glob("*.lock"))
