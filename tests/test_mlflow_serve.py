"""A registered predictor served by ``mlflow models serve`` (this environment, no new one)
answers ``/invocations`` as the predictor does."""

from __future__ import annotations

import json
import os
import sys
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
from tests.surface.servers import background_server

NAME = "served_RTX_2080_Ti_GPU_ofa"
START_TIMEOUT_S = 180


def post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


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
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    venv = Path(sys.executable).parent  # as in an activated environment: mlflow runs uvicorn
    command = [str(venv / "mlflow"), "models", "serve", "-m", f"models:/{NAME}@champion"]
    with background_server(
        [*command, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path,
        ready_url=f"{url}/ping",
        log_path=tmp_path / "serve.log",
        timeout_s=START_TIMEOUT_S,
        env={
            **os.environ,
            "PATH": f"{venv}{os.pathsep}{os.environ.get('PATH', '')}",
            "KEDRO_DISABLE_TELEMETRY": "true",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        },
    ):
        answer = post(
            f"{url}/invocations",
            {"dataframe_split": subnets.to_dict(orient="split"), "params": {"level": 0.5}},
        )
    served = pd.DataFrame(answer["predictions"])
    assert np.allclose(served["latency_ms"], predictor.predict(archs), rtol=1e-12, atol=0)
    low, high = predictor.predict_interval(archs, 0.5)
    assert np.allclose(served["latency_low_ms"], low, rtol=1e-12, atol=0)
    assert np.allclose(served["latency_high_ms"], high, rtol=1e-12, atol=0)
