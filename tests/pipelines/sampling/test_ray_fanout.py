"""Measurement fanned out to a real local Ray cluster (started by the test on loopback, with
a custom resource standing for a device, and stopped afterwards)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import FAST_PROTOCOL, free_port, kedro, params_arg

DEVICE = "test-box"
#: The test cluster and its drivers share one token (Ray 2.59+ authenticates local clusters).
RAY_ENV = {
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": secrets.token_hex(16),
    "RAY_USAGE_STATS_ENABLED": "0",
}


def ray_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **RAY_ENV}
    ray = str(Path(sys.executable).with_name("ray"))
    return subprocess.run(
        [ray, *args], check=False, capture_output=True, text=True, env=env, timeout=180
    )


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory) -> Iterator[str]:
    port = free_port()
    started = ray_cli(
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=2",
        f'--resources={{"hw:{DEVICE}": 1}}',
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={tmp_path_factory.mktemp('ray')}",
    )
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield f"127.0.0.1:{port}"
    finally:
        ray_cli("stop", "--force")


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
    assert session["repeat_probe"]["subnets"] == 2

    again = sampling_run(
        project_copy, sampling_params(ray_cluster).replace("num_subnets=10", "num_subnets=14")
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(pd.read_csv(folder / f"{DEVICE}_compofa.csv")) == 14


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
