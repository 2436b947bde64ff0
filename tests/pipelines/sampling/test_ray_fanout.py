"""Measurement fanned out to a real local Ray cluster (started by the test on loopback, with
a custom resource standing for a device, and stopped afterwards: that cluster alone)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import FAST_PROTOCOL, RayCluster, free_port, kedro, params_arg

DEVICE = "test-box"
#: The test cluster and its drivers share one token (Ray 2.59+ authenticates local clusters).
RAY_ENV = {
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": secrets.token_hex(16),
    "RAY_USAGE_STATS_ENABLED": "0",
}


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    cluster = RayCluster.start(RAY_ENV, num_cpus=2, resources=f'{{"hw:{DEVICE}": 1}}')
    try:
        yield cluster.address
    finally:
        cluster.stop()  # this cluster only: not `ray stop`, which stops every Ray on the machine


def sampling_run(project: Path, params: str):
    """``kedro run --pipelines sampling`` with the test cluster's Ray settings."""
    return kedro(project, "run", "--pipelines", "sampling", "--params", params, env=RAY_ENV)


def sampling_params(address: str, hardware: str = DEVICE, **extra: str) -> str:
    values = {
        "hardware": hardware,
        "space": "compofa",
        "num_subnets": 10,
        "progress": "false",
        "ray.address": address,
        **extra,
    }
    return params_arg("sampling", values) + "," + params_arg("sampling.protocol", FAST_PROTOCOL)


@pytest.mark.slow
def test_measurement_runs_as_ray_tasks_on_the_device_node(project_copy: Path, ray_cluster: str):
    result = sampling_run(project_copy, sampling_params(ray_cluster))
    assert result.returncode == 0, result.stdout + result.stderr
    folder = project_copy / "data" / "01_raw" / "latency"
    frame = pd.read_csv(folder / f"{DEVICE}_compofa.csv")
    assert len(frame) == 10
    assert frame["child_arch"].is_unique
    assert set(frame["hardware"]) == {DEVICE}
    sidecar = json.loads((folder / f"{DEVICE}_compofa.json").read_text())
    descriptor = sidecar["descriptor"]
    assert descriptor["ray_resource"] == f"hw:{DEVICE}"
    assert descriptor["ray_address"] == ray_cluster
    assert descriptor["ray_node_id"]
    assert sidecar["protocol"]["reference_ms"] > 0
    session = sidecar["sessions"][-1]
    assert session["ray_address"] == ray_cluster
    assert session["measured"] == 10
    assert session["repeat_probe"]["within_run"]["subnets"] == 2

    again = sampling_run(
        project_copy, sampling_params(ray_cluster).replace("num_subnets=10", "num_subnets=14")
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(pd.read_csv(folder / f"{DEVICE}_compofa.csv")) == 14
    first, second = json.loads((folder / f"{DEVICE}_compofa.json").read_text())["sessions"]
    assert first["reference_check"] == "this session calibrated the dataset's reference"
    assert first["reference_drift"] == 0.0
    assert second["reference_check"] == "measured at the session's start"  # on the node
    assert second["reference_now_ms"] > 0
    assert second["repeat_probe"]["across_sessions"]["subnets"] == 1
    assert second["repeat_probe"]["within_run"]["subnets"] == 1


@pytest.mark.slow
def test_a_device_no_node_offers_is_named(project_copy: Path, ray_cluster: str):
    result = sampling_run(project_copy, sampling_params(ray_cluster, hardware="jetson-orin"))
    assert result.returncode != 0
    output = " ".join((result.stdout + result.stderr).split())
    assert "offers the resource 'hw:jetson-orin'" in output
    assert f"hw:{DEVICE}" in output


@pytest.mark.slow
def test_an_unreachable_cluster_is_named(project_copy: Path):
    address = f"127.0.0.1:{free_port()}"
    result = sampling_run(project_copy, sampling_params(address))
    assert result.returncode != 0
    output = " ".join((result.stdout + result.stderr).split())
    assert f"cannot reach the Ray cluster at {address}" in output


RAY_TASK = """
import os, sys, ray
ray.init(address=sys.argv[1], logging_level="WARNING")
assert ray.get(ray.remote(lambda: os.getpid()).remote()) != os.getpid()
"""


def run_a_task(address: str) -> None:
    env = {**os.environ, **RAY_ENV}
    done = subprocess.run(
        [sys.executable, "-c", RAY_TASK, address],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"no task ran on {address}:\n{done.stdout}\n{done.stderr}"


def answers(address: str) -> bool:
    host, port = address.split(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError:
        return False
    return True


@pytest.mark.slow
def test_stopping_a_test_cluster_leaves_a_cluster_started_before_it_running():
    """The tear-down of the fixture above ends its own cluster (workers included) and not
    another one on the same machine."""
    before = RayCluster.start(RAY_ENV, num_cpus=1)
    try:
        running = set(before.processes())  # GCS, raylet, agents, monitors
        ours = RayCluster.start(RAY_ENV, num_cpus=1)
        try:
            run_a_task(ours.address)  # forks a worker, which leaves the raylet's process group
        finally:
            ours.stop()
        assert ours.processes() == []
        assert not answers(ours.address)
        assert not ours.temp_dir.exists()
        assert running <= set(before.processes())
        run_a_task(before.address)
    finally:
        before.stop()
    assert before.processes() == []
