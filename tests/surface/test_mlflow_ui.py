"""The MLflow UI (`make mlflow-ui`) after a small training, as a person checks it: the server
on the project's store, its REST API, and the experiment's runs page in a real browser."""

from __future__ import annotations

import json
import math
import re
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import free_port, kedro
from tests.surface.browser import PNG_SIGNATURE, Chromium, assert_screenshot
from tests.surface.servers import background_server

DATASET = "Tesla_P40_GPU_ofa"
SEED_ROWS = 150
EPOCHS = 5
#: Files the training logs to each predictor's (nested) run.
ARTIFACTS = {"checkpoint/predictor.pt", "metadata.json", "plots/parity.png", "plots/loss.png"}
PAGE_BUDGETS_MS = (10000, 30000)


class MlflowApi:
    """The tracking server's REST API, as the UI itself calls it."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _read(self, request: urllib.request.Request | str) -> bytes:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def get(self, endpoint: str, **query: str) -> dict[str, Any]:
        url = f"{self.base_url}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}"
        return json.loads(self._read(url))

    def post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.base_url}/api/2.0/mlflow/{endpoint}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return json.loads(self._read(request))

    def artifact(self, run_id: str, path: str) -> bytes:
        query = urllib.parse.urlencode({"run_uuid": run_id, "path": path})
        return self._read(f"{self.base_url}/get-artifact?{query}")


def train_small_predictor(project: Path, shared_dir: Path) -> None:
    """`kedro run --pipelines encoding,training` on the first rows of one seed dataset."""
    seed = shared_dir / "seed_data" / "latency" / f"{DATASET}.csv"
    lines = seed.read_text().splitlines()[: SEED_ROWS + 1]  # header + rows
    (project / "data" / "01_raw" / "latency" / seed.name).write_text("\n".join(lines) + "\n")
    params = f"training.config.epochs={EPOCHS}"
    run = kedro(project, "run", "--pipelines", "encoding,training", "--params", params)
    assert run.returncode == 0, run.stdout + run.stderr


def tag(run: dict[str, Any], key: str) -> str | None:
    return {item["key"]: item["value"] for item in run["data"].get("tags", [])}.get(key)


@pytest.mark.slow
def test_mlflow_ui_shows_the_training_run(
    project_copy: Path, shared_dir: Path, chromium: Chromium, tmp_path: Path
):
    """The run, its per-epoch and final metrics and its files (checkpoint, plots) reach the
    server `make mlflow-ui` starts, and its page lists the run."""
    train_small_predictor(project_copy, shared_dir)
    # The run went to the copy's own store, mlflow.db beside conf/: kedro-mlflow sets the
    # tracking URI from conf/base/mlflow.yml (sqlite:///mlflow.db, relative to the project),
    # which wins over the MLFLOW_TRACKING_URI that tests/conftest.py exports.
    assert (project_copy / "mlflow.db").is_file(), "the run wrote no mlflow.db in the project"
    mlflow_conf = yaml.safe_load((project_copy / "conf" / "base" / "mlflow.yml").read_text())
    experiment_name = mlflow_conf["tracking"]["experiment"]["name"]

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    # `make mlflow-ui`'s command on a free port; one worker, not uvicorn's four, starts in
    # about 20 s instead of 30 on two cores.
    command = [mlflow, "ui", "--backend-store-uri", "sqlite:///mlflow.db"]
    with background_server(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=project_copy,
        ready_url=f"{base_url}/health",
        log_path=tmp_path / "mlflow_ui.log",
        timeout_s=180,
    ):
        api = MlflowApi(base_url)
        experiments = api.post("experiments/search", {"max_results": 100})["experiments"]
        by_name = {experiment["name"]: experiment for experiment in experiments}
        assert experiment_name in by_name, f"no {experiment_name!r} in {sorted(by_name)}"
        experiment_id = by_name[experiment_name]["experiment_id"]

        runs = api.post("runs/search", {"experiment_ids": [experiment_id]})["runs"]
        parents = [run for run in runs if tag(run, "mlflow.parentRunId") is None]
        assert len(parents) == 1, [run["info"]["run_name"] for run in runs]
        parent = parents[0]
        # kedro-mlflow names the run after its pipelines, in no fixed order (seen both
        # "training+encoding" and "encoding+training")
        assert set(parent["info"]["run_name"].split("+")) == {"encoding", "training"}
        params = {item["key"]: item["value"] for item in parent["data"]["params"]}
        assert params["training.config.epochs"] == str(EPOCHS)
        children = [run for run in runs if run is not parent]
        assert [run["info"]["run_name"] for run in children] == [DATASET]
        predictor = children[0]
        assert tag(predictor, "mlflow.parentRunId") == parent["info"]["run_id"]
        for run in runs:
            assert run["info"]["status"] == "FINISHED", run["info"]

        run_id = predictor["info"]["run_id"]
        metrics = {item["key"]: item["value"] for item in predictor["data"]["metrics"]}
        assert metrics["train_rows"] + metrics["val_rows"] + metrics["test_rows"] == SEED_ROWS
        for key in ("test_mae_ms", "test_rmse_ms", "test_mape_pct", "val_mae_ms"):
            assert math.isfinite(metrics[key]) and metrics[key] > 0, (key, metrics[key])
        history = api.get("metrics/get-history", run_id=run_id, metric_key="epoch_val_mae_ms")
        assert [point["step"] for point in history["metrics"]] == list(range(1, EPOCHS + 1))

        listed = [
            *api.get("artifacts/list", run_id=run_id).get("files", []),
            *api.get("artifacts/list", run_id=run_id, path="plots").get("files", []),
            *api.get("artifacts/list", run_id=run_id, path="checkpoint").get("files", []),
        ]
        sizes = {item["path"]: int(item.get("file_size", 0)) for item in listed}
        assert ARTIFACTS <= set(sizes), f"artifacts of {DATASET}: {sorted(sizes)}"
        assert all(sizes[name] > 1000 for name in ARTIFACTS), sizes
        assert api.artifact(run_id, "checkpoint/predictor.pt")[:4] == b"PK\x03\x04"  # torch.save
        assert api.artifact(run_id, "plots/parity.png")[:8] == PNG_SIGNATURE

        # The experiment's runs page (a bare #/experiments/<id> opens MLflow 3's GenAI
        # overview, which shows traces, not runs).
        page_url = f"{base_url}/#/experiments/{experiment_id}/runs"
        parent_link = re.compile(
            rf'href="#/experiments/{experiment_id}/runs/{parent["info"]["run_id"]}"'
            rf"[^>]*>\s*<span[^>]*>{re.escape(parent['info']['run_name'])}</span>"
        )
        for budget_ms in PAGE_BUDGETS_MS:
            dom = chromium.dump_dom(page_url, budget_ms=budget_ms)
            if parent_link.search(dom):
                break
        assert parent_link.search(dom), f"{page_url} does not list run {parent['info']}"
        count = re.search(r"<strong>(\d+)</strong>\s*matching runs", dom)
        assert count and int(count.group(1)) == len(runs), count and count.group(0)

        screenshot = chromium.screenshot(
            page_url,
            project_copy / "data" / "08_reporting" / "mlflow_experiment.png",
            budget_ms=PAGE_BUDGETS_MS[0],
        )
    assert_screenshot(screenshot)
