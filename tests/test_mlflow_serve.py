"""A registered predictor served by ``mlflow models serve`` (this environment, no new one)
answers ``/invocations`` as the predictor does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from ofa_latency_kedro import mlflow_models
from ofa_latency_kedro.encoding import load_latency_csv
from ofa_latency_kedro.predictors import train_predictor
from tests.helpers import free_port

NAME = "served_RTX_2080_Ti_GPU_ofa"
START_TIMEOUT_S = 180
STOP_TIMEOUT_S = 20


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status


def post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


class Server:
    """``mlflow models serve`` in a process group of its own, stopped with the group."""

    def __init__(self, model_uri: str, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = tempfile.TemporaryFile()
        venv = Path(sys.executable).parent  # as in an activated environment: mlflow runs uvicorn
        command = [str(venv / "mlflow"), "models", "serve", "-m", model_uri]
        self.process = subprocess.Popen(
            [*command, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
            env={
                **os.environ,
                "PATH": f"{venv}{os.pathsep}{os.environ.get('PATH', '')}",
                "KEDRO_DISABLE_TELEMETRY": "true",
                "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            },
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"mlflow models serve exited:\n{self.output()}")
            try:
                if get(f"{self.url}/ping") == 200:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        pytest.fail(f"mlflow models serve did not answer /ping in {START_TIMEOUT_S} s")

    def stop(self) -> None:
        """SIGTERM to the group (mlflow and the uvicorn it starts), SIGKILL to what is left
        of it after `STOP_TIMEOUT_S`."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while group_alive(self.process.pid) and time.monotonic() < deadline:
            self.process.poll()  # reaps mlflow itself once it exits
            time.sleep(0.2)
        if group_alive(self.process.pid):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_the_served_champion_answers_invocations_as_the_predictor(shared_dir: Path, tmp_path):
    csv = shared_dir / "seed_data" / "latency" / "RTX_2080_Ti_GPU_ofa.csv"
    predictor = train_predictor(
        load_latency_csv(csv).head(300), config={"epochs": 3, "hidden": 16, "depth": 1}
    )
    checkpoint = predictor.save(tmp_path / f"{NAME}.pt")
    with mlflow.start_run() as run:
        model = mlflow_models.log_predictor(run.info.run_id, NAME, predictor, checkpoint)
        mlflow_models.register_predictor(run.info.run_id, NAME, predictor, model)
    subnets = pd.read_csv(csv).iloc[400:408][["child_arch"]]
    archs = subnets["child_arch"].tolist()
    server = Server(f"models:/{NAME}@champion", free_port())
    try:
        server.wait_ready()
        answer = post(
            f"{server.url}/invocations",
            {"dataframe_split": subnets.to_dict(orient="split"), "params": {"level": 0.5}},
        )
    finally:
        server.stop()
    assert not group_alive(server.process.pid)  # nothing of the group is left serving
    served = pd.DataFrame(answer["predictions"])
    assert np.allclose(served["latency_ms"], predictor.predict(archs), rtol=1e-12, atol=0)
    low, high = predictor.predict_interval(archs, 0.5)
    assert np.allclose(served["latency_low_ms"], low, rtol=1e-12, atol=0)
    assert np.allclose(served["latency_high_ms"], high, rtol=1e-12, atol=0)
