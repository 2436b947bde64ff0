"""The MLflow UI (`make mlflow-ui`) after a small training of two predictors, as a person
checks it: the server on the project's store, then clicked through in a real browser: the
runs table, a predictor's run page, the compare view of both predictors, the model registry."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Page, expect

from tests.helpers import copy_project, copy_seed_rows, kedro
from tests.surface import pages
from tests.surface.browser import shown_image
from tests.surface.servers import mlflow_ui

pytestmark = pytest.mark.slow

#: Two seed datasets, so that two predictor runs can be compared; each predictor's run and
#: registered model are named after its dataset.
DATASETS = ("RTX_2080_Ti_GPU_ofa", "Tesla_P40_GPU_ofa")
SEED_ROWS = 150
EPOCHS = 5
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHAMPION = "champion"
ROOT_FILES_ONLY = (
    "the compare view does not offer {}: MLflow 3.17 lists only the files both runs hold at "
    "the root of their artifacts (it leaves folders out)"
)


class MlflowApi:
    """The tracking server's REST API, as the UI itself calls it."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _read(self, request: urllib.request.Request | str) -> bytes:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

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


def tag(run: dict[str, Any], key: str) -> str | None:
    return {item["key"]: item["value"] for item in run["data"].get("tags", [])}.get(key)


@dataclass(frozen=True)
class Store:
    """The UI's server and what the training logged there."""

    base_url: str
    api: MlflowApi
    experiment_id: str
    runs: list[dict[str, Any]]

    @property
    def parent(self) -> dict[str, Any]:
        parents = [run for run in self.runs if tag(run, "mlflow.parentRunId") is None]
        assert len(parents) == 1, [run["info"]["run_name"] for run in self.runs]
        return parents[0]

    @property
    def predictors(self) -> dict[str, dict[str, Any]]:
        """The nested runs by name."""
        return {run["info"]["run_name"]: run for run in self.runs if run is not self.parent}


def train_small_predictors(project: Path, shared_dir: Path) -> None:
    """`kedro run --pipelines encoding,training` on the first rows of two seed datasets."""
    copy_seed_rows(project, shared_dir, list(DATASETS), SEED_ROWS)
    params = f"training.config.epochs={EPOCHS}"
    run = kedro(project, "run", "--pipelines", "encoding,training", "--params", params)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Iterator[Store]:
    """Two predictors trained in a project copy, and `make mlflow-ui`'s server on its store."""
    folder = tmp_path_factory.mktemp("mlflow_ui")
    project = copy_project(folder / "project")
    train_small_predictors(project, shared_dir)
    # The runs went to the copy's own store, mlflow.db beside conf/: kedro-mlflow sets the
    # tracking URI from conf/base/mlflow.yml (sqlite:///mlflow.db, relative to the project),
    # which wins over the MLFLOW_TRACKING_URI that tests/conftest.py exports.
    assert (project / "mlflow.db").is_file(), "the run wrote no mlflow.db in the project"
    mlflow_conf = yaml.safe_load((project / "conf" / "base" / "mlflow.yml").read_text())
    experiment_name = mlflow_conf["tracking"]["experiment"]["name"]

    with mlflow_ui(project, log_path=folder / "mlflow_ui.log") as base_url:
        api = MlflowApi(base_url)
        experiments = api.post("experiments/search", {"max_results": 100})["experiments"]
        by_name = {experiment["name"]: experiment for experiment in experiments}
        assert experiment_name in by_name, f"no {experiment_name!r} in {sorted(by_name)}"
        experiment_id = by_name[experiment_name]["experiment_id"]
        runs = api.post("runs/search", {"experiment_ids": [experiment_id]})["runs"]
        yield Store(base_url, api, experiment_id, runs)


def test_the_server_holds_the_kedro_run_with_one_nested_run_per_predictor(store: Store):
    """What the pages below show comes from the server: the Kedro run, its parameters, one
    finished nested run per dataset, each with its parity plot."""
    parent = store.parent
    # kedro-mlflow names the run after its pipelines, in no fixed order
    assert set(parent["info"]["run_name"].split("+")) == {"encoding", "training"}
    params = {item["key"]: item["value"] for item in parent["data"]["params"]}
    assert params["training.config.epochs"] == str(EPOCHS)
    assert sorted(store.predictors) == sorted(DATASETS)
    for run in store.predictors.values():
        assert tag(run, "mlflow.parentRunId") == parent["info"]["run_id"]
    for run in store.runs:
        assert run["info"]["status"] == "FINISHED", run["info"]
        if run is not parent:
            plot = store.api.artifact(run["info"]["run_id"], pages.PARITY_PLOT)
            assert plot[:8] == PNG_SIGNATURE, run["info"]["run_name"]


@pytest.fixture
def page(page: Page) -> Page:
    """A fresh browser page, without the MLflow Assistant opening over it."""
    pages.skip_assistant(page)
    return page


def open_runs(page: Page, store: Store) -> None:
    """The experiment's runs table, with the predictor runs unfolded under the Kedro run."""
    page.goto(pages.runs_url(store.base_url, store.experiment_id))
    pages.show_child_runs(page, store.parent["info"]["run_name"])


def test_the_runs_page_lists_the_kedro_run_and_its_predictor_runs(store: Store, page: Page):
    open_runs(page, store)
    for name in [store.parent["info"]["run_name"], *DATASETS]:
        expect(pages.run_link(page, name)).to_be_visible()
    expect(page.get_by_text(f"{len(store.runs)} matching runs")).to_be_visible()


def test_a_predictor_runs_page_shows_its_parity_plot(store: Store, page: Page):
    """Run name in the table -> its page -> Artifacts -> the parity plot, the file the run
    logged."""
    dataset = DATASETS[0]
    open_runs(page, store)
    pages.run_link(page, dataset).click()
    expect(page.get_by_role("heading", name=dataset)).to_be_visible()
    pages.open_artifact(page, pages.PARITY_PLOT)
    image = page.get_by_role("img", name=pages.PARITY_PLOT, exact=True)
    logged = store.api.artifact(store.predictors[dataset]["info"]["run_id"], pages.PARITY_PLOT)
    assert shown_image(image) == logged


def test_comparing_two_predictor_runs_shows_both_parity_plots(store: Store, page: Page):
    """Tick both predictor runs, Compare, pick the parity plot among the common artifacts:
    each run's own plot, side by side."""
    open_runs(page, store)
    pages.compare_runs(page, list(DATASETS))
    expect(page.get_by_role("heading", name="Comparing 2 Runs")).to_be_visible()
    plot = pages.artifact_node(page, pages.PARITY_PLOT)
    expect(plot, ROOT_FILES_ONLY.format(pages.PARITY_PLOT)).to_be_visible()
    plot.click()
    images = page.get_by_role("img", name=pages.PARITY_PLOT, exact=True)
    expect(images).to_have_count(len(DATASETS))
    logged = {
        store.api.artifact(run["info"]["run_id"], pages.PARITY_PLOT)
        for run in store.predictors.values()
    }
    assert {shown_image(images.nth(index)) for index in range(len(DATASETS))} == logged


def test_the_model_registry_lists_each_predictor_with_its_champion(store: Store, page: Page):
    """Home -> Model training -> Model registry: a registered model per dataset, named after
    it, with a version under the ``champion`` alias."""
    page.goto(f"{store.base_url}/")
    page.get_by_role("button", name="Model training").click()
    page.get_by_role("link", name="Model registry").click()
    for dataset in DATASETS:
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=dataset, exact=True))
        expect(row).to_be_visible()
        expect(row).to_contain_text(CHAMPION)
